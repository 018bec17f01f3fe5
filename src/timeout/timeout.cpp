/*-------------------------------------------------------------------------
 *
 * timeout.cpp
 *	  rustydb.transaction_timeout: PostgreSQL 17's transaction_timeout for
 *	  PostgreSQL 15.
 *
 * A transaction (explicit, or the implicit one of a single statement) that
 * has been open longer than rustydb.transaction_timeout, whether it is
 * running a statement or idle, ends its session: the backend exits with
 *
 *	FATAL:  terminating connection due to transaction timeout (SQLSTATE 25P04)
 *
 * and the transaction rolls back, as with PostgreSQL 17. The time counts
 * from the transaction's start (transaction_timestamp()).
 *
 * PostgreSQL 15 has no transaction-start callback, so the timer is armed
 * by the first statement of each transaction (audit's ExecutorStart and
 * ProcessUtility hooks, src/audit/hooks.cpp, call check_armed()), for the
 * time that remains. It is disarmed at commit and prepare. PostgreSQL
 * disables all timers when a statement fails; the abort callback re-arms
 * it so an aborted transaction block left idle is still ended. When the
 * timer fires the handler checks that the same transaction is still open,
 * then requests termination the way SIGTERM does; audit's emit_log hook
 * calls rewrite_error(), which turns the resulting "terminating connection
 * due to administrator command" into the message above. Changing the
 * setting inside a transaction re-arms the timer at the next statement,
 * counting from the transaction's start.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/timeout/timeout.h"

#include "rustydb/common/boundary.h"
#include "rustydb/common/settings.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/xact.h"
#include "storage/latch.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
RUSTYDB_PG_INCLUDE_END

#include <csignal>

namespace rustydb {
namespace timeout {

namespace {

TimeoutId timeout_id = MAX_TIMEOUTS;
bool registered = false;
TimestampTz armed_start = 0; /* start of the transaction the timer is for */
int armed_ms = 0;
volatile sig_atomic_t fired = false;

void
disarm()
{
	if (registered && armed_start != 0)
		disable_timeout(timeout_id, false);
	armed_start = 0;
	armed_ms = 0;
}

void
arm(TimestampTz start, int ms)
{
	TimestampTz fin = TimestampTzPlusMilliseconds(start, ms);

	armed_start = start;
	armed_ms = ms;
	enable_timeout_at(timeout_id, fin);
}

} /* namespace */

} /* namespace timeout */
} /* namespace rustydb */

extern "C" {

static void
transaction_timeout_handler(void) noexcept
{
	rustydb::boundary::run("transaction timeout handler", [] {
		using namespace rustydb::timeout;

		/* the timer may outlive its transaction: check it is still open */
		if (armed_start == 0 || !IsTransactionOrTransactionBlock() ||
			GetCurrentTransactionStartTimestamp() != armed_start)
			return;
		fired = true;
		ProcDiePending = true;
		InterruptPending = true;
		SetLatch(MyLatch);
	});
}

static void
timeout_xact_callback(XactEvent event, void *arg) noexcept
{
	rustydb::boundary::run("transaction timeout xact callback", [&] {
		using namespace rustydb::timeout;

		if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		{
			/* PostgreSQL disabled every timer before aborting; an aborted
			 * transaction block stays open until ROLLBACK */
			if (registered && armed_start != 0 && IsTransactionBlock() && !fired)
				arm(armed_start, armed_ms);
			return;
		}
		if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
			event == XACT_EVENT_PREPARE)
			disarm();
	});
}

} /* extern "C" */

namespace rustydb {
namespace timeout {

void
check_armed()
{
	int ms = settings::transaction_timeout;

	if (MyBackendType != B_BACKEND)
		return;
	if (ms <= 0)
	{
		if (armed_start != 0)
			disarm();
		return;
	}
	if (!IsTransactionState())
		return;
	TimestampTz start = GetCurrentTransactionStartTimestamp();

	if (start == armed_start && ms == armed_ms)
		return;
	if (!registered)
	{
		timeout_id = RegisterTimeout(USER_TIMEOUT, transaction_timeout_handler);
		registered = true;
	}
	arm(start, ms);
}

void
rewrite_error(ErrorData *edata)
{
	if (!fired || edata->elevel != FATAL || edata->sqlerrcode != ERRCODE_ADMIN_SHUTDOWN)
		return;
	edata->sqlerrcode = MAKE_SQLSTATE('2', '5', 'P', '0', '4');
	edata->message = pstrdup("terminating connection due to transaction timeout");
	edata->detail = psprintf("The transaction was open for longer than "
							 "rustydb.transaction_timeout (%d ms).",
							 armed_ms);
}

void
init()
{
	RegisterXactCallback(timeout_xact_callback, nullptr);
}

} /* namespace timeout */
} /* namespace rustydb */

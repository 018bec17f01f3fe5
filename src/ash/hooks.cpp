/*-------------------------------------------------------------------------
 *
 * hooks.cpp
 *	  Record each backend's top-level query id in its shared slot.
 *
 * PostgreSQL computes query ids once a module asks for them
 * (EnableQueryId, so compute_query_id = auto turns them on). A backend
 * records the id of its top-level statement in its QuerySlot when the
 * statement starts: after parse analysis (simple protocol, and Parse of
 * the extended protocol) and at ExecutorStart (Execute of a prepared
 * statement, which is not analysed again). The slot is stamped with the
 * statement's start time, which the sampler compares with the backend
 * status entry's activity start, so a stale id is never shown for a new
 * statement. The id is in place before the statement's executor runs,
 * so a session that then waits on a lock is sampled with its query id.
 *
 * The steps below run from the hooks installed by src/common/hooks.cpp.
 * "Top-level" is tracked as pg_stat_statements does: a nesting depth
 * raised around planning, ExecutorRun, ExecutorFinish and ProcessUtility;
 * statements run by functions or procedures (depth > 0) leave the slot
 * alone.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/ash/ash.h"
#include "rustydb/ash/ring.h"

#include "rustydb/common/hooks.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/xact.h"
#include "storage/proc.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace ash {

namespace {

int nesting_depth = 0;

void
record_query_id(uint64 query_id)
{
	Shared *sh = shared();

	if (query_id == 0 || sh == nullptr || MyProc == nullptr || MyProc->pgprocno < 0 ||
		MyProc->pgprocno >= sh->nslots)
		return;

	QuerySlot *slot = slot_at(sh, MyProc->pgprocno);

	pg_atomic_fetch_add_u32(&slot->changecount, 1); /* odd: being written (full barrier) */
	slot->stmt_start = GetCurrentStatementStartTimestamp();
	slot->query_id = query_id;
	pg_write_barrier();
	pg_atomic_fetch_add_u32(&slot->changecount, 1);
}

} /* namespace */

void
hook_post_parse(hooks::PostParseCall &call)
{
	call.proceed();
	if (nesting_depth == 0)
		record_query_id(call.query->queryId);
}

/* run call.proceed() one nesting level deeper */
template <typename C>
void
nested(C &call)
{
	nesting_depth++;
	PG_TRY();
	{
		call.proceed();
	}
	PG_FINALLY();
	{
		nesting_depth--;
	}
	PG_END_TRY();
}

void
hook_planner(hooks::PlannerCall &call)
{
	nested(call);
}

void
hook_executor_start(hooks::StartCall &call)
{
	if (nesting_depth == 0 && call.query_desc->plannedstmt != nullptr)
		record_query_id(call.query_desc->plannedstmt->queryId);
	call.proceed();
}

void
hook_executor_run(hooks::RunCall &call)
{
	nested(call);
}

void
hook_executor_finish(hooks::FinishCall &call)
{
	nested(call);
}

void
hook_process_utility(hooks::UtilityCall &call)
{
	nested(call);
}

} /* namespace ash */
} /* namespace rustydb */

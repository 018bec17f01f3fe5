/*-------------------------------------------------------------------------
 *
 * hooks.cpp
 *	  Audit's PostgreSQL hooks, and the one function that installs them.
 *
 * ExecutorStart and ProcessUtility give a statement a policy covers its
 * frame (objects.cpp); ExecutorRun, ExecutorFinish and ProcessUtility
 * call the next hook inside PG_TRY, so a statement that fails is recorded
 * with its SQLSTATE before the transaction aborts; ExecutorEnd and the end
 * of ProcessUtility turn the frame into records (frames.cpp). object_access
 * reports changes to the trail's protection (protect.cpp) and collects the
 * functions a statement executes; emit_log records statements that failed
 * before they had a frame (records.cpp).
 *
 * Each hook_* function is audit's step of one hook, run by
 * src/common/hooks.cpp in its documented order (audit is outermost): it
 * calls call.proceed() for the later steps, the hook installed before
 * rustydb's and PostgreSQL's standard function.
 *
 * The transaction timeout (src/timeout) has no hooks of its own: the
 * ExecutorStart and ProcessUtility hooks arm its timer and the emit_log
 * hook rewrites the message of a session it ended.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/audit/audit.h"
#include "rustydb/audit/capture.h"

#include "rustydb/common/boundary.h"
#include "rustydb/timeout/timeout.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/xact.h"
#include "catalog/objectaccess.h"
#include "executor/executor.h"
#include "tcop/utility.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace audit {

namespace {

int64
processed(QueryDesc *qd)
{
	return qd->estate != nullptr ? static_cast<int64>(qd->estate->es_processed) : 0;
}

/*
 * The later steps, for a statement with a frame: an error ends the frame
 * with its SQLSTATE (and the rows processed so far, when qd is given),
 * then goes on. The PG_TRY is in a frame of its own that owns no C++
 * objects.
 */
template <typename C>
__attribute__((noinline)) void
guarded(Frame *f, C &call, QueryDesc *qd)
{
	PG_TRY();
	{
		call.proceed();
	}
	PG_CATCH();
	{
		frame_failed(f, qd != nullptr ? processed(qd) : 0);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/* The frame of a statement in the executor, if it has one. */
Frame *
frame_of(QueryDesc *qd)
{
	return session().frames.top != nullptr ? find_frame(qd) : nullptr;
}

} /* namespace */

/* ---- the steps ---- */

void
hook_executor_start(hooks::StartCall &call)
{
	Frame *f = nullptr;

	session().frames.exec_nesting++; /* until ExecutorEnd, or the (sub)transaction's abort */
	timeout::check_armed();
	if (!(call.eflags & EXEC_FLAG_EXPLAIN_ONLY) && capture_enabled())
		f = frame_for_query(call.query_desc);
	if (f == nullptr)
		call.proceed();
	else
		guarded(f, call, nullptr);
}

void
hook_executor_run(hooks::RunCall &call)
{
	Frame *f = frame_of(call.query_desc);

	if (f != nullptr)
		guarded(f, call, call.query_desc);
	else
		call.proceed();
}

void
hook_executor_finish(hooks::FinishCall &call)
{
	Frame *f = frame_of(call.query_desc);

	if (f != nullptr)
		guarded(f, call, call.query_desc);
	else
		call.proceed();
}

void
hook_executor_end(hooks::EndCall &call)
{
	FrameStack &fs = session().frames;
	Frame *f = frame_of(call.query_desc);

	if (f != nullptr)
		frame_succeeded(f, processed(call.query_desc));
	if (fs.exec_nesting > 0)
		fs.exec_nesting--;
	call.proceed();
}

void
hook_process_utility(hooks::UtilityCall &call)
{
	FrameStack &fs = session().frames;
	int nesting = fs.exec_nesting++;

	timeout::check_armed();

	Frame *f = frame_for_utility(call.pstmt, call.query_string, call.params);

	if (f == nullptr)
	{
		call.proceed();
		fs.exec_nesting = nesting;
		return;
	}
	guarded(f, call, nullptr);
	fs.exec_nesting = nesting;
	frame_succeeded(f, call.qc != nullptr ? static_cast<int64>(call.qc->nprocessed) : 0);
}

void
hook_object_access(hooks::ObjectAccessCall &call)
{
	const Session &s = session();

	if (!s.in_audit_worker && !s.policy.loading && IsTransactionState())
		protection_event(call.access, call.class_id, call.object_id, call.sub_id);
	if (call.access == OAT_FUNCTION_EXECUTE)
		note_function(call.object_id);
	call.proceed();
}

void
hook_emit_log(hooks::EmitLogCall &call)
{
	ErrorData *edata = call.edata;

	if (edata->elevel >= ERROR)
	{
		session().frames.last_error_code = edata->sqlerrcode;
		timeout::rewrite_error(edata);
		if (edata->elevel == ERROR)
			record_failed_statement(edata);
	}
	call.proceed();
}

} /* namespace audit */
} /* namespace rustydb */

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
 * Each hook is an extern "C" noexcept entry point whose body is one call
 * of a C++ function below, through boundary::run. Every hook chains to
 * the one installed before it (or to PostgreSQL's standard function).
 *
 * The transaction timeout (src/timeout) has no hooks of its own: the
 * ExecutorStart and ProcessUtility hooks arm its timer and the emit_log
 * hook rewrites the message of a session it ended.
 *
 *-------------------------------------------------------------------------
 */
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

ExecutorStart_hook_type prev_executor_start = nullptr;
ExecutorRun_hook_type prev_executor_run = nullptr;
ExecutorFinish_hook_type prev_executor_finish = nullptr;
ExecutorEnd_hook_type prev_executor_end = nullptr;
ProcessUtility_hook_type prev_process_utility = nullptr;
object_access_hook_type prev_object_access = nullptr;
emit_log_hook_type prev_emit_log = nullptr;

int64
processed(QueryDesc *qd)
{
	return qd->estate != nullptr ? static_cast<int64>(qd->estate->es_processed) : 0;
}

void
call_executor_start(QueryDesc *qd, int eflags)
{
	if (prev_executor_start)
		prev_executor_start(qd, eflags);
	else
		standard_ExecutorStart(qd, eflags);
}

void
call_utility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
			 ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *env,
			 DestReceiver *dest, QueryCompletion *qc)
{
	if (prev_process_utility)
		prev_process_utility(pstmt, query_string, read_only_tree, context, params, env, dest, qc);
	else
		standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params, env, dest,
								qc);
}

/*
 * The next hook, for a statement with a frame: an error ends the frame
 * with its SQLSTATE, then goes on. Each PG_TRY is in a frame of its own
 * that owns no C++ objects.
 */
__attribute__((noinline)) void
guarded_start(Frame *f, QueryDesc *qd, int eflags)
{
	PG_TRY();
	{
		if (prev_executor_start)
			prev_executor_start(qd, eflags);
		else
			standard_ExecutorStart(qd, eflags);
	}
	PG_CATCH();
	{
		frame_failed(f, 0);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

__attribute__((noinline)) void
guarded_run(Frame *f, QueryDesc *qd, ScanDirection direction, uint64 count, bool execute_once)
{
	PG_TRY();
	{
		if (prev_executor_run)
			prev_executor_run(qd, direction, count, execute_once);
		else
			standard_ExecutorRun(qd, direction, count, execute_once);
	}
	PG_CATCH();
	{
		frame_failed(f, processed(qd));
		PG_RE_THROW();
	}
	PG_END_TRY();
}

__attribute__((noinline)) void
guarded_finish(Frame *f, QueryDesc *qd)
{
	PG_TRY();
	{
		if (prev_executor_finish)
			prev_executor_finish(qd);
		else
			standard_ExecutorFinish(qd);
	}
	PG_CATCH();
	{
		frame_failed(f, processed(qd));
		PG_RE_THROW();
	}
	PG_END_TRY();
}

__attribute__((noinline)) void
guarded_utility(Frame *f, PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
				ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *env,
				DestReceiver *dest, QueryCompletion *qc)
{
	PG_TRY();
	{
		call_utility(pstmt, query_string, read_only_tree, context, params, env, dest, qc);
	}
	PG_CATCH();
	{
		frame_failed(f, 0);
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

/* ---- the hook bodies ---- */

void
executor_start(QueryDesc *qd, int eflags)
{
	Frame *f = nullptr;

	session().frames.exec_nesting++; /* until ExecutorEnd, or the (sub)transaction's abort */
	timeout::check_armed();
	if (!(eflags & EXEC_FLAG_EXPLAIN_ONLY) && capture_enabled())
		f = frame_for_query(qd);
	if (f == nullptr)
		call_executor_start(qd, eflags);
	else
		guarded_start(f, qd, eflags);
}

void
executor_run(QueryDesc *qd, ScanDirection direction, uint64 count, bool execute_once)
{
	Frame *f = frame_of(qd);

	if (f != nullptr)
		guarded_run(f, qd, direction, count, execute_once);
	else if (prev_executor_run)
		prev_executor_run(qd, direction, count, execute_once);
	else
		standard_ExecutorRun(qd, direction, count, execute_once);
}

void
executor_finish(QueryDesc *qd)
{
	Frame *f = frame_of(qd);

	if (f != nullptr)
		guarded_finish(f, qd);
	else if (prev_executor_finish)
		prev_executor_finish(qd);
	else
		standard_ExecutorFinish(qd);
}

void
executor_end(QueryDesc *qd)
{
	FrameStack &fs = session().frames;
	Frame *f = frame_of(qd);

	if (f != nullptr)
		frame_succeeded(f, processed(qd));
	if (fs.exec_nesting > 0)
		fs.exec_nesting--;
	if (prev_executor_end)
		prev_executor_end(qd);
	else
		standard_ExecutorEnd(qd);
}

void
process_utility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
				ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *env,
				DestReceiver *dest, QueryCompletion *qc)
{
	FrameStack &fs = session().frames;
	int nesting = fs.exec_nesting++;

	timeout::check_armed();

	Frame *f = frame_for_utility(pstmt, query_string, params);

	if (f == nullptr)
	{
		call_utility(pstmt, query_string, read_only_tree, context, params, env, dest, qc);
		fs.exec_nesting = nesting;
		return;
	}
	guarded_utility(f, pstmt, query_string, read_only_tree, context, params, env, dest, qc);
	fs.exec_nesting = nesting;
	frame_succeeded(f, qc != nullptr ? static_cast<int64>(qc->nprocessed) : 0);
}

void
object_access(ObjectAccessType access, Oid class_id, Oid object_id, int sub_id, void *arg)
{
	const Session &s = session();

	if (!s.in_audit_worker && !s.policy.loading && IsTransactionState())
		protection_event(access, class_id, object_id, sub_id);
	if (access == OAT_FUNCTION_EXECUTE)
		note_function(object_id);
	if (prev_object_access)
		prev_object_access(access, class_id, object_id, sub_id, arg);
}

void
emit_log(ErrorData *edata)
{
	if (edata->elevel >= ERROR)
	{
		session().frames.last_error_code = edata->sqlerrcode;
		timeout::rewrite_error(edata);
		if (edata->elevel == ERROR)
			record_failed_statement(edata);
	}
	if (prev_emit_log)
		prev_emit_log(edata);
}

} /* namespace */

} /* namespace audit */
} /* namespace rustydb */

/* ---- entry points ---- */

extern "C" {

static void
audit_executor_start(QueryDesc *qd, int eflags) noexcept
{
	rustydb::boundary::run("audit ExecutorStart",
						   [&] { rustydb::audit::executor_start(qd, eflags); });
}

static void
audit_executor_run(QueryDesc *qd, ScanDirection direction, uint64 count, bool execute_once) noexcept
{
	rustydb::boundary::run("audit ExecutorRun", [&] {
		rustydb::audit::executor_run(qd, direction, count, execute_once);
	});
}

static void
audit_executor_finish(QueryDesc *qd) noexcept
{
	rustydb::boundary::run("audit ExecutorFinish", [&] { rustydb::audit::executor_finish(qd); });
}

static void
audit_executor_end(QueryDesc *qd) noexcept
{
	rustydb::boundary::run("audit ExecutorEnd", [&] { rustydb::audit::executor_end(qd); });
}

static void
audit_process_utility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
					  ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *env,
					  DestReceiver *dest, QueryCompletion *qc) noexcept
{
	rustydb::boundary::run("audit ProcessUtility", [&] {
		rustydb::audit::process_utility(pstmt, query_string, read_only_tree, context, params, env,
										dest, qc);
	});
}

static void
audit_object_access(ObjectAccessType access, Oid class_id, Oid object_id, int sub_id,
					void *arg) noexcept
{
	rustydb::boundary::run("audit object_access", [&] {
		rustydb::audit::object_access(access, class_id, object_id, sub_id, arg);
	});
}

static void
audit_emit_log(ErrorData *edata) noexcept
{
	rustydb::boundary::run("audit emit_log", [&] { rustydb::audit::emit_log(edata); });
}

} /* extern "C" */

namespace rustydb {
namespace audit {

void
install_hooks()
{
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = audit_executor_start;
	prev_executor_run = ExecutorRun_hook;
	ExecutorRun_hook = audit_executor_run;
	prev_executor_finish = ExecutorFinish_hook;
	ExecutorFinish_hook = audit_executor_finish;
	prev_executor_end = ExecutorEnd_hook;
	ExecutorEnd_hook = audit_executor_end;
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = audit_process_utility;
	prev_object_access = object_access_hook;
	object_access_hook = audit_object_access;
	prev_emit_log = emit_log_hook;
	emit_log_hook = audit_emit_log;
}

} /* namespace audit */
} /* namespace rustydb */

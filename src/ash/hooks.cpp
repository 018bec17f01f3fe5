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
 * "Top-level" is tracked as pg_stat_statements does: a nesting depth
 * raised around planning, ExecutorRun, ExecutorFinish and ProcessUtility;
 * statements run by functions or procedures (depth > 0) leave the slot
 * alone.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/ash/ash.h"
#include "rustydb/ash/ring.h"

#include "rustydb/common/boundary.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/xact.h"
#include "executor/executor.h"
#include "optimizer/planner.h"
#include "parser/analyze.h"
#include "storage/proc.h"
#include "tcop/utility.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace ash {

namespace {

int nesting_depth = 0;

post_parse_analyze_hook_type prev_post_parse_analyze = nullptr;
planner_hook_type prev_planner = nullptr;
ExecutorStart_hook_type prev_executor_start = nullptr;
ExecutorRun_hook_type prev_executor_run = nullptr;
ExecutorFinish_hook_type prev_executor_finish = nullptr;
ProcessUtility_hook_type prev_process_utility = nullptr;

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

extern "C" {

static void
ash_post_parse_analyze(ParseState *pstate, Query *query, JumbleState *jstate) noexcept
{
	rustydb::boundary::run("ash post_parse_analyze", [&] {
		if (prev_post_parse_analyze)
			prev_post_parse_analyze(pstate, query, jstate);
		if (nesting_depth == 0)
			record_query_id(query->queryId);
	});
}

static PlannedStmt *
ash_planner(Query *parse, const char *query_string, int cursor_options,
			ParamListInfo bound_params) noexcept
{
	return rustydb::boundary::run("ash planner", [&] {
		PlannedStmt *volatile result = nullptr;

		nesting_depth++;
		PG_TRY();
		{
			if (prev_planner)
				result = prev_planner(parse, query_string, cursor_options, bound_params);
			else
				result = standard_planner(parse, query_string, cursor_options, bound_params);
		}
		PG_FINALLY();
		{
			nesting_depth--;
		}
		PG_END_TRY();
		return static_cast<PlannedStmt *>(result);
	});
}

static void
ash_executor_start(QueryDesc *query_desc, int eflags) noexcept
{
	rustydb::boundary::run("ash ExecutorStart", [&] {
		if (nesting_depth == 0 && query_desc->plannedstmt != nullptr)
			record_query_id(query_desc->plannedstmt->queryId);
		if (prev_executor_start)
			prev_executor_start(query_desc, eflags);
		else
			standard_ExecutorStart(query_desc, eflags);
	});
}

static void
ash_executor_run(QueryDesc *query_desc, ScanDirection direction, uint64 count,
				 bool execute_once) noexcept
{
	rustydb::boundary::run("ash ExecutorRun", [&] {
		nesting_depth++;
		PG_TRY();
		{
			if (prev_executor_run)
				prev_executor_run(query_desc, direction, count, execute_once);
			else
				standard_ExecutorRun(query_desc, direction, count, execute_once);
		}
		PG_FINALLY();
		{
			nesting_depth--;
		}
		PG_END_TRY();
	});
}

static void
ash_executor_finish(QueryDesc *query_desc) noexcept
{
	rustydb::boundary::run("ash ExecutorFinish", [&] {
		nesting_depth++;
		PG_TRY();
		{
			if (prev_executor_finish)
				prev_executor_finish(query_desc);
			else
				standard_ExecutorFinish(query_desc);
		}
		PG_FINALLY();
		{
			nesting_depth--;
		}
		PG_END_TRY();
	});
}

static void
ash_process_utility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
					ProcessUtilityContext context, ParamListInfo params,
					QueryEnvironment *query_env, DestReceiver *dest, QueryCompletion *qc) noexcept
{
	rustydb::boundary::run("ash ProcessUtility", [&] {
		nesting_depth++;
		PG_TRY();
		{
			if (prev_process_utility)
				prev_process_utility(pstmt, query_string, read_only_tree, context, params,
									 query_env, dest, qc);
			else
				standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params,
										query_env, dest, qc);
		}
		PG_FINALLY();
		{
			nesting_depth--;
		}
		PG_END_TRY();
	});
}

} /* extern "C" */

void
install_hooks()
{
	prev_post_parse_analyze = post_parse_analyze_hook;
	post_parse_analyze_hook = ash_post_parse_analyze;
	prev_planner = planner_hook;
	planner_hook = ash_planner;
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = ash_executor_start;
	prev_executor_run = ExecutorRun_hook;
	ExecutorRun_hook = ash_executor_run;
	prev_executor_finish = ExecutorFinish_hook;
	ExecutorFinish_hook = ash_executor_finish;
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = ash_process_utility;
}

} /* namespace ash */
} /* namespace rustydb */

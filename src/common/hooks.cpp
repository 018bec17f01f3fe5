/*-------------------------------------------------------------------------
 *
 * hooks.cpp
 *	  The one place rustydb installs PostgreSQL's query-processing hooks,
 *	  and the order in which each hook runs the subsystems' steps.
 *
 * Like module.cpp, this file sits above every subsystem: it names their
 * steps; they only see the call records of include/rustydb/common/hooks.h.
 * The tables below are the order, outermost first: the first step's code
 * before proceed() runs first and its code after proceed() runs last. The
 * hook that was installed before rustydb's (another extension's) and then
 * PostgreSQL's standard function run after the last step.
 *
 * Why this order: docs/architecture.md, "Hooks".
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/common/hooks.h"

#include "rustydb/am/am.h"
#include "rustydb/am/undo_store.h"
#include "rustydb/ash/ash.h"
#include "rustydb/audit/audit.h"
#include "rustydb/common/boundary.h"
#include "rustydb/common/tools.h"
#include "rustydb/crypto/crypto.h"
#include "rustydb/vpd/hooks.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "executor/executor.h"
#include "optimizer/planner.h"
#include "parser/analyze.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb::hooks {

namespace {

template <typename C> struct Step
{
	const char *name;
	void (*fn)(C &);
};

/* ---- the order ---- */

const Step<PostParseCall> kPostParse[] = {
	{"vpd post_parse_analyze", vpd::on_post_parse_analyze},
	{"ash post_parse_analyze", ash::hook_post_parse},
	{"tools post_parse_analyze", tools::hook_post_parse},
};
const Step<PlannerCall> kPlanner[] = {
	{"vpd planner", vpd::on_planner},
	{"ash planner", ash::hook_planner},
};
const Step<StartCall> kStart[] = {
	{"audit ExecutorStart", audit::hook_executor_start},
	{"vpd ExecutorStart", vpd::on_executor_start},
	{"ash ExecutorStart", ash::hook_executor_start},
	{"crypto ExecutorStart", crypto::hook_executor_start},
};
const Step<RunCall> kRun[] = {
	{"audit ExecutorRun", audit::hook_executor_run},
	{"ash ExecutorRun", ash::hook_executor_run},
};
const Step<FinishCall> kFinish[] = {
	{"audit ExecutorFinish", audit::hook_executor_finish},
	{"vpd ExecutorFinish", vpd::on_executor_finish},
	{"ash ExecutorFinish", ash::hook_executor_finish},
};
const Step<EndCall> kEnd[] = {
	{"audit ExecutorEnd", audit::hook_executor_end},
	{"crypto ExecutorEnd", crypto::hook_executor_end},
};
const Step<UtilityCall> kUtility[] = {
	{"audit ProcessUtility", audit::hook_process_utility},
	{"vpd ProcessUtility", vpd::on_process_utility},
	{"ash ProcessUtility", ash::hook_process_utility},
	{"crypto ProcessUtility", crypto::hook_process_utility},
	{"am ProcessUtility", am::hook_process_utility},
};
const Step<ObjectAccessCall> kObjectAccess[] = {
	{"audit object_access", audit::hook_object_access},
	{"crypto object_access", crypto::hook_object_access},
	{"am object_access", am::hook_object_access},
};
const Step<EmitLogCall> kEmitLog[] = {
	{"audit emit_log", audit::hook_emit_log},
	{"crypto emit_log", crypto::hook_emit_log},
};

/* ---- the hooks that were installed before rustydb's ---- */

post_parse_analyze_hook_type prev_post_parse = nullptr;
planner_hook_type prev_planner = nullptr;
ExecutorStart_hook_type prev_start = nullptr;
ExecutorRun_hook_type prev_run = nullptr;
ExecutorFinish_hook_type prev_finish = nullptr;
ExecutorEnd_hook_type prev_end = nullptr;
ProcessUtility_hook_type prev_utility = nullptr;
object_access_hook_type prev_object_access = nullptr;
emit_log_hook_type prev_emit_log = nullptr;

/*
 * Run call's next step, in its own error boundary; false when every step
 * has run (the caller then runs the previous hook or the standard
 * function).
 */
template <typename C>
bool
run_next(C &call, const Step<C> *steps, int n)
{
	if (call.next_step >= n)
		return false;
	const Step<C> &s = steps[call.next_step++];
	boundary::run(s.name, [&] { s.fn(call); });
	return true;
}

template <typename C, int N>
bool
run_next(C &call, const Step<C> (&steps)[N])
{
	return run_next(call, steps, N);
}

} /* namespace */

void
PostParseCall::proceed()
{
	if (!run_next(*this, kPostParse) && prev_post_parse)
		prev_post_parse(pstate, query, jstate);
}

void
PlannerCall::proceed()
{
	if (run_next(*this, kPlanner))
		return;
	if (prev_planner)
		result = prev_planner(parse, query_string, cursor_options, bound_params);
	else
		result = standard_planner(parse, query_string, cursor_options, bound_params);
}

void
StartCall::proceed()
{
	if (run_next(*this, kStart))
		return;
	if (prev_start)
		prev_start(query_desc, eflags);
	else
		standard_ExecutorStart(query_desc, eflags);
}

void
RunCall::proceed()
{
	if (run_next(*this, kRun))
		return;
	if (prev_run)
		prev_run(query_desc, direction, count, execute_once);
	else
		standard_ExecutorRun(query_desc, direction, count, execute_once);
}

void
FinishCall::proceed()
{
	if (run_next(*this, kFinish))
		return;
	if (prev_finish)
		prev_finish(query_desc);
	else
		standard_ExecutorFinish(query_desc);
}

void
EndCall::proceed()
{
	if (run_next(*this, kEnd))
		return;
	if (prev_end)
		prev_end(query_desc);
	else
		standard_ExecutorEnd(query_desc);
}

void
UtilityCall::proceed()
{
	if (run_next(*this, kUtility))
		return;
	if (prev_utility)
		prev_utility(pstmt, query_string, read_only_tree, context, params, query_env, dest, qc);
	else
		standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params, query_env,
								dest, qc);
}

void
ObjectAccessCall::proceed()
{
	if (!run_next(*this, kObjectAccess) && prev_object_access)
		prev_object_access(access, class_id, object_id, sub_id, arg);
}

void
EmitLogCall::proceed()
{
	if (!run_next(*this, kEmitLog) && prev_emit_log)
		prev_emit_log(edata);
}

} /* namespace rustydb::hooks */

/* ---- the installed hooks: build the call record, run the first step ---- */

extern "C" {

static void
rdb_post_parse_analyze(ParseState *pstate, Query *query, JumbleState *jstate) noexcept
{
	rustydb::boundary::run("post_parse_analyze hook", [&] {
		rustydb::hooks::PostParseCall c;
		c.pstate = pstate;
		c.query = query;
		c.jstate = jstate;
		c.proceed();
	});
}

static PlannedStmt *
rdb_planner(Query *parse, const char *query_string, int cursor_options,
			ParamListInfo bound_params) noexcept
{
	return rustydb::boundary::run("planner hook", [&] {
		rustydb::hooks::PlannerCall c;
		c.parse = parse;
		c.query_string = query_string;
		c.cursor_options = cursor_options;
		c.bound_params = bound_params;
		c.proceed();
		return c.result;
	});
}

static void
rdb_executor_start(QueryDesc *query_desc, int eflags) noexcept
{
	rustydb::boundary::run("ExecutorStart hook", [&] {
		rustydb::hooks::StartCall c;
		c.query_desc = query_desc;
		c.eflags = eflags;
		c.proceed();
	});
}

static void
rdb_executor_run(QueryDesc *query_desc, ScanDirection direction, uint64 count,
				 bool execute_once) noexcept
{
	rustydb::boundary::run("ExecutorRun hook", [&] {
		rustydb::hooks::RunCall c;
		c.query_desc = query_desc;
		c.direction = direction;
		c.count = count;
		c.execute_once = execute_once;
		c.proceed();
	});
}

static void
rdb_executor_finish(QueryDesc *query_desc) noexcept
{
	rustydb::boundary::run("ExecutorFinish hook", [&] {
		rustydb::hooks::FinishCall c;
		c.query_desc = query_desc;
		c.proceed();
	});
}

static void
rdb_executor_end(QueryDesc *query_desc) noexcept
{
	rustydb::boundary::run("ExecutorEnd hook", [&] {
		rustydb::hooks::EndCall c;
		c.query_desc = query_desc;
		c.proceed();
	});
}

static void
rdb_process_utility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
					ProcessUtilityContext context, ParamListInfo params,
					QueryEnvironment *query_env, DestReceiver *dest, QueryCompletion *qc) noexcept
{
	rustydb::boundary::run("ProcessUtility hook", [&] {
		rustydb::hooks::UtilityCall c;
		c.pstmt = pstmt;
		c.query_string = query_string;
		c.read_only_tree = read_only_tree;
		c.context = context;
		c.params = params;
		c.query_env = query_env;
		c.dest = dest;
		c.qc = qc;
		c.proceed();
	});
}

static void
rdb_object_access(ObjectAccessType access, Oid class_id, Oid object_id, int sub_id,
				  void *arg) noexcept
{
	rustydb::boundary::run("object_access hook", [&] {
		rustydb::hooks::ObjectAccessCall c;
		c.access = access;
		c.class_id = class_id;
		c.object_id = object_id;
		c.sub_id = sub_id;
		c.arg = arg;
		c.proceed();
	});
}

static void
rdb_emit_log(ErrorData *edata) noexcept
{
	rustydb::boundary::run("emit_log hook", [&] {
		rustydb::hooks::EmitLogCall c;
		c.edata = edata;
		c.proceed();
	});
}

} /* extern "C" */

namespace rustydb::hooks {

void
install()
{
	prev_post_parse = post_parse_analyze_hook;
	post_parse_analyze_hook = rdb_post_parse_analyze;
	prev_planner = planner_hook;
	planner_hook = rdb_planner;
	prev_start = ExecutorStart_hook;
	ExecutorStart_hook = rdb_executor_start;
	prev_run = ExecutorRun_hook;
	ExecutorRun_hook = rdb_executor_run;
	prev_finish = ExecutorFinish_hook;
	ExecutorFinish_hook = rdb_executor_finish;
	prev_end = ExecutorEnd_hook;
	ExecutorEnd_hook = rdb_executor_end;
	prev_utility = ProcessUtility_hook;
	ProcessUtility_hook = rdb_process_utility;
	prev_object_access = object_access_hook;
	object_access_hook = rdb_object_access;
	prev_emit_log = emit_log_hook;
	emit_log_hook = rdb_emit_log;

	/* hooks with one owner, which replace PostgreSQL's behaviour */
	vpd::install_owned_hooks();
}

} /* namespace rustydb::hooks */

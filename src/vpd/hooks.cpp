/*-------------------------------------------------------------------------
 *
 * hooks.cpp
 *	  VPD: every PostgreSQL hook and callback VPD uses, and the one
 *	  function that installs them (include/rustydb/vpd/hooks.h).
 *
 * The statement hooks (post_parse, planner, ExecutorStart/Finish,
 * ProcessUtility) are steps run by src/common/hooks.cpp in its documented
 * order: each on_* function takes the call record and calls proceed().
 * The hooks VPD alone uses (row security, ExplainOneQuery, fmgr) and its
 * callbacks are extern "C" functions here that run their on_* body inside
 * rustydb::boundary::run, passing the hook installed before VPD's as next;
 * install_owned_hooks() installs them, called from src/common/hooks.cpp.
 * The bodies only sequence calls into the files that own each concern:
 *
 *	row security      rls.cpp (policies for the rewriter)
 *	post_parse        the statement counter; context.cpp (trusted functions)
 *	planner           rewrite.cpp (sec_relevant_cols, masking), dynamic.cpp
 *	ExecutorStart     dynamic.cpp (re-check), explain.cpp (EXPLAIN backstop)
 *	ExecutorFinish    explain.cpp (auto_explain counts)
 *	ProcessUtility    utility.cpp, explain.cpp (EXPLAIN options)
 *	ExplainOneQuery   explain.cpp
 *	fmgr hooks        context.cpp (trusted functions on the call stack)
 *	invalidations     cache.cpp, predicate.cpp, markers.cpp, context.cpp
 *	transaction end   session.cpp (what an abort resets)
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/vpd/hooks.h"

#include "rustydb/common/boundary.h"
#include "rustydb/vpd/internal.h"
#include "rustydb/vpd/session.h"
#include "rustydb/vpd/vpd.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "utils/inval.h"
#include "utils/plancache.h"
#include "utils/syscache.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace vpd {
namespace {

/* The hooks installed before VPD's, which VPD's call in turn (set by install_owned_hooks). */
struct Chain
{
	row_security_policy_hook_type permissive = nullptr;
	row_security_policy_hook_type restrictive = nullptr;
	ExplainOneQuery_hook_type explain_one_query = nullptr;
	needs_fmgr_hook_type needs_fmgr = nullptr;
	fmgr_hook_type fmgr = nullptr;
} chain;

} /* namespace */

/* ---- row security ---- */

List *
on_permissive_policies(CmdType cmd, Relation rel, row_security_policy_hook_type next)
{
	List *result = next ? next(cmd, rel) : NIL;

	return list_concat(result, permissive_policies(cmd, rel));
}

List *
on_restrictive_policies(CmdType cmd, Relation rel, row_security_policy_hook_type next)
{
	List *result = next ? next(cmd, rel) : NIL;

	return list_concat(result, restrictive_policies(cmd, rel));
}

/* ---- statements ---- */

void
on_post_parse_analyze(hooks::PostParseCall &call)
{
	/* a new statement: dynamic predicates computed before it are not fresh */
	session().stmt.exec_counter++;
	context_prepare();
	call.proceed();
}

void
on_planner(hooks::PlannerCall &call)
{
	Query *parse = call.parse;
	Session::Statement &stmt = session().stmt;
	/* planning may nest (a function run while planning plans its own statements) */
	List *volatile saved = stmt.collected_dynamic;
	MemoryContext volatile copyctx = nullptr;
	Query *volatile copy = nullptr;
	PlannedStmt *volatile ps = nullptr;

	stmt.collected_dynamic = NIL;
	PG_TRY();
	{
		if (stmt.seen_dynamic)
		{
			MemoryContext old;

			copyctx = AllocSetContextCreate(CurrentMemoryContext, "rustydb vpd dynamic plan",
											ALLOCSET_SMALL_SIZES);
			old = MemoryContextSwitchTo(copyctx);
			copy = copy_node(parse);
			MemoryContextSwitchTo(old);
		}
		rewrite_for_policies(parse);
		call.proceed();
		ps = call.result;
		if (stmt.collected_dynamic != NIL && copyctx != nullptr)
			register_plan(ps, stmt.collected_dynamic, copyctx, copy, call.query_string,
						  call.cursor_options);
		else if (copyctx != nullptr)
			MemoryContextDelete(copyctx);
	}
	PG_FINALLY();
	{
		stmt.collected_dynamic = saved;
	}
	PG_END_TRY();
	call.result = static_cast<PlannedStmt *>(ps);
}

void
on_executor_start(hooks::StartCall &call)
{
	context_prepare();
	recheck_dynamic_policies(call.query_desc);
	session().stmt.exec_counter++;
	explain_check_start(call.query_desc);
	call.proceed();
}

void
on_executor_finish(hooks::FinishCall &call)
{
	call.proceed();
	hide_filtered_counts(call.query_desc);
}

void
on_process_utility(hooks::UtilityCall &call)
{
	Node *stmt = call.pstmt->utilityStmt;
	volatile bool child = creates_child(stmt);

	session().stmt.exec_counter++;
	context_prepare();
	check_utility(stmt);
	volatile bool explaining = explain_enter(stmt);
	PG_TRY();
	{
		call.proceed();
	}
	PG_FINALLY();
	{
		if (explaining)
			explain_leave();
	}
	PG_END_TRY();
	if (child)
		protect_new_children();
}

void
on_explain_one_query(Query *query, int cursor_options, IntoClause *into, ExplainState *es,
					 const char *query_string, ParamListInfo params, QueryEnvironment *query_env,
					 ExplainOneQuery_hook_type next)
{
	if (next != nullptr)
	{
		/* another extension plans it: the ExecutorStart backstop still applies */
		next(query, cursor_options, into, es, query_string, params, query_env);
		return;
	}
	explain_one_query(query, cursor_options, into, es, query_string, params, query_env);
}

/* ---- function calls ---- */

bool
on_needs_fmgr_hook(Oid fn_oid, needs_fmgr_hook_type next)
{
	if (next && next(fn_oid))
		return true;
	return is_trusted_function(fn_oid);
}

void
on_fmgr_hook(FmgrHookEventType event, FmgrInfo *flinfo, Datum *arg, fmgr_hook_type next)
{
	trusted_function_event(event, flinfo->fn_oid);
	if (next)
		next(event, flinfo, arg);
}

/* ---- invalidation and transaction callbacks ---- */

void
on_relcache_invalidation(Oid relid)
{
	policy_cache_invalidate(relid);
	context_relcache_invalidated(relid);
}

void
on_proc_invalidation()
{
	if (invalidating_marker_plans())
		return;
	forget_markers();
	/* a changed policy function may return another predicate, or have another owner */
	reset_pred_cache();
	policy_cache_invalidate_all();
}

void
on_role_invalidation()
{
	/* membership in the exempt role (or BYPASSRLS) changed: no plan may keep an old decision */
	ResetPlanCache();
}

void
on_xact_event(XactEvent event)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
		session_abort();
}

} /* namespace vpd */
} /* namespace rustydb */

using namespace rustydb::vpd;

extern "C" {

static List *
vpd_permissive_hook(CmdType cmd, Relation rel) noexcept
{
	return rustydb::boundary::run(
		"vpd_permissive_hook", [&] { return on_permissive_policies(cmd, rel, chain.permissive); });
}

static List *
vpd_restrictive_hook(CmdType cmd, Relation rel) noexcept
{
	return rustydb::boundary::run("vpd_restrictive_hook", [&] {
		return on_restrictive_policies(cmd, rel, chain.restrictive);
	});
}

static void
vpd_explain_one_query(Query *query, int cursor_options, IntoClause *into, ExplainState *es,
					  const char *query_string, ParamListInfo params,
					  QueryEnvironment *query_env) noexcept
{
	rustydb::boundary::run("vpd_explain_one_query", [&] {
		on_explain_one_query(query, cursor_options, into, es, query_string, params, query_env,
							 chain.explain_one_query);
	});
}

static bool
vpd_needs_fmgr_hook(Oid fn_oid) noexcept
{
	return rustydb::boundary::run("vpd_needs_fmgr_hook",
								  [&] { return on_needs_fmgr_hook(fn_oid, chain.needs_fmgr); });
}

static void
vpd_fmgr_hook(FmgrHookEventType event, FmgrInfo *flinfo, Datum *arg) noexcept
{
	rustydb::boundary::run("vpd_fmgr_hook", [&] { on_fmgr_hook(event, flinfo, arg, chain.fmgr); });
}

static void
vpd_relcache_callback(Datum arg, Oid relid) noexcept
{
	rustydb::boundary::run("vpd_relcache_callback", [&] { on_relcache_invalidation(relid); });
}

static void
vpd_proc_callback(Datum arg, int cacheid, uint32 hashvalue) noexcept
{
	rustydb::boundary::run("vpd_proc_callback", [&] { on_proc_invalidation(); });
}

static void
vpd_role_callback(Datum arg, int cacheid, uint32 hashvalue) noexcept
{
	rustydb::boundary::run("vpd_role_callback", [&] { on_role_invalidation(); });
}

static void
vpd_xact_callback(XactEvent event, void *arg) noexcept
{
	rustydb::boundary::run("vpd_xact_callback", [&] { on_xact_event(event); });
}

} /* extern "C" */

namespace rustydb {
namespace vpd {

void
install_owned_hooks()
{
	chain.permissive = row_security_policy_hook_permissive;
	row_security_policy_hook_permissive = vpd_permissive_hook;
	chain.restrictive = row_security_policy_hook_restrictive;
	row_security_policy_hook_restrictive = vpd_restrictive_hook;
	chain.explain_one_query = ExplainOneQuery_hook;
	ExplainOneQuery_hook = vpd_explain_one_query;
	chain.needs_fmgr = needs_fmgr_hook;
	needs_fmgr_hook = vpd_needs_fmgr_hook;
	chain.fmgr = fmgr_hook;
	fmgr_hook = vpd_fmgr_hook;

	CacheRegisterRelcacheCallback(vpd_relcache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(PROCOID, vpd_proc_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, vpd_role_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, vpd_role_callback, (Datum) 0);
	RegisterXactCallback(vpd_xact_callback, nullptr);
}

void
init()
{
	session_init();
}

} /* namespace vpd */
} /* namespace rustydb */

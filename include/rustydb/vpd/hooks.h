/*-------------------------------------------------------------------------
 *
 * hooks.h
 *	  VPD: the bodies of the PostgreSQL hooks and callbacks VPD uses, and
 *	  their installation (src/vpd/hooks.cpp).
 *
 * Each on_* function is the whole of what VPD does in one hook, including
 * the call of the next hook in the chain: next is the hook that was
 * installed before VPD's, or nullptr, in which case PostgreSQL's standard
 * function is called (for the hooks that have one). An installer that
 * calls several subsystems from one hook passes as next whatever runs
 * after VPD. These are C++ functions: the extern "C" hook that calls one
 * must run it inside rustydb::boundary::run.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_VPD_HOOKS_H
#define RUSTYDB_VPD_HOOKS_H

#include "rustydb/pg.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/xact.h"
#include "commands/explain.h"
#include "executor/executor.h"
#include "optimizer/planner.h"
#include "parser/analyze.h"
#include "rewrite/rowsecurity.h"
#include "tcop/utility.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace vpd {

/*
 * Install every hook and callback below, chained after the hooks already
 * installed; called once from init() (_PG_init).
 */
void install_hooks();

/* ---- row security (row_security_policy_hook_permissive/_restrictive) ---- */

/* The next hook's policies, then VPD's "true" policy for a protected table. */
List *on_permissive_policies(CmdType cmd, Relation rel, row_security_policy_hook_type next);
/* The next hook's policies, then one restrictive policy per applicable VPD policy. */
List *on_restrictive_policies(CmdType cmd, Relation rel, row_security_policy_hook_type next);

/* ---- statements ---- */

/* A new statement: the next hook, after noting the statement. */
void on_post_parse_analyze(ParseState *pstate, Query *query, JumbleState *jstate,
						   post_parse_analyze_hook_type next);
/* Rewrite the query for sec_relevant_cols and all_rows, plan it, record its dynamic policies. */
PlannedStmt *on_planner(Query *parse, const char *query_string, int cursor_options,
						ParamListInfo bound_params, planner_hook_type next);
/* Re-check dynamic policies and EXPLAIN's limits, then start the plan. */
void on_executor_start(QueryDesc *query_desc, int eflags, ExecutorStart_hook_type next);
/* Finish the plan, then hide auto_explain's counts of filtered rows. */
void on_executor_finish(QueryDesc *query_desc, ExecutorFinish_hook_type next);
/* Check the statement, run it (noting an EXPLAIN's options), protect new children. */
void on_process_utility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
						ProcessUtilityContext context, ParamListInfo params,
						QueryEnvironment *query_env, DestReceiver *dest, QueryCompletion *qc,
						ProcessUtility_hook_type next);
/*
 * EXPLAIN of one query: with another hook installed, that hook plans it
 * (ExecutorStart's check still applies); otherwise VPD plans it and checks
 * the plan before it is shown.
 */
void on_explain_one_query(Query *query, int cursor_options, IntoClause *into, ExplainState *es,
						  const char *query_string, ParamListInfo params,
						  QueryEnvironment *query_env, ExplainOneQuery_hook_type next);

/* ---- function calls (application contexts' trusted functions) ---- */

bool on_needs_fmgr_hook(Oid fn_oid, needs_fmgr_hook_type next);
void on_fmgr_hook(FmgrHookEventType event, FmgrInfo *flinfo, Datum *arg, fmgr_hook_type next);

/* ---- invalidation and transaction callbacks ---- */

/* A relcache invalidation (relid InvalidOid: all relations). */
void on_relcache_invalidation(Oid relid);
/* A pg_proc invalidation (a policy function, or a marker function, changed). */
void on_proc_invalidation();
/* A pg_authid or pg_auth_members invalidation (exemption or BYPASSRLS may have changed). */
void on_role_invalidation();
void on_xact_event(XactEvent event);

} /* namespace vpd */
} /* namespace rustydb */

#endif /* RUSTYDB_VPD_HOOKS_H */

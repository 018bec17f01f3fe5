/*-------------------------------------------------------------------------
 *
 * hooks.h
 *	  VPD: the bodies of the PostgreSQL hooks and callbacks VPD uses, and
 *	  their installation (src/vpd/hooks.cpp).
 *
 * Each on_* function is the whole of what VPD does in one hook. The
 * statement hooks are steps of src/common/hooks.cpp (include/rustydb/
 * common/hooks.h): they call call.proceed() for the later steps. The
 * others take next, the hook that was installed before VPD's, or nullptr,
 * in which case PostgreSQL's standard behaviour applies. These are C++
 * functions: the extern "C" hook that calls one runs it inside
 * rustydb::boundary::run.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_VPD_HOOKS_H
#define RUSTYDB_VPD_HOOKS_H

#include "rustydb/common/hooks.h"
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
 * Install the hooks only VPD uses (row security, ExplainOneQuery, fmgr) and
 * its callbacks, chained after the hooks already installed; called once
 * from hooks::install() (_PG_init).
 */
void install_owned_hooks();

/* ---- row security (row_security_policy_hook_permissive/_restrictive) ---- */

/* The next hook's policies, then VPD's "true" policy for a protected table. */
List *on_permissive_policies(CmdType cmd, Relation rel, row_security_policy_hook_type next);
/* The next hook's policies, then one restrictive policy per applicable VPD policy. */
List *on_restrictive_policies(CmdType cmd, Relation rel, row_security_policy_hook_type next);

/* ---- statements: steps run by src/common/hooks.cpp ---- */

/* A new statement: note it, then the later steps. */
void on_post_parse_analyze(hooks::PostParseCall &call);
/* Rewrite the query for sec_relevant_cols and all_rows, plan it, record its dynamic policies. */
void on_planner(hooks::PlannerCall &call);
/* Re-check dynamic policies and EXPLAIN's limits, then start the plan. */
void on_executor_start(hooks::StartCall &call);
/* Finish the plan, then hide auto_explain's counts of filtered rows. */
void on_executor_finish(hooks::FinishCall &call);
/* Check the statement, run it (noting an EXPLAIN's options), protect new children. */
void on_process_utility(hooks::UtilityCall &call);
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

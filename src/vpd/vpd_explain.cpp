/*-------------------------------------------------------------------------
 *
 * vpd_explain.cpp
 *	  EXPLAIN of statements that read tables under VPD policies.
 *
 * Every figure EXPLAIN ANALYZE prints below a policy's filter can count
 * rows the policy hides: an index or bitmap index scan's rows, heap
 * fetches, buffers, rows removed, hash batches and memory, loops. And the
 * planner's estimates (rows=, costs) come from statistics over all rows.
 * So, for a role that is not exempt from the policies (docs/vpd.md):
 *
 *	- EXPLAIN with ANALYZE or BUFFERS of a statement whose plan reads a
 *	  table under policies is refused (42501) before anything runs, in
 *	  every format. Checked on the plan (ExplainOneQuery_hook), for EXPLAIN
 *	  EXECUTE on the prepared statement's relations, and, as a backstop,
 *	  when any plan is started with instrumentation inside an EXPLAIN.
 *	- Plain EXPLAIN prints the plan without costs and estimates (COSTS OFF
 *	  is forced, with a NOTICE); EXPLAIN EXECUTE must say COSTS OFF itself.
 *
 * auto_explain's log_analyze output goes to the server log, not to the
 * user; its "Rows Removed" counts are zeroed there (vpd_policy.cpp).
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/common/boundary.h"
#include "rustydb/vpd/session.h"
#include "rustydb/vpd/vpd_internal.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "commands/defrem.h"
#include "commands/explain.h"
#include "commands/prepare.h"
#include "executor/instrument.h"
#include "optimizer/optimizer.h"
#include "tcop/tcopprot.h"
#include "utils/plancache.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace vpd {
namespace {

ExplainOneQuery_hook_type prev_explain_one_query = nullptr;

ExplainOptions
parse_options(ExplainStmt *stmt)
{
	ExplainOptions o{false, false, true};
	ListCell *lc;
	foreach (lc, stmt->options)
	{
		DefElem *d = lfirst_node(DefElem, lc);
		if (strcmp(d->defname, "analyze") == 0)
			o.analyze = defGetBoolean(d);
		else if (strcmp(d->defname, "buffers") == 0)
			o.buffers = defGetBoolean(d);
		else if (strcmp(d->defname, "costs") == 0)
			o.costs = defGetBoolean(d);
	}
	return o;
}

[[noreturn]] void
refuse_analyze(bool analyze)
{
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("EXPLAIN %s is not allowed on a statement that reads tables under row policies",
					analyze ? "ANALYZE" : "BUFFERS"),
			 errdetail("Its row counts and buffer, memory and batch figures would include rows "
					   "that the policies hide from role \"%s\".",
					   GetUserNameFromId(GetUserId(), false)),
			 errhint("Use EXPLAIN (COSTS OFF) without ANALYZE and BUFFERS, or run it as a role "
					 "exempt from policies (rustydb_exempt_access_policy).")));
}

/* EXPLAIN EXECUTE: the prepared statement's relations (views expanded). */
void
check_execute(ExecuteStmt *exec, const ExplainOptions &o)
{
	PreparedStatement *prepared = FetchPreparedStatement(exec->name, false);
	if (prepared == nullptr || prepared->plansource == nullptr || current_user_exempt())
		return;
	bool under = false;
	ListCell *lc;
	foreach (lc, prepared->plansource->relationOids)
		if (relation_under_policies(lfirst_oid(lc), InvalidOid))
		{
			under = true;
			break;
		}
	if (!under)
		return;
	if (o.analyze || o.buffers)
		refuse_analyze(o.analyze);
	if (o.costs)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("EXPLAIN EXECUTE of a statement that reads tables under row policies needs "
						"COSTS OFF"),
				 errdetail("The planner's estimates come from statistics over every row, those the "
						   "policies hide from role \"%s\" included.",
						   GetUserNameFromId(GetUserId(), false)),
				 errhint("Use EXPLAIN (COSTS OFF) EXECUTE %s.", exec->name)));
}

void
explain_one_query(Query *query, int cursor_options, IntoClause *into, ExplainState *es,
				  const char *query_string, ParamListInfo params, QueryEnvironment *query_env)
{
	if (prev_explain_one_query != nullptr)
	{
		/* another extension plans it: the ExecutorStart backstop still applies */
		prev_explain_one_query(query, cursor_options, into, es, query_string, params, query_env);
		return;
	}
	/* as PostgreSQL's own ExplainOneQuery, with the plan inspected in between */
	instr_time planstart, planduration;
	BufferUsage bufusage_start, bufusage;
	if (es->buffers)
		bufusage_start = pgBufferUsage;
	INSTR_TIME_SET_CURRENT(planstart);
	PlannedStmt *plan = pg_plan_query(query, query_string, cursor_options, params);
	INSTR_TIME_SET_CURRENT(planduration);
	INSTR_TIME_SUBTRACT(planduration, planstart);
	if (es->buffers)
	{
		memset(&bufusage, 0, sizeof(BufferUsage));
		BufferUsageAccumDiff(&bufusage, &pgBufferUsage, &bufusage_start);
	}
	if (statement_under_policies(plan))
	{
		if (es->analyze || es->buffers)
			refuse_analyze(es->analyze);
		if (es->costs)
		{
			es->costs = false;
			ereport(NOTICE,
					(errmsg("costs and row estimates are not shown: the statement reads tables "
							"under row policies"),
					 errdetail("The planner's estimates come from statistics over every row, "
							   "those the policies hide included.")));
		}
	}
	ExplainOnePlan(plan, into, es, query_string, params, query_env, &planduration,
				   es->buffers ? &bufusage : nullptr);
}

} /* namespace */

bool
explain_enter(Node *stmt)
{
	if (!IsA(stmt, ExplainStmt))
		return false;
	auto *es = castNode(ExplainStmt, stmt);
	ExplainOptions o = parse_options(es);
	if (es->query != nullptr && IsA(es->query, Query))
	{
		Query *q = castNode(Query, es->query);
		if (q->commandType == CMD_UTILITY && q->utilityStmt != nullptr &&
			IsA(q->utilityStmt, ExecuteStmt))
			check_execute(castNode(ExecuteStmt, q->utilityStmt), o);
	}
	/* deeper than the stack: treated as ANALYZE (the backstop refuses) */
	if (session().explain.depth < kExplainMaxNesting)
		session().explain.stack[session().explain.depth] = o;
	session().explain.depth++;
	return true;
}

void
explain_leave()
{
	if (session().explain.depth > 0)
		session().explain.depth--;
}

void
explain_reset()
{
	session().explain.depth = 0;
}

void
explain_check_start(QueryDesc *query_desc)
{
	if (session().explain.depth == 0 || query_desc->plannedstmt == nullptr)
		return;
	bool instrumented = query_desc->instrument_options != 0;
	bool buffers = session().explain.depth <= kExplainMaxNesting
					   ? session().explain.stack[session().explain.depth - 1].buffers
					   : true;
	if ((instrumented || buffers) && statement_under_policies(query_desc->plannedstmt))
		refuse_analyze(instrumented);
}

} /* namespace vpd */
} /* namespace rustydb */

extern "C" {

static void
vpd_explain_one_query(Query *query, int cursor_options, IntoClause *into, ExplainState *es,
					  const char *query_string, ParamListInfo params,
					  QueryEnvironment *query_env) noexcept
{
	rustydb::boundary::run("vpd_explain_one_query", [&] {
		rustydb::vpd::explain_one_query(query, cursor_options, into, es, query_string, params,
										query_env);
	});
}

} /* extern "C" */

namespace rustydb {
namespace vpd {

void
explain_init()
{
	prev_explain_one_query = ExplainOneQuery_hook;
	ExplainOneQuery_hook = vpd_explain_one_query;
}

} /* namespace vpd */
} /* namespace rustydb */

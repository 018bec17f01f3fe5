/*-------------------------------------------------------------------------
 *
 * explain.cpp
 *	  VPD: EXPLAIN of statements that read tables under VPD policies.
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
 * user; its "Rows Removed" counts are zeroed there (hide_filtered_counts,
 * from ExecutorFinish).
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/common/boundary.h"
#include "rustydb/vpd/internal.h"
#include "rustydb/vpd/session.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "catalog/pg_class.h"
#include "commands/defrem.h"
#include "commands/explain.h"
#include "commands/prepare.h"
#include "executor/instrument.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "tcop/tcopprot.h"
#include "utils/plancache.h"
RUSTYDB_PG_INCLUDE_END

/* Callback PostgreSQL calls (plan state walker) */
extern "C" {
static bool vpd_zero_filtered(PlanState *ps, void *context) noexcept;
}

namespace rustydb {
namespace vpd {
namespace {

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

bool
plan_uses_policies(PlannedStmt *ps)
{
	ListCell *lc;

	foreach (lc, ps->rtable)
	{
		RangeTblEntry *rte = static_cast<RangeTblEntry *>(lfirst(lc));

		if (rte->rtekind != RTE_RELATION || rte->relkind == RELKIND_VIEW)
			continue;
		if (relation_under_policies(rte->relid, rte->checkAsUser))
			return true;
	}
	return false;
}

bool
zero_filtered_impl(PlanState *ps, void *context)
{
	if (ps == nullptr)
		return false;
	if (ps->instrument)
	{
		ps->instrument->nfiltered1 = 0;
		ps->instrument->nfiltered2 = 0;
	}
	if (ps->worker_instrument)
		for (int i = 0; i < ps->worker_instrument->num_workers; i++)
		{
			ps->worker_instrument->instrument[i].nfiltered1 = 0;
			ps->worker_instrument->instrument[i].nfiltered2 = 0;
		}
	return planstate_tree_walker(ps, WALKER(vpd_zero_filtered), context);
}

} /* namespace */

void
explain_one_query(Query *query, int cursor_options, IntoClause *into, ExplainState *es,
				  const char *query_string, ParamListInfo params, QueryEnvironment *query_env)
{
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
	Session::Explains &ex = session().explain;
	/* deeper than the stack: treated as ANALYZE (the backstop refuses) */
	if (ex.depth < kExplainMaxNesting)
		ex.stack[ex.depth] = o;
	ex.depth++;
	return true;
}

void
explain_leave()
{
	if (session().explain.depth > 0)
		session().explain.depth--;
}

void
explain_check_start(QueryDesc *query_desc)
{
	const Session::Explains &ex = session().explain;
	if (ex.depth == 0 || query_desc->plannedstmt == nullptr)
		return;
	bool instrumented = query_desc->instrument_options != 0;
	bool buffers = ex.depth <= kExplainMaxNesting ? ex.stack[ex.depth - 1].buffers : true;
	if ((instrumented || buffers) && statement_under_policies(query_desc->plannedstmt))
		refuse_analyze(instrumented);
}

bool
statement_under_policies(PlannedStmt *ps)
{
	return plan_uses_policies(ps) && !current_user_exempt();
}

void
hide_filtered_counts(QueryDesc *query_desc)
{
	if (query_desc->instrument_options != 0 && query_desc->planstate != nullptr &&
		plan_uses_policies(query_desc->plannedstmt) && !current_user_exempt())
		(void) zero_filtered_impl(query_desc->planstate, nullptr);
}

} /* namespace vpd */
} /* namespace rustydb */

extern "C" {

static bool
vpd_zero_filtered(PlanState *ps, void *context) noexcept
{
	return rustydb::boundary::run("vpd_zero_filtered",
								  [&] { return rustydb::vpd::zero_filtered_impl(ps, context); });
}

} /* extern "C" */

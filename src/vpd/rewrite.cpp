/*-------------------------------------------------------------------------
 *
 * rewrite.cpp
 *	  VPD: the query rewritten before planning (planner hook).
 *
 * By the time the planner runs, PostgreSQL's rewriter has attached the
 * restrictive policies (rls.cpp) as security quals and WITH CHECK
 * options. Before the query is planned, every query level is walked:
 *
 *	- a policy with sec_relevant_cols whose columns the statement does not
 *	  reference is dropped;
 *	- with sec_relevant_cols_opt all_rows the rows are not filtered: the
 *	  relevant columns become CASE WHEN predicate THEN column END (the
 *	  statement's target table keeps the filter);
 *	- the new-row checks (WITH CHECK options) of policies without
 *	  update_check are dropped, and those of policies whose
 *	  sec_relevant_cols the statement does not touch;
 *	- a table under policies reached through a view whose owner bypasses
 *	  row security is refused;
 *	- the dynamic policies of the query are collected into
 *	  Session::Statement::collected_dynamic, for dynamic.cpp.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/common/boundary.h"
#include "rustydb/vpd/internal.h"
#include "rustydb/vpd/session.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/htup_details.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "parser/parse_relation.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteManip.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/rls.h"
#include "utils/syscache.h"
RUSTYDB_PG_INCLUDE_END

/* Callbacks PostgreSQL calls (query walker, Var replacement) */
extern "C" {
static bool vpd_walk_queries(Node *node, void *context) noexcept;
static Node *vpd_mask_callback(Var *var, replace_rte_variables_context *context) noexcept;
}

namespace rustydb {
namespace vpd {
namespace {

int
relation_natts(Oid relid)
{
	HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	int n;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	n = reinterpret_cast<Form_pg_class>(GETSTRUCT(tup))->relnatts;
	ReleaseSysCache(tup);
	return n;
}

bool
cols_referenced(RangeTblEntry *rte, const MarkerInfo *mi)
{
	if (bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, rte->selectedCols))
		return true; /* whole-row reference */
	for (int i = 0; i < mi->ncols; i++)
	{
		int b = mi->cols[i] - FirstLowInvalidHeapAttributeNumber;

		if (bms_is_member(b, rte->selectedCols) || bms_is_member(b, rte->insertedCols) ||
			bms_is_member(b, rte->updatedCols))
			return true;
	}
	return false;
}

struct MaskContext
{
	RangeTblEntry *rte;
	int natts;
	List **preds; /* per attnum (1-based), predicates that must hold to see it */
};

Node *
mask_var(Var *var, List *preds, int sublevels_up)
{
	CaseExpr *ce = makeNode(CaseExpr);
	CaseWhen *cw = makeNode(CaseWhen);
	Node *cond;

	cond = reinterpret_cast<Node *>(copy_node(preds));
	cond = list_length(preds) == 1
			   ? static_cast<Node *>(linitial(reinterpret_cast<List *>(cond)))
			   : reinterpret_cast<Node *>(make_andclause(reinterpret_cast<List *>(cond)));
	if (sublevels_up > 0)
		IncrementVarSublevelsUp(cond, sublevels_up, 0);
	cw->expr = reinterpret_cast<Expr *>(cond);
	cw->result = reinterpret_cast<Expr *>(copy_node(var));
	cw->location = -1;
	ce->casetype = var->vartype;
	ce->casecollid = var->varcollid;
	ce->arg = nullptr;
	ce->args = list_make1(cw);
	ce->defresult =
		reinterpret_cast<Expr *>(makeNullConst(var->vartype, var->vartypmod, var->varcollid));
	ce->location = -1;
	return reinterpret_cast<Node *>(ce);
}

Node *
mask_callback_impl(Var *var, replace_rte_variables_context *context)
{
	MaskContext *m = static_cast<MaskContext *>(context->callback_arg);

	if (var->varattno > 0 && var->varattno <= m->natts && m->preds[var->varattno] != NIL)
		return mask_var(var, m->preds[var->varattno], context->sublevels_up);
	if (var->varattno == 0)
	{
		List *colnames;
		List *vars;
		List *fields = NIL;
		ListCell *lc;
		RowExpr *row;

		expandRTE(m->rte, var->varno, var->varlevelsup, var->location, true, &colnames, &vars);
		foreach (lc, vars)
		{
			Node *f = static_cast<Node *>(lfirst(lc));

			if (IsA(f, Var))
			{
				Var *fv = reinterpret_cast<Var *>(f);

				if (fv->varattno > 0 && fv->varattno <= m->natts && m->preds[fv->varattno] != NIL)
					f = mask_var(fv, m->preds[fv->varattno], context->sublevels_up);
			}
			fields = lappend(fields, f);
		}
		row = makeNode(RowExpr);
		row->args = fields;
		row->row_typeid = var->vartype;
		row->row_format = COERCE_IMPLICIT_CAST;
		row->colnames = colnames;
		row->location = var->location;
		return reinterpret_cast<Node *>(row);
	}
	return reinterpret_cast<Node *>(copy_node(var));
}

void
check_view_owner(RangeTblEntry *rte)
{
	if (!OidIsValid(rte->checkAsUser) || rte->checkAsUser == GetUserId())
		return;
	if (check_enable_rls(rte->relid, rte->checkAsUser, true) == RLS_ENABLED)
		return;
	if (check_enable_rls(rte->relid, InvalidOid, true) != RLS_ENABLED)
		return;
	if (!relation_has_policies(rte->relid) || current_user_exempt())
		return;
	ereport(
		ERROR,
		(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		 errmsg("permission denied for table %s", get_rel_name(rte->relid)),
		 errdetail(
			 "The table has VPD policies, and it is reached through a view owned by role \"%s\", "
			 "which bypasses row security.",
			 GetUserNameFromId(rte->checkAsUser, true)),
		 errhint(
			 "Create the view WITH (security_invoker = true), or give it an owner subject to row "
			 "security.")));
}

void
collect_dynamic(const MarkerInfo *mi, Oid relid)
{
	ListCell *lc;
	DynamicItem *it;

	if (mi->kind != kMarkerDynamic)
		return;
	foreach (lc, session().stmt.collected_dynamic)
	{
		it = static_cast<DynamicItem *>(lfirst(lc));
		if (it->id == mi->id && it->relid == relid)
		{
			if (mi->stamp < it->stamp)
				it->stamp = mi->stamp;
			return;
		}
	}
	it = static_cast<DynamicItem *>(palloc0(sizeof(DynamicItem)));
	it->id = mi->id;
	it->relid = relid;
	it->text = mi->text ? pstrdup(mi->text) : nullptr;
	it->stamp = mi->stamp;
	session().stmt.collected_dynamic = lappend(session().stmt.collected_dynamic, it);
}

void
process_query(Query *q)
{
	int rti = 0;
	ListCell *lc;
	List *mask_rtis = NIL;
	List *mask_ctxs = NIL;

	foreach (lc, q->rtable)
	{
		RangeTblEntry *rte = static_cast<RangeTblEntry *>(lfirst(lc));
		List *keep = NIL;
		ListCell *qc;
		MaskContext *mc = nullptr;

		rti++;
		if (rte->rtekind != RTE_RELATION)
			continue;
		check_view_owner(rte);
		if (session().stmt.seen_dynamic)
		{
			foreach (qc, rte->securityQuals)
			{
				MarkerInfo dm;

				if (decode_qual(static_cast<Node *>(lfirst(qc)), &dm))
					collect_dynamic(&dm, rte->relid);
			}
		}
		if (!session().stmt.seen_sec_cols || rte->securityQuals == NIL)
			continue;
		foreach (qc, rte->securityQuals)
		{
			Node *qual = static_cast<Node *>(lfirst(qc));
			MarkerInfo mi;

			if (!decode_qual(qual, &mi) || !(mi.flags & kFlagSecCols))
			{
				keep = lappend(keep, qual);
				continue;
			}
			if (!cols_referenced(rte, &mi))
				continue; /* the statement does not touch the relevant columns */
			if (!(mi.flags & kFlagAllRows) || rti == q->resultRelation)
			{
				keep = lappend(keep, qual);
				continue;
			}
			/* all_rows: keep every row, mask the relevant columns */
			if (mi.pred == nullptr)
				continue;
			if (mc == nullptr)
			{
				mc = static_cast<MaskContext *>(palloc0(sizeof(MaskContext)));
				mc->natts = relation_natts(rte->relid);
				mc->preds = static_cast<List **>(palloc0(sizeof(List *) * (mc->natts + 1)));
			}
			for (int i = 0; i < mi.ncols; i++)
				if (mi.cols[i] > 0 && mi.cols[i] <= mc->natts)
					mc->preds[mi.cols[i]] = lappend(mc->preds[mi.cols[i]], mi.pred);
		}
		rte->securityQuals = keep;
		if (mc)
		{
			mask_rtis = lappend_int(mask_rtis, rti);
			mask_ctxs = lappend(mask_ctxs, mc);
		}
	}

	/*
	 * WITH CHECK OPTIONs: PostgreSQL also checks new rows against SELECT
	 * policies when the statement reads the table; a VPD policy checks new
	 * rows only with update_check. And a policy with sec_relevant_cols
	 * whose columns the statement does not touch does not apply.
	 */
	if (q->withCheckOptions != NIL && q->resultRelation > 0)
	{
		RangeTblEntry *target = rt_fetch(q->resultRelation, q->rtable);
		List *keep = NIL;

		foreach (lc, q->withCheckOptions)
		{
			WithCheckOption *wco = static_cast<WithCheckOption *>(lfirst(lc));
			MarkerInfo mi;

			if (decode_qual(wco->qual, &mi))
			{
				collect_dynamic(&mi, target->relid);
				if ((mi.flags & kFlagNoCheck) &&
					(wco->kind == WCO_RLS_INSERT_CHECK || wco->kind == WCO_RLS_UPDATE_CHECK))
					continue;
				if ((mi.flags & kFlagSecCols) && !cols_referenced(target, &mi))
					continue;
			}
			keep = lappend(keep, wco);
		}
		q->withCheckOptions = keep;
	}

	/* mask: replace Vars of each all_rows table by CASE expressions */
	for (int k = 0; k < list_length(mask_rtis); k++)
	{
		int target = list_nth_int(mask_rtis, k);
		MaskContext *mc = static_cast<MaskContext *>(list_nth(mask_ctxs, k));
		RangeTblEntry *rte = rt_fetch(target, q->rtable);
		List *own = rte->securityQuals;
		Query *nq;
		bool haspreds = false;

		for (int a = 1; a <= mc->natts; a++)
			if (checkExprHasSubLink(reinterpret_cast<Node *>(mc->preds[a])))
				haspreds = true;
		/* the table's own quals see the real values */
		rte->securityQuals = NIL;
		mc->rte = rte;
		nq = reinterpret_cast<Query *>(replace_rte_variables(reinterpret_cast<Node *>(q), target, 0,
															 vpd_mask_callback, mc, nullptr));
		*q = *nq;
		rt_fetch(target, q->rtable)->securityQuals = own;
		if (haspreds)
			q->hasSubLinks = true;
	}
}

bool
walk_queries_impl(Node *node, void *context)
{
	if (node == nullptr)
		return false;
	if (IsA(node, Query))
	{
		Query *q = reinterpret_cast<Query *>(node);

		process_query(q);
		return query_tree_walker(q, WALKER(vpd_walk_queries), context, 0);
	}
	return expression_tree_walker(node, WALKER(vpd_walk_queries), context);
}

} /* namespace */

void
rewrite_for_policies(Query *parse)
{
	(void) walk_queries_impl(reinterpret_cast<Node *>(parse), nullptr);
}

} /* namespace vpd */
} /* namespace rustydb */

extern "C" {

static bool
vpd_walk_queries(Node *node, void *context) noexcept
{
	return rustydb::boundary::run("vpd_walk_queries",
								  [&] { return rustydb::vpd::walk_queries_impl(node, context); });
}

static Node *
vpd_mask_callback(Var *var, replace_rte_variables_context *context) noexcept
{
	return rustydb::boundary::run("vpd_mask_callback",
								  [&] { return rustydb::vpd::mask_callback_impl(var, context); });
}

} /* extern "C" */

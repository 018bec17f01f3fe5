/*-------------------------------------------------------------------------
 *
 * dynamic.cpp
 *	  VPD: dynamic policies, evaluated again at every execution of a plan.
 *
 * A plan that uses a dynamic policy carries a sentinel PlanInvalItem (it
 * survives the plan cache's copy of the plan) whose hash value keys an
 * entry here: the dynamic policies of the plan with the predicate text they
 * were planned with, and a copy of the query before planning. ExecutorStart
 * evaluates each policy function again; when a predicate changed, the query
 * is planned again with the new predicate for this execution and the cached
 * plans carrying dynamic policies are invalidated. When nothing changed the
 * cached plan runs as is: a dynamic policy costs one function call per
 * execution, not a re-plan.
 *
 * A plan's entry is tied to the plan's memory at its first execution (a
 * reset callback frees it with the plan); entries of plans never executed
 * are evicted beyond rustydb.vpd_cache_entries.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/common/boundary.h"
#include "rustydb/common/settings.h"
#include "rustydb/vpd/internal.h"
#include "rustydb/vpd/session.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/relation.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/planner.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteManip.h"
#include "utils/hsearch.h"
#include "utils/rel.h"
RUSTYDB_PG_INCLUDE_END

/* Callbacks PostgreSQL calls (query walker, memory context reset) */
extern "C" {
static bool vpd_replace_walker(Node *node, void *context) noexcept;
static void vpd_plan_context_reset(void *arg) noexcept;
}

namespace rustydb {
namespace vpd {
namespace {

constexpr int kSentinelCacheId = -31415;

struct PlanEntry
{
	uint32 key; /* hash key */
	MemoryContext mcxt;
	List *items; /* DynamicItem */
	Query *query;
	char *query_string;
	int cursor_options;
	bool owned; /* a reset callback of the plan's context frees it */
};

void
drop_plan_entry(uint32 key)
{
	PlanEntry *pe;

	if (session().plans.map == nullptr)
		return;
	pe = static_cast<PlanEntry *>(hash_search(session().plans.map, &key, HASH_FIND, nullptr));
	if (pe == nullptr)
		return;
	if (!pe->owned)
		session().plans.unowned--;
	MemoryContextDelete(pe->mcxt);
	hash_search(session().plans.map, &key, HASH_REMOVE, nullptr);
}

void
plan_context_reset_impl(void *arg)
{
	drop_plan_entry(static_cast<uint32>(reinterpret_cast<uintptr_t>(arg)));
}

void
evict_unowned()
{
	HASH_SEQ_STATUS st;
	PlanEntry *pe;

	hash_seq_init(&st, session().plans.map);
	while ((pe = static_cast<PlanEntry *>(hash_seq_search(&st))) != nullptr)
		if (!pe->owned)
		{
			MemoryContextDelete(pe->mcxt);
			hash_search(session().plans.map, &pe->key, HASH_REMOVE, nullptr);
		}
	session().plans.unowned = 0;
}

} /* namespace */

/* Remember the dynamic policies of a new plan. copy: the query before planning. */
void
register_plan(PlannedStmt *ps, List *items, MemoryContext copyctx, Query *copy,
			  const char *query_string, int cursor_options)
{
	HASHCTL ctl;
	PlanEntry *pe;
	PlanInvalItem *sentinel;
	MemoryContext old;
	ListCell *lc;
	uint32 key;
	bool found;

	if (session().plans.map == nullptr)
	{
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(uint32);
		ctl.entrysize = sizeof(PlanEntry);
		ctl.hcxt = session().mcxt;
		session().plans.map = hash_create("rustydb vpd dynamic plans", 64, &ctl,
										  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	if (session().plans.unowned >= rustydb::settings::vpd_cache_entries)
		evict_unowned();
	do
		key = ++session().plans.key_counter;
	while (key == 0 || hash_search(session().plans.map, &key, HASH_FIND, nullptr) != nullptr);

	MemoryContextSetParent(copyctx, session().mcxt);
	old = MemoryContextSwitchTo(copyctx);
	pe = static_cast<PlanEntry *>(hash_search(session().plans.map, &key, HASH_ENTER, &found));
	pe->mcxt = copyctx;
	pe->items = NIL;
	foreach (lc, items)
	{
		DynamicItem *src = static_cast<DynamicItem *>(lfirst(lc));
		DynamicItem *it = static_cast<DynamicItem *>(palloc(sizeof(DynamicItem)));

		*it = *src;
		it->text = src->text ? pstrdup(src->text) : nullptr;
		pe->items = lappend(pe->items, it);
	}
	pe->query = copy;
	pe->query_string = query_string ? pstrdup(query_string) : nullptr;
	pe->cursor_options = cursor_options;
	pe->owned = false;
	session().plans.unowned++;
	MemoryContextSwitchTo(old);

	/* in the plan's own memory: copied along with it by the plan cache */
	sentinel = makeNode(PlanInvalItem);
	sentinel->cacheId = kSentinelCacheId;
	sentinel->hashValue = key;
	ps->invalItems = lappend(ps->invalItems, sentinel);
}

namespace {

PlanEntry *
plan_entry_of(PlannedStmt *ps, uint32 *key_out)
{
	ListCell *lc;

	if (session().plans.map == nullptr || ps == nullptr)
		return nullptr;
	foreach (lc, ps->invalItems)
	{
		PlanInvalItem *item = static_cast<PlanInvalItem *>(lfirst(lc));

		if (item->cacheId == kSentinelCacheId)
		{
			*key_out = item->hashValue;
			return static_cast<PlanEntry *>(
				hash_search(session().plans.map, &item->hashValue, HASH_FIND, nullptr));
		}
	}
	return nullptr;
}

bool
plan_has_sentinel(PlannedStmt *ps)
{
	ListCell *lc;

	foreach (lc, ps->invalItems)
		if (static_cast<PlanInvalItem *>(lfirst(lc))->cacheId == kSentinelCacheId)
			return true;
	return false;
}

struct Changed
{
	int32 id;
	Oid relid;
	char *text;
};

bool
text_equal(const char *a, const char *b)
{
	if (a == nullptr || b == nullptr)
		return a == b;
	return strcmp(a, b) == 0;
}

/* A new dynamic qual for policy p of the relation at rti, with text. */
Node *
dynamic_qual(Policy *p, Relation rel, int rti, int flags, const char *text, bool *hassub)
{
	Expr *marker = make_marker(kMarkerDynamic, p->id, flags, p->ncols, p->cols, text);
	Node *expr;

	if (text == nullptr)
		return reinterpret_cast<Node *>(marker);
	expr = parse_predicate(p, rel, text);
	ChangeVarNodes(expr, 1, rti, 0);
	if (checkExprHasSubLink(expr))
		*hassub = true;
	return reinterpret_cast<Node *>(
		make_andclause(list_make2(marker, reinterpret_cast<Expr *>(expr))));
}

Node *
replace_one(Node *qual, Oid relid, int rti, List *changed, bool *hassub)
{
	MarkerInfo mi;
	ListCell *lc;

	if (!decode_qual(qual, &mi) || mi.kind != kMarkerDynamic)
		return qual;
	foreach (lc, changed)
	{
		Changed *c = static_cast<Changed *>(lfirst(lc));

		if (c->id == mi.id && c->relid == relid)
		{
			Relation rel = relation_open(relid, AccessShareLock);
			Policy *p = find_policy(get_entry(relid), mi.id);
			Node *r;

			if (p == nullptr)
				ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
								errmsg("VPD policies of table \"%s\" changed during execution",
									   RelationGetRelationName(rel))));
			r = dynamic_qual(p, rel, rti, mi.flags, c->text, hassub);
			relation_close(rel, NoLock);
			return r;
		}
	}
	return qual;
}

bool
replace_walker_impl(Node *node, void *context)
{
	List *changed = static_cast<List *>(context);

	if (node == nullptr)
		return false;
	if (IsA(node, Query))
	{
		Query *q = reinterpret_cast<Query *>(node);
		ListCell *lc;
		int rti = 0;
		bool hassub = false;

		foreach (lc, q->rtable)
		{
			RangeTblEntry *rte = static_cast<RangeTblEntry *>(lfirst(lc));
			ListCell *qc;

			rti++;
			if (rte->rtekind != RTE_RELATION)
				continue;
			foreach (qc, rte->securityQuals)
				lfirst(qc) =
					replace_one(static_cast<Node *>(lfirst(qc)), rte->relid, rti, changed, &hassub);
		}
		if (q->resultRelation > 0)
		{
			Oid relid = rt_fetch(q->resultRelation, q->rtable)->relid;

			foreach (lc, q->withCheckOptions)
			{
				WithCheckOption *wco = static_cast<WithCheckOption *>(lfirst(lc));

				wco->qual = replace_one(wco->qual, relid, q->resultRelation, changed, &hassub);
			}
		}
		if (hassub)
			q->hasSubLinks = true;
		return query_tree_walker(q, WALKER(vpd_replace_walker), context, 0);
	}
	return expression_tree_walker(node, WALKER(vpd_replace_walker), context);
}

/* Free the entry together with the plan it describes. */
void
own_entry(PlannedStmt *ps, PlanEntry *pe, uint32 key)
{
	MemoryContext plan_cxt;
	MemoryContextCallback *cb;

	if (pe->owned)
		return;
	plan_cxt = GetMemoryChunkContext(ps);
	cb = static_cast<MemoryContextCallback *>(
		MemoryContextAlloc(plan_cxt, sizeof(MemoryContextCallback)));
	cb->func = vpd_plan_context_reset;
	cb->arg = reinterpret_cast<void *>(static_cast<uintptr_t>(key));
	MemoryContextRegisterResetCallback(plan_cxt, cb);
	pe->owned = true;
	session().plans.unowned--;
}

/* At ExecutorStart: evaluate the plan's dynamic policies; re-plan if one changed. */
void
check_dynamic(QueryDesc *qd)
{
	uint32 key = 0;
	PlanEntry *pe = plan_entry_of(qd->plannedstmt, &key);
	List *changed = NIL;
	ListCell *lc;

	if (pe == nullptr)
	{
		if (session().plans.map != nullptr && plan_has_sentinel(qd->plannedstmt))
			ereport(
				ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("cached plan with a dynamic VPD policy expired before its first execution"),
				 errhint(
					 "Run the statement again; raise rustydb.vpd_cache_entries if this recurs.")));
		return;
	}
	own_entry(qd->plannedstmt, pe, key);

	pin_policy_cache();
	PG_TRY();
	{
		foreach (lc, pe->items)
		{
			DynamicItem *it = static_cast<DynamicItem *>(lfirst(lc));
			Relation rel;
			Policy *p;
			char *now;

			if (it->stamp == session().stmt.exec_counter)
				continue; /* computed for this very execution */
			rel = relation_open(it->relid, AccessShareLock);
			p = find_policy(get_entry(it->relid), it->id);
			now = p ? evaluate_policy(p, rel) : nullptr;
			relation_close(rel, NoLock);
			if (p == nullptr || !text_equal(now, it->text))
			{
				Changed *c = static_cast<Changed *>(palloc(sizeof(Changed)));

				c->id = it->id;
				c->relid = it->relid;
				c->text = now;
				changed = lappend(changed, c);
			}
		}
	}
	PG_FINALLY();
	{
		unpin_policy_cache();
	}
	PG_END_TRY();

	if (changed != NIL)
	{
		/* pe may be gone if an invalidation freed the plan meanwhile: re-find it */
		pe = plan_entry_of(qd->plannedstmt, &key);
		if (pe == nullptr)
			ereport(
				ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("cached plan with a dynamic VPD policy was invalidated during execution"),
				 errhint("Run the statement again.")));
		Query *q = copy_node(pe->query);

		(void) replace_walker_impl(reinterpret_cast<Node *>(q), changed);
		qd->plannedstmt = ::planner(q, pe->query_string, pe->cursor_options, nullptr);
		/* the cached plans are stale now: rebuild them at their next use */
		invalidate_marker_plans(kMarkerDynamic);
		/* the new plan's own entry lives as long as the new plan */
		pe = plan_entry_of(qd->plannedstmt, &key);
		if (pe)
			own_entry(qd->plannedstmt, pe, key);
	}
}

} /* namespace */

void
recheck_dynamic_policies(QueryDesc *qd)
{
	if (session().plans.map != nullptr && hash_get_num_entries(session().plans.map) > 0)
		check_dynamic(qd);
}

} /* namespace vpd */
} /* namespace rustydb */

extern "C" {

static bool
vpd_replace_walker(Node *node, void *context) noexcept
{
	return rustydb::boundary::run("vpd_replace_walker",
								  [&] { return rustydb::vpd::replace_walker_impl(node, context); });
}

static void
vpd_plan_context_reset(void *arg) noexcept
{
	rustydb::boundary::run("vpd_plan_context_reset",
						   [&] { rustydb::vpd::plan_context_reset_impl(arg); });
}

} /* extern "C" */

/*-------------------------------------------------------------------------
 *
 * derived.cpp
 *	  Tables made from queries that read encrypted tables: CREATE TABLE
 *	  AS, SELECT INTO, CREATE MATERIALIZED VIEW and REFRESH.
 *
 * Before the statement runs, its query is searched for encrypted tables
 * and materialized views: the range tables of the query, its subqueries,
 * CTEs and sublinks, and of the views it reads (their stored queries,
 * recursively); a partitioned or inheritance parent counts when any of its
 * members is encrypted. A CREATE ... AS whose query reads one makes an
 * encrypted table:
 *	- with the rustydb access method (explicit, or the default), it is
 *	  encrypted whatever rustydb.encrypt_new_tables says;
 *	- with no access method named and another default (heap), it is made
 *	  a rustydb table and encrypted, with a NOTICE;
 *	- with another access method named, or encrypted = false, it is made
 *	  as asked and reported (rustydb.plaintext_derived_action: a WARNING,
 *	  an ERROR, or a LOG line).
 * REFRESH of an unencrypted materialized view whose query reads an
 * encrypted table is reported the same way.
 *
 * What the search cannot see (functions that read encrypted tables,
 * CREATE TABLE ... AS EXECUTE of a statement prepared earlier) is caught
 * while the statement runs: if it used an encrypted relation's key
 * (decryptions) and the table it created or refreshed is not encrypted,
 * it is reported after the fact.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/common/settings.h"
#include "rustydb/crypto/crypto_internal.h"

#include <cstring>

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "commands/defrem.h"
#include "commands/prepare.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "rewrite/prs2lock.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/plancache.h"
#include "utils/rel.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace crypto {

namespace {

/*
 * Whether reading relid (or, with members, its partitions and children)
 * gives decrypted rows. Not rustydb's own tables with sealed columns
 * (sealed.cpp): a copy of their rows holds the sealed bytes (pg_repack's
 * copy must stay a heap table); their views open the values, and a table
 * filled from them is reported after the statement (derived_table_check).
 */
bool
encrypted_relation(Oid relid, bool members)
{
	if (relation_has_keys(relid) && role_of(relid) != Role::Column)
		return true;
	if (!members || !has_subclass(relid))
		return false;
	List *all = find_all_inheritors(relid, NoLock, nullptr);
	ListCell *lc;
	foreach (lc, all)
		if (lfirst_oid(lc) != relid && relation_has_keys(lfirst_oid(lc)))
			return true;
	return false;
}

/* The SELECT rule's query of a view or materialized view (relation open). */
Query *
stored_query(Relation rel)
{
	if (rel->rd_rules == nullptr)
		return nullptr;
	for (int i = 0; i < rel->rd_rules->numLocks; i++)
	{
		RewriteRule *rule = rel->rd_rules->rules[i];
		if (rule->event == CMD_SELECT && list_length(rule->actions) == 1)
			return linitial_node(Query, rule->actions);
	}
	return nullptr;
}

/* The walk's state: the first encrypted relation found, and the view being searched. */
struct Search
{
	Oid found = InvalidOid;
	Oid view = InvalidOid; /* its stored query names it (OLD, NEW): not searched again */
};

bool find_encrypted(Node *node, void *search);

/* PostgreSQL's tree walkers take an untyped function pointer */
#define FIND_ENCRYPTED reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(find_encrypted))

/* Search the stored query of view relid; depth-limited by check_stack_depth. */
bool
view_reads_encrypted(Oid relid, Oid *found)
{
	check_stack_depth();
	Relation rel = table_open(relid, AccessShareLock);
	Query *q = stored_query(rel);
	Search inner;
	inner.view = relid;
	bool hit = q != nullptr && find_encrypted(reinterpret_cast<Node *>(q), &inner);
	table_close(rel, AccessShareLock);
	if (hit)
		*found = inner.found;
	return hit;
}

/* Walker: search->found is set to the first encrypted relation met. */
bool
find_encrypted(Node *node, void *context)
{
	auto *search = static_cast<Search *>(context);

	if (node == nullptr)
		return false;
	if (IsA(node, Query))
		return query_tree_walker(reinterpret_cast<Query *>(node), FIND_ENCRYPTED, context,
								 QTW_EXAMINE_RTES_BEFORE);
	if (IsA(node, RangeTblEntry))
	{
		auto *rte = reinterpret_cast<RangeTblEntry *>(node);
		if (rte->rtekind != RTE_RELATION || rte->relid == search->view)
			return false;
		char kind = get_rel_relkind(rte->relid);
		if (kind == RELKIND_VIEW)
		{
			if (view_reads_encrypted(rte->relid, &search->found))
				return true;
		}
		else if ((kind == RELKIND_RELATION || kind == RELKIND_MATVIEW ||
				  kind == RELKIND_PARTITIONED_TABLE) &&
				 encrypted_relation(rte->relid, rte->inh || kind == RELKIND_PARTITIONED_TABLE))
		{
			search->found = rte->relid;
			return true;
		}
		return false;
	}
	return expression_tree_walker(node, FIND_ENCRYPTED, context);
}

/* The query of a CREATE ... AS: analysed, or that of a prepared statement (EXECUTE). */
bool
reads_encrypted(Node *query, Oid *found)
{
	if (query == nullptr || !OidIsValid(keys_catalog_oid()))
		return false;
	if (IsA(query, Query) && castNode(Query, query)->commandType == CMD_UTILITY)
		query = castNode(Query, query)->utilityStmt;
	if (query != nullptr && IsA(query, ExecuteStmt))
	{
		PreparedStatement *ps = FetchPreparedStatement(castNode(ExecuteStmt, query)->name, false);
		if (ps == nullptr || ps->plansource == nullptr)
			return false;
		ListCell *lc;
		foreach (lc, ps->plansource->query_list)
		{
			Search search;
			if (find_encrypted(static_cast<Node *>(lfirst(lc)), &search))
			{
				*found = search.found;
				return true;
			}
		}
		return false;
	}
	Search search;
	if (!find_encrypted(query, &search))
		return false;
	*found = search.found;
	return true;
}

const char *
name_of(Oid relid)
{
	const char *name = get_rel_name(relid);
	return name != nullptr ? name : "?";
}

void
report(const char *table, Oid source, const char *detail)
{
	int level = settings::plaintext_derived_action == 1   ? ERROR
				: settings::plaintext_derived_action == 2 ? LOG
														  : WARNING;
	ereport(level,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("table \"%s\" holds rows of encrypted table \"%s\" unencrypted", table,
					name_of(source)),
			 errdetail_internal("%s", detail),
			 errhint("Create it with USING rustydb (the default for a query over an encrypted "
					 "table when no access method is named). "
					 "rustydb.plaintext_derived_action = error forbids such tables.")));
}

} /* namespace */

int
derived_table_request(PlannedStmt **pstmt, int request, DerivedCheck *check)
{
	Node *node = (*pstmt)->utilityStmt;

	*check = DerivedCheck{};
	check->decryptions = decryptions;
	if (IsA(node, RefreshMatViewStmt))
	{
		auto *rm = castNode(RefreshMatViewStmt, node);
		Oid relid = RangeVarGetRelid(rm->relation, NoLock, true);
		if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_MATVIEW ||
			!OidIsValid(keys_catalog_oid()) || relation_has_keys(relid))
			return request;
		check->kind = DerivedCheck::kRefresh;
		check->target = relid;
		Oid found = InvalidOid;
		if (!rm->skipData && view_reads_encrypted(relid, &found))
		{
			report(name_of(relid), found,
				   "REFRESH MATERIALIZED VIEW writes the rows of its query into the unencrypted "
				   "materialized view; an existing materialized view keeps its encryption.");
			check->reported = true;
		}
		return request;
	}
	if (!IsA(node, CreateTableAsStmt))
		return request;
	auto *ctas = castNode(CreateTableAsStmt, node);
	if (ctas->into == nullptr || ctas->into->rel == nullptr)
		return request;
	check->kind = DerivedCheck::kCreate;
	Oid found = InvalidOid;
	if (request == 1 || !reads_encrypted(ctas->query, &found))
		return request;

	const char *table = ctas->into->rel->relname;
	const char *am = ctas->into->accessMethod;
	if (request == 0)
	{
		report(table, found, "The statement sets encrypted = false.");
		check->reported = true;
		return request;
	}
	if (am == nullptr && default_table_access_method != nullptr &&
		strcmp(default_table_access_method, "rustydb") != 0)
	{
		if (!OidIsValid(get_am_oid("rustydb", true)))
			return request;
		auto *copy = static_cast<PlannedStmt *>(copyObjectImpl(*pstmt));
		castNode(CreateTableAsStmt, copy->utilityStmt)->into->accessMethod = pstrdup("rustydb");
		*pstmt = copy;
		ereport(NOTICE,
				(errmsg("table \"%s\" is created as an encrypted rustydb table: its query reads "
						"encrypted table \"%s\"",
						table, name_of(found))));
		return 1;
	}
	if (am != nullptr && strcmp(am, "rustydb") != 0)
	{
		report(table, found,
			   psprintf("The statement creates the table with access method \"%s\".", am));
		check->reported = true;
		return request;
	}
	return 1; /* a rustydb table: encrypted */
}

void
derived_table_check(const DerivedCheck &check, Oid created)
{
	if (check.kind == DerivedCheck::kNone || check.reported || decryptions == check.decryptions)
		return;
	Oid target = check.kind == DerivedCheck::kRefresh ? check.target : created;
	if (!OidIsValid(target) || last_decrypted == target || relation_has_keys(target))
		return;
	report(name_of(target), last_decrypted,
		   "The statement that filled it read an encrypted table (through a function, or a "
		   "prepared statement).");
}

} /* namespace crypto */
} /* namespace rustydb */

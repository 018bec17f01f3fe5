/*-------------------------------------------------------------------------
 *
 * objects.cpp
 *	  What an audited statement concerns: its relations and actions.
 *
 * Executor statements: relation actions come from the plan's range table.
 * The result relation of INSERT/UPDATE/DELETE/MERGE gets the statement's
 * write actions, every other relation the statement reads gets "select".
 * Utility statements are classified by their parse node: an action class,
 * the relations they name, and whether they are an always-audited
 * security event (CREATE/ALTER/DROP EXTENSION rustydb, ALTER SYSTEM of a
 * rustydb.* setting, DDL on the trail's own tables). Relations in
 * pg_catalog, pg_toast and information_schema are not audited. A statement
 * with something to record gets a frame (frames.cpp).
 *
 * Also owns the cache of relation names (Session::relname_cache).
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/audit/capture.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "tcop/cmdtag.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace audit {

namespace {

/*
 * Relation names, cached per backend: three syscache lookups and a
 * snprintf per audited relation and statement were a good part of the
 * capture's cost. An entry goes when the relation's relcache entry is
 * invalidated (rename, SET SCHEMA, drop: every change of its pg_class
 * row), all of them when a schema changes (its pg_namespace row: a schema
 * rename sends no relcache invalidation) or the relcache is reset.
 * Relations that do not exist are not cached.
 */
struct RelName
{
	Oid relid; /* hash key */
	bool audited;
	char name[kObjectLen];
};

constexpr long kMaxRelNames = 1024;

void
relname_cache_reset()
{
	Session &s = session();

	if (s.relname_cache != nullptr)
		hash_destroy(s.relname_cache);
	s.relname_cache = nullptr;
}

/* Look the name up in the catalogs; false: not audited, *exists: found. */
bool
relation_name_lookup(Oid relid, char *out, bool *exists)
{
	Oid nsp = get_rel_namespace(relid);
	char *rel;
	char *schema;

	*exists = OidIsValid(nsp);
	if (!OidIsValid(nsp) || nsp == PG_CATALOG_NAMESPACE || nsp == PG_TOAST_NAMESPACE)
		return false;
	schema = get_namespace_name(nsp);
	if (schema == nullptr)
	{
		*exists = false;
		return false;
	}
	if (strcmp(schema, "information_schema") == 0)
		return false;
	rel = get_rel_name(relid);
	if (rel == nullptr)
	{
		*exists = false;
		return false;
	}
	snprintf(out, kObjectLen, "%s.%s", schema, rel);
	return true;
}

/* Relation named by a RangeVar, if it exists. */
Oid
rangevar_relid(RangeVar *rv)
{
	return rv != nullptr ? RangeVarGetRelid(rv, NoLock, true) : InvalidOid;
}

bool
is_rustydb_extension(List *names)
{
	ListCell *lc;

	foreach (lc, names)
	{
		Node *n = static_cast<Node *>(lfirst(lc));

		if (IsA(n, String) && strcmp(strVal(n), "rustydb") == 0)
			return true;
	}
	return false;
}

/*
 * Classify a utility statement: its action class, the relations it
 * concerns (added to rels), and whether it is an always-audited security
 * event.
 */
uint32
classify_utility(Node *n, List **rels, const char **security, bool *nonatomic, char *object)
{
	*security = nullptr;
	*nonatomic = false;
	switch (nodeTag(n))
	{
		case T_TruncateStmt:
		{
			ListCell *lc;

			foreach (lc, castNode(TruncateStmt, n)->relations)
				*rels = lappend_oid(*rels, rangevar_relid(static_cast<RangeVar *>(lfirst(lc))));
			return kTruncate;
		}
		case T_GrantStmt:
		case T_GrantRoleStmt:
		case T_CreateRoleStmt:
		case T_AlterRoleStmt:
		case T_AlterRoleSetStmt:
		case T_DropRoleStmt:
		case T_ReassignOwnedStmt:
		case T_DropOwnedStmt:
		case T_AlterDefaultPrivilegesStmt:
			return kRole;
		case T_CopyStmt:
		{
			CopyStmt *c = castNode(CopyStmt, n);

			if (c->relation == nullptr)
				return 0; /* COPY (query): the executor sees the query */
			*rels = lappend_oid(*rels, rangevar_relid(c->relation));
			return c->is_from ? kInsert : kSelect;
		}
		case T_CallStmt:
		{
			CallStmt *c = castNode(CallStmt, n);

			*nonatomic = true;
			if (c->funcexpr != nullptr)
			{
				char *fn = get_func_name(c->funcexpr->funcid);
				char *ns = get_namespace_name(get_func_namespace(c->funcexpr->funcid));

				if (fn != nullptr && ns != nullptr)
					snprintf(object, kObjectLen, "%s.%s", ns, fn);
			}
			return kFunction;
		}
		case T_DoStmt:
			*nonatomic = true;
			strlcpy(object, "DO", kObjectLen);
			return kFunction;
		case T_CreateExtensionStmt:
			if (strcmp(castNode(CreateExtensionStmt, n)->extname, "rustydb") == 0)
				*security = "audit_extension";
			return kDdl;
		case T_AlterExtensionStmt:
			if (strcmp(castNode(AlterExtensionStmt, n)->extname, "rustydb") == 0)
				*security = "audit_extension";
			return kDdl;
		case T_AlterExtensionContentsStmt:
			/* taking an object out of rustydb (so that it can be dropped) */
			if (strcmp(castNode(AlterExtensionContentsStmt, n)->extname, "rustydb") == 0)
			{
				*security = "audit_extension";
				strlcpy(object, "rustydb", kObjectLen);
			}
			return kDdl;
		case T_DropStmt:
		{
			DropStmt *d = castNode(DropStmt, n);

			if (d->removeType == OBJECT_EXTENSION && is_rustydb_extension(d->objects))
				*security = "audit_extension";
			if (d->removeType == OBJECT_TABLE || d->removeType == OBJECT_VIEW ||
				d->removeType == OBJECT_MATVIEW || d->removeType == OBJECT_FOREIGN_TABLE)
			{
				ListCell *lc;

				foreach (lc, d->objects)
					*rels = lappend_oid(*rels, rangevar_relid(makeRangeVarFromNameList(
												   static_cast<List *>(lfirst(lc)))));
			}
			return kDdl;
		}
		case T_AlterSystemStmt:
		{
			AlterSystemStmt *a = castNode(AlterSystemStmt, n);

			if (a->setstmt->name != nullptr && strncmp(a->setstmt->name, "rustydb.", 8) == 0)
			{
				*security = "setting_change";
				strlcpy(object, a->setstmt->name, kObjectLen);
			}
			return 0;
		}
		case T_AlterTableStmt:
			*rels = lappend_oid(*rels, rangevar_relid(castNode(AlterTableStmt, n)->relation));
			return kDdl;
		case T_IndexStmt:
			*rels = lappend_oid(*rels, rangevar_relid(castNode(IndexStmt, n)->relation));
			return kDdl;
		case T_CreateTrigStmt:
			*rels = lappend_oid(*rels, rangevar_relid(castNode(CreateTrigStmt, n)->relation));
			return kDdl;
		case T_RenameStmt:
			*rels = lappend_oid(*rels, rangevar_relid(castNode(RenameStmt, n)->relation));
			return kDdl;
		case T_CreateStmt:
		{
			RangeVar *rv = castNode(CreateStmt, n)->relation;

			snprintf(object, kObjectLen, "%s%s%s", rv->schemaname ? rv->schemaname : "",
					 rv->schemaname ? "." : "", rv->relname);
			return kDdl;
		}
		default:
			return GetCommandLogLevel(n) == LOGSTMT_DDL ? static_cast<uint32>(kDdl) : 0u;
	}
}

/* Does the statement concern one of the trail's tables? (its name into object) */
bool
touches_audit_storage(List *rels, char *object)
{
	ListCell *lc;
	char name[kObjectLen];

	foreach (lc, rels)
	{
		Oid relid = lfirst_oid(lc);

		if (OidIsValid(relid) && relation_name(relid, name) &&
			(strncmp(name, "rustydb._audit_", 15) == 0 ||
			 strcmp(name, "rustydb.audit_policies") == 0))
		{
			strlcpy(object, name, kObjectLen);
			return true;
		}
	}
	return false;
}

} /* namespace */

/* "schema.relation" of a relation, or false when it is not audited. */
bool
relation_name(Oid relid, char *out)
{
	Session &s = session();
	RelName *e;
	bool found;
	bool exists;
	bool audited;

	if (s.relname_cache != nullptr)
	{
		e = static_cast<RelName *>(hash_search(s.relname_cache, &relid, HASH_FIND, nullptr));
		if (e != nullptr)
		{
			if (e->audited)
				copy_name(out, e->name, kObjectLen);
			return e->audited;
		}
	}
	audited = relation_name_lookup(relid, out, &exists);
	if (!exists)
		return false;
	if (s.relname_cache != nullptr && hash_get_num_entries(s.relname_cache) >= kMaxRelNames)
		relname_cache_reset();
	if (s.relname_cache == nullptr)
	{
		HASHCTL ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(RelName);
		ctl.hcxt = TopMemoryContext;
		s.relname_cache = hash_create("rustydb audit relation names", 64, &ctl,
									  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	e = static_cast<RelName *>(hash_search(s.relname_cache, &relid, HASH_ENTER, &found));
	e->audited = audited;
	if (audited)
		copy_name(e->name, out, sizeof(e->name));
	else
		e->name[0] = '\0';
	return audited;
}

void
relation_names_invalidate(Oid relid)
{
	Session &s = session();

	if (relid == InvalidOid)
		relname_cache_reset();
	else if (s.relname_cache != nullptr)
		(void) hash_search(s.relname_cache, &relid, HASH_REMOVE, nullptr);
}

/*
 * The frame of an executor statement: the relations of its range table
 * that a policy audits for their actions, or (a policy auditing functions
 * without naming objects) none, to collect the functions it executes.
 * nullptr when there is nothing to audit.
 */
Frame *
frame_for_query(QueryDesc *qd)
{
	PlannedStmt *ps = qd->plannedstmt;
	uint32 write_actions = 0;
	Frame *f = nullptr;
	ListCell *lc;
	int rti = 0;
	char name[kObjectLen];

	if (!(session().policy.user_mask & (kSelect | kInsert | kUpdate | kDelete | kFunction)))
		return nullptr;
	switch (qd->operation)
	{
		case CMD_INSERT:
			write_actions = kInsert;
			break;
		case CMD_UPDATE:
			write_actions = kUpdate;
			break;
		case CMD_DELETE:
			write_actions = kDelete;
			break;
		case CMD_MERGE:
			write_actions = kInsert | kUpdate | kDelete;
			break;
		default:
			break;
	}
	foreach (lc, ps->rtable)
	{
		RangeTblEntry *rte = static_cast<RangeTblEntry *>(lfirst(lc));
		uint32 actions = 0;

		rti++;
		if (rte->rtekind != RTE_RELATION || rte->requiredPerms == 0)
			continue;
		if (write_actions != 0 && list_member_int(ps->resultRelations, rti))
		{
			if (rte->requiredPerms & ACL_INSERT)
				actions |= write_actions & kInsert;
			if (rte->requiredPerms & ACL_UPDATE)
				actions |= write_actions & kUpdate;
			if (rte->requiredPerms & ACL_DELETE)
				actions |= write_actions & kDelete;
		}
		else if (rte->requiredPerms & ACL_SELECT)
			actions = kSelect;
		else if (qd->operation == CMD_SELECT)
			actions = kSelect; /* SELECT ... FOR UPDATE without column access */
		actions &= relation_mask(rte->relid);
		if (actions == 0 || !relation_name(rte->relid, name))
			continue;
		if (f == nullptr)
			f = push_frame(qd);
		add_object(f, rte->relid, actions, name);
	}
	if (f == nullptr && (unscoped_mask() & kFunction))
		f = push_frame(qd);
	if (f != nullptr)
		copy_statement(f, qd->sourceText, ps->stmt_location, ps->stmt_len, qd->params);
	return f;
}

/*
 * The frame of a utility statement, or nullptr when it has nothing to
 * record (no policy covers it and it is no security event).
 */
Frame *
frame_for_utility(PlannedStmt *pstmt, const char *query_string, ParamListInfo params)
{
	const Session &s = session();
	Node *n = pstmt->utilityStmt;
	List *rels = NIL;
	const char *security = nullptr;
	bool nonatomic = false;
	char object[kObjectLen];
	uint32 cls;

	object[0] = '\0';
	if (s.in_audit_worker || s.policy.loading || IsParallelWorker() || !IsTransactionState() ||
		IsAbortedTransactionBlockState() || MyBackendType != B_BACKEND)
		return nullptr;
	cls = classify_utility(n, &rels, &security, &nonatomic, object);
	if (cls == kDdl && security == nullptr && touches_audit_storage(rels, object))
		security = "audit_storage";
	if (cls != 0 && !capture_enabled())
		cls = 0;
	if (cls == 0 && security == nullptr)
		return nullptr;

	uint32 unscoped = cls != 0 ? unscoped_mask() : 0;
	ListCell *lc;
	char name[kObjectLen];
	bool any_rel = false;
	Frame *f = push_frame(pstmt);

	f->security_action = security;
	f->survives_xact = nonatomic;
	strlcpy(f->object, object, sizeof(f->object));
	strlcpy(f->detail, GetCommandTagName(CreateCommandTag(n)), sizeof(f->detail));
	foreach (lc, rels)
	{
		Oid relid = lfirst_oid(lc);

		if (!OidIsValid(relid) || !relation_name(relid, name))
			continue;
		any_rel = true;
		if (cls != 0 && (relation_mask(relid) & cls))
			add_object(f, relid, cls, name);
	}
	if (!any_rel)
		f->statement_actions = cls & unscoped;
	if (f->nobj == 0 && f->statement_actions == 0 && security == nullptr)
	{
		pop_frame(f);
		return nullptr;
	}
	copy_statement(f, query_string, pstmt->stmt_location, pstmt->stmt_len, params);
	return f;
}

/*
 * A function the current statement executes, in the top frame (the first
 * kMaxFunctions, then a count); note_function() has checked that a policy
 * audits functions. Functions of pg_catalog and information_schema are not
 * recorded.
 */
void
add_function(Oid function)
{
	const Session &s = session();
	Frame *f = s.frames.top;
	bool seen = false;

	for (int i = 0; i < f->nfunc; i++)
		seen = seen || f->func_oids[i] == function;
	if (seen)
		return;

	Oid nsp = get_func_namespace(function);

	if (!OidIsValid(nsp) || nsp == PG_CATALOG_NAMESPACE)
		return;

	char *ns = get_namespace_name(nsp);
	char *fn = get_func_name(function);

	if (ns == nullptr || fn == nullptr || strcmp(ns, "information_schema") == 0)
		return;
	if (f->func_names == nullptr)
		f->func_names = static_cast<char(*)[kObjectLen]>(
			MemoryContextAlloc(s.frames.ctx, kMaxFunctions * kObjectLen));
	if (f->nfunc < kMaxFunctions)
	{
		f->func_oids[f->nfunc] = function;
		snprintf(f->func_names[f->nfunc], kObjectLen, "%s.%s", ns, fn);
		f->nfunc++;
	}
	else
		f->extra_funcs++;
}

} /* namespace audit */
} /* namespace rustydb */

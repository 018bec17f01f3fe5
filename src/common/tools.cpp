/*-------------------------------------------------------------------------
 *
 * tools.cpp
 *	  Recognising the tables external tools create around a rustydb table
 *	  (tools.h).
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/common/tools.h"

#include "rustydb/common/boundary.h"

#include <cstring>

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "parser/analyze.h"
#include "parser/parse_func.h"
#include "utils/catcache.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb::tools {

namespace {

/* The OID in "<prefix><oid>" (digits only), or InvalidOid. */
Oid
suffix_oid(const char *relname, const char *prefix)
{
	size_t n = strlen(prefix);
	if (strncmp(relname, prefix, n) != 0 || relname[n] == '\0')
		return InvalidOid;
	unsigned long v = 0;
	for (const char *p = relname + n; *p != '\0'; p++)
	{
		if (*p < '0' || *p > '9')
			return InvalidOid;
		v = v * 10 + (unsigned long) (*p - '0');
		if (v > PG_UINT32_MAX)
			return InvalidOid;
	}
	return (Oid) v;
}

} /* namespace */

bool
uses_rustydb(Oid relid)
{
	HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		return false;
	auto *form = (Form_pg_class) GETSTRUCT(tup);
	bool yes = false;
	if (OidIsValid(form->relam))
	{
		Oid am = get_am_oid("rustydb", true);
		yes = OidIsValid(am) && form->relam == am;
	}
	ReleaseSysCache(tup);
	return yes;
}

RepackRole
pg_repack_role(Oid nspid, const char *relname, Oid *original)
{
	*original = InvalidOid;
	if (!OidIsValid(nspid) || relname == nullptr)
		return RepackRole::kNone;
	RepackRole role = RepackRole::kNone;
	Oid orig = suffix_oid(relname, "table_");
	if (OidIsValid(orig))
		role = RepackRole::kCopy;
	else if (OidIsValid(orig = suffix_oid(relname, "log_")))
		role = RepackRole::kLog;
	else
		return RepackRole::kNone;

	char *nspname = get_namespace_name(nspid);
	if (nspname == nullptr || strcmp(nspname, "repack") != 0)
		return RepackRole::kNone;
	/* the schema must be the pg_repack extension's, not one a user made */
	Oid ext = get_extension_oid("pg_repack", true);
	if (!OidIsValid(ext) || getExtensionOfObject(NamespaceRelationId, nspid) != ext)
		return RepackRole::kNone;
	if (get_rel_relkind(orig) != RELKIND_RELATION || !uses_rustydb(orig))
		return RepackRole::kNone;
	*original = orig;
	return role;
}

RepackRole
pg_repack_role(const char *nspname, const char *relname, Oid *original)
{
	*original = InvalidOid;
	if (nspname == nullptr || strcmp(nspname, "repack") != 0)
		return RepackRole::kNone;
	return pg_repack_role(get_namespace_oid(nspname, true), relname, original);
}

/* ------------------------------------------------------------------------
 * The heap-only function guard
 * ------------------------------------------------------------------------
 */

namespace {

/*
 * Functions that read the pages of their first argument (a table) by TID
 * block number: on a rustydb table they would read file block N for data
 * block N (the metapage for 0) and report healthy rows as corrupt.
 */
struct Guarded
{
	const char *extension;
	const char *name;
	const char *why;
};
constexpr Guarded kGuarded[] = {
	{"pg_visibility", "pg_visibility", "pg_visibility()"},
	{"pg_visibility", "pg_check_visible", "pg_check_visible()"},
	{"pg_visibility", "pg_check_frozen", "pg_check_frozen()"},
};

/* The guarded functions' OIDs in this database (valid while guard_known). */
bool guard_known = false;
Oid guard_fn = InvalidOid; /* rustydb._heap_pages_only(regclass, text) */
constexpr int kMaxGuardedOids = 16;
Oid guarded_oids[kMaxGuardedOids];
const char *guarded_why[kMaxGuardedOids];
int nguarded = 0;

void
guard_forget(Datum, int, uint32)
{
	guard_known = false;
}

/* Look the functions up (catalog access: only inside a transaction). */
void
guard_load()
{
	guard_known = true;
	nguarded = 0;
	guard_fn = InvalidOid;
	Oid nsp = get_namespace_oid("rustydb", true);
	if (!OidIsValid(nsp))
		return;
	Oid argtypes[2] = {REGCLASSOID, TEXTOID};
	List *name =
		list_make2(makeString(pstrdup("rustydb")), makeString(pstrdup("_heap_pages_only")));
	guard_fn = LookupFuncName(name, 2, argtypes, true);
	if (!OidIsValid(guard_fn))
		return;
	for (const Guarded &g : kGuarded)
	{
		Oid ext = get_extension_oid(g.extension, true);
		if (!OidIsValid(ext))
			continue;
		CatCList *list = SearchSysCacheList1(PROCNAMEARGSNSP, CStringGetDatum(g.name));
		for (int i = 0; i < list->n_members && nguarded < kMaxGuardedOids; i++)
		{
			HeapTuple tup = &list->members[i]->tuple;
			auto *form = (Form_pg_proc) GETSTRUCT(tup);
			if (form->pronargs < 1 || form->proargtypes.values[0] != REGCLASSOID ||
				getExtensionOfObject(ProcedureRelationId, form->oid) != ext)
				continue;
			guarded_oids[nguarded] = form->oid;
			guarded_why[nguarded] = g.why;
			nguarded++;
		}
		ReleaseSysCacheList(list);
	}
}

const char *
guarded(Oid fn)
{
	for (int i = 0; i < nguarded; i++)
		if (guarded_oids[i] == fn)
			return guarded_why[i];
	return nullptr;
}

bool guard_walker(Node *node, void *context);

/* PostgreSQL's tree walkers take an untyped function pointer */
#define GUARD_WALKER reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(guard_walker))

bool
guard_walker_impl(Node *node, void *context)
{
	if (node == nullptr)
		return false;
	if (IsA(node, Query))
		return query_tree_walker(castNode(Query, node), GUARD_WALKER, context, 0);
	if (IsA(node, FuncExpr))
	{
		auto *fe = castNode(FuncExpr, node);
		const char *why = guarded(fe->funcid);
		if (why != nullptr && fe->args != NIL)
		{
			auto *first = static_cast<Node *>(linitial(fe->args));
			auto *call =
				makeFuncExpr(guard_fn, REGCLASSOID,
							 list_make2(first, makeConst(TEXTOID, -1, InvalidOid, -1,
														 CStringGetTextDatum(why), false, false)),
							 InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL);
			call->location = fe->location;
			linitial(fe->args) = call;
		}
	}
	return expression_tree_walker(node, GUARD_WALKER, context);
}

bool
guard_walker(Node *node, void *context)
{
	return guard_walker_impl(node, context);
}

} /* namespace */

} /* namespace rustydb::tools */

extern "C" {

static void
tools_proc_callback(Datum arg, int cacheid, uint32 hashvalue) noexcept
{
	rustydb::boundary::run("tools_proc_callback",
						   [&] { rustydb::tools::guard_forget(arg, cacheid, hashvalue); });
}

} /* extern "C" */

/*
 * rustydb._heap_pages_only(rel regclass, tool text) RETURNS regclass: rel,
 * unless it is a rustydb table (then the error naming the tool).
 */
RUSTYDB_FUNCTION(rustydb_heap_pages_only)
{
	Oid relid = PG_GETARG_OID(0);
	if (rustydb::tools::uses_rustydb(relid))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s cannot check rustydb table \"%s\"",
						text_to_cstring(PG_GETARG_TEXT_PP(1)), get_rel_name(relid)),
				 errdetail("It reads the page of data block N at file block N, but block 0 of a "
						   "rustydb table's file is its metapage: it would check the wrong "
						   "pages and report healthy rows as corrupt."),
				 errhint("rustydb.verify_table() checks every page and tuple of a rustydb "
						 "table; pg_visibility_map() reads its visibility map correctly.")));
	PG_RETURN_OID(relid);
}

namespace rustydb::tools {

void
hook_post_parse(hooks::PostParseCall &call)
{
	call.proceed();
	if (!IsTransactionState())
		return;
	if (!guard_known)
		guard_load();
	if (nguarded > 0)
		(void) guard_walker(reinterpret_cast<Node *>(call.query), nullptr);
}

void
init()
{
	CacheRegisterSyscacheCallback(PROCOID, tools_proc_callback, (Datum) 0);
}

} /* namespace rustydb::tools */

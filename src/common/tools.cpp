/*-------------------------------------------------------------------------
 *
 * tools.cpp
 *	  Recognising the tables external tools create around a rustydb table
 *	  (tools.h).
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/common/tools.h"

#include <cstring>

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/htup_details.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_am.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
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

/* Is relid a table using the rustydb access method? */
bool
is_rustydb_table(Oid relid)
{
	HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
		return false;
	auto *form = (Form_pg_class) GETSTRUCT(tup);
	bool yes = false;
	if (form->relkind == RELKIND_RELATION && OidIsValid(form->relam))
	{
		Oid am = get_am_oid("rustydb", true);
		yes = OidIsValid(am) && form->relam == am;
	}
	ReleaseSysCache(tup);
	return yes;
}

} /* namespace */

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
	if (!is_rustydb_table(orig))
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

} /* namespace rustydb::tools */

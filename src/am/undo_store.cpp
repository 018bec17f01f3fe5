/*-------------------------------------------------------------------------
 *
 * undo_store.cpp
 *	  The undo store's companion relation: created with each rustydb
 *	  table, found by name, dropped with the table through an internal
 *	  dependency (docs/storage.md, "Where the undo store lives").
 *
 * rustydb.create_undo(regclass) gives one to a table that has none
 * (created before this version, or converted with ALTER TABLE ... SET
 * ACCESS METHOD); rustydb.undo_relation(regclass) names it.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/am/undo_store.h"

#include "rustydb/common/boundary.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/heap.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb::am {

namespace {

/* The fields of a pg_class row this file needs. */
struct ClassRow
{
	char relkind;
	char relpersistence;
	Oid relam;
	Oid relowner;
	Oid reltablespace;
	Oid relnamespace;
};

/* The pg_class row of relid, including one made by the current command (SnapshotSelf). */
bool
class_row(Oid relid, ClassRow *out)
{
	Relation rel = table_open(RelationRelationId, AccessShareLock);
	ScanKeyData key;
	bool found = false;

	ScanKeyInit(&key, Anum_pg_class_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	SysScanDesc scan = systable_beginscan(rel, ClassOidIndexId, true, SnapshotSelf, 1, &key);
	HeapTuple tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		auto *form = reinterpret_cast<Form_pg_class>(GETSTRUCT(tup));
		out->relkind = form->relkind;
		out->relpersistence = form->relpersistence;
		out->relam = form->relam;
		out->relowner = form->relowner;
		out->reltablespace = form->reltablespace;
		out->relnamespace = form->relnamespace;
		found = true;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

void
undo_name(Oid relid, char *name)
{
	snprintf(name, NAMEDATALEN, "rustydb_undo_%u", relid);
}

/* Does this row describe a table that has (or should have) a store? */
bool
wants_store(const ClassRow &row)
{
	Oid am = get_table_am_oid("rustydb", true);
	return row.relkind == RELKIND_RELATION && OidIsValid(am) && row.relam == am;
}

} /* namespace */

Oid
undo_relation_of(Oid relid, char persistence)
{
	char name[NAMEDATALEN];
	undo_name(relid, name);
	Oid nsp = PG_TOAST_NAMESPACE;
	if (persistence == RELPERSISTENCE_TEMP)
	{
		nsp = GetTempToastNamespace();
		if (!OidIsValid(nsp))
			return InvalidOid; /* another session's temporary table, or none made yet */
	}
	return get_relname_relid(name, nsp);
}

Oid
create_undo_relation(Oid relid)
{
	ClassRow row;
	if (!class_row(relid, &row) || !wants_store(row))
	{
		const char *name = get_rel_name(relid);
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
						errmsg("\"%s\" is not a rustydb table", name != nullptr ? name : "?"),
						errhint("Undo stores belong to tables created USING rustydb.")));
	}
	Oid existing = undo_relation_of(relid, row.relpersistence);
	if (OidIsValid(existing))
		return existing;

	Oid am = get_table_am_oid("rustydb_undo", false);
	Oid nsp =
		row.relpersistence == RELPERSISTENCE_TEMP ? GetTempToastNamespace() : PG_TOAST_NAMESPACE;
	Assert(OidIsValid(nsp));
	char name[NAMEDATALEN];
	undo_name(relid, name);

	/* relkind 't': no row type, not in database-wide VACUUM/ANALYZE or relkind 'r' lists */
	TupleDesc desc = CreateTemplateTupleDesc(0);
	Oid undo = heap_create_with_catalog(name, nsp, row.reltablespace, InvalidOid, InvalidOid,
										InvalidOid, row.relowner, am, desc, NIL, RELKIND_TOASTVALUE,
										row.relpersistence, false, false, ONCOMMIT_NOOP, (Datum) 0,
										false, true, true, InvalidOid, nullptr);

	ObjectAddress table_addr, undo_addr;
	ObjectAddressSet(table_addr, RelationRelationId, relid);
	ObjectAddressSet(undo_addr, RelationRelationId, undo);
	recordDependencyOn(&undo_addr, &table_addr, DEPENDENCY_INTERNAL);
	CommandCounterIncrement();
	return undo;
}

void
hook_object_access(hooks::ObjectAccessCall &call)
{
	call.proceed();
	if (call.access != OAT_POST_CREATE || call.class_id != RelationRelationId || call.sub_id != 0)
		return;
	auto *pc = static_cast<ObjectAccessPostCreate *>(call.arg);
	/*
	 * Internal creations are CLUSTER's, VACUUM FULL's and ALTER TABLE's
	 * transient tables, whose files become an existing table's: that
	 * table keeps its own store. pg_upgrade assigns every OID itself:
	 * rustydb.create_undo() adds the stores afterwards.
	 */
	if ((pc != nullptr && pc->is_internal) || IsBinaryUpgrade)
		return;
	ClassRow row;
	if (!class_row(call.object_id, &row) || !wants_store(row))
		return;
	/* the new table's catalog rows visible, as heap_create_with_catalog allows here */
	CommandCounterIncrement();
	create_undo_relation(call.object_id);
}

} /* namespace rustydb::am */

/*
 * rustydb.create_undo(regclass): the table's undo store, created if it has
 * none (tables created before stores existed, or converted to rustydb by
 * ALTER TABLE ... SET ACCESS METHOD). The table's owner may call it.
 */
RUSTYDB_FUNCTION(rustydb_create_undo)
{
	Oid relid = PG_GETARG_OID(0);
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(get_rel_relkind(relid)),
					   get_rel_name(relid));
	/* self-conflicting: two sessions never create the same store */
	Relation rel = table_open(relid, ShareUpdateExclusiveLock);
	Oid undo = rustydb::am::create_undo_relation(relid);
	table_close(rel, NoLock);
	PG_RETURN_OID(undo);
}

/* rustydb.undo_relation(regclass): the table's undo store, or NULL. */
RUSTYDB_FUNCTION(rustydb_undo_relation)
{
	Oid relid = PG_GETARG_OID(0);
	char persistence = get_rel_persistence(relid);
	Oid undo = persistence == '\0' ? InvalidOid : rustydb::am::undo_relation_of(relid, persistence);
	if (!OidIsValid(undo))
		PG_RETURN_NULL();
	PG_RETURN_OID(undo);
}

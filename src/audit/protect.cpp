/*-------------------------------------------------------------------------
 *
 * protect.cpp
 *	  The audit trail's own protection: the guard trigger of its tables,
 *	  and changes to that protection as security events.
 *
 * The trail's tables are guarded by triggers that call
 * rustydb._audit_trail_guard(): they change only through rustydb (the
 * worker's inserts bypass triggers; purges set
 * Session::purge_in_progress). rustydb's behaviour lives in the functions
 * of its schema. A superuser who replaces, alters or drops one of those
 * functions, or creates, enables, disables, renames or drops a trigger on
 * the trail's tables, is recorded as it happens (audit's object access
 * hook calls protection_event), naming the object, whatever the audit
 * policies say, and even if the transaction later rolls back (records are
 * queued outside the transaction). CREATE/ALTER/DROP EXTENSION rustydb,
 * DDL on the trail's tables and changes of rustydb.* settings are recorded
 * by the utility hook (objects.cpp classifies them) and the worker
 * (worker.cpp).
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/audit/audit.h"
#include "rustydb/audit/capture.h"
#include "rustydb/common/boundary.h"

#include <cstring>

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "replication/logicalworker.h"
#include "commands/extension.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/snapmgr.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace audit {

namespace {

bool
in_rustydb_schema(Oid nsp)
{
	char *name = OidIsValid(nsp) ? get_namespace_name(nsp) : nullptr;
	return name != nullptr && strcmp(name, "rustydb") == 0;
}

const char *
verb(ObjectAccessType access)
{
	switch (access)
	{
		case OAT_POST_CREATE:
			return "created or replaced";
		case OAT_POST_ALTER:
			return "altered";
		case OAT_DROP:
			return "dropped";
		default:
			return "changed";
	}
}

/*
 * The function's schema and name, read with SnapshotSelf: a function this
 * command just created is not in the syscache's view yet.
 */
bool
function_row(Oid fn, Oid *nsp, NameData *name)
{
	Relation rel = table_open(ProcedureRelationId, AccessShareLock);
	ScanKeyData key;
	ScanKeyInit(&key, Anum_pg_proc_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(fn));
	SysScanDesc scan = systable_beginscan(rel, ProcedureOidIndexId, true, SnapshotSelf, 1, &key);
	HeapTuple tup = systable_getnext(scan);
	bool found = HeapTupleIsValid(tup);
	if (found)
	{
		auto *form = (Form_pg_proc) GETSTRUCT(tup);
		*nsp = form->pronamespace;
		*name = form->proname;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

void
function_event(ObjectAccessType access, Oid fn)
{
	Oid nsp = InvalidOid;
	NameData proname;
	if (!function_row(fn, &nsp, &proname) || !in_rustydb_schema(nsp))
		return;
	/* with its arguments when the syscache sees it (not yet for a new function) */
	char *name = OidIsValid(get_func_namespace(fn)) ? format_procedure_qualified(fn)
													: psprintf("rustydb.%s(...)", NameStr(proname));
	char detail[256];
	snprintf(detail, sizeof(detail), "function %s of rustydb's schema %s", name, verb(access));
	security_event("rustydb_object_change", name, detail);
}

/* A trigger on one of the trail's tables (read with SnapshotSelf: this command's change). */
void
trigger_event(ObjectAccessType access, Oid trigger)
{
	Relation rel = table_open(TriggerRelationId, AccessShareLock);
	ScanKeyData key;
	ScanKeyInit(&key, Anum_pg_trigger_oid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(trigger));
	SysScanDesc scan = systable_beginscan(rel, TriggerOidIndexId, true, SnapshotSelf, 1, &key);
	HeapTuple tup = systable_getnext(scan);
	Oid table = InvalidOid;
	NameData tgname;
	char enabled = 0;
	if (HeapTupleIsValid(tup))
	{
		auto *form = (Form_pg_trigger) GETSTRUCT(tup);
		table = form->tgrelid;
		tgname = form->tgname;
		enabled = form->tgenabled;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	if (!OidIsValid(table) || !in_rustydb_schema(get_rel_namespace(table)))
		return;
	char *relname = get_rel_name(table);
	if (relname == nullptr ||
		(strncmp(relname, "_audit_", 7) != 0 && strcmp(relname, "audit_policies") != 0))
		return;
	char object[256];
	char detail[256];
	snprintf(object, sizeof(object), "rustydb.%s (trigger %s)", relname, NameStr(tgname));
	const char *state = enabled == TRIGGER_DISABLED           ? "disabled"
						: enabled == TRIGGER_FIRES_ALWAYS     ? "enabled always"
						: enabled == TRIGGER_FIRES_ON_REPLICA ? "enabled on replica only"
															  : "enabled on origin only";
	snprintf(detail, sizeof(detail), "trigger %s on rustydb.%s %s (now %s)", NameStr(tgname),
			 relname, verb(access), access == OAT_DROP ? "gone" : state);
	security_event("audit_storage", object, detail);
}

} /* namespace */

void
protection_event(ObjectAccessType access, Oid class_id, Oid object_id, int sub_id)
{
	if (sub_id != 0 || creating_extension ||
		(access != OAT_POST_CREATE && access != OAT_POST_ALTER && access != OAT_DROP))
		return;
	if (class_id == ProcedureRelationId)
		function_event(access, object_id);
	else if (class_id == TriggerRelationId)
		trigger_event(access, object_id);
}

} /* namespace audit */
} /* namespace rustydb */

/*
 * Statement trigger on the trail's tables: they change only through
 * rustydb (the worker's inserts bypass triggers; purges set
 * Session::purge_in_progress).
 */
RUSTYDB_FUNCTION(rustydb_audit_trail_guard)
{
	TriggerData *td = reinterpret_cast<TriggerData *>(fcinfo->context);

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
						errmsg("rustydb._audit_trail_guard() must be called as a trigger")));
	/*
	 * A logical replication worker applying another server's trail (a FOR
	 * ALL TABLES publication): its rows are skipped one by one, with a
	 * WARNING, by the REPLICA trigger every table of schema rustydb has
	 * (sql/install/60_replication.sql), so the subscription's initial copy
	 * and changes go through without touching this trail. A TRUNCATE is
	 * refused as from anyone.
	 */
	if (IsLogicalWorker() && !TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
		return PointerGetDatum(nullptr);
	if (!rustydb::audit::session().purge_in_progress && !creating_extension)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("the audit trail is append-only"),
				 errdetail("\"%s\" is changed only by the audit worker and "
						   "rustydb.purge_audit_trail().",
						   RelationGetRelationName(td->tg_relation)),
				 errhint("Use rustydb.purge_audit_trail() to remove old records.")));
	return PointerGetDatum(nullptr);
}

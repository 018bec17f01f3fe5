/*-------------------------------------------------------------------------
 *
 * api.cpp
 *	  VPD: the listeners of include/rustydb/vpd/vpd.h and the catalog API's C functions.
 *
 * Subscribers (the audit trail) register their listeners here from
 * _PG_init; the other VPD files report events through report_*(). The SQL
 * functions are the C side of the PL/pgSQL catalog API
 * (sql/install/30_vpd.sql): the marker functions' body, and the
 * invalidation each catalog change sends (for the table and its children,
 * or for application contexts), which also reports the change.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/common/boundary.h"
#include "rustydb/vpd/internal.h"
#include "rustydb/vpd/session.h"
#include "rustydb/vpd/vpd.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "catalog/namespace.h"
#include "catalog/pg_inherits.h"
#include "utils/acl.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/syscache.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace vpd {

void
report_policy_change(Oid relid, const char *action, const char *object)
{
	if (session().listeners.change)
	{
		PolicyChangeEvent ev;

		ev.relid = relid;
		ev.userid = GetUserId();
		ev.action = action;
		ev.object = object;
		session().listeners.change(&ev);
	}
}

void
report_exempt_access(Relation rel, CmdType cmd, int npolicies)
{
	if (session().listeners.exempt)
	{
		ExemptAccessEvent ev;

		ev.relid = RelationGetRelid(rel);
		ev.userid = GetUserId();
		ev.session_userid = GetSessionUserId();
		ev.command = cmd;
		ev.npolicies = npolicies;
		ev.reason = ExemptReason::kExemptRole;
		session().listeners.exempt(&ev);
	}
}

ExemptAccessListener
set_exempt_access_listener(ExemptAccessListener listener)
{
	ExemptAccessListener prev = session().listeners.exempt;

	session().listeners.exempt = listener;
	return prev;
}

PolicyChangeListener
set_policy_change_listener(PolicyChangeListener listener)
{
	PolicyChangeListener prev = session().listeners.change;

	session().listeners.change = listener;
	return prev;
}

} /* namespace vpd */
} /* namespace rustydb */

using namespace rustydb::vpd;

RUSTYDB_FUNCTION(rustydb_vpd_marker)
{
	PG_RETURN_BOOL(true);
}

static void
invalidate_policy_relation(FunctionCallInfo fcinfo, const char *default_action)
{
	Oid relid = PG_GETARG_OID(0);
	const char *action =
		PG_NARGS() > 2 && !PG_ARGISNULL(1) ? text_to_cstring(PG_GETARG_TEXT_PP(1)) : default_action;
	int objarg = PG_NARGS() > 2 ? 2 : 1;
	const char *object =
		PG_ARGISNULL(objarg) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(objarg));

	if (OidIsValid(relid))
	{
		List *rels;
		ListCell *lc;

		if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
			ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
							errmsg("relation with OID %u does not exist", relid)));
		if (!pg_class_ownercheck(relid, GetUserId()))
			ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
							errmsg("must be owner of table %s", get_rel_name(relid))));
		rels = find_all_inheritors(relid, NoLock, nullptr);
		foreach (lc, rels)
			CacheInvalidateRelcacheByRelid(lfirst_oid(lc));
	}
	else
	{
		Oid role = get_role_oid("rustydb_context_admin", true);
		Oid nsp = get_namespace_oid("rustydb", true);
		Oid ctxrel = OidIsValid(nsp) ? get_relname_relid("vpd_context", nsp) : InvalidOid;

		if (!superuser() && !(OidIsValid(role) && has_privs_of_role(GetUserId(), role)))
			ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
							errmsg("permission denied to change application contexts")));
		if (OidIsValid(ctxrel))
			CacheInvalidateRelcacheByRelid(ctxrel);
	}
	report_policy_change(relid, action, object);
}

RUSTYDB_FUNCTION(rustydb_vpd_invalidate)
{
	rustydb::require_argument(fcinfo, 0, "relid");
	invalidate_policy_relation(fcinfo, "change");
	PG_RETURN_VOID();
}

RUSTYDB_FUNCTION(rustydb_vpd_refresh)
{
	rustydb::require_argument(fcinfo, 0, "relid");
	invalidate_policy_relation(fcinfo, "refresh_policy");
	PG_RETURN_VOID();
}

/*-------------------------------------------------------------------------
 *
 * events.cpp
 *	  Other subsystems' security events, turned into audit records.
 *
 * VPD reports policy changes and exempt access through listeners (see
 * include/rustydb/vpd/vpd.h); this file subscribes to them. TDE calls
 * security_event() directly for its key management operations. Every one
 * of these records is written whatever the audit policies say.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/audit/audit.h"
#include "rustydb/audit/internal.h"
#include "rustydb/common/boundary.h"
#include "rustydb/pg.h"
#include "rustydb/vpd/vpd.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "utils/lsyscache.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace audit {

namespace {

vpd::ExemptAccessListener prev_exempt = nullptr;
vpd::PolicyChangeListener prev_change = nullptr;

/* "schema.table" of relid into buf, or the OID when it is gone. */
void
relation_label(Oid relid, char *buf, size_t len)
{
	char *rel = get_rel_name(relid);
	char *nsp = rel != nullptr ? get_namespace_name(get_rel_namespace(relid)) : nullptr;

	if (rel != nullptr && nsp != nullptr)
		snprintf(buf, len, "%s.%s", nsp, rel);
	else
		snprintf(buf, len, "relation %u", relid);
}

const char *
command_name(CmdType cmd)
{
	switch (cmd)
	{
		case CMD_SELECT:
			return "SELECT";
		case CMD_INSERT:
			return "INSERT";
		case CMD_UPDATE:
			return "UPDATE";
		case CMD_DELETE:
			return "DELETE";
		default:
			return "statement";
	}
}

} /* namespace */

} /* namespace audit */
} /* namespace rustydb */

/*
 * The listeners are called by VPD from inside its row-security hook and
 * its SQL API, where an ereport is allowed but a C++ exception is not: the
 * boundary turns security_event's exceptions (queue full under
 * audit_overflow = error, a cancel while waiting) into an ERROR, which
 * fails the statement (fail-closed).
 */
extern "C" {

static void
audit_exempt_access(const rustydb::vpd::ExemptAccessEvent *ev) noexcept
{
	rustydb::boundary::run("audit exempt-access listener", [&] {
		using namespace rustydb::audit;
		char object[kObjectLen];
		char detail[kDetailLen];

		relation_label(ev->relid, object, sizeof(object));
		snprintf(detail, sizeof(detail),
				 "%s with %d enabled VPD polic%s not applied: member of "
				 "rustydb_exempt_access_policy",
				 command_name(ev->command), ev->npolicies, ev->npolicies == 1 ? "y" : "ies");
		security_event("exempt_access", object, detail);
		if (prev_exempt != nullptr)
			prev_exempt(ev);
	});
}

static void
audit_policy_change(const rustydb::vpd::PolicyChangeEvent *ev) noexcept
{
	rustydb::boundary::run("audit policy-change listener", [&] {
		using namespace rustydb::audit;
		char object[kObjectLen];
		char detail[kDetailLen];

		if (OidIsValid(ev->relid))
		{
			char rel[kObjectLen];

			relation_label(ev->relid, rel, sizeof(rel));
			snprintf(object, sizeof(object), "%s", rel);
			snprintf(detail, sizeof(detail), "%s %s", ev->action,
					 ev->object != nullptr ? ev->object : "");
		}
		else
		{
			snprintf(object, sizeof(object), "%s", ev->object != nullptr ? ev->object : "");
			snprintf(detail, sizeof(detail), "%s", ev->action);
		}
		security_event("vpd_policy", object, detail);
		if (prev_change != nullptr)
			prev_change(ev);
	});
}

} /* extern "C" */

namespace rustydb {
namespace audit {

void
install_subsystem_listeners()
{
	prev_exempt = vpd::set_exempt_access_listener(audit_exempt_access);
	prev_change = vpd::set_policy_change_listener(audit_policy_change);
}

} /* namespace audit */
} /* namespace rustydb */

/*-------------------------------------------------------------------------
 *
 * vpd.h
 *	  Virtual Private Database: Oracle DBMS_RLS-style row policies,
 *	  application contexts and column masking (docs/vpd.md).
 *
 * This header is the subsystem's public face: its init function, and the
 * hook points other subsystems (the audit trail) subscribe to. rustydb's
 * VPD does not depend on any subscriber: with none registered, events are
 * simply not reported.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_VPD_VPD_H
#define RUSTYDB_VPD_VPD_H

#include "rustydb/pg.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "nodes/nodes.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace vpd {

/* Install the VPD hooks; called once from _PG_init. */
void init();

/*
 * ---- audit hook point: exempt access ----
 *
 * Reported when a role that is a member of rustydb_exempt_access_policy
 * accesses a table that has enabled VPD policies for the statement type,
 * so the policies were NOT applied. Reported while the statement is
 * rewritten (once per statement for simple queries; once per plan build
 * for cached plans, which is when the exemption decision is taken),
 * inside the backend's transaction. Superusers and BYPASSRLS roles never
 * reach rustydb's row-security hook, so their access is not reported here
 * (the audit subsystem audits superuser statements itself).
 *
 * A listener must not throw C++ exceptions; it may ereport(ERROR), which
 * fails the statement (fail-closed auditing). It must not run queries on
 * the protected table.
 */
enum class ExemptReason
{
	kExemptRole /* member of rustydb_exempt_access_policy */
};

struct ExemptAccessEvent
{
	Oid relid;          /* the protected table */
	Oid userid;         /* GetUserId() at rewrite time */
	Oid session_userid; /* GetSessionUserId() */
	CmdType command;    /* CMD_SELECT, CMD_INSERT, CMD_UPDATE, CMD_DELETE */
	int npolicies;      /* enabled policies that were not applied */
	ExemptReason reason;
};

using ExemptAccessListener = void (*)(const ExemptAccessEvent *event);

/*
 * Subscribe to exempt-access events. Returns the previous listener, which
 * the new listener must call in turn (the usual PostgreSQL hook chaining).
 * Call from _PG_init (or the subscriber's init) only.
 */
ExemptAccessListener set_exempt_access_listener(ExemptAccessListener listener);

/*
 * ---- audit hook point: policy changes ----
 *
 * Reported by every catalog change made through the SQL API (add_policy,
 * drop_policy, enable_policy, refresh_policy, alter_policy, policy groups,
 * driving contexts, create_context, drop_context), after the change was
 * written and before the API function returns, in the same transaction.
 * relid is InvalidOid for context changes; action is the API function's
 * name ("add_policy", "drop_context", ...); object is the policy, group,
 * driving context or namespace name.
 */
struct PolicyChangeEvent
{
	Oid relid;
	Oid userid;
	const char *action;
	const char *object;
};

using PolicyChangeListener = void (*)(const PolicyChangeEvent *event);

PolicyChangeListener set_policy_change_listener(PolicyChangeListener listener);

} /* namespace vpd */
} /* namespace rustydb */

#endif /* RUSTYDB_VPD_VPD_H */

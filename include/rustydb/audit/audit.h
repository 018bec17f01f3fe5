/*-------------------------------------------------------------------------
 *
 * audit.h
 *	  rustydb's audit trail: the API other subsystems call.
 *
 * Audit records are produced by audit policies (statements on tables,
 * DDL, role changes, function execution) and by security events, which
 * are always audited whatever the policies say. Subsystems report their
 * security events with security_event():
 *
 *	rustydb::audit::security_event("vpd_policy", "public.orders", "add policy p1");
 *	rustydb::audit::security_event("exempt_access", "public.orders", nullptr);
 *	rustydb::audit::security_event("key_rotation", "master key", "new version 3");
 *
 * The record carries the session's user, database, client and statement
 * like every other record, outcome "success", and is written to the trail
 * by the audit worker independently of the caller's transaction: it stays
 * even if the transaction rolls back (it records the attempt).
 *
 * security_event may block while the audit queue is full
 * (rustydb.audit_overflow = wait) and then raises an error if the query is
 * cancelled; with audit_overflow = error it raises an error when the queue
 * is full. Both come out as C++ exceptions (rustydb::Error or PgError), so
 * it is safe to call from any rustydb C++ code running under
 * boundary::run, with or without C++ objects alive.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_AUDIT_AUDIT_H
#define RUSTYDB_AUDIT_AUDIT_H

#include "rustydb/common/hooks.h"

namespace rustydb {
namespace audit {

/*
 * Record a security event. action: a short lower-case name
 * ("vpd_policy", "exempt_access", "key_rotation", ...), at most 23 bytes;
 * object: what it concerns (or nullptr); detail: free text (or nullptr).
 * Longer texts are truncated.
 */
void security_event(const char *action, const char *object, const char *detail);

/* Register shared memory, the worker and the hooks; from _PG_init. */
void init();

/*
 * Audit's steps of the executor, utility, object access and emit_log hooks
 * (src/audit/hooks.cpp), run outermost by src/common/hooks.cpp.
 */
void hook_executor_start(hooks::StartCall &call);
void hook_executor_run(hooks::RunCall &call);
void hook_executor_finish(hooks::FinishCall &call);
void hook_executor_end(hooks::EndCall &call);
void hook_process_utility(hooks::UtilityCall &call);
void hook_object_access(hooks::ObjectAccessCall &call);
void hook_emit_log(hooks::EmitLogCall &call);

} /* namespace audit */
} /* namespace rustydb */

#endif /* RUSTYDB_AUDIT_AUDIT_H */

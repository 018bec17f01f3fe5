/*-------------------------------------------------------------------------
 *
 * vpd_internal.h
 *	  Declarations shared by the VPD source files (not for other subsystems).
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_VPD_VPD_INTERNAL_H
#define RUSTYDB_VPD_VPD_INTERNAL_H

#include "rustydb/pg.h"

namespace rustydb {
namespace vpd {

/* Marker functions (rustydb._vpd_static/_context/_dynamic) */
enum MarkerKind
{
	kMarkerStatic = 0,
	kMarkerContext = 1,
	kMarkerDynamic = 2,
	kMarkerCount = 3
};

/* Marker flags (second argument) */
constexpr int kFlagSecCols = 1; /* policy has sec_relevant_cols */
constexpr int kFlagAllRows = 2; /* ... with sec_relevant_cols_opt all_rows */
constexpr int kFlagNoCheck = 4; /* update_check false: new rows are not checked */

/* OID of a marker function, or InvalidOid when the extension is absent. */
Oid marker_oid(MarkerKind kind);
/* Which marker an OID is, or -1. */
int marker_kind_of(Oid funcid);
/* Invalidate every cached plan that carries the given marker (this backend). */
void invalidate_marker_plans(MarkerKind kind);

/* ---- application contexts (vpd_context.cpp) ---- */
void context_init();
/* Load what the fmgr hooks need (trusted functions); call at statement start. */
void context_prepare();
/* Value of namespace.attribute set in this session, or nullptr. Lower-case names. */
const char *context_value(const char *ns, const char *attr);
/* Counter bumped whenever any context value changes. */
uint64 context_generation();
/* The user on whose behalf a policy function runs (USERENV policy_invoker). */
void set_policy_invoker(Oid userid);
Oid policy_invoker();

/* ---- policies (vpd_policy.cpp) ---- */
void policy_init();
/* Is there any enabled VPD policy or driving context on relid (or an ancestor)? */
bool relation_has_policies(Oid relid);
/*
 * Is row security active on relid for check_as (InvalidOid: the current
 * user), with VPD policies on it? (Exemption not checked.)
 */
bool relation_under_policies(Oid relid, Oid check_as);
/* Is the current user exempt from VPD policies? */
bool current_user_exempt();
/* Does the plan read a table with VPD policies, for a user not exempt from them? */
bool statement_under_policies(PlannedStmt *ps);

/* ---- EXPLAIN under policies (vpd_explain.cpp) ---- */
void explain_init();
/*
 * Around an EXPLAIN statement in the utility hook: explain_enter notes its
 * options (true when stmt is an EXPLAIN), explain_leave forgets them.
 */
bool explain_enter(Node *stmt);
void explain_leave();
/* From ExecutorStart: refuse an instrumented run of a plan under policies inside EXPLAIN. */
void explain_check_start(QueryDesc *query_desc);
/* Transaction end: no EXPLAIN is running. */
void explain_reset();

/* Listeners (vpd_policy.cpp) */
void report_policy_change(Oid relid, const char *action, const char *object);

/* Limits */
constexpr int kMaxNameLen = 128;    /* namespace and attribute names */
constexpr int kMaxValueLen = 4000;  /* context values, as Oracle */
constexpr int kMaxPredicate = 4000; /* predicate bytes without long_predicate */
constexpr int kMaxLongPredicate = 32767;

} /* namespace vpd */
} /* namespace rustydb */

#endif /* RUSTYDB_VPD_VPD_INTERNAL_H */

/*-------------------------------------------------------------------------
 *
 * internal.h
 *	  Declarations shared by the VPD source files (not for other subsystems).
 *
 * src/vpd, by concern (each file's header comment says what it owns):
 *
 *	session.cpp    the backend's one Session (include/rustydb/vpd/session.h)
 *	cache.cpp      the policy cache: each table's policies, read from
 *	               rustydb's catalog with a fresh snapshot, and its invalidation
 *	predicate.cpp  predicate evaluation: calling policy functions, the
 *	               predicate caches, parsing a predicate as one expression
 *	markers.cpp    the marker functions ANDed in front of every predicate
 *	rls.cpp        the policies returned to PostgreSQL's row-security hooks
 *	rewrite.cpp    plan rewriting before planning: sec_relevant_cols, all_rows
 *	               masking, view owners, collecting dynamic policies
 *	dynamic.cpp    dynamic policies re-evaluated at every execution
 *	utility.cpp    utility statements: index and row-security DDL, new children
 *	explain.cpp    EXPLAIN and auto_explain under policies
 *	context.cpp    application contexts and their SQL functions
 *	api.cpp        the listeners of include/rustydb/vpd/vpd.h and the SQL
 *	               functions behind the catalog API
 *	hooks.cpp      every PostgreSQL hook and callback, and their installation
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_VPD_INTERNAL_H
#define RUSTYDB_VPD_INTERNAL_H

#include "rustydb/pg.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "commands/explain.h"
#include "executor/execdesc.h"
#include "nodes/execnodes.h"
#include "nodes/parsenodes.h"
#include "nodes/plannodes.h"
#include "utils/relcache.h"
RUSTYDB_PG_INCLUDE_END

/* PostgreSQL's walkers take an untyped function pointer */
#define WALKER(fn) reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(fn))

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

/* Limits */
constexpr int kMaxNameLen = 128;    /* namespace and attribute names */
constexpr int kMaxValueLen = 4000;  /* context values, as Oracle */
constexpr int kMaxPredicate = 4000; /* predicate bytes without long_predicate */
constexpr int kMaxLongPredicate = 32767;

template <typename T>
T *
copy_node(const T *node)
{
	return static_cast<T *>(copyObjectImpl(node));
}

enum PolicyType
{
	kStatic,
	kSharedStatic,
	kContextSensitive,
	kSharedContextSensitive,
	kDynamic
};

/* One policy of a table, as loaded into the policy cache. */
struct Policy
{
	int32 id;
	char *name;
	char *group;
	Oid func;
	char *defschema; /* table the policy was added to (an ancestor for children) */
	char *defname;
	bool sel, ins, upd, del, idx;
	bool update_check;
	bool enabled;
	bool long_predicate;
	bool has_cols;
	bool all_rows;
	PolicyType type;
	int ncols;
	int16 *cols; /* attnums in THIS relation */
	int ndeps;
	char **dep_ns;
	char **dep_attr;
	MemoryContext mcxt; /* the table entry's: lives as long as this policy */
	bool finfo_valid;   /* finfo and owner looked up */
	Oid owner;
	FmgrInfo finfo; /* kept across calls so the function's own caches survive */
};

/* A table's policies, driving contexts and policy groups (its ancestors' included). */
struct RelEntry
{
	Oid relid; /* hash key */
	MemoryContext mcxt;
	bool any; /* any policy or driving context at all */
	int npol;
	Policy *pol;
	int ndrv;
	char **drv_ns;
	char **drv_attr;
	int ngroups;
	char **groups;
	bool stale; /* invalidated while in use: dropped when no longer pinned */
};

/* A marker-led qual (or WITH CHECK qual), decoded. */
struct MarkerInfo
{
	int32 id;
	int flags;
	int ncols;
	int16 *cols;
	Expr *pred; /* nullptr when the policy returned no predicate */
	int kind;   /* MarkerKind */
	FuncExpr *marker;
	const char *text; /* dynamic: predicate text (nullptr: none) */
	int64 stamp;      /* dynamic: exec_counter when it was computed */
};

/* Dynamic policies found in the query being planned (checked at each execution). */
struct DynamicItem
{
	int32 id;
	Oid relid;
	char *text;
	int64 stamp;
};

/* ---- the policy cache (cache.cpp) ---- */

/* Create the table cache and the predicate cache if they do not exist. */
void ensure_caches();
/* The table's entry, loaded if needed; may be a copy for this statement only. */
RelEntry *get_entry(Oid relid);
Policy *find_policy(RelEntry *e, int32 id);
/*
 * Around code that uses entries and may process invalidations (policy
 * functions run SQL): invalidations then mark entries stale instead of
 * freeing them. Unpin in PG_FINALLY; an abort resets the pin.
 */
void pin_policy_cache();
void unpin_policy_cache();
/* Relcache invalidation of relid (InvalidOid: all). */
void policy_cache_invalidate(Oid relid);
/* Drop (or, while pinned, mark stale) every table entry. */
void policy_cache_invalidate_all();
/* Is rustydb's policy catalog in this database? */
bool extension_present();
/* A policy (incl. an ancestor's) matching condition, read fresh from the catalog, or nullptr. */
char *catalog_policy_for(Oid relid, const char *condition);
/* Is there any enabled VPD policy or driving context on relid (or an ancestor)? */
bool relation_has_policies(Oid relid);
/*
 * Is row security active on relid for check_as (InvalidOid: the current
 * user), with VPD policies on it? (Exemption not checked.)
 */
bool relation_under_policies(Oid relid, Oid check_as);

/* ---- predicates (predicate.cpp) ---- */

void ensure_predicate_cache();
void reset_pred_cache();
/* Call the policy function as its owner; returns nullptr for NULL or ''. */
char *evaluate_policy(Policy *p, Relation rel);
/* The predicate text of a policy for this statement (cached by type), or nullptr for none. */
char *get_predicate(Policy *p, Relation rel);
/* Parse a predicate as exactly one boolean expression over rel's columns. */
Node *parse_predicate(Policy *p, Relation rel, const char *pred);
/* parse_predicate, remembering the result for the same policy, table and text. */
Node *parsed_predicate(Policy *p, Relation rel, const char *pred);

/* ---- markers (markers.cpp) ---- */

/* OID of a marker function, or InvalidOid when the extension is absent. */
Oid marker_oid(MarkerKind kind);
/* Which marker an OID is, or -1. */
int marker_kind_of(Oid funcid);
/* Invalidate every cached plan that carries the given marker (this backend). */
void invalidate_marker_plans(MarkerKind kind);
/* Is invalidate_marker_plans running (the pg_proc callback is ours)? */
bool invalidating_marker_plans();
/* pg_proc changed: look the marker functions up again at their next use. */
void forget_markers();
/* The marker call for a policy; dynamic markers also carry pred and the statement counter. */
Expr *make_marker(MarkerKind kind, int32 id, int flags, int ncols, const int16 *cols,
				  const char *pred = nullptr);
MarkerKind marker_for(PolicyType t);
/* If qual is one of our marker-led quals, describe it. */
bool decode_qual(Node *qual, MarkerInfo *mi);

/* ---- row-security policies (rls.cpp) ---- */

/* Restrictive policies for the row-security hook (the cache pinned meanwhile). */
List *restrictive_policies(CmdType cmd, Relation rel);
/* Permissive policies for the row-security hook. */
List *permissive_policies(CmdType cmd, Relation rel);
/* Is the current user exempt from VPD policies? */
bool current_user_exempt();

/* ---- plan rewriting (rewrite.cpp) ---- */

/*
 * Before planning: drop the policies whose sec_relevant_cols the statement
 * does not touch, mask all_rows columns, refuse views owned by roles that
 * bypass row security, and collect the dynamic policies of the query
 * (Session::Statement::collected_dynamic).
 */
void rewrite_for_policies(Query *parse);

/* ---- dynamic policies (dynamic.cpp) ---- */

/* Remember the dynamic policies of a new plan. copy: the query before planning. */
void register_plan(PlannedStmt *ps, List *items, MemoryContext copyctx, Query *copy,
				   const char *query_string, int cursor_options);
/* At ExecutorStart: evaluate the plan's dynamic policies; re-plan if one changed. */
void recheck_dynamic_policies(QueryDesc *qd);

/* ---- utility statements (utility.cpp) ---- */

/* Refuse CREATE INDEX under index policies and turning row security off under policies. */
void check_utility(Node *stmt);
/* Does the statement create or attach a partition or inheritance child? */
bool creates_child(Node *stmt);
/* Switch row security on for new children of protected tables. */
void protect_new_children();

/* ---- EXPLAIN under policies (explain.cpp) ---- */

/*
 * Around an EXPLAIN statement in the utility hook: explain_enter notes its
 * options (true when stmt is an EXPLAIN), explain_leave forgets them.
 */
bool explain_enter(Node *stmt);
void explain_leave();
/* From ExecutorStart: refuse an instrumented run of a plan under policies inside EXPLAIN. */
void explain_check_start(QueryDesc *query_desc);
/* PostgreSQL's ExplainOneQuery, with the plan checked before it is shown. */
void explain_one_query(Query *query, int cursor_options, IntoClause *into, ExplainState *es,
					   const char *query_string, ParamListInfo params, QueryEnvironment *query_env);
/* From ExecutorFinish: zero auto_explain's "Rows Removed" counts of a plan under policies. */
void hide_filtered_counts(QueryDesc *query_desc);
/* Does the plan read a table with VPD policies, for a user not exempt from them? */
bool statement_under_policies(PlannedStmt *ps);

/* ---- application contexts (context.cpp) ---- */

/* Load what the fmgr hooks need (trusted functions); call at statement start. */
void context_prepare();
/* Value of namespace.attribute set in this session, or nullptr. Lower-case names. */
const char *context_value(const char *ns, const char *attr);
/* Counter bumped whenever any context value changes. */
uint64 context_generation();
/* The user on whose behalf a policy function runs (USERENV policy_invoker). */
void set_policy_invoker(Oid userid);
Oid policy_invoker();
/* For needs_fmgr_hook: is fn a namespace's trusted function? (No catalog access.) */
bool is_trusted_function(Oid fn);
/* For fmgr_hook: a function with our fmgr hook starts or ends. */
void trusted_function_event(FmgrHookEventType event, Oid fn);
/* Relcache invalidation of relid (InvalidOid: all): reload the trusted functions if needed. */
void context_relcache_invalidated(Oid relid);

/* ---- listeners (api.cpp) ---- */

void report_policy_change(Oid relid, const char *action, const char *object);
/* An exempt role accessed rel, which has npolicies enabled policies for cmd. */
void report_exempt_access(Relation rel, CmdType cmd, int npolicies);

} /* namespace vpd */
} /* namespace rustydb */

#endif /* RUSTYDB_VPD_INTERNAL_H */

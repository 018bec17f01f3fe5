/*-------------------------------------------------------------------------
 *
 * session.h
 *	  VPD: all of a backend's mutable VPD state, in one struct.
 *
 * Every cache, counter, stack and flag that VPD keeps between two calls
 * lives in the one Session of this backend, reached through session().
 * Each group of fields names the src/vpd file that owns it; other files
 * use a group only through its owner's functions
 * (include/rustydb/vpd/internal.h). The exceptions: the Statement group,
 * which several files share as its comment says; the "rustydb vpd" memory
 * context, shared by the policy cache and the dynamic plans; and
 * session_abort(), which resets every group. The hook chain (the hooks
 * VPD's call in turn) is not session state: src/vpd/hooks.cpp keeps it.
 *
 * Lifetime: the struct is a static object, initialised with the defaults
 * below before _PG_init runs; session_init() creates its memory contexts
 * from _PG_init, and session_abort() resets what a failed statement may
 * leave behind. Nothing in it is shared with other backends.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_VPD_SESSION_H
#define RUSTYDB_VPD_SESSION_H

#include "rustydb/pg.h"
#include "rustydb/vpd/internal.h"
#include "rustydb/vpd/vpd.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "nodes/pg_list.h"
#include "utils/hsearch.h"
#include "utils/palloc.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace vpd {

/* Policy functions of different tables evaluated inside one another, at most. */
constexpr int kEvalMax = 16;
/* Trusted functions on the call stack that are remembered (deeper ones are counted only). */
constexpr int kActiveMax = 256;
/* EXPLAIN statements inside one another whose options are remembered. */
constexpr int kExplainMaxNesting = 16;

/* A context namespace's trusted function (rustydb.vpd_context). */
struct TrustedFunction
{
	char ns[kMaxNameLen + 1];
	Oid func;
};

/* The options of one running EXPLAIN statement. */
struct ExplainOptions
{
	bool analyze;
	bool buffers;
	bool costs;
};

struct Session
{
	/*
	 * "rustydb vpd", created by session_init(): the policy cache's table
	 * entries (one child context each) and the dynamic plan entries.
	 */
	MemoryContext mcxt = nullptr;

	/* ---- the policy cache: each table's policies (cache.cpp) ---- */
	struct PolicyCache
	{
		HTAB *tables = nullptr; /* RelEntry by table OID, at most vpd_cache_entries */
		/*
		 * While > 0, entries are in use by a hook (policy functions run SQL,
		 * which processes invalidations): invalidations then mark entries
		 * stale instead of freeing them.
		 */
		int pin_depth = 0;
		uint64 inval_counter = 0; /* bumped by every relcache invalidation */
	} cache;

	/* ---- policy function results and parsed predicates (predicate.cpp) ---- */
	struct Predicates
	{
		/* "rustydb vpd predicates": both hashes, reset as a whole */
		MemoryContext mcxt = nullptr;
		HTAB *results = nullptr; /* PredEntry: a policy function's result */
		HTAB *parsed = nullptr;  /* ExprEntry: a predicate parsed for a table */
		/* tables whose policy functions are being evaluated (recursion guard) */
		Oid eval_stack[kEvalMax] = {};
		int eval_depth = 0;
	} pred;

	/*
	 * ---- the statement being analysed, planned or started ----
	 * exec_counter is advanced by the statement hooks (hooks.cpp); the
	 * seen_* flags are set where policies are applied (rls.cpp, markers.cpp);
	 * collected_dynamic is filled by rewrite.cpp inside the planner hook,
	 * which saves and restores it around nested planning.
	 */
	struct Statement
	{
		/*
		 * Bumped by every ExecutorStart, parse analysis and utility
		 * statement: a dynamic predicate stamped with the current value was
		 * computed for the statement now starting, so its first execution
		 * need not evaluate it again.
		 */
		int64 exec_counter = 1;
		bool seen_dynamic = false;     /* a dynamic policy was ever applied in this session */
		bool seen_sec_cols = false;    /* a policy with sec_relevant_cols was ever applied */
		List *collected_dynamic = NIL; /* DynamicItem: the plan being built's dynamic policies */
	} stmt;

	/* ---- the marker functions rustydb._vpd_static/_context/_dynamic (markers.cpp) ---- */
	struct Markers
	{
		Oid oid[kMarkerCount] = {};
		uint32 hash[kMarkerCount] = {}; /* their PROCOID syscache hash values */
		bool valid = false;             /* oid[] looked up since the last pg_proc change */
		bool firing = false;            /* invalidating marker plans: ignore our own callback */
	} markers;

	/* ---- cached plans that use dynamic policies (dynamic.cpp) ---- */
	struct DynamicPlans
	{
		HTAB *map = nullptr; /* PlanEntry by the key in the plan's sentinel */
		uint32 key_counter = 0;
		int unowned = 0; /* entries not yet tied to their plan's memory */
	} plans;

	/* ---- application contexts (context.cpp) ---- */
	struct Contexts
	{
		MemoryContext mcxt = nullptr; /* "rustydb vpd contexts" */
		HTAB *values = nullptr;       /* CtxEntry by namespace and attribute */
		uint64 generation = 0;        /* bumped whenever any value changes */
		Oid invoker = InvalidOid;     /* USERENV policy_invoker */
		/* trusted functions, loaded from rustydb.vpd_context */
		TrustedFunction *trusted = nullptr;
		int ntrusted = 0;
		int trusted_cap = 0;
		bool trusted_valid = false;
		bool loading_trusted = false;
		Oid context_relid = InvalidOid; /* rustydb.vpd_context */
		/* functions with fmgr hooks currently executing (innermost last) */
		Oid active[kActiveMax] = {};
		int active_depth = 0; /* may exceed kActiveMax: deeper entries are not stored */
	} contexts;

	/* ---- the EXPLAIN statements running in this backend, innermost last (explain.cpp) ---- */
	struct Explains
	{
		ExplainOptions stack[kExplainMaxNesting] = {};
		int depth = 0; /* may exceed kExplainMaxNesting */
	} explain;

	/* ---- subscribers to VPD's events, include/rustydb/vpd/vpd.h (api.cpp) ---- */
	struct Listeners
	{
		ExemptAccessListener exempt = nullptr;
		PolicyChangeListener change = nullptr;
	} listeners;
};

/* This backend's VPD state. */
Session &session();

/* Create the session's memory contexts; called once from _PG_init. */
void session_init();

/*
 * The transaction aborted (XACT_EVENT_ABORT or XACT_EVENT_PARALLEL_ABORT):
 * reset the stacks, pins and flags a failed statement may have left set.
 */
void session_abort();

} /* namespace vpd */
} /* namespace rustydb */

#endif /* RUSTYDB_VPD_SESSION_H */

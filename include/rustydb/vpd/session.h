/*-------------------------------------------------------------------------
 *
 * session.h
 *	  VPD: all of a backend's mutable VPD state, in one struct.
 *
 * Every cache, counter, stack and flag that VPD keeps between two calls
 * lives in the one Session of this backend, reached through session().
 * Each group of fields names the file that owns it; other files read it
 * only through that file's functions (include/rustydb/vpd/internal.h),
 * with a few documented exceptions (the statement counters, which the
 * hooks advance). The hook chain (the previous hooks rustydb calls in
 * turn) is not session state: src/vpd/hooks.cpp keeps it.
 *
 * Lifetime: the struct is a static object, zero-initialised with the
 * defaults below; session_init() creates its memory contexts from
 * _PG_init. Nothing in it is shared with other backends.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_VPD_SESSION_H
#define RUSTYDB_VPD_SESSION_H

#include "rustydb/pg.h"
#include "rustydb/vpd/vpd.h"
#include "rustydb/vpd/vpd_internal.h"

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
	/* ---- the table cache: each table's policies (policy cache) ---- */
	struct PolicyCache
	{
		/* "rustydb vpd": table entries (one child context each), dynamic plan entries */
		MemoryContext mcxt = nullptr;
		HTAB *tables = nullptr; /* RelEntry by table OID, at most vpd_cache_entries */
		/*
		 * While > 0, entries are in use by a hook (policy functions run SQL,
		 * which processes invalidations): invalidations then mark entries
		 * stale instead of freeing them.
		 */
		int pin_depth = 0;
		uint64 inval_counter = 0; /* bumped by every relcache invalidation */
	} cache;

	/* ---- predicates: policy function results and parsed predicates ---- */
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

	/* ---- the statement being analysed, planned or started ---- */
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

	/* ---- the marker functions rustydb._vpd_static/_context/_dynamic ---- */
	struct Markers
	{
		Oid oid[kMarkerCount] = {};
		uint32 hash[kMarkerCount] = {}; /* their PROCOID syscache hash values */
		bool valid = false;             /* oid[] looked up since the last pg_proc change */
		bool firing = false;            /* invalidating marker plans: ignore our own callback */
	} markers;

	/* ---- cached plans that use dynamic policies ---- */
	struct DynamicPlans
	{
		HTAB *map = nullptr; /* PlanEntry by the key in the plan's sentinel */
		uint32 key_counter = 0;
		int unowned = 0; /* entries not yet tied to their plan's memory */
	} plans;

	/* ---- application contexts ---- */
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

	/* ---- the EXPLAIN statements running in this backend, innermost last ---- */
	struct Explains
	{
		ExplainOptions stack[kExplainMaxNesting] = {};
		int depth = 0; /* may exceed kExplainMaxNesting */
	} explain;

	/* ---- subscribers to VPD's events (include/rustydb/vpd/vpd.h) ---- */
	struct Listeners
	{
		ExemptAccessListener exempt = nullptr;
		PolicyChangeListener change = nullptr;
	} listeners;
};

/* This backend's VPD state. */
Session &session();

} /* namespace vpd */
} /* namespace rustydb */

#endif /* RUSTYDB_VPD_SESSION_H */

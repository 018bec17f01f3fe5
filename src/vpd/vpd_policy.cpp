/*-------------------------------------------------------------------------
 *
 * vpd_policy.cpp
 *	  VPD row policies on PostgreSQL's row-security machinery.
 *
 * Mechanism (docs/vpd.md, "How it works"):
 *
 *	- add_policy switches row security on (ENABLE + FORCE) for the table and
 *	  its partitions/children, so PostgreSQL calls the row-security policy
 *	  hooks for every statement on it, for every role that does not bypass
 *	  row security (superusers and BYPASSRLS roles do, like Oracle's SYS).
 *	- The restrictive hook returns one restrictive policy per applicable VPD
 *	  policy: the predicate returned by the policy function, parsed as a
 *	  single SQL expression over the table's columns, ANDed behind a marker
 *	  function call (rustydb._vpd_static/_context/_dynamic) that the planner
 *	  constant-folds away. The permissive hook adds one "true" policy so the
 *	  restrictive ones do not deny everything (unless the table has native
 *	  permissive policies of its own).
 *	- Cached plans: the marker puts a PROCOID dependency in every cached
 *	  query that uses a policy. A context change invalidates (locally) the
 *	  cached plans carrying the context marker; a dynamic policy's use
 *	  invalidates the plans carrying the dynamic marker before the next
 *	  statement, so each execution re-evaluates it; policy changes and
 *	  refresh_policy send a relcache invalidation for the table to every
 *	  backend.
 *	- The planner hook applies sec_relevant_cols (a policy applies only if
 *	  the statement references one of its columns) and all_rows column
 *	  masking (the columns become CASE WHEN predicate THEN column END and
 *	  the rows are not filtered), and refuses access through views whose
 *	  owner bypasses row security.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/common/boundary.h"
#include "rustydb/common/settings.h"
#include "rustydb/vpd/session.h"
#include "rustydb/vpd/vpd_internal.h"
#include "rustydb/vpd/vpd.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "optimizer/planner.h"
#include "parser/analyze.h"
#include "parser/parse_clause.h"
#include "parser/parse_collate.h"
#include "parser/parse_func.h"
#include "parser/parse_node.h"
#include "parser/parse_relation.h"
#include "parser/parser.h"
#include "parser/parsetree.h"
#include "rewrite/rewriteManip.h"
#include "rewrite/rowsecurity.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/plancache.h"
#include "utils/rel.h"
#include "utils/regproc.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
RUSTYDB_PG_INCLUDE_END

/* PostgreSQL's walkers take an untyped function pointer */
#define WALKER(fn) reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(fn))

/* Callbacks PostgreSQL calls (walkers, masks, memory context resets) */
extern "C" {
static bool vpd_walk_queries(Node *node, void *context) noexcept;
static bool vpd_replace_walker(Node *node, void *context) noexcept;
static bool vpd_zero_filtered(PlanState *ps, void *context) noexcept;
static Node *vpd_mask_callback(Var *var, replace_rte_variables_context *context) noexcept;
static void vpd_plan_context_reset(void *arg) noexcept;
}

namespace rustydb {
namespace vpd {
namespace {

template <typename T>
T *
copy_node(const T *node)
{
	return static_cast<T *>(copyObjectImpl(node));
}

int
relation_natts(Oid relid)
{
	HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	int n;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	n = reinterpret_cast<Form_pg_class>(GETSTRUCT(tup))->relnatts;
	ReleaseSysCache(tup);
	return n;
}

enum PolicyType
{
	kStatic,
	kSharedStatic,
	kContextSensitive,
	kSharedContextSensitive,
	kDynamic
};

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

struct PredKey
{
	int32 kind; /* 0: per policy (id), 1: shared by function (id = function OID) */
	int32 type;
	uint32 id;
};

struct PredEntry
{
	PredKey key;
	bool isnull;
	char *pred;
	char *snapshot;
};

row_security_policy_hook_type prev_permissive = nullptr;
row_security_policy_hook_type prev_restrictive = nullptr;
planner_hook_type prev_planner = nullptr;
post_parse_analyze_hook_type prev_post_parse = nullptr;
ProcessUtility_hook_type prev_utility = nullptr;
ExecutorFinish_hook_type prev_finish = nullptr;
ExecutorStart_hook_type prev_start = nullptr;

const char *const kMarkerNames[kMarkerCount] = {"_vpd_static", "_vpd_context", "_vpd_dynamic"};

/* ---- caches ---- */

/* Parsed predicates, by policy and table, with the text they were parsed from. */
struct ExprKey
{
	int32 id;
	Oid relid;
};

struct ExprEntry
{
	ExprKey key;
	MemoryContext cxt; /* holds text and expr */
	char *text;
	Node *expr;
};

void
reset_pred_cache()
{
	if (session().pred.results)
	{
		hash_destroy(session().pred.results);
		session().pred.results = nullptr;
	}
	if (session().pred.parsed)
	{
		hash_destroy(session().pred.parsed);
		session().pred.parsed = nullptr;
	}
	MemoryContextReset(session().pred.mcxt);
}

void
ensure_caches()
{
	HASHCTL ctl;

	if (session().cache.tables == nullptr)
	{
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(RelEntry);
		ctl.hcxt = session().cache.mcxt;
		session().cache.tables =
			hash_create("rustydb vpd tables", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	if (session().pred.results == nullptr)
	{
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(PredKey);
		ctl.entrysize = sizeof(PredEntry);
		ctl.hcxt = session().pred.mcxt;
		session().pred.results =
			hash_create("rustydb vpd predicates", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
}

void
drop_rel_entry(RelEntry *e)
{
	Oid relid = e->relid;

	if (e->mcxt)
		MemoryContextDelete(e->mcxt);
	hash_search(session().cache.tables, &relid, HASH_REMOVE, nullptr);
}

void
reset_rel_cache()
{
	HASH_SEQ_STATUS st;
	RelEntry *e;

	if (session().cache.tables == nullptr)
		return;
	hash_seq_init(&st, session().cache.tables);
	while ((e = static_cast<RelEntry *>(hash_seq_search(&st))) != nullptr)
		drop_rel_entry(e);
}

void
mark_all_stale()
{
	HASH_SEQ_STATUS st;
	RelEntry *e;

	hash_seq_init(&st, session().cache.tables);
	while ((e = static_cast<RelEntry *>(hash_seq_search(&st))) != nullptr)
		e->stale = true;
}

void
relcache_callback(Oid relid)
{
	session().cache.inval_counter++;
	if (session().cache.tables == nullptr)
		return;
	if (!OidIsValid(relid))
	{
		if (session().cache.pin_depth > 0)
			mark_all_stale();
		else
			reset_rel_cache();
		reset_pred_cache();
		return;
	}
	RelEntry *e =
		static_cast<RelEntry *>(hash_search(session().cache.tables, &relid, HASH_FIND, nullptr));
	if (e)
	{
		bool any = e->any;

		if (session().cache.pin_depth > 0)
			e->stale = true;
		else
			drop_rel_entry(e);
		if (any)
			reset_pred_cache();
	}
}

/* Run a catalog query as the bootstrap superuser with search_path pg_catalog. */
struct AsCatalogReader
{
	Oid save_uid;
	int save_sec;
	int nest;
};

void
begin_catalog_read(AsCatalogReader *s)
{
	GetUserIdAndSecContext(&s->save_uid, &s->save_sec);
	s->nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, s->save_sec | SECURITY_LOCAL_USERID_CHANGE);
}

void
end_catalog_read(AsCatalogReader *s)
{
	SetUserIdAndSecContext(s->save_uid, s->save_sec);
	AtEOXact_GUC(true, s->nest);
}

/*
 * Run a read-only query over rustydb's policy catalogs (inside SPI) with a
 * snapshot taken now, not the transaction's: a REPEATABLE READ or
 * SERIALIZABLE transaction that began before a policy change must still
 * load the change once its invalidation has arrived, or the stale result
 * would be cached past the transaction's end (issue 18).
 */
int
exec_catalog_query(const char *sql, int nargs, Oid *argtypes, Datum *args, long tcount)
{
	SPIPlanPtr plan = SPI_prepare(sql, nargs, argtypes);
	if (plan == nullptr)
		elog(ERROR, "could not prepare a rustydb policy catalog query: %s",
			 SPI_result_code_string(SPI_result));
	int rc = SPI_execute_snapshot(plan, args, nullptr, GetLatestSnapshot(), InvalidSnapshot, true,
								  false, tcount);
	SPI_freeplan(plan);
	return rc;
}

bool
extension_present()
{
	Oid nsp = get_namespace_oid("rustydb", true);

	return OidIsValid(nsp) && OidIsValid(get_relname_relid("vpd_policy", nsp));
}

const char *const kAncestors =
	"WITH RECURSIVE anc(relid, depth) AS ("
	" SELECT $1::oid, 0 UNION ALL"
	" SELECT i.inhparent, a.depth + 1 FROM pg_inherits i JOIN anc a ON i.inhrelid = a.relid"
	" WHERE a.depth < 64) ";

char *
copy_text(MemoryContext mcxt, HeapTuple tup, TupleDesc desc, int col)
{
	bool isnull;
	Datum d = SPI_getbinval(tup, desc, col, &isnull);
	char *s;
	char *r;

	if (isnull)
		return nullptr;
	s = TextDatumGetCString(d);
	r = MemoryContextStrdup(mcxt, s);
	pfree(s);
	return r;
}

bool
get_bool(HeapTuple tup, TupleDesc desc, int col)
{
	bool isnull;
	Datum d = SPI_getbinval(tup, desc, col, &isnull);

	return !isnull && DatumGetBool(d);
}

PolicyType
parse_type(const char *s)
{
	if (strcmp(s, "STATIC") == 0)
		return kStatic;
	if (strcmp(s, "SHARED_STATIC") == 0)
		return kSharedStatic;
	if (strcmp(s, "CONTEXT_SENSITIVE") == 0)
		return kContextSensitive;
	if (strcmp(s, "SHARED_CONTEXT_SENSITIVE") == 0)
		return kSharedContextSensitive;
	return kDynamic;
}

void
load_entry(RelEntry *e)
{
	AsCatalogReader reader;
	Oid argtypes[1] = {OIDOID};
	Datum args[1] = {ObjectIdGetDatum(e->relid)};
	char *sql;
	MemoryContext m = e->mcxt;

	e->any = false;
	e->npol = 0;
	e->ndrv = 0;
	e->ngroups = 0;
	if (!extension_present())
		return;

	begin_catalog_read(&reader);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	sql =
		psprintf("%s SELECT p.id, p.policy_group::text, p.policy_name::text, p.func,"
				 " p.sel, p.ins, p.upd, p.del, p.idx, p.update_check, p.enable, p.policy_type,"
				 " p.long_predicate, p.all_rows, n.nspname::text, c.relname::text,"
				 " p.sec_relevant_cols IS NOT NULL,"
				 " (SELECT array_agg(a.attnum ORDER BY a.attnum) FROM pg_attribute a"
				 "   WHERE a.attrelid = $1 AND a.attname = ANY (p.sec_relevant_cols)"
				 "   AND NOT a.attisdropped)::int2[],"
				 " (SELECT array_agg(pa.namespace || chr(1) || pa.attribute)"
				 "   FROM rustydb.vpd_policy_attribute pa WHERE pa.policy_id = p.id)"
				 " FROM rustydb.vpd_policy p JOIN anc ON p.relid = anc.relid"
				 " JOIN pg_class c ON c.oid = p.relid JOIN pg_namespace n ON n.oid = c.relnamespace"
				 " ORDER BY p.policy_name, p.id",
				 kAncestors);
	if (exec_catalog_query(sql, 1, argtypes, args, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read rustydb.vpd_policy");
	if (SPI_processed > 0)
	{
		TupleDesc desc = SPI_tuptable->tupdesc;

		e->npol = static_cast<int>(SPI_processed);
		e->pol = static_cast<Policy *>(MemoryContextAllocZero(m, sizeof(Policy) * e->npol));
		for (int i = 0; i < e->npol; i++)
		{
			HeapTuple tup = SPI_tuptable->vals[i];
			Policy *p = &e->pol[i];
			bool isnull;
			char *type;
			Datum d;

			p->mcxt = m;
			p->id = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
			p->group = copy_text(m, tup, desc, 2);
			p->name = copy_text(m, tup, desc, 3);
			p->func = DatumGetObjectId(SPI_getbinval(tup, desc, 4, &isnull));
			p->sel = get_bool(tup, desc, 5);
			p->ins = get_bool(tup, desc, 6);
			p->upd = get_bool(tup, desc, 7);
			p->del = get_bool(tup, desc, 8);
			p->idx = get_bool(tup, desc, 9);
			p->update_check = get_bool(tup, desc, 10);
			p->enabled = get_bool(tup, desc, 11);
			type = copy_text(m, tup, desc, 12);
			p->type = parse_type(type);
			p->long_predicate = get_bool(tup, desc, 13);
			p->all_rows = get_bool(tup, desc, 14);
			p->defschema = copy_text(m, tup, desc, 15);
			p->defname = copy_text(m, tup, desc, 16);
			p->has_cols = get_bool(tup, desc, 17);
			d = SPI_getbinval(tup, desc, 18, &isnull);
			if (!isnull)
			{
				ArrayType *arr = DatumGetArrayTypeP(d);
				Datum *elems;
				bool *nulls;
				int n;

				deconstruct_array(arr, INT2OID, 2, true, TYPALIGN_SHORT, &elems, &nulls, &n);
				p->cols = static_cast<int16 *>(MemoryContextAllocZero(m, sizeof(int16) * (n + 1)));
				for (int k = 0; k < n; k++)
					p->cols[k] = DatumGetInt16(elems[k]);
				p->ncols = n;
			}
			d = SPI_getbinval(tup, desc, 19, &isnull);
			if (!isnull)
			{
				ArrayType *arr = DatumGetArrayTypeP(d);
				Datum *elems;
				bool *nulls;
				int n;

				deconstruct_array(arr, TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
				p->dep_ns =
					static_cast<char **>(MemoryContextAllocZero(m, sizeof(char *) * (n + 1)));
				p->dep_attr =
					static_cast<char **>(MemoryContextAllocZero(m, sizeof(char *) * (n + 1)));
				for (int k = 0; k < n; k++)
				{
					char *s = MemoryContextStrdup(m, TextDatumGetCString(elems[k]));
					char *sep = strchr(s, '\x01');

					if (sep)
						*sep++ = '\0';
					p->dep_ns[k] = s;
					p->dep_attr[k] = sep ? sep : s + strlen(s);
				}
				p->ndeps = n;
			}
		}
		e->any = true;
	}

	sql =
		psprintf("%s SELECT 'd', d.namespace, d.attribute FROM rustydb.vpd_driving_context d"
				 " JOIN anc ON d.relid = anc.relid"
				 " UNION ALL SELECT 'g', g.policy_group::text, NULL FROM rustydb.vpd_policy_group g"
				 " JOIN anc ON g.relid = anc.relid",
				 kAncestors);
	if (exec_catalog_query(sql, 1, argtypes, args, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read rustydb.vpd_driving_context");
	if (SPI_processed > 0)
	{
		TupleDesc desc = SPI_tuptable->tupdesc;
		int n = static_cast<int>(SPI_processed);

		e->drv_ns = static_cast<char **>(MemoryContextAllocZero(m, sizeof(char *) * n));
		e->drv_attr = static_cast<char **>(MemoryContextAllocZero(m, sizeof(char *) * n));
		e->groups = static_cast<char **>(MemoryContextAllocZero(m, sizeof(char *) * n));
		for (int i = 0; i < n; i++)
		{
			HeapTuple tup = SPI_tuptable->vals[i];
			char *kind = copy_text(CurrentMemoryContext, tup, desc, 1);

			if (kind[0] == 'd')
			{
				e->drv_ns[e->ndrv] = copy_text(m, tup, desc, 2);
				e->drv_attr[e->ndrv] = copy_text(m, tup, desc, 3);
				e->ndrv++;
				e->any = true;
			}
			else
				e->groups[e->ngroups++] = copy_text(m, tup, desc, 2);
		}
	}
	SPI_finish();
	end_catalog_read(&reader);
}

RelEntry *
get_entry(Oid relid)
{
	RelEntry *e;
	RelEntry tmp;
	bool found;
	uint64 before = session().cache.inval_counter;

	ensure_caches();
	e = static_cast<RelEntry *>(hash_search(session().cache.tables, &relid, HASH_FIND, nullptr));
	if (e && !(e->stale && session().cache.pin_depth == 0))
		return e;
	if (e)
		drop_rel_entry(e);

	/* load outside the hash: invalidations may arrive while loading */
	memset(&tmp, 0, sizeof(tmp));
	tmp.relid = relid;
	tmp.mcxt =
		AllocSetContextCreate(session().cache.mcxt, "rustydb vpd table", ALLOCSET_SMALL_SIZES);
	PG_TRY();
	{
		load_entry(&tmp);
	}
	PG_CATCH();
	{
		MemoryContextDelete(tmp.mcxt);
		PG_RE_THROW();
	}
	PG_END_TRY();

	if (session().cache.inval_counter != before ||
		(session().cache.pin_depth > 0 &&
		 hash_get_num_entries(session().cache.tables) >= rustydb::settings::vpd_cache_entries))
	{
		/* use it for this statement only */
		RelEntry *copy = static_cast<RelEntry *>(palloc(sizeof(RelEntry)));

		MemoryContextSetParent(tmp.mcxt, CurrentMemoryContext);
		*copy = tmp;
		copy->stale = true;
		return copy;
	}
	if (hash_get_num_entries(session().cache.tables) >= rustydb::settings::vpd_cache_entries)
	{
		reset_rel_cache();
		reset_pred_cache();
		ensure_caches();
	}
	e = static_cast<RelEntry *>(hash_search(session().cache.tables, &relid, HASH_ENTER, &found));
	*e = tmp;
	return e;
}

/* ---- markers ---- */

void
load_markers()
{
	Oid argtypes[5] = {INT4OID, INT4OID, INT2ARRAYOID, TEXTOID, INT8OID};

	for (int k = 0; k < kMarkerCount; k++)
	{
		session().markers.oid[k] = InvalidOid;
		session().markers.hash[k] = 0;
	}
	if (!IsTransactionState() || !OidIsValid(get_namespace_oid("rustydb", true)))
		return;
	for (int k = 0; k < kMarkerCount; k++)
	{
		List *name =
			list_make2(makeString(pstrdup("rustydb")), makeString(pstrdup(kMarkerNames[k])));

		session().markers.oid[k] =
			LookupFuncName(name, k == kMarkerDynamic ? 5 : 3, argtypes, true);
		if (OidIsValid(session().markers.oid[k]))
			session().markers.hash[k] =
				GetSysCacheHashValue1(PROCOID, ObjectIdGetDatum(session().markers.oid[k]));
	}
	session().markers.valid = OidIsValid(session().markers.oid[0]);
}

/* ---- predicate evaluation ---- */

bool
cancel_like(int sqlerrcode)
{
	return sqlerrcode == ERRCODE_QUERY_CANCELED || sqlerrcode == ERRCODE_ADMIN_SHUTDOWN ||
		   ERRCODE_TO_CATEGORY(sqlerrcode) == ERRCODE_INSUFFICIENT_RESOURCES ||
		   ERRCODE_TO_CATEGORY(sqlerrcode) == ERRCODE_OPERATOR_INTERVENTION;
}

void
set_policy_search_path(Policy *p)
{
	char *fschema = get_namespace_name(get_func_namespace(p->func));
	char *path;

	path = psprintf("pg_catalog, %s%s%s", quote_identifier(p->defschema), fschema ? ", " : "",
					fschema ? quote_identifier(fschema) : "");
	(void) set_config_option("search_path", path, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true,
							 0, false);
}

bool
may_see_details(Relation rel)
{
	return superuser() || pg_class_ownercheck(RelationGetRelid(rel), GetUserId());
}

/* Call the policy function as its owner; returns nullptr for NULL or ''. */
char *
evaluate(Policy *p, Relation rel)
{
	Oid relid = RelationGetRelid(rel);
	HeapTuple proctup;
	Oid owner;
	Oid save_uid;
	int save_sec;
	Oid save_invoker = policy_invoker();
	int nest;
	MemoryContext oldcxt = CurrentMemoryContext;
	char *volatile result = nullptr;
	ErrorData *volatile edata = nullptr;

	for (int i = 0; i < session().pred.eval_depth; i++)
		if (session().pred.eval_stack[i] == relid)
			ereport(
				ERROR,
				(errcode(ERRCODE_INVALID_RECURSION),
				 errmsg("policy function of policy \"%s\" on table \"%s\" refers to the table it "
						"protects",
						p->name, RelationGetRelationName(rel)),
				 errhint(
					 "A policy function must not query its own table; read a lookup table or an "
					 "application context instead.")));
	if (session().pred.eval_depth >= kEvalMax)
		ereport(
			ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("policy functions nested too deeply evaluating policy \"%s\" on table \"%s\"",
					p->name, RelationGetRelationName(rel))));

	if (!p->finfo_valid)
	{
		proctup = SearchSysCache1(PROCOID, ObjectIdGetDatum(p->func));
		if (!HeapTupleIsValid(proctup))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("policy function of policy \"%s\" on table \"%s\" does not exist",
							p->name, RelationGetRelationName(rel)),
					 errhint("Drop the policy or add it again with an existing function.")));
		p->owner = reinterpret_cast<Form_pg_proc>(GETSTRUCT(proctup))->proowner;
		ReleaseSysCache(proctup);
		fmgr_info_cxt(p->func, &p->finfo, p->mcxt);
		p->finfo_valid = true;
	}
	owner = p->owner;

	GetUserIdAndSecContext(&save_uid, &save_sec);
	nest = NewGUCNestLevel();
	set_policy_search_path(p);
	session().pred.eval_stack[session().pred.eval_depth++] = relid;
	set_policy_invoker(save_uid);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		LOCAL_FCINFO(fc, 2);
		Datum d;

		InitFunctionCallInfoData(*fc, &p->finfo, 2, InvalidOid, nullptr, nullptr);
		fc->args[0].value = CStringGetTextDatum(p->defschema);
		fc->args[0].isnull = false;
		fc->args[1].value = CStringGetTextDatum(p->defname);
		fc->args[1].isnull = false;
		d = FunctionCallInvoke(fc);
		if (!fc->isnull)
		{
			MemoryContextSwitchTo(oldcxt);
			result = TextDatumGetCString(d);
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		session().pred.eval_depth--;
		set_policy_invoker(save_invoker);
		edata = CopyErrorData();
		if (cancel_like(edata->sqlerrcode))
			PG_RE_THROW();
		FlushErrorState();
	}
	PG_END_TRY();

	if (edata != nullptr)
	{
		/* the transaction is failing: its abort restores the user and settings */
		ereport(LOG_SERVER_ONLY,
				(errhidestmt(true), errhidecontext(true),
				 errmsg("policy function %s of policy \"%s\" on table \"%s\" failed: %s",
						format_procedure(p->func), p->name, RelationGetRelationName(rel),
						edata->message ? edata->message : "(no message)")));
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("policy function of policy \"%s\" on table \"%s\" failed", p->name,
						RelationGetRelationName(rel)),
				 errdetail(
					 "The function raised SQLSTATE %s; its message was written to the server log.",
					 unpack_sql_state(edata->sqlerrcode))));
	}
	SetUserIdAndSecContext(save_uid, save_sec);
	AtEOXact_GUC(true, nest);
	session().pred.eval_depth--;
	set_policy_invoker(save_invoker);

	if (result != nullptr)
	{
		const char *s = result;

		while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
			s++;
		if (*s == '\0')
			return nullptr;
	}
	return result;
}

/* Dependency snapshot of a context-sensitive policy. */
char *
context_snapshot(Policy *p)
{
	StringInfoData buf;

	if (p->ndeps == 0)
		return psprintf("g" UINT64_FORMAT, context_generation());
	initStringInfo(&buf);
	for (int i = 0; i < p->ndeps; i++)
	{
		const char *v = context_value(p->dep_ns[i], p->dep_attr[i]);

		if (v)
			appendStringInfo(&buf, "%zu:%s|", strlen(v), v);
		else
			appendStringInfoString(&buf, "-|");
	}
	return buf.data;
}

/* The predicate text of a policy for this statement, or nullptr for none. */
char *
get_predicate(Policy *p, Relation rel)
{
	PredKey key;
	PredEntry *pe;
	char *snap = nullptr;
	char *pred;
	bool found;
	bool shared = p->type == kSharedStatic || p->type == kSharedContextSensitive;

	if (p->type == kDynamic)
		return evaluate(p, rel);
	ensure_caches();
	memset(&key, 0, sizeof(key));
	key.kind = shared ? 1 : 0;
	key.type = p->type;
	key.id = shared ? p->func : static_cast<uint32>(p->id);
	if (p->type == kContextSensitive || p->type == kSharedContextSensitive)
		snap = context_snapshot(p);

	pe = static_cast<PredEntry *>(hash_search(session().pred.results, &key, HASH_FIND, nullptr));
	if (pe && (snap == nullptr || (pe->snapshot && strcmp(pe->snapshot, snap) == 0)))
		return pe->isnull ? nullptr : pstrdup(pe->pred);

	pred = evaluate(p, rel);

	/* the function ran SQL: the cache may have been reset meanwhile */
	ensure_caches();
	pe = static_cast<PredEntry *>(hash_search(session().pred.results, &key, HASH_FIND, nullptr));
	if (pe == nullptr &&
		hash_get_num_entries(session().pred.results) >= rustydb::settings::vpd_cache_entries)
	{
		reset_pred_cache();
		ensure_caches();
	}
	pe = static_cast<PredEntry *>(hash_search(session().pred.results, &key, HASH_ENTER, &found));
	if (found)
	{
		if (pe->pred)
			pfree(pe->pred);
		if (pe->snapshot)
			pfree(pe->snapshot);
	}
	pe->isnull = pred == nullptr;
	pe->pred = pred ? MemoryContextStrdup(session().pred.mcxt, pred) : nullptr;
	pe->snapshot = snap ? MemoryContextStrdup(session().pred.mcxt, snap) : nullptr;
	return pred;
}

bool
valid_select_shape(List *raw)
{
	RawStmt *rs;
	SelectStmt *s;
	ResTarget *rt;

	if (list_length(raw) != 1)
		return false;
	rs = linitial_node(RawStmt, raw);
	if (rs->stmt == nullptr || !IsA(rs->stmt, SelectStmt))
		return false;
	s = reinterpret_cast<SelectStmt *>(rs->stmt);
	if (s->op != SETOP_NONE || s->distinctClause != NIL || s->intoClause != nullptr ||
		s->fromClause != NIL || s->whereClause != nullptr || s->groupClause != NIL ||
		s->havingClause != nullptr || s->windowClause != NIL || s->valuesLists != NIL ||
		s->sortClause != NIL || s->limitOffset != nullptr || s->limitCount != nullptr ||
		s->lockingClause != NIL || s->withClause != nullptr || list_length(s->targetList) != 1)
		return false;
	rt = linitial_node(ResTarget, s->targetList);
	return rt->name == nullptr && rt->val != nullptr && rt->indirection == NIL;
}

/* Parse a predicate as exactly one boolean expression over rel's columns. */
Node *
parse_predicate(Policy *p, Relation rel, const char *pred)
{
	size_t len = strlen(pred);
	int limit = p->long_predicate ? kMaxLongPredicate : kMaxPredicate;
	char *sql;
	int nest;
	volatile int status = 0; /* 0 ok, 1 not one expression, 2 parse error */
	Node *volatile result = nullptr;
	ErrorData *volatile edata = nullptr;
	MemoryContext oldcxt = CurrentMemoryContext;

	if (len > static_cast<size_t>(limit))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("predicate of policy \"%s\" on table \"%s\" is too long", p->name,
						RelationGetRelationName(rel)),
				 errdetail("It is %zu bytes; the limit is %d bytes.", len, limit),
				 p->long_predicate
					 ? 0
					 : errhint("Add the policy with long_predicate => true for up to %d bytes.",
							   kMaxLongPredicate)));
	sql = psprintf("SELECT (%s\n)", pred);

	nest = NewGUCNestLevel();
	set_policy_search_path(p);
	PG_TRY();
	{
		List *raw = raw_parser(sql, RAW_PARSE_DEFAULT);

		if (!valid_select_shape(raw))
			status = 1;
		else
		{
			SelectStmt *s = reinterpret_cast<SelectStmt *>(linitial_node(RawStmt, raw)->stmt);
			Node *expr = linitial_node(ResTarget, s->targetList)->val;
			ParseState *pstate = make_parsestate(nullptr);
			ParseNamespaceItem *nsitem;
			Node *q;

			pstate->p_sourcetext = sql;
			nsitem =
				addRangeTableEntryForRelation(pstate, rel, AccessShareLock, nullptr, false, false);
			addNSItemToQuery(pstate, nsitem, false, true, true);
			q = transformWhereClause(pstate, expr, EXPR_KIND_POLICY, "POLICY");
			assign_expr_collations(pstate, q);
			free_parsestate(pstate);
			result = q;
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		if (cancel_like(edata->sqlerrcode))
			PG_RE_THROW();
		FlushErrorState();
		status = 2;
	}
	PG_END_TRY();

	if (status != 0)
	{
		if (status == 2)
			ereport(LOG_SERVER_ONLY,
					(errhidestmt(true), errhidecontext(true),
					 errmsg("predicate of policy \"%s\" on table \"%s\" is invalid: %s", p->name,
							RelationGetRelationName(rel), edata->message ? edata->message : "")));
		if (status == 2 && may_see_details(rel))
			ereport(ERROR, (errcode(ERRCODE_SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION),
							errmsg("predicate of policy \"%s\" on table \"%s\" is invalid", p->name,
								   RelationGetRelationName(rel)),
							errdetail("The predicate was rejected: %s.",
									  edata->message ? edata->message : "")));
		ereport(
			ERROR,
			(errcode(ERRCODE_SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION),
			 errmsg("predicate of policy \"%s\" on table \"%s\" is invalid", p->name,
					RelationGetRelationName(rel)),
			 errdetail(
				 "A policy predicate must be one boolean SQL expression over the table's columns, "
				 "like a WHERE clause; it is never run as a statement.")));
	}
	AtEOXact_GUC(true, nest);
	return result;
}

/*
 * parse_predicate, remembering the result for the same policy, table and
 * text: a static or context-sensitive predicate is parsed once, not for
 * every statement. Dropped with the predicate cache (relcache and pg_proc
 * invalidations).
 */
Node *
parsed_predicate(Policy *p, Relation rel, const char *pred)
{
	ExprKey key;
	ExprEntry *ee;
	Node *expr;
	bool found;
	MemoryContext old;

	if (session().pred.parsed == nullptr)
	{
		HASHCTL ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(ExprKey);
		ctl.entrysize = sizeof(ExprEntry);
		ctl.hcxt = session().pred.mcxt;
		session().pred.parsed = hash_create("rustydb vpd parsed predicates", 64, &ctl,
											HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	memset(&key, 0, sizeof(key));
	key.id = p->id;
	key.relid = RelationGetRelid(rel);
	ee = static_cast<ExprEntry *>(hash_search(session().pred.parsed, &key, HASH_FIND, nullptr));
	if (ee && strcmp(ee->text, pred) == 0)
		return copy_node(ee->expr);

	expr = parse_predicate(p, rel, pred);
	if (session().pred.parsed == nullptr)
		return expr; /* reset while parsing */
	if (ee == nullptr &&
		hash_get_num_entries(session().pred.parsed) >= rustydb::settings::vpd_cache_entries)
		return expr; /* full: not cached (the next reset empties it) */
	ee = static_cast<ExprEntry *>(hash_search(session().pred.parsed, &key, HASH_ENTER, &found));
	if (found)
		MemoryContextReset(ee->cxt);
	else
		ee->cxt = AllocSetContextCreate(session().pred.mcxt, "rustydb vpd parsed predicate",
										ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(ee->cxt);
	ee->text = pstrdup(pred);
	ee->expr = copy_node(expr);
	MemoryContextSwitchTo(old);
	return expr;
}

Expr *
make_marker(MarkerKind kind, int32 id, int flags, int ncols, const int16 *cols,
			const char *pred = nullptr)
{
	List *args;
	Const *colconst;

	if (!session().markers.valid)
		load_markers();
	if (!OidIsValid(session().markers.oid[kind]))
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("rustydb VPD functions are missing"),
						errhint("Recreate the rustydb extension in this database.")));
	if (ncols > 0)
	{
		Datum *d = static_cast<Datum *>(palloc(sizeof(Datum) * ncols));

		for (int i = 0; i < ncols; i++)
			d[i] = Int16GetDatum(cols[i]);
		colconst =
			makeConst(INT2ARRAYOID, -1, InvalidOid, -1,
					  PointerGetDatum(construct_array(d, ncols, INT2OID, 2, true, TYPALIGN_SHORT)),
					  false, false);
	}
	else
		colconst = makeNullConst(INT2ARRAYOID, -1, InvalidOid);
	args = list_make3(makeConst(INT4OID, -1, InvalidOid, 4, Int32GetDatum(id), false, true),
					  makeConst(INT4OID, -1, InvalidOid, 4, Int32GetDatum(flags), false, true),
					  colconst);
	if (kind == kMarkerDynamic)
	{
		/* the predicate text and when it was computed, checked at each execution */
		args = lappend(args, pred ? makeConst(TEXTOID, -1, DEFAULT_COLLATION_OID, -1,
											  CStringGetTextDatum(pred), false, false)
								  : makeNullConst(TEXTOID, -1, DEFAULT_COLLATION_OID));
		args = lappend(args, makeConst(INT8OID, -1, InvalidOid, 8,
									   Int64GetDatum(session().stmt.exec_counter), false,
									   FLOAT8PASSBYVAL));
		session().stmt.seen_dynamic = true;
	}
	return reinterpret_cast<Expr *>(makeFuncExpr(session().markers.oid[kind], BOOLOID, args,
												 InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL));
}

MarkerKind
marker_for(PolicyType t)
{
	switch (t)
	{
		case kStatic:
		case kSharedStatic:
			return kMarkerStatic;
		case kContextSensitive:
		case kSharedContextSensitive:
			return kMarkerContext;
		case kDynamic:
			break;
	}
	return kMarkerDynamic;
}

bool
applies_to(const Policy *p, CmdType cmd)
{
	if (!p->enabled)
		return false;
	switch (cmd)
	{
		case CMD_SELECT:
			return p->sel;
		case CMD_INSERT:
			return p->ins && p->update_check;
		case CMD_UPDATE:
			return p->upd;
		case CMD_DELETE:
			return p->del;
		default:
			return false;
	}
}

bool
group_active(const RelEntry *e, const Policy *p, List *active)
{
	ListCell *lc;

	if (e->ndrv == 0 || pg_strcasecmp(p->group, "SYS_DEFAULT") == 0)
		return true;
	foreach (lc, active)
		if (pg_strcasecmp(static_cast<char *>(lfirst(lc)), p->group) == 0)
			return true;
	return false;
}

/* Groups named by the driving contexts (only when there are some). */
List *
active_groups(const RelEntry *e, Relation rel)
{
	List *groups = NIL;

	for (int i = 0; i < e->ndrv; i++)
	{
		const char *v = context_value(e->drv_ns[i], e->drv_attr[i]);
		bool known = pg_strcasecmp(v ? v : "", "SYS_DEFAULT") == 0;

		if (v == nullptr)
			continue;
		for (int g = 0; g < e->ngroups && !known; g++)
			known = pg_strcasecmp(e->groups[g], v) == 0;
		if (!known)
			ereport(
				ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("driving context %s.%s of table \"%s\" names an unknown policy group",
						e->drv_ns[i], e->drv_attr[i], RelationGetRelationName(rel)),
				 errhint(
					 "Set it to the name of a group created with rustydb.create_policy_group.")));
		groups = lappend(groups, pstrdup(v));
	}
	return groups;
}

ArrayType *
public_roles()
{
	Datum role = ObjectIdGetDatum(ACL_ID_PUBLIC);

	return construct_array(&role, 1, OIDOID, sizeof(Oid), true, TYPALIGN_INT);
}

RowSecurityPolicy *
make_policy(const char *name, CmdType cmd, Expr *qual, Expr *check, bool permissive)
{
	RowSecurityPolicy *rsp = static_cast<RowSecurityPolicy *>(palloc0(sizeof(RowSecurityPolicy)));

	rsp->policy_name = pstrdup(name);
	rsp->polcmd = '*';
	rsp->roles = public_roles();
	rsp->permissive = permissive;
	rsp->qual = qual;
	rsp->with_check_qual = check;
	rsp->hassublinks = checkExprHasSubLink(reinterpret_cast<Node *>(qual)) ||
					   checkExprHasSubLink(reinterpret_cast<Node *>(check));
	return rsp;
}

Expr *
true_const()
{
	return reinterpret_cast<Expr *>(makeBoolConst(true, false));
}

bool
has_native_permissive(Relation rel)
{
	ListCell *lc;

	if (rel->rd_rsdesc == nullptr)
		return false;
	foreach (lc, rel->rd_rsdesc->policies)
		if (static_cast<RowSecurityPolicy *>(lfirst(lc))->permissive)
			return true;
	return false;
}

List *
restrictive_policies(CmdType cmd, Relation rel)
{
	RelEntry *e = get_entry(RelationGetRelid(rel));
	List *result = NIL;
	List *groups;
	int napplicable = 0;

	if (!e->any)
		return NIL;
	for (int i = 0; i < e->npol; i++)
		if (applies_to(&e->pol[i], cmd))
			napplicable++;
	if (current_user_exempt())
	{
		if (napplicable > 0 && session().listeners.exempt)
		{
			ExemptAccessEvent ev;

			ev.relid = RelationGetRelid(rel);
			ev.userid = GetUserId();
			ev.session_userid = GetSessionUserId();
			ev.command = cmd;
			ev.npolicies = napplicable;
			ev.reason = ExemptReason::kExemptRole;
			session().listeners.exempt(&ev);
		}
		return NIL;
	}

	groups = active_groups(e, rel);
	for (int i = 0; i < e->npol; i++)
	{
		Policy *p = &e->pol[i];
		MarkerKind kind;
		int flags = 0;
		Expr *marker;
		Expr *qual;
		Expr *check = nullptr;
		char *pred;

		if (!applies_to(p, cmd) || !group_active(e, p, groups))
			continue;
		kind = marker_for(p->type);
		if (p->has_cols)
		{
			flags |= kFlagSecCols;
			session().stmt.seen_sec_cols = true;
		}
		if (p->all_rows)
			flags |= kFlagAllRows;
		if (!p->update_check)
			flags |= kFlagNoCheck;
		pred = get_predicate(p, rel);
		marker = make_marker(kind, p->id, flags, p->ncols, p->cols, pred);
		if (pred == nullptr)
			qual = marker;
		else
			qual = make_andclause(
				list_make2(marker, reinterpret_cast<Expr *>(p->type == kDynamic
																? parse_predicate(p, rel, pred)
																: parsed_predicate(p, rel, pred))));
		if (cmd == CMD_INSERT || cmd == CMD_UPDATE)
			check = p->update_check ? copy_node(qual) : true_const();
		result = lappend(result, make_policy(p->name, cmd, qual, check, false));
	}
	if (e->ndrv > 0)
	{
		/* plans depend on the driving contexts even when no policy applies */
		Expr *marker = make_marker(kMarkerContext, 0, 0, 0, nullptr);

		result = lappend(
			result,
			make_policy("rustydb driving context", cmd, marker,
						cmd == CMD_INSERT || cmd == CMD_UPDATE ? true_const() : nullptr, false));
	}
	return result;
}

List *
permissive_policies(CmdType cmd, Relation rel)
{
	RelEntry *e = get_entry(RelationGetRelid(rel));

	if (!e->any || has_native_permissive(rel))
		return NIL;
	return list_make1(make_policy("rustydb vpd", cmd, true_const(), true_const(), true));
}

/* ---- planner: sec_relevant_cols, all_rows masking, view owners ---- */

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

/* If qual is one of our marker-led quals, describe it. */
bool
decode_qual(Node *qual, MarkerInfo *mi)
{
	FuncExpr *fe;
	Const *c;

	mi->pred = nullptr;
	if (qual == nullptr)
		return false;
	if (IsA(qual, BoolExpr) && reinterpret_cast<BoolExpr *>(qual)->boolop == AND_EXPR &&
		list_length(reinterpret_cast<BoolExpr *>(qual)->args) == 2)
	{
		List *args = reinterpret_cast<BoolExpr *>(qual)->args;

		if (!IsA(linitial(args), FuncExpr))
			return false;
		fe = static_cast<FuncExpr *>(linitial(args));
		mi->pred = static_cast<Expr *>(lsecond(args));
	}
	else if (IsA(qual, FuncExpr))
		fe = reinterpret_cast<FuncExpr *>(qual);
	else
		return false;
	mi->kind = marker_kind_of(fe->funcid);
	if (mi->kind < 0 || list_length(fe->args) != (mi->kind == kMarkerDynamic ? 5 : 3))
		return false;
	mi->marker = fe;
	mi->text = nullptr;
	mi->stamp = 0;
	if (mi->kind == kMarkerDynamic)
	{
		c = static_cast<Const *>(list_nth(fe->args, 3));
		if (!c->constisnull)
			mi->text = TextDatumGetCString(c->constvalue);
		mi->stamp = DatumGetInt64(static_cast<Const *>(list_nth(fe->args, 4))->constvalue);
	}
	c = static_cast<Const *>(linitial(fe->args));
	mi->id = DatumGetInt32(c->constvalue);
	c = static_cast<Const *>(lsecond(fe->args));
	mi->flags = DatumGetInt32(c->constvalue);
	c = static_cast<Const *>(lthird(fe->args));
	mi->ncols = 0;
	mi->cols = nullptr;
	if (!c->constisnull)
	{
		Datum *elems;
		bool *nulls;
		int n;

		deconstruct_array(DatumGetArrayTypeP(c->constvalue), INT2OID, 2, true, TYPALIGN_SHORT,
						  &elems, &nulls, &n);
		mi->cols = static_cast<int16 *>(palloc(sizeof(int16) * (n + 1)));
		for (int i = 0; i < n; i++)
			mi->cols[i] = DatumGetInt16(elems[i]);
		mi->ncols = n;
	}
	return true;
}

bool
cols_referenced(RangeTblEntry *rte, const MarkerInfo *mi)
{
	if (bms_is_member(0 - FirstLowInvalidHeapAttributeNumber, rte->selectedCols))
		return true; /* whole-row reference */
	for (int i = 0; i < mi->ncols; i++)
	{
		int b = mi->cols[i] - FirstLowInvalidHeapAttributeNumber;

		if (bms_is_member(b, rte->selectedCols) || bms_is_member(b, rte->insertedCols) ||
			bms_is_member(b, rte->updatedCols))
			return true;
	}
	return false;
}

struct MaskContext
{
	RangeTblEntry *rte;
	int natts;
	List **preds; /* per attnum (1-based), predicates that must hold to see it */
};

Node *
mask_var(Var *var, List *preds, int sublevels_up)
{
	CaseExpr *ce = makeNode(CaseExpr);
	CaseWhen *cw = makeNode(CaseWhen);
	Node *cond;

	cond = reinterpret_cast<Node *>(copy_node(preds));
	cond = list_length(preds) == 1
			   ? static_cast<Node *>(linitial(reinterpret_cast<List *>(cond)))
			   : reinterpret_cast<Node *>(make_andclause(reinterpret_cast<List *>(cond)));
	if (sublevels_up > 0)
		IncrementVarSublevelsUp(cond, sublevels_up, 0);
	cw->expr = reinterpret_cast<Expr *>(cond);
	cw->result = reinterpret_cast<Expr *>(copy_node(var));
	cw->location = -1;
	ce->casetype = var->vartype;
	ce->casecollid = var->varcollid;
	ce->arg = nullptr;
	ce->args = list_make1(cw);
	ce->defresult =
		reinterpret_cast<Expr *>(makeNullConst(var->vartype, var->vartypmod, var->varcollid));
	ce->location = -1;
	return reinterpret_cast<Node *>(ce);
}

Node *
mask_callback_impl(Var *var, replace_rte_variables_context *context)
{
	MaskContext *m = static_cast<MaskContext *>(context->callback_arg);

	if (var->varattno > 0 && var->varattno <= m->natts && m->preds[var->varattno] != NIL)
		return mask_var(var, m->preds[var->varattno], context->sublevels_up);
	if (var->varattno == 0)
	{
		List *colnames;
		List *vars;
		List *fields = NIL;
		ListCell *lc;
		RowExpr *row;

		expandRTE(m->rte, var->varno, var->varlevelsup, var->location, true, &colnames, &vars);
		foreach (lc, vars)
		{
			Node *f = static_cast<Node *>(lfirst(lc));

			if (IsA(f, Var))
			{
				Var *fv = reinterpret_cast<Var *>(f);

				if (fv->varattno > 0 && fv->varattno <= m->natts && m->preds[fv->varattno] != NIL)
					f = mask_var(fv, m->preds[fv->varattno], context->sublevels_up);
			}
			fields = lappend(fields, f);
		}
		row = makeNode(RowExpr);
		row->args = fields;
		row->row_typeid = var->vartype;
		row->row_format = COERCE_IMPLICIT_CAST;
		row->colnames = colnames;
		row->location = var->location;
		return reinterpret_cast<Node *>(row);
	}
	return reinterpret_cast<Node *>(copy_node(var));
}

void
check_view_owner(RangeTblEntry *rte)
{
	if (!OidIsValid(rte->checkAsUser) || rte->checkAsUser == GetUserId())
		return;
	if (check_enable_rls(rte->relid, rte->checkAsUser, true) == RLS_ENABLED)
		return;
	if (check_enable_rls(rte->relid, InvalidOid, true) != RLS_ENABLED)
		return;
	if (!relation_has_policies(rte->relid) || current_user_exempt())
		return;
	ereport(
		ERROR,
		(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
		 errmsg("permission denied for table %s", get_rel_name(rte->relid)),
		 errdetail(
			 "The table has VPD policies, and it is reached through a view owned by role \"%s\", "
			 "which bypasses row security.",
			 GetUserNameFromId(rte->checkAsUser, true)),
		 errhint(
			 "Create the view WITH (security_invoker = true), or give it an owner subject to row "
			 "security.")));
}

/* Dynamic policies found in the query being planned (checked at each execution). */
struct DynamicItem
{
	int32 id;
	Oid relid;
	char *text;
	int64 stamp;
};

void
collect_dynamic(const MarkerInfo *mi, Oid relid)
{
	ListCell *lc;
	DynamicItem *it;

	if (mi->kind != kMarkerDynamic)
		return;
	foreach (lc, session().stmt.collected_dynamic)
	{
		it = static_cast<DynamicItem *>(lfirst(lc));
		if (it->id == mi->id && it->relid == relid)
		{
			if (mi->stamp < it->stamp)
				it->stamp = mi->stamp;
			return;
		}
	}
	it = static_cast<DynamicItem *>(palloc0(sizeof(DynamicItem)));
	it->id = mi->id;
	it->relid = relid;
	it->text = mi->text ? pstrdup(mi->text) : nullptr;
	it->stamp = mi->stamp;
	session().stmt.collected_dynamic = lappend(session().stmt.collected_dynamic, it);
}

void
process_query(Query *q)
{
	int rti = 0;
	ListCell *lc;
	List *mask_rtis = NIL;
	List *mask_ctxs = NIL;

	foreach (lc, q->rtable)
	{
		RangeTblEntry *rte = static_cast<RangeTblEntry *>(lfirst(lc));
		List *keep = NIL;
		ListCell *qc;
		MaskContext *mc = nullptr;

		rti++;
		if (rte->rtekind != RTE_RELATION)
			continue;
		check_view_owner(rte);
		if (session().stmt.seen_dynamic)
		{
			foreach (qc, rte->securityQuals)
			{
				MarkerInfo dm;

				if (decode_qual(static_cast<Node *>(lfirst(qc)), &dm))
					collect_dynamic(&dm, rte->relid);
			}
		}
		if (!session().stmt.seen_sec_cols || rte->securityQuals == NIL)
			continue;
		foreach (qc, rte->securityQuals)
		{
			Node *qual = static_cast<Node *>(lfirst(qc));
			MarkerInfo mi;

			if (!decode_qual(qual, &mi) || !(mi.flags & kFlagSecCols))
			{
				keep = lappend(keep, qual);
				continue;
			}
			if (!cols_referenced(rte, &mi))
				continue; /* the statement does not touch the relevant columns */
			if (!(mi.flags & kFlagAllRows) || rti == q->resultRelation)
			{
				keep = lappend(keep, qual);
				continue;
			}
			/* all_rows: keep every row, mask the relevant columns */
			if (mi.pred == nullptr)
				continue;
			if (mc == nullptr)
			{
				mc = static_cast<MaskContext *>(palloc0(sizeof(MaskContext)));
				mc->natts = relation_natts(rte->relid);
				mc->preds = static_cast<List **>(palloc0(sizeof(List *) * (mc->natts + 1)));
			}
			for (int i = 0; i < mi.ncols; i++)
				if (mi.cols[i] > 0 && mi.cols[i] <= mc->natts)
					mc->preds[mi.cols[i]] = lappend(mc->preds[mi.cols[i]], mi.pred);
		}
		rte->securityQuals = keep;
		if (mc)
		{
			mask_rtis = lappend_int(mask_rtis, rti);
			mask_ctxs = lappend(mask_ctxs, mc);
		}
	}

	/*
	 * WITH CHECK OPTIONs: PostgreSQL also checks new rows against SELECT
	 * policies when the statement reads the table; a VPD policy checks new
	 * rows only with update_check. And a policy with sec_relevant_cols
	 * whose columns the statement does not touch does not apply.
	 */
	if (q->withCheckOptions != NIL && q->resultRelation > 0)
	{
		RangeTblEntry *target = rt_fetch(q->resultRelation, q->rtable);
		List *keep = NIL;

		foreach (lc, q->withCheckOptions)
		{
			WithCheckOption *wco = static_cast<WithCheckOption *>(lfirst(lc));
			MarkerInfo mi;

			if (decode_qual(wco->qual, &mi))
			{
				collect_dynamic(&mi, target->relid);
				if ((mi.flags & kFlagNoCheck) &&
					(wco->kind == WCO_RLS_INSERT_CHECK || wco->kind == WCO_RLS_UPDATE_CHECK))
					continue;
				if ((mi.flags & kFlagSecCols) && !cols_referenced(target, &mi))
					continue;
			}
			keep = lappend(keep, wco);
		}
		q->withCheckOptions = keep;
	}

	/* mask: replace Vars of each all_rows table by CASE expressions */
	for (int k = 0; k < list_length(mask_rtis); k++)
	{
		int target = list_nth_int(mask_rtis, k);
		MaskContext *mc = static_cast<MaskContext *>(list_nth(mask_ctxs, k));
		RangeTblEntry *rte = rt_fetch(target, q->rtable);
		List *own = rte->securityQuals;
		Query *nq;
		bool haspreds = false;

		for (int a = 1; a <= mc->natts; a++)
			if (checkExprHasSubLink(reinterpret_cast<Node *>(mc->preds[a])))
				haspreds = true;
		/* the table's own quals see the real values */
		rte->securityQuals = NIL;
		mc->rte = rte;
		nq = reinterpret_cast<Query *>(replace_rte_variables(reinterpret_cast<Node *>(q), target, 0,
															 vpd_mask_callback, mc, nullptr));
		*q = *nq;
		rt_fetch(target, q->rtable)->securityQuals = own;
		if (haspreds)
			q->hasSubLinks = true;
	}
}

bool
walk_queries_impl(Node *node, void *context)
{
	if (node == nullptr)
		return false;
	if (IsA(node, Query))
	{
		Query *q = reinterpret_cast<Query *>(node);

		process_query(q);
		return query_tree_walker(q, WALKER(vpd_walk_queries), context, 0);
	}
	return expression_tree_walker(node, WALKER(vpd_walk_queries), context);
}

/*
 * ---- dynamic policies: checked at every execution ----
 *
 * A plan that uses a dynamic policy carries a sentinel PlanInvalItem (it
 * survives the plan cache's copy of the plan) whose hash value keys an
 * entry here: the dynamic policies of the plan with the predicate text they
 * were planned with, and a copy of the query before planning. ExecutorStart
 * evaluates each policy function again; when a predicate changed, the query
 * is planned again with the new predicate for this execution and the cached
 * plans carrying dynamic policies are invalidated. When nothing changed the
 * cached plan runs as is: a dynamic policy costs one function call per
 * execution, not a re-plan.
 */
constexpr int kSentinelCacheId = -31415;

struct PlanEntry
{
	uint32 key; /* hash key */
	MemoryContext mcxt;
	List *items; /* DynamicItem */
	Query *query;
	char *query_string;
	int cursor_options;
	bool owned; /* a reset callback of the plan's context frees it */
};

void
drop_plan_entry(uint32 key)
{
	PlanEntry *pe;

	if (session().plans.map == nullptr)
		return;
	pe = static_cast<PlanEntry *>(hash_search(session().plans.map, &key, HASH_FIND, nullptr));
	if (pe == nullptr)
		return;
	if (!pe->owned)
		session().plans.unowned--;
	MemoryContextDelete(pe->mcxt);
	hash_search(session().plans.map, &key, HASH_REMOVE, nullptr);
}

void
plan_context_reset_impl(void *arg)
{
	drop_plan_entry(static_cast<uint32>(reinterpret_cast<uintptr_t>(arg)));
}

void
evict_unowned()
{
	HASH_SEQ_STATUS st;
	PlanEntry *pe;

	hash_seq_init(&st, session().plans.map);
	while ((pe = static_cast<PlanEntry *>(hash_seq_search(&st))) != nullptr)
		if (!pe->owned)
		{
			MemoryContextDelete(pe->mcxt);
			hash_search(session().plans.map, &pe->key, HASH_REMOVE, nullptr);
		}
	session().plans.unowned = 0;
}

/* Remember the dynamic policies of a new plan. copy: the query before planning. */
void
register_plan(PlannedStmt *ps, List *items, MemoryContext copyctx, Query *copy,
			  const char *query_string, int cursor_options)
{
	HASHCTL ctl;
	PlanEntry *pe;
	PlanInvalItem *sentinel;
	MemoryContext old;
	ListCell *lc;
	uint32 key;
	bool found;

	if (session().plans.map == nullptr)
	{
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(uint32);
		ctl.entrysize = sizeof(PlanEntry);
		ctl.hcxt = session().cache.mcxt;
		session().plans.map = hash_create("rustydb vpd dynamic plans", 64, &ctl,
										  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	if (session().plans.unowned >= rustydb::settings::vpd_cache_entries)
		evict_unowned();
	do
		key = ++session().plans.key_counter;
	while (key == 0 || hash_search(session().plans.map, &key, HASH_FIND, nullptr) != nullptr);

	MemoryContextSetParent(copyctx, session().cache.mcxt);
	old = MemoryContextSwitchTo(copyctx);
	pe = static_cast<PlanEntry *>(hash_search(session().plans.map, &key, HASH_ENTER, &found));
	pe->mcxt = copyctx;
	pe->items = NIL;
	foreach (lc, items)
	{
		DynamicItem *src = static_cast<DynamicItem *>(lfirst(lc));
		DynamicItem *it = static_cast<DynamicItem *>(palloc(sizeof(DynamicItem)));

		*it = *src;
		it->text = src->text ? pstrdup(src->text) : nullptr;
		pe->items = lappend(pe->items, it);
	}
	pe->query = copy;
	pe->query_string = query_string ? pstrdup(query_string) : nullptr;
	pe->cursor_options = cursor_options;
	pe->owned = false;
	session().plans.unowned++;
	MemoryContextSwitchTo(old);

	/* in the plan's own memory: copied along with it by the plan cache */
	sentinel = makeNode(PlanInvalItem);
	sentinel->cacheId = kSentinelCacheId;
	sentinel->hashValue = key;
	ps->invalItems = lappend(ps->invalItems, sentinel);
}

PlanEntry *
plan_entry_of(PlannedStmt *ps, uint32 *key_out)
{
	ListCell *lc;

	if (session().plans.map == nullptr || ps == nullptr)
		return nullptr;
	foreach (lc, ps->invalItems)
	{
		PlanInvalItem *item = static_cast<PlanInvalItem *>(lfirst(lc));

		if (item->cacheId == kSentinelCacheId)
		{
			*key_out = item->hashValue;
			return static_cast<PlanEntry *>(
				hash_search(session().plans.map, &item->hashValue, HASH_FIND, nullptr));
		}
	}
	return nullptr;
}

bool
plan_has_sentinel(PlannedStmt *ps)
{
	ListCell *lc;

	foreach (lc, ps->invalItems)
		if (static_cast<PlanInvalItem *>(lfirst(lc))->cacheId == kSentinelCacheId)
			return true;
	return false;
}

Policy *
find_policy(RelEntry *e, int32 id)
{
	for (int i = 0; i < e->npol; i++)
		if (e->pol[i].id == id)
			return &e->pol[i];
	return nullptr;
}

struct Changed
{
	int32 id;
	Oid relid;
	char *text;
};

bool
text_equal(const char *a, const char *b)
{
	if (a == nullptr || b == nullptr)
		return a == b;
	return strcmp(a, b) == 0;
}

/* A new dynamic qual for policy p of the relation at rti, with text. */
Node *
dynamic_qual(Policy *p, Relation rel, int rti, int flags, const char *text, bool *hassub)
{
	Expr *marker = make_marker(kMarkerDynamic, p->id, flags, p->ncols, p->cols, text);
	Node *expr;

	if (text == nullptr)
		return reinterpret_cast<Node *>(marker);
	expr = parse_predicate(p, rel, text);
	ChangeVarNodes(expr, 1, rti, 0);
	if (checkExprHasSubLink(expr))
		*hassub = true;
	return reinterpret_cast<Node *>(
		make_andclause(list_make2(marker, reinterpret_cast<Expr *>(expr))));
}

Node *
replace_one(Node *qual, Oid relid, int rti, List *changed, bool *hassub)
{
	MarkerInfo mi;
	ListCell *lc;

	if (!decode_qual(qual, &mi) || mi.kind != kMarkerDynamic)
		return qual;
	foreach (lc, changed)
	{
		Changed *c = static_cast<Changed *>(lfirst(lc));

		if (c->id == mi.id && c->relid == relid)
		{
			Relation rel = relation_open(relid, AccessShareLock);
			Policy *p = find_policy(get_entry(relid), mi.id);
			Node *r;

			if (p == nullptr)
				ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
								errmsg("VPD policies of table \"%s\" changed during execution",
									   RelationGetRelationName(rel))));
			r = dynamic_qual(p, rel, rti, mi.flags, c->text, hassub);
			relation_close(rel, NoLock);
			return r;
		}
	}
	return qual;
}

bool
replace_walker_impl(Node *node, void *context)
{
	List *changed = static_cast<List *>(context);

	if (node == nullptr)
		return false;
	if (IsA(node, Query))
	{
		Query *q = reinterpret_cast<Query *>(node);
		ListCell *lc;
		int rti = 0;
		bool hassub = false;

		foreach (lc, q->rtable)
		{
			RangeTblEntry *rte = static_cast<RangeTblEntry *>(lfirst(lc));
			ListCell *qc;

			rti++;
			if (rte->rtekind != RTE_RELATION)
				continue;
			foreach (qc, rte->securityQuals)
				lfirst(qc) =
					replace_one(static_cast<Node *>(lfirst(qc)), rte->relid, rti, changed, &hassub);
		}
		if (q->resultRelation > 0)
		{
			Oid relid = rt_fetch(q->resultRelation, q->rtable)->relid;

			foreach (lc, q->withCheckOptions)
			{
				WithCheckOption *wco = static_cast<WithCheckOption *>(lfirst(lc));

				wco->qual = replace_one(wco->qual, relid, q->resultRelation, changed, &hassub);
			}
		}
		if (hassub)
			q->hasSubLinks = true;
		return query_tree_walker(q, WALKER(vpd_replace_walker), context, 0);
	}
	return expression_tree_walker(node, WALKER(vpd_replace_walker), context);
}

/* Free the entry together with the plan it describes. */
void
own_entry(PlannedStmt *ps, PlanEntry *pe, uint32 key)
{
	MemoryContext plan_cxt;
	MemoryContextCallback *cb;

	if (pe->owned)
		return;
	plan_cxt = GetMemoryChunkContext(ps);
	cb = static_cast<MemoryContextCallback *>(
		MemoryContextAlloc(plan_cxt, sizeof(MemoryContextCallback)));
	cb->func = vpd_plan_context_reset;
	cb->arg = reinterpret_cast<void *>(static_cast<uintptr_t>(key));
	MemoryContextRegisterResetCallback(plan_cxt, cb);
	pe->owned = true;
	session().plans.unowned--;
}

/* At ExecutorStart: evaluate the plan's dynamic policies; re-plan if one changed. */
void
check_dynamic(QueryDesc *qd)
{
	uint32 key = 0;
	PlanEntry *pe = plan_entry_of(qd->plannedstmt, &key);
	List *changed = NIL;
	ListCell *lc;

	if (pe == nullptr)
	{
		if (session().plans.map != nullptr && plan_has_sentinel(qd->plannedstmt))
			ereport(
				ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("cached plan with a dynamic VPD policy expired before its first execution"),
				 errhint(
					 "Run the statement again; raise rustydb.vpd_cache_entries if this recurs.")));
		return;
	}
	own_entry(qd->plannedstmt, pe, key);

	session().cache.pin_depth++;
	PG_TRY();
	{
		foreach (lc, pe->items)
		{
			DynamicItem *it = static_cast<DynamicItem *>(lfirst(lc));
			Relation rel;
			Policy *p;
			char *now;

			if (it->stamp == session().stmt.exec_counter)
				continue; /* computed for this very execution */
			rel = relation_open(it->relid, AccessShareLock);
			p = find_policy(get_entry(it->relid), it->id);
			now = p ? evaluate(p, rel) : nullptr;
			relation_close(rel, NoLock);
			if (p == nullptr || !text_equal(now, it->text))
			{
				Changed *c = static_cast<Changed *>(palloc(sizeof(Changed)));

				c->id = it->id;
				c->relid = it->relid;
				c->text = now;
				changed = lappend(changed, c);
			}
		}
	}
	PG_FINALLY();
	{
		session().cache.pin_depth--;
	}
	PG_END_TRY();

	if (changed != NIL)
	{
		/* pe may be gone if an invalidation freed the plan meanwhile: re-find it */
		pe = plan_entry_of(qd->plannedstmt, &key);
		if (pe == nullptr)
			ereport(
				ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("cached plan with a dynamic VPD policy was invalidated during execution"),
				 errhint("Run the statement again.")));
		Query *q = copy_node(pe->query);

		(void) replace_walker_impl(reinterpret_cast<Node *>(q), changed);
		qd->plannedstmt = ::planner(q, pe->query_string, pe->cursor_options, nullptr);
		/* the cached plans are stale now: rebuild them at their next use */
		invalidate_marker_plans(kMarkerDynamic);
		/* the new plan's own entry lives as long as the new plan */
		pe = plan_entry_of(qd->plannedstmt, &key);
		if (pe)
			own_entry(qd->plannedstmt, pe, key);
	}
}

/* ---- EXPLAIN ANALYZE: no counts of hidden rows ---- */

bool
plan_uses_policies(PlannedStmt *ps)
{
	ListCell *lc;

	foreach (lc, ps->rtable)
	{
		RangeTblEntry *rte = static_cast<RangeTblEntry *>(lfirst(lc));

		if (rte->rtekind != RTE_RELATION || rte->relkind == RELKIND_VIEW)
			continue;
		if (relation_under_policies(rte->relid, rte->checkAsUser))
			return true;
	}
	return false;
}

bool
zero_filtered_impl(PlanState *ps, void *context)
{
	if (ps == nullptr)
		return false;
	if (ps->instrument)
	{
		ps->instrument->nfiltered1 = 0;
		ps->instrument->nfiltered2 = 0;
	}
	if (ps->worker_instrument)
		for (int i = 0; i < ps->worker_instrument->num_workers; i++)
		{
			ps->worker_instrument->instrument[i].nfiltered1 = 0;
			ps->worker_instrument->instrument[i].nfiltered2 = 0;
		}
	return planstate_tree_walker(ps, WALKER(vpd_zero_filtered), context);
}

/* ---- utility statements ---- */

/* Policies (incl. an ancestor's) read fresh from the catalog, for DDL checks. */
char *
catalog_policy_for(Oid relid, const char *condition)
{
	AsCatalogReader reader;
	Oid argtypes[1] = {OIDOID};
	Datum args[1] = {ObjectIdGetDatum(relid)};
	char *result = nullptr;
	MemoryContext caller = CurrentMemoryContext;

	if (!extension_present())
		return nullptr;
	begin_catalog_read(&reader);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (exec_catalog_query(psprintf("%s SELECT p.policy_name::text FROM rustydb.vpd_policy p"
									" JOIN anc ON p.relid = anc.relid WHERE %s ORDER BY 1 LIMIT 1",
									kAncestors, condition),
						   1, argtypes, args, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read rustydb.vpd_policy");
	if (SPI_processed > 0)
		result = MemoryContextStrdup(caller,
									 SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1));
	SPI_finish();
	end_catalog_read(&reader);
	return result;
}

void
check_utility(Node *stmt)
{
	if (IsA(stmt, IndexStmt))
	{
		IndexStmt *is = reinterpret_cast<IndexStmt *>(stmt);
		Oid relid = RangeVarGetRelid(is->relation, NoLock, true);
		char *pol;

		if (!OidIsValid(relid) || superuser() || current_user_exempt())
			return;
		pol = catalog_policy_for(relid, "p.idx AND p.enable");
		if (pol)
			ereport(
				ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot create an index on table \"%s\"", is->relation->relname),
				 errdetail(
					 "VPD policy \"%s\" covers index statements; an index is built from every row.",
					 pol),
				 errhint("Disable the policy, or build the index as a member of "
						 "rustydb_exempt_access_policy.")));
	}
	else if (IsA(stmt, AlterTableStmt))
	{
		AlterTableStmt *as = reinterpret_cast<AlterTableStmt *>(stmt);
		ListCell *lc;
		Oid relid = InvalidOid;

		foreach (lc, as->cmds)
		{
			AlterTableCmd *cmd = static_cast<AlterTableCmd *>(lfirst(lc));
			char *pol;

			if (cmd->subtype != AT_DisableRowSecurity && cmd->subtype != AT_NoForceRowSecurity)
				continue;
			if (!OidIsValid(relid))
				relid = RangeVarGetRelid(as->relation, NoLock, true);
			if (!OidIsValid(relid))
				return;
			pol = catalog_policy_for(relid, "true");
			if (pol)
				ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
								errmsg("cannot turn off row security of table \"%s\"",
									   as->relation->relname),
								errdetail("VPD policy \"%s\" protects it.", pol),
								errhint("Drop its VPD policies with rustydb.drop_policy first.")));
		}
	}
}

/* Does the statement create or attach a partition or inheritance child? */
bool
creates_child(Node *stmt)
{
	if (IsA(stmt, CreateStmt))
	{
		CreateStmt *cs = reinterpret_cast<CreateStmt *>(stmt);

		return cs->inhRelations != NIL || cs->partbound != nullptr;
	}
	if (IsA(stmt, AlterTableStmt))
	{
		ListCell *lc;

		foreach (lc, reinterpret_cast<AlterTableStmt *>(stmt)->cmds)
		{
			AlterTableCmd *cmd = static_cast<AlterTableCmd *>(lfirst(lc));

			if (cmd->subtype == AT_AttachPartition || cmd->subtype == AT_AddInherit)
				return true;
		}
	}
	return false;
}

/* Switch row security on for new children of protected tables. */
void
protect_new_children()
{
	int nest;

	if (!extension_present())
		return;
	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT rustydb._vpd_protect(t.relid) FROM (SELECT DISTINCT p.relid"
					" FROM rustydb.vpd_protected p JOIN pg_class c ON c.oid = p.relid"
					" WHERE EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhparent = p.relid)"
					" AND EXISTS (WITH RECURSIVE tree(r) AS (SELECT p.relid UNION"
					"   SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.r)"
					"   SELECT 1 FROM tree JOIN pg_class k ON k.oid = tree.r"
					"   WHERE NOT (k.relrowsecurity AND k.relforcerowsecurity))) t",
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not protect new partitions");
	SPI_finish();
	AtEOXact_GUC(true, nest);
}

void
xact_callback(XactEvent event)
{
	if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		session().pred.eval_depth = 0;
		session().cache.pin_depth = 0;
		session().stmt.collected_dynamic = NIL;
		set_policy_invoker(InvalidOid);
		session().markers.firing = false;
		explain_reset();
	}
}

} /* namespace */

/* ---- shared with vpd_context.cpp ---- */

Oid
marker_oid(MarkerKind kind)
{
	if (!session().markers.valid)
		load_markers();
	return session().markers.oid[kind];
}

int
marker_kind_of(Oid funcid)
{
	if (!session().markers.valid)
		load_markers();
	for (int k = 0; k < kMarkerCount; k++)
		if (session().markers.oid[k] == funcid && OidIsValid(funcid))
			return k;
	return -1;
}

void
invalidate_marker_plans(MarkerKind kind)
{
	if (!session().markers.valid)
		load_markers();
	if (!OidIsValid(session().markers.oid[kind]))
		return;
	session().markers.firing = true;
	PG_TRY();
	{
		CallSyscacheCallbacks(PROCOID, session().markers.hash[kind]);
	}
	PG_FINALLY();
	{
		session().markers.firing = false;
	}
	PG_END_TRY();
}

bool
relation_has_policies(Oid relid)
{
	return get_entry(relid)->any;
}

bool
relation_under_policies(Oid relid, Oid check_as)
{
	return check_enable_rls(relid, check_as, true) == RLS_ENABLED && relation_has_policies(relid);
}

bool
statement_under_policies(PlannedStmt *ps)
{
	return plan_uses_policies(ps) && !current_user_exempt();
}

bool
current_user_exempt()
{
	Oid role = get_role_oid("rustydb_exempt_access_policy", true);

	return OidIsValid(role) && has_privs_of_role(GetUserId(), role);
}

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

/* ---- hooks ---- */

extern "C" {

static List *vpd_permissive_hook(CmdType cmd, Relation rel) noexcept;
static List *vpd_restrictive_hook(CmdType cmd, Relation rel) noexcept;
static PlannedStmt *vpd_planner(Query *parse, const char *query_string, int cursor_options,
								ParamListInfo bound_params) noexcept;
static void vpd_post_parse(ParseState *pstate, Query *query, JumbleState *jstate) noexcept;
static void vpd_utility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
						ProcessUtilityContext context, ParamListInfo params,
						QueryEnvironment *query_env, DestReceiver *dest,
						QueryCompletion *qc) noexcept;
static void vpd_executor_finish(QueryDesc *query_desc) noexcept;
static void vpd_executor_start(QueryDesc *query_desc, int eflags) noexcept;
static void vpd_relcache_callback(Datum arg, Oid relid) noexcept;
static void vpd_proc_callback(Datum arg, int cacheid, uint32 hashvalue) noexcept;
static void vpd_role_callback(Datum arg, int cacheid, uint32 hashvalue) noexcept;
static void vpd_xact_callback(XactEvent event, void *arg) noexcept;

static List *
vpd_permissive_hook(CmdType cmd, Relation rel) noexcept
{
	return rustydb::boundary::run("vpd_permissive_hook", [&] {
		List *result = prev_permissive ? prev_permissive(cmd, rel) : NIL;

		return list_concat(result, permissive_policies(cmd, rel));
	});
}

static List *
vpd_restrictive_hook(CmdType cmd, Relation rel) noexcept
{
	return rustydb::boundary::run("vpd_restrictive_hook", [&] {
		List *result = prev_restrictive ? prev_restrictive(cmd, rel) : NIL;

		List *volatile mine = NIL;

		session().cache.pin_depth++;
		PG_TRY();
		{
			mine = restrictive_policies(cmd, rel);
		}
		PG_FINALLY();
		{
			session().cache.pin_depth--;
		}
		PG_END_TRY();
		return list_concat(result, mine);
	});
}

static PlannedStmt *
vpd_planner(Query *parse, const char *query_string, int cursor_options,
			ParamListInfo bound_params) noexcept
{
	return rustydb::boundary::run("vpd_planner", [&] {
		List *volatile saved = session().stmt.collected_dynamic;
		MemoryContext volatile copyctx = nullptr;
		Query *volatile copy = nullptr;
		PlannedStmt *volatile ps = nullptr;

		session().stmt.collected_dynamic = NIL;
		PG_TRY();
		{
			if (session().stmt.seen_dynamic)
			{
				MemoryContext old;

				copyctx = AllocSetContextCreate(CurrentMemoryContext, "rustydb vpd dynamic plan",
												ALLOCSET_SMALL_SIZES);
				old = MemoryContextSwitchTo(copyctx);
				copy = copy_node(parse);
				MemoryContextSwitchTo(old);
			}
			(void) walk_queries_impl(reinterpret_cast<Node *>(parse), nullptr);
			if (prev_planner)
				ps = prev_planner(parse, query_string, cursor_options, bound_params);
			else
				ps = standard_planner(parse, query_string, cursor_options, bound_params);
			if (session().stmt.collected_dynamic != NIL && copyctx != nullptr)
				register_plan(ps, session().stmt.collected_dynamic, copyctx, copy, query_string,
							  cursor_options);
			else if (copyctx != nullptr)
				MemoryContextDelete(copyctx);
		}
		PG_FINALLY();
		{
			session().stmt.collected_dynamic = saved;
		}
		PG_END_TRY();
		return static_cast<PlannedStmt *>(ps);
	});
}

static void
vpd_post_parse(ParseState *pstate, Query *query, JumbleState *jstate) noexcept
{
	rustydb::boundary::run("vpd_post_parse", [&] {
		/* a new statement: dynamic predicates computed before it are not fresh */
		session().stmt.exec_counter++;
		context_prepare();
		if (prev_post_parse)
			prev_post_parse(pstate, query, jstate);
	});
}

static void
vpd_utility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
			ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *query_env,
			DestReceiver *dest, QueryCompletion *qc) noexcept
{
	rustydb::boundary::run("vpd_utility", [&] {
		Node *stmt = pstmt->utilityStmt;
		volatile bool child = creates_child(stmt);

		session().stmt.exec_counter++;
		context_prepare();
		check_utility(stmt);
		volatile bool explaining = explain_enter(stmt);
		PG_TRY();
		{
			if (prev_utility)
				prev_utility(pstmt, query_string, read_only_tree, context, params, query_env, dest,
							 qc);
			else
				standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params,
										query_env, dest, qc);
		}
		PG_FINALLY();
		{
			if (explaining)
				explain_leave();
		}
		PG_END_TRY();
		if (child)
			protect_new_children();
	});
}

static void
vpd_executor_start(QueryDesc *query_desc, int eflags) noexcept
{
	rustydb::boundary::run("vpd_executor_start", [&] {
		context_prepare();
		if (session().plans.map != nullptr && hash_get_num_entries(session().plans.map) > 0)
			check_dynamic(query_desc);
		session().stmt.exec_counter++;
		explain_check_start(query_desc);
		if (prev_start)
			prev_start(query_desc, eflags);
		else
			standard_ExecutorStart(query_desc, eflags);
	});
}

static void
vpd_executor_finish(QueryDesc *query_desc) noexcept
{
	rustydb::boundary::run("vpd_executor_finish", [&] {
		if (prev_finish)
			prev_finish(query_desc);
		else
			standard_ExecutorFinish(query_desc);
		if (query_desc->instrument_options != 0 && query_desc->planstate != nullptr &&
			plan_uses_policies(query_desc->plannedstmt) && !current_user_exempt())
			(void) zero_filtered_impl(query_desc->planstate, nullptr);
	});
}

static void
vpd_relcache_callback(Datum arg, Oid relid) noexcept
{
	rustydb::boundary::run("vpd_relcache_callback", [&] { relcache_callback(relid); });
}

static void
vpd_proc_callback(Datum arg, int cacheid, uint32 hashvalue) noexcept
{
	rustydb::boundary::run("vpd_proc_callback", [&] {
		if (session().markers.firing)
			return;
		session().markers.valid = false;
		/* a changed policy function may return another predicate, or have another owner */
		reset_pred_cache();
		if (session().cache.tables != nullptr)
		{
			if (session().cache.pin_depth > 0)
				mark_all_stale();
			else
				reset_rel_cache();
		}
	});
}

static void
vpd_role_callback(Datum arg, int cacheid, uint32 hashvalue) noexcept
{
	/* membership in the exempt role (or BYPASSRLS) changed: no plan may keep an old decision */
	rustydb::boundary::run("vpd_role_callback", [&] { ResetPlanCache(); });
}

static void
vpd_xact_callback(XactEvent event, void *arg) noexcept
{
	rustydb::boundary::run("vpd_xact_callback", [&] { xact_callback(event); });
}

static bool
vpd_walk_queries(Node *node, void *context) noexcept
{
	return rustydb::boundary::run("vpd_walk_queries",
								  [&] { return walk_queries_impl(node, context); });
}

static bool
vpd_replace_walker(Node *node, void *context) noexcept
{
	return rustydb::boundary::run("vpd_replace_walker",
								  [&] { return replace_walker_impl(node, context); });
}

static bool
vpd_zero_filtered(PlanState *ps, void *context) noexcept
{
	return rustydb::boundary::run("vpd_zero_filtered",
								  [&] { return zero_filtered_impl(ps, context); });
}

static Node *
vpd_mask_callback(Var *var, replace_rte_variables_context *context) noexcept
{
	return rustydb::boundary::run("vpd_mask_callback",
								  [&] { return mask_callback_impl(var, context); });
}

static void
vpd_plan_context_reset(void *arg) noexcept
{
	rustydb::boundary::run("vpd_plan_context_reset", [&] { plan_context_reset_impl(arg); });
}

} /* extern "C" */

namespace rustydb {
namespace vpd {

void
policy_init()
{
	session().cache.mcxt =
		AllocSetContextCreate(TopMemoryContext, "rustydb vpd", ALLOCSET_DEFAULT_SIZES);
	session().pred.mcxt =
		AllocSetContextCreate(TopMemoryContext, "rustydb vpd predicates", ALLOCSET_SMALL_SIZES);

	prev_permissive = row_security_policy_hook_permissive;
	row_security_policy_hook_permissive = vpd_permissive_hook;
	prev_restrictive = row_security_policy_hook_restrictive;
	row_security_policy_hook_restrictive = vpd_restrictive_hook;
	prev_planner = planner_hook;
	planner_hook = vpd_planner;
	prev_post_parse = post_parse_analyze_hook;
	post_parse_analyze_hook = vpd_post_parse;
	prev_utility = ProcessUtility_hook;
	ProcessUtility_hook = vpd_utility;
	prev_finish = ExecutorFinish_hook;
	ExecutorFinish_hook = vpd_executor_finish;
	prev_start = ExecutorStart_hook;
	ExecutorStart_hook = vpd_executor_start;

	explain_init();
	CacheRegisterRelcacheCallback(vpd_relcache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(PROCOID, vpd_proc_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHMEMROLEMEM, vpd_role_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(AUTHOID, vpd_role_callback, (Datum) 0);
	RegisterXactCallback(vpd_xact_callback, nullptr);
}

void
init()
{
	policy_init();
	context_init();
}

} /* namespace vpd */
} /* namespace rustydb */

/* ---- SQL functions ---- */

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
	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("relid must not be null")));
	invalidate_policy_relation(fcinfo, "change");
	PG_RETURN_VOID();
}

RUSTYDB_FUNCTION(rustydb_vpd_refresh)
{
	if (PG_ARGISNULL(0))
		ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("relid must not be null")));
	invalidate_policy_relation(fcinfo, "refresh_policy");
	PG_RETURN_VOID();
}

/*-------------------------------------------------------------------------
 *
 * cache.cpp
 *	  VPD: the policy cache, each table's policies read from rustydb's catalog.
 *
 * A table's entry (RelEntry) holds its policies, its driving contexts
 * and its policy groups, its ancestors' included (a policy added to a
 * partitioned or inheritance parent applies to its children). Entries are
 * read with SPI as the bootstrap superuser, with a snapshot taken at that
 * moment, and kept in Session::PolicyCache, at most
 * rustydb.vpd_cache_entries of them. A relcache invalidation of a table
 * (sent by every catalog change through the SQL API) drops its entry and,
 * if it had policies, the predicate caches; while a hook uses entries
 * (pinned), invalidations mark them stale instead, and a stale entry is
 * reloaded once nothing pins it.
 *
 * Also here: the other read of the policy catalog (DDL checks) and the
 * questions the other VPD files ask (does this table have policies?).
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/common/settings.h"
#include "rustydb/vpd/internal.h"
#include "rustydb/vpd/session.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/htup_details.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace vpd {
namespace {

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

} /* namespace */

void
ensure_caches()
{
	HASHCTL ctl;

	if (session().cache.tables == nullptr)
	{
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(RelEntry);
		ctl.hcxt = session().mcxt;
		session().cache.tables =
			hash_create("rustydb vpd tables", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	ensure_predicate_cache();
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
	tmp.mcxt = AllocSetContextCreate(session().mcxt, "rustydb vpd table", ALLOCSET_SMALL_SIZES);
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

Policy *
find_policy(RelEntry *e, int32 id)
{
	for (int i = 0; i < e->npol; i++)
		if (e->pol[i].id == id)
			return &e->pol[i];
	return nullptr;
}

void
pin_policy_cache()
{
	session().cache.pin_depth++;
}

void
unpin_policy_cache()
{
	session().cache.pin_depth--;
}

void
policy_cache_invalidate(Oid relid)
{
	session().cache.inval_counter++;
	if (session().cache.tables == nullptr)
		return;
	if (!OidIsValid(relid))
	{
		policy_cache_invalidate_all();
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

void
policy_cache_invalidate_all()
{
	if (session().cache.tables != nullptr)
	{
		if (session().cache.pin_depth > 0)
			mark_all_stale();
		else
			reset_rel_cache();
	}
}

bool
extension_present()
{
	Oid nsp = get_namespace_oid("rustydb", true);

	return OidIsValid(nsp) && OidIsValid(get_relname_relid("vpd_policy", nsp));
}

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

} /* namespace vpd */
} /* namespace rustydb */

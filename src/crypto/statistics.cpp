/*-------------------------------------------------------------------------
 *
 * statistics.cpp
 *	  What ANALYZE may learn from an encrypted table.
 *
 * ANALYZE stores most-common values, histogram bounds and extended
 * statistics (MCV lists) in pg_statistic and pg_statistic_ext_data,
 * plaintext catalogs, from the sample rows the table access method
 * returns. For an encrypted table the access method returns none unless
 * rustydb.tde_statistics = full:
 *
 * - value_free (the default): the access method keeps its own sample of
 *   the opened rows (the same reservoir ANALYZE keeps), and when the
 *   sample scan ends stores for each column what reveals no value: the
 *   null fraction, the average width, the number of distinct values
 *   (estimated as ANALYZE does) and the correlation of the column's order
 *   with the rows' physical order. No most-common value, histogram bound,
 *   extended or expression statistic is stored. The planner then
 *   estimates an equality on a key as one row, as for a plain table.
 * - none: the rows of the sampled pages are counted (so pg_class.reltuples
 *   stays right) and none is opened: no column statistics, no key needed.
 *
 * Either way the statistics stored before (under full) are deleted by the
 * first such ANALYZE in a transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/common/settings.h"
#include "rustydb/crypto/crypto_internal.h"

#include <cmath>
#include <cstring>

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/detoast.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/heap.h"
#include "catalog/indexing.h"
#include "catalog/pg_statistic.h"
#include "commands/defrem.h"
#include "commands/vacuum.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/pg_list.h"
#include "parser/parse_oper.h"
#include "port.h"
#include "storage/bufmgr.h"
#include "storage/proc.h"
#include "utils/array.h"
#include "utils/attoptcache.h"
#include "utils/memutils.h"
#include "utils/relcache.h"
#include "utils/sampling.h"
#include "utils/sortsupport.h"
#include "utils/syscache.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace crypto {

namespace {

/* the last relation asked about, in which transaction, and the answer */
Oid memo_relid = InvalidOid;
LocalTransactionId memo_lxid = InvalidLocalTransactionId;
AnalyzeSample memo_sample = AnalyzeSample::Rows;

/* Delete rel's column statistics, its indexes' and its extended statistics' data. */
void
remove_statistics(Relation rel)
{
	RemoveStatistics(RelationGetRelid(rel), 0);

	List *indexes = RelationGetIndexList(rel);
	ListCell *lc;
	foreach (lc, indexes)
		RemoveStatistics(lfirst_oid(lc), 0);
	list_free(indexes);

	List *ext = RelationGetStatExtList(rel);
	foreach (lc, ext)
	{
		RemoveStatisticsDataById(lfirst_oid(lc), false);
		RemoveStatisticsDataById(lfirst_oid(lc), true);
	}
	list_free(ext);
}

} /* namespace */

AnalyzeSample
analyze_sample(Relation rel)
{
	Oid relid = RelationGetRelid(rel);

	if (relid == memo_relid && MyProc->lxid == memo_lxid)
		return memo_sample;
	AnalyzeSample sample = AnalyzeSample::Rows;
	if (settings::tde_statistics != settings::kTdeStatisticsFull &&
		OidIsValid(keys_catalog_oid()) && relation_has_keys(relid))
		sample = settings::tde_statistics == settings::kTdeStatisticsValueFree
					 ? AnalyzeSample::ValueFree
					 : AnalyzeSample::Counts;
	if (sample == AnalyzeSample::ValueFree)
	{
		/* without the key the rows cannot be opened: count them, as under none */
		char why[256];
		if (relation_cipher_try(relid, why, sizeof(why)) == nullptr)
		{
			ereport(WARNING,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("no column statistics stored for encrypted table \"%s\"",
							RelationGetRelationName(rel)),
					 errdetail("Its key could not be obtained: %s", why),
					 errhint("Row counts are updated. Column statistics return with the key "
							 "provider; rustydb.tde_statistics = none never needs the key.")));
			sample = AnalyzeSample::Counts;
		}
	}
	memo_relid = relid;
	memo_lxid = MyProc->lxid;
	memo_sample = sample;
	if (sample != AnalyzeSample::Rows)
	{
		remove_statistics(rel);
		/* value_free's rows are written later in this command: make the deletions visible */
		CommandCounterIncrement();
	}
	return sample;
}

/* ------------------------------------------------------------------------
 * Value-free statistics
 * ------------------------------------------------------------------------
 */

struct ValueFreeSample
{
	Relation rel;
	MemoryContext cxt; /* the rows and everything computed from them */
	int targrows;
	int numrows;
	HeapTuple *rows;       /* the sampled rows, too-wide values replaced by nulls */
	ItemPointerData *tids; /* rows[k]'s row (a slot's copy may not keep it) */
	struct Wide **wides;   /* rows[k]'s too-wide values, or nullptr */
	double seen;           /* live rows offered */
	double blocks;         /* blocks sampled, accepted or not */
	double rowstoskip;
	ReservoirStateData rstate;
};

/*
 * A value of a sampled row wider than kWidthThreshold (detoasted): ANALYZE
 * never compares it, only counts it (as distinct) and its width, so the
 * sample keeps that much and not the value. A row's list ends at attnum 0.
 */
struct Wide
{
	int16 attnum;
	int32 width;
};

namespace {

/*
 * Values wider than this (detoasted) are not compared: counted as
 * distinct, as ANALYZE counts them.
 */
constexpr Size kWidthThreshold = 1024;

/* The width of attnum's value in a row whose too-wide values are wides, or -1. */
int32
wide_width(const Wide *wides, int attnum)
{
	for (const Wide *w = wides; w != nullptr && w->attnum != 0; w++)
		if (w->attnum == attnum)
			return w->width;
	return -1;
}

/* The statistics target of an attribute, 0 when it is not analyzed. */
int
column_target(Form_pg_attribute attr)
{
	if (attr->attisdropped)
		return 0;
	return attr->attstattarget < 0 ? default_statistics_target : attr->attstattarget;
}

/* Sample size: ANALYZE's (300 rows per unit of the largest target). */
int
sample_target(TupleDesc desc)
{
	int target = 0;
	for (int i = 0; i < desc->natts; i++)
		target = Max(target, column_target(TupleDescAttr(desc, i)));
	return target > 0 ? 300 * target : 100;
}

void
wipe_free(HeapTuple t)
{
	explicit_bzero(t->t_data, t->t_len);
	heap_freetuple(t);
}

int
compare_tids(const void *a, const void *b, void *arg)
{
	const auto *tids = (const ItemPointerData *) arg;
	return ItemPointerCompare(const_cast<ItemPointer>(&tids[*(const int *) a]),
							  const_cast<ItemPointer>(&tids[*(const int *) b]));
}

struct Item
{
	Datum value;
	int pos; /* rank of the row among the column's compared values, physical order */
};

int
compare_items(const void *a, const void *b, void *arg)
{
	const auto *x = (const Item *) a;
	const auto *y = (const Item *) b;
	int c = ApplySortComparator(x->value, false, y->value, false, (SortSupport) arg);
	return c != 0 ? c : x->pos - y->pos;
}

/* What is stored for one column. */
struct ColumnStats
{
	float4 nullfrac;
	int32 width;
	float4 distinct; /* pg_statistic.stadistinct: 0 unknown, < 0 a fraction of the rows */
	bool has_corr;
	float4 corr;
	Oid ltopr;
	Oid collation;
};

/*
 * One column's statistics from rows (in physical order): the null
 * fraction and average width, and for a type with a default ordering the
 * distinct count (ANALYZE's rules: no repeated value, a unique column;
 * every value repeated, exactly those values; else the Haas-Stokes Duj1
 * estimate, as a fraction of the rows when above 10% of them) and the
 * correlation of the values' order with the rows' order.
 */
ColumnStats
column_stats(Form_pg_attribute attr, int attnum, TupleDesc desc, HeapTuple *rows,
			 Wide *const *wides, int numrows, double totalrows)
{
	ColumnStats out{};
	bool is_varlena = !attr->attbyval && attr->attlen == -1;
	bool is_varwidth = !attr->attbyval && attr->attlen < 0;
	Oid ltopr = InvalidOid;
	Oid eqopr = InvalidOid;
	get_sort_group_operators(attr->atttypid, false, false, false, &ltopr, &eqopr, nullptr, nullptr);
	bool sortable = OidIsValid(ltopr) && OidIsValid(eqopr);

	auto *items = (Item *) palloc(Max(numrows, 1) * sizeof(Item));
	int nitems = 0;
	int nulls = 0;
	int toowide = 0;
	double width = 0;
	for (int r = 0; r < numrows; r++)
	{
		int32 wide = is_varlena ? wide_width(wides[r], attnum) : -1;
		if (wide >= 0)
		{
			width += wide;
			if (sortable)
				toowide++;
			continue;
		}
		bool isnull;
		Datum value = heap_getattr(rows[r], attnum, desc, &isnull);
		if (isnull)
		{
			nulls++;
			continue;
		}
		if (is_varlena)
		{
			width += VARSIZE_ANY(DatumGetPointer(value));
			if (!sortable)
				continue;
			value = PointerGetDatum(PG_DETOAST_DATUM(value));
		}
		else if (is_varwidth)
			width += strlen(DatumGetCString(value)) + 1;
		if (sortable)
		{
			items[nitems].value = value;
			items[nitems].pos = nitems;
			nitems++;
		}
	}

	int nonnull = numrows - nulls;
	out.nullfrac = numrows > 0 ? (double) nulls / numrows : 0;
	out.width = !is_varwidth ? attr->attlen : nonnull > 0 ? (int32) (width / nonnull) : 0;
	/* unknown for nulls only, unique for too-wide values only (ANALYZE's rules) */
	out.distinct = toowide > 0 ? -1.0 * (1.0 - out.nullfrac) : 0;
	if (nitems == 0)
	{
		pfree(items);
		return out;
	}

	SortSupportData ssup;
	memset(&ssup, 0, sizeof(ssup));
	ssup.ssup_cxt = CurrentMemoryContext;
	ssup.ssup_collation = attr->attcollation;
	ssup.ssup_nulls_first = false;
	ssup.abbreviate = false;
	PrepareSortSupportFromOrderingOp(ltopr, &ssup);
	qsort_interruptible(items, nitems, sizeof(Item), compare_items, &ssup);

	int ndistinct = 0;
	int nmultiple = 0;
	double xysum = 0;
	int run = 0;
	for (int i = 0; i < nitems; i++)
	{
		xysum += (double) i * (double) items[i].pos;
		run++;
		bool last = i + 1 == nitems || ApplySortComparator(items[i].value, false,
														   items[i + 1].value, false, &ssup) != 0;
		if (last)
		{
			ndistinct++;
			if (run > 1)
				nmultiple++;
			run = 0;
		}
	}

	if (nmultiple == 0)
		out.distinct = -1.0 * (1.0 - out.nullfrac);
	else if (toowide == 0 && nmultiple == ndistinct)
		out.distinct = ndistinct;
	else
	{
		int f1 = ndistinct - nmultiple + toowide;
		int d = f1 + nmultiple;
		double n = nonnull;
		double N = totalrows * (1.0 - out.nullfrac);
		double est = N > 0 ? (n * d) / ((n - f1) + f1 * n / N) : 0;
		est = Min(Max(est, (double) d), N);
		out.distinct = floor(est + 0.5);
	}
	if (out.distinct > 0.1 * totalrows)
		out.distinct = -(out.distinct / totalrows);

	if (nitems > 1)
	{
		double n = nitems;
		double xsum = (n - 1) * n / 2.0;
		double x2sum = (n - 1) * n * (2 * n - 1) / 6.0;
		out.has_corr = true;
		out.corr = (n * xysum - xsum * xsum) / (n * x2sum - xsum * xsum);
		out.ltopr = ltopr;
		out.collation = attr->attcollation;
	}
	pfree(items);
	return out;
}

/* Insert or replace rel's pg_statistic row of attnum (not inherited). */
void
store_column(Relation sd, Oid relid, int16 attnum, const ColumnStats &cs)
{
	Datum values[Natts_pg_statistic];
	bool nulls[Natts_pg_statistic];
	bool replaces[Natts_pg_statistic];
	for (int i = 0; i < Natts_pg_statistic; i++)
	{
		values[i] = (Datum) 0;
		nulls[i] = false;
		replaces[i] = true;
	}
	values[Anum_pg_statistic_starelid - 1] = ObjectIdGetDatum(relid);
	values[Anum_pg_statistic_staattnum - 1] = Int16GetDatum(attnum);
	values[Anum_pg_statistic_stainherit - 1] = BoolGetDatum(false);
	values[Anum_pg_statistic_stanullfrac - 1] = Float4GetDatum(cs.nullfrac);
	values[Anum_pg_statistic_stawidth - 1] = Int32GetDatum(cs.width);
	values[Anum_pg_statistic_stadistinct - 1] = Float4GetDatum(cs.distinct);
	for (int k = 0; k < STATISTIC_NUM_SLOTS; k++)
	{
		bool corr = k == 0 && cs.has_corr;
		values[Anum_pg_statistic_stakind1 - 1 + k] =
			Int16GetDatum(corr ? STATISTIC_KIND_CORRELATION : 0);
		values[Anum_pg_statistic_staop1 - 1 + k] = ObjectIdGetDatum(corr ? cs.ltopr : InvalidOid);
		values[Anum_pg_statistic_stacoll1 - 1 + k] =
			ObjectIdGetDatum(corr ? cs.collation : InvalidOid);
		if (corr)
		{
			Datum number = Float4GetDatum(cs.corr);
			values[Anum_pg_statistic_stanumbers1 - 1 + k] = PointerGetDatum(
				construct_array(&number, 1, FLOAT4OID, sizeof(float4), true, TYPALIGN_INT));
		}
		else
			nulls[Anum_pg_statistic_stanumbers1 - 1 + k] = true;
		/* never a value: that is the point */
		nulls[Anum_pg_statistic_stavalues1 - 1 + k] = true;
	}

	HeapTuple old = SearchSysCache3(STATRELATTINH, ObjectIdGetDatum(relid), Int16GetDatum(attnum),
									BoolGetDatum(false));
	HeapTuple tup;
	if (HeapTupleIsValid(old))
	{
		tup = heap_modify_tuple(old, RelationGetDescr(sd), values, nulls, replaces);
		ReleaseSysCache(old);
		CatalogTupleUpdate(sd, &tup->t_self, tup);
	}
	else
	{
		tup = heap_form_tuple(RelationGetDescr(sd), values, nulls);
		CatalogTupleInsert(sd, tup);
	}
	heap_freetuple(tup);
}

/*
 * Keep the row in slot as the sample's row k. The scan left the large
 * values of a row that has them sealed (ScanDesc.values_deferred): those
 * stored inline are opened here, and those out of line, which a row only
 * has when they are larger than TOAST's threshold, are counted as too wide
 * without being fetched or opened (so ANALYZE never reads an encrypted
 * table's large values, and the sample holds no more than heap's would).
 */
void
keep_row(ValueFreeSample *vf, TupleTableSlot *slot, int k)
{
	TupleDesc desc = RelationGetDescr(vf->rel);
	HeapTuple row = ExecFetchSlotHeapTuple(slot, false, nullptr);
	bool sealed = (row->t_data->t_infomask2 & kValuesSealed) != 0;
	HeapTuple opened = row;
	if (sealed)
		opened = open_values(relation_cipher(vf->rel), desc, row,
							 ItemPointerGetBlockNumber(&slot->tts_tid), true);

	int natts = desc->natts;
	auto *values = (Datum *) palloc(natts * sizeof(Datum));
	auto *nulls = (bool *) palloc(natts * sizeof(bool));
	heap_deform_tuple(opened, desc, values, nulls);
	Wide *wides = nullptr;
	int nwides = 0;
	for (int i = 0; i < natts; i++)
	{
		Form_pg_attribute attr = TupleDescAttr(desc, i);
		if (nulls[i] || attr->attlen != -1 || column_target(attr) == 0)
			continue;
		struct varlena *v = (struct varlena *) DatumGetPointer(values[i]);
		if (!(sealed && VARATT_IS_EXTERNAL_ONDISK(v)) &&
			toast_raw_datum_size(values[i]) <= kWidthThreshold)
			continue;
		if (wides == nullptr)
			wides = (Wide *) palloc((natts + 1) * sizeof(Wide));
		wides[nwides].attnum = attr->attnum;
		wides[nwides].width = VARSIZE_ANY(v);
		nwides++;
		nulls[i] = true;
	}
	if (wides != nullptr)
		wides[nwides].attnum = 0;
	vf->rows[k] = heap_form_tuple(desc, values, nulls);
	vf->tids[k] = slot->tts_tid;
	vf->wides[k] = wides;
	if (opened != row)
		wipe_free(opened);
	pfree(values);
	pfree(nulls);
}

} /* namespace */

ValueFreeSample *
value_free_begin(Relation rel)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext, "rustydb value-free sample",
											  ALLOCSET_DEFAULT_SIZES);
	auto *vf = (ValueFreeSample *) MemoryContextAllocZero(cxt, sizeof(ValueFreeSample));
	vf->rel = rel;
	vf->cxt = cxt;
	vf->targrows = sample_target(RelationGetDescr(rel));
	vf->rows = (HeapTuple *) MemoryContextAlloc(cxt, vf->targrows * sizeof(HeapTuple));
	vf->tids = (ItemPointerData *) MemoryContextAlloc(cxt, vf->targrows * sizeof(ItemPointerData));
	vf->wides = (Wide **) MemoryContextAlloc(cxt, vf->targrows * sizeof(Wide *));
	vf->rowstoskip = -1;
	reservoir_init_selection_state(&vf->rstate, vf->targrows);
	return vf;
}

void
value_free_block(ValueFreeSample *vf)
{
	vf->blocks += 1;
}

void
value_free_row(ValueFreeSample *vf, TupleTableSlot *slot)
{
	int k = -1;
	if (vf->numrows < vf->targrows)
		k = vf->numrows++;
	else
	{
		/* ANALYZE's reservoir (Vitter): every row seen so far equally likely kept */
		if (vf->rowstoskip < 0)
			vf->rowstoskip = reservoir_get_next_S(&vf->rstate, vf->seen, vf->targrows);
		if (vf->rowstoskip <= 0)
		{
			k = (int) (vf->targrows * sampler_random_fract(&vf->rstate.randstate));
			Assert(k >= 0 && k < vf->targrows);
			wipe_free(vf->rows[k]);
			if (vf->wides[k] != nullptr)
				pfree(vf->wides[k]);
		}
		vf->rowstoskip -= 1;
	}
	if (k >= 0)
	{
		MemoryContext old = MemoryContextSwitchTo(vf->cxt);
		keep_row(vf, slot, k);
		MemoryContextSwitchTo(old);
	}
	vf->seen += 1;
}

void
value_free_end(ValueFreeSample *vf)
{
	Relation rel = vf->rel;
	TupleDesc desc = RelationGetDescr(rel);
	MemoryContext old = MemoryContextSwitchTo(vf->cxt);

	/* the rows in physical order, for the correlations */
	auto *order = (int *) palloc(Max(vf->numrows, 1) * sizeof(int));
	for (int i = 0; i < vf->numrows; i++)
		order[i] = i;
	qsort_interruptible(order, vf->numrows, sizeof(int), compare_tids, vf->tids);
	auto *rows = (HeapTuple *) palloc(Max(vf->numrows, 1) * sizeof(HeapTuple));
	auto *wides = (Wide **) palloc(Max(vf->numrows, 1) * sizeof(Wide *));
	for (int i = 0; i < vf->numrows; i++)
	{
		rows[i] = vf->rows[order[i]];
		wides[i] = vf->wides[order[i]];
	}

	/* ANALYZE's estimate of the live rows: the sampled blocks' density */
	BlockNumber nblocks = RelationGetNumberOfBlocks(rel);
	double totalrows = vf->blocks > 0 ? floor(vf->seen / vf->blocks * nblocks + 0.5) : 0;

	if (vf->numrows > 0)
	{
		Relation sd = table_open(StatisticRelationId, RowExclusiveLock);
		MemoryContext colcxt =
			AllocSetContextCreate(vf->cxt, "rustydb value-free column", ALLOCSET_DEFAULT_SIZES);
		for (int i = 0; i < desc->natts; i++)
		{
			Form_pg_attribute attr = TupleDescAttr(desc, i);
			if (column_target(attr) == 0)
				continue;
			vacuum_delay_point();
			MemoryContextSwitchTo(colcxt);
			ColumnStats cs = column_stats(attr, i + 1, desc, rows, wides, vf->numrows, totalrows);
			AttributeOpts *aopt = get_attribute_options(RelationGetRelid(rel), attr->attnum);
			if (aopt != nullptr && aopt->n_distinct != 0.0)
				cs.distinct = aopt->n_distinct;
			store_column(sd, RelationGetRelid(rel), attr->attnum, cs);
			MemoryContextSwitchTo(vf->cxt);
			MemoryContextReset(colcxt);
		}
		table_close(sd, RowExclusiveLock);
	}

	MemoryContextSwitchTo(old);
	for (int i = 0; i < vf->numrows; i++)
		wipe_free(vf->rows[i]);
	MemoryContextDelete(vf->cxt);
}

} /* namespace crypto */
} /* namespace rustydb */

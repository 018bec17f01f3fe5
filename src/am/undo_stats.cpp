/*-------------------------------------------------------------------------
 *
 * undo_stats.cpp
 *	  Per-table counters of the in-place update path and its undo store
 *	  (undo_stats.h) and the rows of the view rustydb.undo_stats
 *	  (docs/storage.md, "The bound"; docs/am.md).
 *
 * Shared memory ("rustydb undo stats", in rustydb.memory): an open-
 * addressing hash table of (database, table) entries with linear probing,
 * twice as many slots as rustydb.undo_stats_tables entries may be used,
 * so a probe always ends at an empty slot, plus one overflow entry that
 * takes the events of tables that found the table full. One LWLock
 * guards the keys: counting takes it shared (an entry's counters are
 * atomics), adding or removing an entry takes it exclusively. Entries of
 * dropped tables and databases are removed by the object-access hook
 * (undo_store.cpp);
 * everything is reset at server start and by rustydb.reset_undo_stats().
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/am/undo_stats.h"

#include "rustydb/am/undo_store.h"
#include "rustydb/common/boundary.h"
#include "rustydb/common/settings.h"
#include "rustydb/common/shmem.h"
#include "rustydb/storage/undo.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "commands/defrem.h"
#include "common/hashfn.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/lmgr.h"
#include "storage/lwlock.h"
#include "utils/acl.h"
#include "utils/tuplestore.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb::am {

namespace {

constexpr int kEvents = static_cast<int>(UndoEvent::Count_);

struct Entry
{
	uint64 key; /* (database << 32) | table; 0: free slot. Under the lock. */
	pg_atomic_uint64 counters[kEvents];
};

struct Shared
{
	LWLock *lock;
	uint32 nslots;    /* a power of two, >= 2 * limit */
	int32 limit;      /* rustydb.undo_stats_tables at start-up */
	int32 used;       /* slots in use (under the lock) */
	int32 high_water; /* the most slots used since start-up */
	Entry overflow;   /* events of tables that found the table full */
	Entry slots[FLEXIBLE_ARRAY_MEMBER];
};

Shared *the_shared = nullptr;

uint32
slot_count()
{
	uint32 n = 1;
	while (n < 2 * (uint32) settings::undo_stats_tables)
		n <<= 1;
	return n;
}

Size
segment_size()
{
	return add_size(offsetof(Shared, slots), mul_size(slot_count(), sizeof(Entry)));
}

void
clear_entry(Entry *e)
{
	e->key = 0;
	for (pg_atomic_uint64 &c : e->counters)
		pg_atomic_init_u64(&c, 0);
}

void
segment_init(void *ptr, bool found, LWLockPadded *locks)
{
	Shared *sh = static_cast<Shared *>(ptr);
	the_shared = sh;
	if (found)
		return;
	sh->lock = &locks[0].lock;
	sh->nslots = slot_count();
	sh->limit = settings::undo_stats_tables;
	sh->used = 0;
	sh->high_water = 0;
	clear_entry(&sh->overflow);
	for (uint32 i = 0; i < sh->nslots; i++)
		clear_entry(&sh->slots[i]);
}

void
segment_usage(const void *ptr, shmem::Usage *out)
{
	const Shared *sh = static_cast<const Shared *>(ptr);
	out->entries = sh->used;
	out->limit = sh->limit;
	out->high_water = sh->high_water;
	out->limit_setting = "rustydb.undo_stats_tables";
}

uint64
key_of(Oid dbid, Oid relid)
{
	return ((uint64) dbid << 32) | relid;
}

uint32
home_of(const Shared *sh, uint64 key)
{
	uint32 h = hash_combine(murmurhash32((uint32) (key >> 32)), murmurhash32((uint32) key));
	return h & (sh->nslots - 1);
}

/* The slot holding key, or the empty slot where it would go (under the lock). */
uint32
probe(const Shared *sh, uint64 key)
{
	uint32 mask = sh->nslots - 1;
	uint32 i = home_of(sh, key);
	while (sh->slots[i].key != 0 && sh->slots[i].key != key)
		i = (i + 1) & mask;
	return i;
}

void
add(Entry *e, UndoEvent ev, uint64 n)
{
	pg_atomic_fetch_add_u64(&e->counters[static_cast<int>(ev)], (int64) n);
}

void
move_entry(Entry *to, Entry *from)
{
	to->key = from->key;
	for (int c = 0; c < kEvents; c++)
		pg_atomic_write_u64(&to->counters[c], pg_atomic_read_u64(&from->counters[c]));
	clear_entry(from);
}

/* Remove the entry in slot i, moving later entries of its probe run back (lock exclusive). */
void
remove_slot(Shared *sh, uint32 i)
{
	uint32 mask = sh->nslots - 1;
	clear_entry(&sh->slots[i]);
	sh->used--;
	for (uint32 j = (i + 1) & mask; sh->slots[j].key != 0; j = (j + 1) & mask)
	{
		uint32 home = home_of(sh, sh->slots[j].key);
		/* the entry at j may move to i unless its home lies cyclically in (i, j] */
		bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
		if (!stays)
		{
			move_entry(&sh->slots[i], &sh->slots[j]);
			i = j;
		}
	}
}

} /* namespace */

void
undo_count(Oid relid, UndoEvent ev, uint64 n)
{
	Shared *sh = the_shared;
	if (sh == nullptr || n == 0 || !OidIsValid(relid) || static_cast<int>(ev) < 0 ||
		static_cast<int>(ev) >= kEvents)
		return;
	uint64 key = key_of(MyDatabaseId, relid);

	LWLockAcquire(sh->lock, LW_SHARED);
	uint32 i = probe(sh, key);
	if (sh->slots[i].key == key)
	{
		add(&sh->slots[i], ev, n);
		LWLockRelease(sh->lock);
		return;
	}
	LWLockRelease(sh->lock);

	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	i = probe(sh, key);
	Entry *e = &sh->slots[i];
	if (e->key != key)
	{
		if (sh->used < sh->limit)
		{
			e->key = key; /* the slot is empty: its counters are 0 */
			sh->used++;
			sh->high_water = Max(sh->high_water, sh->used);
		}
		else
			e = &sh->overflow;
	}
	add(e, ev, n);
	LWLockRelease(sh->lock);
}

void
undo_stats_forget(Oid relid)
{
	Shared *sh = the_shared;
	if (sh == nullptr || !OidIsValid(relid))
		return;
	uint64 key = key_of(MyDatabaseId, relid);
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	uint32 i = probe(sh, key);
	if (sh->slots[i].key == key)
		remove_slot(sh, i);
	LWLockRelease(sh->lock);
}

void
undo_stats_forget_database(Oid dbid)
{
	Shared *sh = the_shared;
	if (sh == nullptr)
		return;
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	/* a removal may move a later entry of a wrapped probe run before i: scan until none goes */
	for (bool removed = true; removed;)
	{
		removed = false;
		for (uint32 i = 0; i < sh->nslots; i++)
			while (sh->slots[i].key != 0 && (Oid) (sh->slots[i].key >> 32) == dbid)
			{
				remove_slot(sh, i);
				removed = true;
			}
	}
	LWLockRelease(sh->lock);
}

void
register_undo_stats()
{
	shmem::register_segment({"rustydb undo stats", segment_size, 1, segment_init, segment_usage});
}

} /* namespace rustydb::am */

namespace {

using rustydb::am::Entry;
using rustydb::am::kEvents;

/* One row of the view: a table's counters (zero when it has no entry) and its store. */
struct StatsRow
{
	Oid relid; /* InvalidOid: the overflow entry */
	uint64 counters[kEvents];
	bool has_counters;
	char persistence;
	bool is_table; /* a rustydb table of this database (not only a counter entry) */
};

/* Copies of this database's entries and of the overflow entry (last), palloc'd. */
StatsRow *
copy_entries(int *n)
{
	rustydb::am::Shared *sh = rustydb::am::the_shared;
	*n = 0;
	if (sh == nullptr)
		return nullptr;
	auto *rows = static_cast<StatsRow *>(palloc0(sizeof(StatsRow) * (sh->limit + 1)));
	LWLockAcquire(sh->lock, LW_SHARED);
	for (uint32 i = 0; i < sh->nslots && *n < sh->limit; i++)
	{
		const Entry *e = &sh->slots[i];
		if (e->key == 0 || (Oid) (e->key >> 32) != MyDatabaseId)
			continue;
		StatsRow *r = &rows[(*n)++];
		r->relid = (Oid) e->key;
		r->has_counters = true;
		for (int c = 0; c < kEvents; c++)
			r->counters[c] = pg_atomic_read_u64(const_cast<pg_atomic_uint64 *>(&e->counters[c]));
	}
	StatsRow *o = &rows[*n];
	for (int c = 0; c < kEvents; c++)
	{
		o->counters[c] = pg_atomic_read_u64(&sh->overflow.counters[c]);
		o->has_counters = o->has_counters || o->counters[c] != 0;
	}
	LWLockRelease(sh->lock);
	if (o->has_counters)
		(*n)++;
	return rows;
}

/*
 * The store's metapage of a table, into *meta: false when the table has
 * no store, its store has no metapage yet, is another session's temporary
 * store, or is locked exclusively right now (the view never waits).
 */
bool
read_store_meta(Oid relid, char persistence, Oid relnamespace, rustydb::storage::UndoMetaData *meta)
{
	if (persistence == RELPERSISTENCE_TEMP && !isTempNamespace(relnamespace))
		return false; /* its pages are in another backend's local buffers */
	Oid undo = rustydb::am::undo_relation_of(relid, persistence);
	if (!OidIsValid(undo) || !ConditionalLockRelationOid(undo, AccessShareLock))
		return false;
	Relation rel = try_relation_open(undo, NoLock);
	bool ok = false;
	if (rel != nullptr)
	{
		if (RelationGetNumberOfBlocks(rel) > 0)
		{
			Buffer buf = ReadBuffer(rel, rustydb::storage::kUndoMetaBlock);
			LockBuffer(buf, BUFFER_LOCK_SHARE);
			const rustydb::storage::UndoMetaData *m =
				rustydb::storage::undo_meta_get(BufferGetPage(buf), nullptr);
			if (m != nullptr)
			{
				*meta = *m;
				ok = true;
			}
			UnlockReleaseBuffer(buf);
		}
		relation_close(rel, NoLock);
	}
	UnlockRelationOid(undo, AccessShareLock);
	return ok;
}

void
put_row(ReturnSetInfo *rsinfo, const StatsRow &r, bool with_store, Oid relnamespace)
{
	constexpr int kCols = 5 + kEvents;
	Datum values[kCols] = {0};
	bool nulls[kCols];
	for (bool &b : nulls)
		b = true;
	if (OidIsValid(r.relid))
	{
		values[0] = ObjectIdGetDatum(r.relid);
		nulls[0] = false;
	}
	rustydb::storage::UndoMetaData meta;
	if (with_store && read_store_meta(r.relid, r.persistence, relnamespace, &meta))
	{
		values[1] = Int64GetDatum((int64) meta.capacity * BLCKSZ);
		values[2] = Int64GetDatum((int64) rustydb::storage::undo_pages_in_use(&meta) * BLCKSZ);
		values[3] = Int64GetDatum((int64) meta.insert);
		values[4] = Int64GetDatum((int64) meta.discard);
		for (int i = 1; i < 5; i++)
			nulls[i] = false;
		nulls[3] = meta.insert == rustydb::storage::kInvalidUndoPtr;
	}
	for (int c = 0; c < kEvents; c++)
	{
		values[5 + c] = Int64GetDatum((int64) r.counters[c]);
		nulls[5 + c] = false;
	}
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

} /* namespace */

/*
 * rustydb._undo_stats(): the rows of rustydb.undo_stats. Every rustydb
 * table of this database that has an undo store or a counter entry, then
 * entries of tables that are no rustydb table any more, then the overflow
 * entry (relid NULL) when it counted anything.
 */
RUSTYDB_FUNCTION(rustydb_undo_stats)
{
	ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
	InitMaterializedSRF(fcinfo, 0);

	int nentries = 0;
	StatsRow *entries = copy_entries(&nentries);
	Oid am = get_table_am_oid("rustydb", true);

	Relation classrel = table_open(RelationRelationId, AccessShareLock);
	SysScanDesc scan = systable_beginscan(classrel, InvalidOid, false, nullptr, 0, nullptr);
	for (HeapTuple tup; OidIsValid(am) && HeapTupleIsValid(tup = systable_getnext(scan));)
	{
		auto *form = reinterpret_cast<Form_pg_class>(GETSTRUCT(tup));
		if (form->relkind != RELKIND_RELATION || form->relam != am)
			continue;
		StatsRow row;
		memset(&row, 0, sizeof(row));
		row.relid = form->oid;
		row.persistence = form->relpersistence;
		for (int i = 0; i < nentries; i++)
			if (entries[i].relid == form->oid)
			{
				row = entries[i];
				row.persistence = form->relpersistence;
				entries[i].is_table = true;
				break;
			}
		bool has_store = OidIsValid(rustydb::am::undo_relation_of(form->oid, form->relpersistence));
		if (has_store || row.has_counters)
			put_row(rsinfo, row, has_store, form->relnamespace);
	}
	systable_endscan(scan);
	table_close(classrel, AccessShareLock);

	for (int i = 0; i < nentries; i++)
		if (!entries[i].is_table)
			put_row(rsinfo, entries[i], false, InvalidOid);
	return (Datum) 0;
}

/*
 * rustydb.reset_undo_stats(rel regclass): forget the counters of one
 * table; rustydb.reset_undo_stats(): of every table and the overflow
 * entry (superuser).
 */
RUSTYDB_FUNCTION(rustydb_reset_undo_stats)
{
	rustydb::am::Shared *sh = rustydb::am::the_shared;
	if (!superuser())
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						errmsg("must be superuser to reset rustydb.undo_stats")));
	if (PG_NARGS() > 0)
	{
		rustydb::am::undo_stats_forget(PG_GETARG_OID(0));
		PG_RETURN_VOID();
	}
	if (sh == nullptr)
		PG_RETURN_VOID();
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	for (uint32 i = 0; i < sh->nslots; i++)
		rustydb::am::clear_entry(&sh->slots[i]);
	rustydb::am::clear_entry(&sh->overflow);
	sh->used = 0;
	LWLockRelease(sh->lock);
	PG_RETURN_VOID();
}

/*-------------------------------------------------------------------------
 *
 * undo_store.cpp
 *	  The undo store's companion relation: created with each rustydb
 *	  table, found by name, dropped with the table by the object-access
 *	  hook (docs/storage.md, "Where the undo store lives").
 *
 * rustydb.create_undo(regclass) gives one to a table that has none
 * (created before this version, or converted with ALTER TABLE ... SET
 * ACCESS METHOD); rustydb.undo_relation(regclass) names it.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/am/undo_store.h"
#include "rustydb/am/am.h"
#include "rustydb/am/inplace.h"

#include "rustydb/am/undo_stats.h"

#include "rustydb/common/boundary.h"
#include "rustydb/common/settings.h"
#include "rustydb/crypto/crypto.h"
#include "rustydb/storage/undo.h"
#include "rustydb/wal/records.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/table.h"
#include "catalog/dependency.h"
#include "catalog/heap.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "catalog/pg_database.h"
#include "catalog/pg_namespace.h"
#include "commands/defrem.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"
#include "catalog/pg_am.h"
#include "catalog/pg_authid.h"
#include "funcapi.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb::am {

namespace {

/* The fields of a pg_class row this file needs. */
struct ClassRow
{
	char relkind;
	char relpersistence;
	Oid relam;
	Oid relowner;
	Oid relnamespace;
};

/* The pg_class row of relid, including one made by the current command (SnapshotSelf). */
bool
class_row(Oid relid, ClassRow *out)
{
	Relation rel = table_open(RelationRelationId, AccessShareLock);
	ScanKeyData key;
	bool found = false;

	ScanKeyInit(&key, Anum_pg_class_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	SysScanDesc scan = systable_beginscan(rel, ClassOidIndexId, true, SnapshotSelf, 1, &key);
	HeapTuple tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		auto *form = reinterpret_cast<Form_pg_class>(GETSTRUCT(tup));
		out->relkind = form->relkind;
		out->relpersistence = form->relpersistence;
		out->relam = form->relam;
		out->relowner = form->relowner;
		out->relnamespace = form->relnamespace;
		found = true;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

void
undo_name(Oid relid, char *name)
{
	snprintf(name, NAMEDATALEN, "rustydb_undo_%u", relid);
}

/* Does this row describe a table that has (or should have) a store? */
bool
wants_store(const ClassRow &row)
{
	Oid am = get_table_am_oid("rustydb", true);
	return row.relkind == RELKIND_RELATION && OidIsValid(am) && row.relam == am;
}

} /* namespace */

namespace {

/*
 * The namespace of a store: pg_toast, or for a temporary table the toast
 * namespace of its own temporary namespace (pg_temp_N: pg_toast_temp_N),
 * also when another backend (autovacuum removing orphans) asks.
 */
Oid
undo_namespace(Oid relnamespace, char persistence)
{
	if (persistence != RELPERSISTENCE_TEMP)
		return PG_TOAST_NAMESPACE;
	const char *nspname = get_namespace_name(relnamespace);
	if (nspname == nullptr || strncmp(nspname, "pg_temp_", 8) != 0)
		return InvalidOid;
	return get_namespace_oid(psprintf("pg_toast_temp_%s", nspname + 8), true);
}

Oid
undo_relation_in(Oid relid, Oid nsp)
{
	if (!OidIsValid(nsp))
		return InvalidOid;
	char name[NAMEDATALEN];
	undo_name(relid, name);
	return get_relname_relid(name, nsp);
}

} /* namespace */

Oid
undo_relation_of(Oid relid, char persistence)
{
	Oid nsp = persistence == RELPERSISTENCE_TEMP
				  ? undo_namespace(get_rel_namespace(relid), persistence)
				  : PG_TOAST_NAMESPACE;
	return undo_relation_in(relid, nsp);
}

Oid
create_undo_relation(Oid relid)
{
	ClassRow row;
	if (!class_row(relid, &row) || !wants_store(row))
	{
		const char *name = get_rel_name(relid);
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
						errmsg("\"%s\" is not a rustydb table", name != nullptr ? name : "?"),
						errhint("Undo stores belong to tables created USING rustydb.")));
	}
	Oid nsp = undo_namespace(row.relnamespace, row.relpersistence);
	if (!OidIsValid(nsp))
		elog(ERROR, "rustydb: no toast namespace for the undo store of relation %u", relid);
	Oid existing = undo_relation_in(relid, nsp);
	if (OidIsValid(existing))
		return existing;

	Oid am = get_table_am_oid("rustydb_undo", false);
	char name[NAMEDATALEN];
	undo_name(relid, name);

	/*
	 * relkind 't': no row type, not in database-wide VACUUM/ANALYZE or
	 * relkind 'r' lists, and like a TOAST table no pg_depend or pg_shdepend
	 * entry at all: the store goes with its table through hook_object_access
	 * below, as an internal deletion that event triggers do not report.
	 * Owned by the bootstrap superuser (only rustydb's code reads it), in
	 * the database's default tablespace whatever the table's, so a store
	 * never keeps a tablespace from being dropped after its table moved.
	 */
	TupleDesc desc = CreateTemplateTupleDesc(0);
	Oid undo = heap_create_with_catalog(name, nsp, InvalidOid, InvalidOid, InvalidOid, InvalidOid,
										BOOTSTRAP_SUPERUSERID, am, desc, NIL, RELKIND_TOASTVALUE,
										row.relpersistence, false, false, ONCOMMIT_NOOP, (Datum) 0,
										false, true, true, InvalidOid, nullptr);
	CommandCounterIncrement();
	return undo;
}

/* ------------------------------------------------------------------------
 * The store's metapage and ring
 * ------------------------------------------------------------------------
 */

Relation
undo_open(Relation table, LOCKMODE mode)
{
	Oid undo = undo_relation_of(RelationGetRelid(table), table->rd_rel->relpersistence);
	return OidIsValid(undo) ? table_open(undo, mode) : nullptr;
}

namespace {

/* ERROR: the store's page blkno is not what it should be. */
[[noreturn]] void
undo_corrupted(Relation undo, BlockNumber blkno, const char *why)
{
	ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
					errmsg("invalid rustydb undo page in block %u of relation \"%s\"", blkno,
						   RelationGetRelationName(undo)),
					errdetail("%s.", why)));
}

/* Ring capacity in pages for a size in MB; at least 2 (insert page and one more). */
uint32
capacity_for_mb(int64 mb)
{
	Assert(mb > 0);
	uint64 pages = (uint64) mb * (1024 * 1024 / BLCKSZ);
	return (uint32) Max((uint64) 2, Min(pages, (uint64) storage::kUndoMaxCapacity));
}

/* Ring capacity in pages for rustydb.undo_max_size. */
uint32
capacity_for_setting()
{
	return capacity_for_mb(settings::undo_max_size);
}

void
log_undo(Relation undo, const wal::XlUndo &xl, Buffer meta, Buffer page, uint8 meta_flags)
{
	if (!RelationNeedsWAL(undo))
		return;
	XLogBeginInsert();
	XLogRegisterData((char *) &xl, sizeof(xl));
	XLogRegisterBuffer(0, meta, REGBUF_STANDARD | meta_flags);
	if (BufferIsValid(page))
		XLogRegisterBuffer(1, page, REGBUF_WILL_INIT | REGBUF_STANDARD);
	XLogRecPtr recptr = XLogInsert(RUSTYDB_RMGR_ID, wal::kUndo);
	PageSetLSN(BufferGetPage(meta), recptr);
	if (BufferIsValid(page))
		PageSetLSN(BufferGetPage(page), recptr);
}

wal::XlUndo
undo_record(uint8 sub)
{
	wal::XlUndo xl;
	memset(&xl, 0, sizeof(xl));
	xl.version = wal::kWalFormatVersion;
	xl.sub = sub;
	return xl;
}

/* The metapage, locked in mode, checked. */
Buffer
lock_meta(Relation undo, int mode, storage::UndoMetaData **meta)
{
	Buffer buf = ReadBuffer(undo, storage::kUndoMetaBlock);
	LockBuffer(buf, mode);
	const char *why = nullptr;
	if (storage::undo_meta_get(BufferGetPage(buf), &why) == nullptr)
	{
		UnlockReleaseBuffer(buf);
		undo_corrupted(undo, storage::kUndoMetaBlock, why);
	}
	*meta = storage::undo_meta_data(BufferGetPage(buf));
	return buf;
}

/*
 * Read undo block blk, the ring's logical page lpn, share-locked; a page
 * that is not that one is corruption (also_release, if valid, is released
 * first: the metapage its caller holds).
 */
Buffer
read_undo_page(Relation undo, BlockNumber blk, uint64 lpn, Buffer also_release)
{
	Buffer buf = ReadBuffer(undo, blk);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	const char *why = nullptr;
	if (!storage::undo_page_check(BufferGetPage(buf), lpn, &why))
	{
		UnlockReleaseBuffer(buf);
		if (BufferIsValid(also_release))
			UnlockReleaseBuffer(also_release);
		undo_corrupted(undo, blk, why);
	}
	return buf;
}

} /* namespace */

namespace {

/* Write an empty store's metapage into buf (block 0, all zeroes, locked exclusively). */
void
write_undo_meta(Relation table, Relation undo, Buffer buf, uint16 flags, uint32 capacity)
{
	if (BufferGetBlockNumber(buf) != storage::kUndoMetaBlock)
		elog(ERROR, "rustydb: undo metapage of relation \"%s\" created at block %u",
			 RelationGetRelationName(undo), BufferGetBlockNumber(buf));
	if (!PageIsNew(BufferGetPage(buf)))
		return; /* another backend wrote it meanwhile */
	wal::XlUndo xl = undo_record(wal::kUndoMeta);
	xl.table_oid = RelationGetRelid(table);
	xl.meta_flags = flags;
	xl.capacity = capacity;
	xl.position = storage::undo_position(1, 0); /* logical page 0 is never used */
	START_CRIT_SECTION();
	storage::undo_meta_change(buf, xl.table_oid, flags, xl.capacity, xl.position);
	MarkBufferDirty(buf);
	log_undo(undo, xl, buf, InvalidBuffer, REGBUF_WILL_INIT);
	END_CRIT_SECTION();
}

/* undo_ensure_meta, with the capacity of a metapage written now. */
void
ensure_meta(Relation table, Relation undo, uint32 capacity)
{
	/* catalog work before any buffer or extension lock */
	uint16 flags = crypto::relation_has_keys(RelationGetRelid(table)) ? storage::kUndoEncrypted : 0;

	if (RelationGetNumberOfBlocks(undo) == 0)
	{
		/*
		 * The file's first block, under the extension lock. Only a new
		 * block is locked while the extension lock is held: undo_add_page
		 * holds the metapage while it waits for the extension lock.
		 */
		bool need_lock = !RELATION_IS_LOCAL(undo);
		if (need_lock)
			LockRelationForExtension(undo, ExclusiveLock);
		Buffer buf = InvalidBuffer;
		if (RelationGetNumberOfBlocks(undo) == 0)
		{
			buf = ReadBufferExtended(undo, MAIN_FORKNUM, P_NEW, RBM_ZERO_AND_LOCK, nullptr);
			write_undo_meta(table, undo, buf, flags, capacity);
			UnlockReleaseBuffer(buf);
		}
		if (need_lock)
			UnlockRelationForExtension(undo, ExclusiveLock);
		if (BufferIsValid(buf))
			return;
	}

	/* block 0 exists; all zeroes after a crash between the extension and its record */
	Buffer buf = ReadBuffer(undo, storage::kUndoMetaBlock);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	bool fresh = PageIsNew(BufferGetPage(buf));
	LockBuffer(buf, BUFFER_LOCK_UNLOCK);
	if (fresh)
	{
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		write_undo_meta(table, undo, buf, flags, capacity);
		LockBuffer(buf, BUFFER_LOCK_UNLOCK);
	}
	ReleaseBuffer(buf);
}

} /* namespace */

void
undo_ensure_meta(Relation table, Relation undo)
{
	Assert(settings::undo_max_size > 0);
	ensure_meta(table, undo, capacity_for_setting());
}

bool
undo_add_page(Relation table, Relation undo, storage::UndoPtr seen)
{
	if (settings::undo_max_size == 0)
		return false;
	undo_ensure_meta(table, undo);

	storage::UndoMetaData *meta;
	Buffer metabuf = lock_meta(undo, BUFFER_LOCK_EXCLUSIVE, &meta);
	if (seen != kAnyInsertPage && meta->insert != seen)
	{
		UnlockReleaseBuffer(metabuf); /* another backend started the next page meanwhile */
		return true;
	}
	if (storage::undo_ring_full(meta))
	{
		UnlockReleaseBuffer(metabuf);
		return false;
	}
	uint64 lpn = storage::undo_next_page(meta);
	BlockNumber blk = storage::undo_block_for(meta, lpn);

	/* ring blocks are created in order, the first lap extending the file */
	Buffer page;
	bool need_lock = !RELATION_IS_LOCAL(undo);
	if (need_lock)
		LockRelationForExtension(undo, ExclusiveLock);
	BlockNumber nblocks = RelationGetNumberOfBlocks(undo);
	if (blk < nblocks)
	{
		if (need_lock)
			UnlockRelationForExtension(undo, ExclusiveLock);
		page = ReadBuffer(undo, blk);
		LockBuffer(page, BUFFER_LOCK_EXCLUSIVE);
	}
	else
	{
		page = blk == nblocks
				   ? ReadBufferExtended(undo, MAIN_FORKNUM, P_NEW, RBM_ZERO_AND_LOCK, nullptr)
				   : InvalidBuffer;
		if (need_lock)
			UnlockRelationForExtension(undo, ExclusiveLock);
		if (!BufferIsValid(page) || BufferGetBlockNumber(page) != blk)
		{
			if (BufferIsValid(page))
				UnlockReleaseBuffer(page);
			UnlockReleaseBuffer(metabuf);
			undo_corrupted(undo, blk, "the ring's next block is past the end of the file");
		}
	}

	wal::XlUndo xl = undo_record(wal::kUndoNewPage);
	xl.lpn = lpn;
	START_CRIT_SECTION();
	storage::undo_new_page(metabuf, page, lpn);
	MarkBufferDirty(metabuf);
	MarkBufferDirty(page);
	log_undo(undo, xl, metabuf, page, 0);
	END_CRIT_SECTION();
	UnlockReleaseBuffer(page);
	UnlockReleaseBuffer(metabuf);
	return true;
}

namespace {

/* A row whose aborted in-place version points at a record discard wants to recycle. */
struct PendingRepair
{
	ItemPointerData tid;
	TransactionId writer; /* aborted */
};

/*
 * Has the store a metapage? Not while its file is empty, nor when block 0
 * is still all zeroes (a crash between the extension and its record: the
 * next undo_ensure_meta writes it).
 */
bool
meta_written(Relation undo)
{
	if (RelationGetNumberOfBlocks(undo) == 0)
		return false;
	Buffer buf = ReadBuffer(undo, storage::kUndoMetaBlock);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	bool written = !PageIsNew(BufferGetPage(buf));
	UnlockReleaseBuffer(buf);
	return written;
}

/*
 * May the records of logical page lpn go? Every writer committed and
 * visible to every snapshot (*latest is the newest of them), or aborted
 * with its row repaired; records of another relation file than the
 * table's current one go once their writer is not running. The rows of
 * aborted writers are listed in *repairs: the page goes once they are
 * repaired (repair_pending). Records of a page that is not the insert
 * page never change, and positions never repeat, so a repaired row never
 * points at them again.
 */
bool
page_recyclable(Relation table, Relation undo, GlobalVisState *vistest, BlockNumber blk, uint64 lpn,
				TransactionId *latest, List **repairs)
{
	Buffer buf = read_undo_page(undo, blk, lpn, InvalidBuffer);
	Page page = BufferGetPage(buf);
	const char *why = nullptr;
	bool ok = true;
	uint16 end = ((PageHeader) page)->pd_lower;
	for (uint16 off = storage::kUndoFirstRecord; ok && off < end;)
	{
		const storage::UndoRecordHeader *r = storage::undo_record_at(page, off, &why);
		if (r == nullptr)
		{
			UnlockReleaseBuffer(buf);
			undo_corrupted(undo, blk, why);
		}
		TransactionId w = r->writer;
		if (TransactionIdIsCurrentTransactionId(w) || TransactionIdIsInProgress(w))
			ok = false; /* its versions may still be needed, or rolled back */
		else if (r->relfilenode != table->rd_node.relNode)
			; /* no page of the table's current file points at it */
		else if (!TransactionIdDidCommit(w))
		{
			/* aborted: the row's version pointing here is repaired first */
			auto *pr = (PendingRepair *) palloc(sizeof(PendingRepair));
			ItemPointerSet(&pr->tid, r->block, r->offnum);
			pr->writer = w;
			*repairs = lappend(*repairs, pr);
		}
		else if (!GlobalVisTestIsRemovableXid(vistest, w))
			ok = false; /* a snapshot may still need the version it replaced */
		else if (!TransactionIdIsValid(*latest) || TransactionIdFollows(w, *latest))
			*latest = w;
		off = (uint16) MAXALIGN(off + r->len);
	}
	UnlockReleaseBuffer(buf);
	return ok;
}

/*
 * Repair the rows of repairs whose page version is still the aborted
 * writer's (no undo lock held: data page, then undo pages, as everywhere).
 * Not "whose page version points at the record": a writer that changed the
 * row twice left its newer version pointing at a later record, whose image
 * points at this one; the whole run of the writer's versions at the top of
 * the chain is repaired before any of its records goes. A row whose page is
 * gone (truncated) points at nothing.
 */
void
repair_pending(Relation table, List *repairs)
{
	ListCell *lc;
	BlockNumber nblocks = storage::data_nblocks(table);
	foreach (lc, repairs)
	{
		auto *pr = (PendingRepair *) lfirst(lc);
		BlockNumber blk = ItemPointerGetBlockNumber(&pr->tid);
		OffsetNumber off = ItemPointerGetOffsetNumber(&pr->tid);
		if (blk >= nblocks)
			continue; /* truncated away: nothing points at the record */
		Buffer buf = storage::read_data_block(table, blk);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		Page page = BufferGetPage(buf);
		HeapTupleData tup;
		if (!PageIsNew(page) && off >= FirstOffsetNumber && off <= PageGetMaxOffsetNumber(page) &&
			storage::tuple_at(table, buf, page, off, &tup) && storage::tuple_has_undo(tup.t_data) &&
			TransactionIdEquals(HeapTupleHeaderGetRawXmin(tup.t_data), pr->writer))
			repair_aborted(table, buf, &tup);
		UnlockReleaseBuffer(buf);
	}
}

} /* namespace */

uint64
undo_discard(Relation table, Relation undo)
{
	if (!meta_written(undo))
		return 0;
	GlobalVisState *vistest = GlobalVisTestFor(table);
	uint64 recycled = 0;
	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		storage::UndoMetaData *meta;
		Buffer metabuf = lock_meta(undo, BUFFER_LOCK_SHARE, &meta);
		uint64 lpn = storage::undo_page_of(meta->discard);
		bool last = meta->insert == storage::kInvalidUndoPtr ||
					lpn >= storage::undo_page_of(meta->insert); /* the insert page stays */
		BlockNumber blk = last ? InvalidBlockNumber : storage::undo_block_for(meta, lpn);
		UnlockReleaseBuffer(metabuf);
		if (last)
			break;

		TransactionId latest = InvalidTransactionId;
		List *repairs = NIL;
		bool ok = page_recyclable(table, undo, vistest, blk, lpn, &latest, &repairs);
		if (ok && repairs != NIL)
			repair_pending(table, repairs); /* rows of aborted writers, before their records go */
		list_free_deep(repairs);
		if (!ok)
			break;

		metabuf = lock_meta(undo, BUFFER_LOCK_EXCLUSIVE, &meta);
		if (storage::undo_page_of(meta->discard) != lpn)
		{
			UnlockReleaseBuffer(metabuf); /* another backend recycled it meanwhile */
			continue;
		}
		wal::XlUndo xl = undo_record(wal::kUndoDiscard);
		xl.position = storage::undo_position(lpn + 1, 0);
		xl.xid = latest;
		START_CRIT_SECTION();
		storage::undo_discard_change(metabuf, xl.position, latest);
		MarkBufferDirty(metabuf);
		log_undo(undo, xl, metabuf, InvalidBuffer, 0);
		END_CRIT_SECTION();
		UnlockReleaseBuffer(metabuf);
		recycled++;
	}
	undo_count(RelationGetRelid(table), UndoEvent::PagesDiscarded, recycled);
	return recycled;
}

namespace {

/*
 * Is the store empty (metapage locked exclusively)? No insert page yet, or
 * everything before the insert page recycled and every record on the
 * insert page recyclable; *latest gets the newest writer there.
 */
bool
store_is_empty(Relation table, Relation undo, const storage::UndoMetaData *meta,
			   TransactionId *latest)
{
	*latest = InvalidTransactionId;
	if (meta->insert == storage::kInvalidUndoPtr)
		return true;
	if (meta->discard != meta->insert)
		return false;
	uint64 lpn = storage::undo_page_of(meta->insert);
	/* records of aborted writers keep it: their rows are repaired outside this lock */
	List *repairs = NIL;
	bool empty = page_recyclable(table, undo, GlobalVisTestFor(table),
								 storage::undo_block_for(meta, lpn), lpn, latest, &repairs);
	empty = empty && repairs == NIL;
	list_free_deep(repairs);
	return empty;
}

/*
 * Restart an empty store's ring at block 1 with capacity (metapage locked
 * exclusively, store_is_empty true): base moves to the next position, so
 * every position used so far reads as recycled. Records left on the
 * insert page are recycled first (UNDO DISCARD, the standby's conflict
 * horizon); then UNDO META re-creates the metapage (WILL_INIT).
 */
void
restart_ring(Relation table, Relation undo, Buffer metabuf, uint32 capacity, TransactionId latest)
{
	storage::UndoMetaData *meta = storage::undo_meta_data(BufferGetPage(metabuf));
	storage::UndoPtr base = storage::undo_position(storage::undo_next_page(meta), 0);
	bool discard = TransactionIdIsValid(latest);
	wal::XlUndo xd = undo_record(wal::kUndoDiscard);
	xd.position = base;
	xd.xid = latest;
	wal::XlUndo xm = undo_record(wal::kUndoMeta);
	xm.table_oid = RelationGetRelid(table);
	xm.meta_flags = meta->flags;
	xm.capacity = capacity;
	xm.position = base;

	START_CRIT_SECTION();
	if (discard)
	{
		storage::undo_discard_change(metabuf, xd.position, latest);
		MarkBufferDirty(metabuf);
		log_undo(undo, xd, metabuf, InvalidBuffer, 0);
	}
	storage::undo_meta_change(metabuf, xm.table_oid, xm.meta_flags, xm.capacity, xm.position);
	MarkBufferDirty(metabuf);
	log_undo(undo, xm, metabuf, InvalidBuffer, REGBUF_WILL_INIT);
	END_CRIT_SECTION();
	if (discard)
		undo_count(RelationGetRelid(table), UndoEvent::PagesDiscarded, 1);
}

/*
 * An empty store whose file is longer than its metapage goes back to the
 * metapage alone: the ring restarts at block 1, then the file is
 * truncated (PostgreSQL's truncation record). Only when nobody else has
 * the store open (an exclusive lock is free right now: never a wait).
 */
void
truncate_empty_store(Relation table, Relation undo)
{
	if (RelationGetNumberOfBlocks(undo) <= 1 || !ConditionalLockRelation(undo, AccessExclusiveLock))
		return;
	storage::UndoMetaData *meta;
	Buffer metabuf = lock_meta(undo, BUFFER_LOCK_EXCLUSIVE, &meta);
	TransactionId latest;
	bool empty = store_is_empty(table, undo, meta, &latest);
	if (empty)
		restart_ring(table, undo, metabuf, meta->capacity, latest);
	UnlockReleaseBuffer(metabuf);
	if (empty)
		RelationTruncate(undo, storage::kUndoMetaBlock + 1);
	/* like VACUUM's truncation of a table: the lock goes now, the change is logged */
	UnlockRelation(undo, AccessExclusiveLock);
}

/*
 * Discard never recycles the insert page, so records written there stay
 * until another page starts: on a table updated in place now and then,
 * for ever, and with them the xids VACUUM must not freeze past
 * (undo_oldest_ids). When every record of the insert page is one discard
 * may recycle (everything before it recycled already), start the next
 * page and recycle this one (repairing aborted writers' rows first, as
 * discard does). Returns the pages recycled.
 */
uint64
retire_insert_page(Relation table, Relation undo)
{
	storage::UndoMetaData *meta;
	Buffer metabuf = lock_meta(undo, BUFFER_LOCK_SHARE, &meta);
	storage::UndoPtr insert = meta->insert;
	bool alone = insert != storage::kInvalidUndoPtr &&
				 storage::undo_page_of(meta->discard) == storage::undo_page_of(insert);
	uint64 lpn = storage::undo_page_of(insert);
	BlockNumber blk = alone ? storage::undo_block_for(meta, lpn) : InvalidBlockNumber;
	UnlockReleaseBuffer(metabuf);
	if (!alone)
		return 0;

	Buffer buf = ReadBuffer(undo, blk);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	bool empty = ((PageHeader) BufferGetPage(buf))->pd_lower <= storage::kUndoFirstRecord;
	UnlockReleaseBuffer(buf);
	if (empty)
		return 0;
	TransactionId latest = InvalidTransactionId;
	List *repairs = NIL;
	bool ok = page_recyclable(table, undo, GlobalVisTestFor(table), blk, lpn, &latest, &repairs);
	list_free_deep(repairs);
	/* records appended since are judged again by undo_discard */
	if (!ok || !undo_add_page(table, undo, insert))
		return 0;
	return undo_discard(table, undo);
}

/* Discard what it can, and truncate the file if the store is then empty. */
uint64
vacuum_store(Relation table, Relation undo, bool truncate)
{
	if (!meta_written(undo))
		return 0;
	uint64 n = undo_discard(table, undo);
	n += retire_insert_page(table, undo);
	if (truncate)
		truncate_empty_store(table, undo);
	return n;
}

} /* namespace */

void
undo_oldest_ids(Relation table, TransactionId *xid, MultiXactId *multi)
{
	Relation undo = undo_open(table, AccessShareLock);
	if (undo == nullptr)
		return;
	if (!meta_written(undo))
	{
		table_close(undo, AccessShareLock);
		return;
	}
	for (uint64 lpn = 0;; lpn++)
	{
		CHECK_FOR_INTERRUPTS();
		storage::UndoMetaData *meta;
		/* the metapage share-locked: the page read cannot be recycled meanwhile */
		Buffer metabuf = lock_meta(undo, BUFFER_LOCK_SHARE, &meta);
		if (meta->insert == storage::kInvalidUndoPtr)
		{
			UnlockReleaseBuffer(metabuf);
			break;
		}
		lpn = Max(lpn, storage::undo_page_of(meta->discard));
		if (lpn > storage::undo_page_of(meta->insert))
		{
			UnlockReleaseBuffer(metabuf);
			break;
		}
		BlockNumber blk = storage::undo_block_for(meta, lpn);
		Buffer buf = read_undo_page(undo, blk, lpn, metabuf);
		Page page = BufferGetPage(buf);
		const char *why = nullptr;
		uint16 end = ((PageHeader) page)->pd_lower;
		for (uint16 off = storage::kUndoFirstRecord; off < end;)
		{
			const storage::UndoRecordHeader *r = storage::undo_record_at(page, off, &why);
			if (r == nullptr)
			{
				UnlockReleaseBuffer(buf);
				UnlockReleaseBuffer(metabuf);
				undo_corrupted(undo, blk, why);
			}
			track_xid(xid, r->writer);
			Size len;
			const auto *img = (HeapTupleHeader) storage::undo_record_image(r, &len);
			if (len >= SizeofHeapTupleHeader)
			{
				if (!HeapTupleHeaderXminFrozen(img))
					track_xid(xid, HeapTupleHeaderGetRawXmin(img));
				if (!(img->t_infomask & HEAP_XMAX_INVALID))
				{
					if (img->t_infomask & HEAP_XMAX_IS_MULTI)
						track_multi(multi, HeapTupleHeaderGetRawXmax(img));
					else
						track_xid(xid, HeapTupleHeaderGetRawXmax(img));
				}
			}
			off = (uint16) MAXALIGN(off + r->len);
		}
		UnlockReleaseBuffer(buf);
		UnlockReleaseBuffer(metabuf);
	}
	table_close(undo, AccessShareLock);
}

uint64
undo_vacuum(Relation table, bool truncate)
{
	Relation undo = undo_open(table, RowExclusiveLock);
	if (undo == nullptr)
		return 0;
	uint64 n = vacuum_store(table, undo, truncate);
	table_close(undo, RowExclusiveLock);
	return n;
}

void
undo_set_size(Relation table, Relation undo, int32 mb)
{
	uint32 capacity = capacity_for_mb(mb);
	ensure_meta(table, undo, capacity);
	storage::UndoMetaData *meta;
	Buffer metabuf = lock_meta(undo, BUFFER_LOCK_EXCLUSIVE, &meta);
	if (meta->capacity == capacity)
	{
		UnlockReleaseBuffer(metabuf);
		return;
	}
	TransactionId latest;
	if (!store_is_empty(table, undo, meta, &latest))
	{
		uint64 in_use = storage::undo_pages_in_use(meta);
		UnlockReleaseBuffer(metabuf);
		ereport(
			ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("the undo store of table \"%s\" is not empty", RelationGetRelationName(table)),
			 errdetail("%llu undo pages are in use; the size changes only while none is.",
					   (unsigned long long) in_use),
			 errhint("VACUUM the table to recycle the undo no snapshot needs, then try again.")));
	}
	restart_ring(table, undo, metabuf, capacity, latest);
	UnlockReleaseBuffer(metabuf);
}

uint64
undo_vacuum_store(Relation undo, bool truncate)
{
	Oid relid = InvalidOid;
	if (sscanf(RelationGetRelationName(undo), "rustydb_undo_%u", &relid) != 1 || !OidIsValid(relid))
		return 0;
	/*
	 * The table after its store: only if its lock is free now (a DROP
	 * TABLE holding it waits for the store's lock, which we hold).
	 */
	if (!ConditionalLockRelationOid(relid, RowExclusiveLock))
	{
		ereport(DEBUG1, (errmsg("skipping undo discard of \"%s\": its table is locked",
								RelationGetRelationName(undo))));
		return 0;
	}
	Relation table = try_table_open(relid, NoLock);
	uint64 n = 0;
	if (table != nullptr)
	{
		ClassRow row;
		if (class_row(relid, &row) && wants_store(row) &&
			undo_relation_of(relid, row.relpersistence) == RelationGetRelid(undo))
			n = vacuum_store(table, undo, truncate);
		table_close(table, NoLock);
	}
	UnlockRelationOid(relid, RowExclusiveLock);
	return n;
}

namespace {

/*
 * The rustydb_undo access method goes (DROP EXTENSION rustydb CASCADE):
 * every store first, while the method and its handler still exist to
 * open them. Stores have no catalog dependency, so PostgreSQL's deletion
 * may otherwise drop the method before the tables whose drops take their
 * stores along.
 */
void
drop_all_stores(Oid am)
{
	Relation classrel = table_open(RelationRelationId, AccessShareLock);
	SysScanDesc scan = systable_beginscan(classrel, InvalidOid, false, SnapshotSelf, 0, nullptr);
	List *stores = NIL;
	for (HeapTuple tup; HeapTupleIsValid(tup = systable_getnext(scan));)
	{
		auto *form = reinterpret_cast<Form_pg_class>(GETSTRUCT(tup));
		if (form->relam == am)
			stores = lappend_oid(stores, form->oid);
	}
	systable_endscan(scan);
	table_close(classrel, AccessShareLock);

	ListCell *lc;
	foreach (lc, stores)
	{
		ObjectAddress addr;
		ObjectAddressSet(addr, RelationRelationId, lfirst_oid(lc));
		performDeletion(&addr, DROP_RESTRICT, PERFORM_DELETION_INTERNAL | PERFORM_DELETION_QUIETLY);
	}
	list_free(stores);
}

} /* namespace */

void
hook_object_access(hooks::ObjectAccessCall &call)
{
	call.proceed();
	if (call.access == OAT_DROP && call.class_id == AccessMethodRelationId &&
		call.object_id == get_table_am_oid("rustydb_undo", true))
	{
		drop_all_stores(call.object_id);
		return;
	}
	if (call.access == OAT_DROP && call.class_id == DatabaseRelationId)
	{
		undo_stats_forget_database(call.object_id); /* not transactional either */
		return;
	}
	if (call.class_id != RelationRelationId || call.sub_id != 0)
		return;
	if (call.access == OAT_DROP)
	{
		/*
		 * The table goes (DROP, a cascade, temporary-namespace cleanup,
		 * autovacuum removing an orphaned temporary table): its store too,
		 * in the same transaction.
		 */
		ClassRow row;
		if (!class_row(call.object_id, &row) || row.relkind != RELKIND_RELATION)
			return; /* (any access method: a table may have been converted) */
		/* its counters go now (also if the DROP rolls back: counters are not transactional) */
		undo_stats_forget(call.object_id);
		Oid undo =
			undo_relation_in(call.object_id, undo_namespace(row.relnamespace, row.relpersistence));
		if (!OidIsValid(undo))
			return;
		ObjectAddress addr;
		ObjectAddressSet(addr, RelationRelationId, undo);
		performDeletion(&addr, DROP_RESTRICT, PERFORM_DELETION_INTERNAL | PERFORM_DELETION_QUIETLY);
		return;
	}
	if (call.access != OAT_POST_CREATE)
		return;
	auto *pc = static_cast<ObjectAccessPostCreate *>(call.arg);
	/*
	 * Internal creations are CLUSTER's, VACUUM FULL's and ALTER TABLE's
	 * transient tables, whose files become an existing table's: that
	 * table keeps its own store. pg_upgrade assigns every OID itself:
	 * rustydb.create_undo() adds the stores afterwards. Tables an
	 * extension script creates (rustydb's own among them) get none either:
	 * an extension's objects are what its script lists.
	 */
	if ((pc != nullptr && pc->is_internal) || IsBinaryUpgrade || creating_extension)
		return;
	ClassRow row;
	if (!class_row(call.object_id, &row) || !wants_store(row))
		return;
	/* the new table's catalog rows visible, as heap_create_with_catalog allows here */
	CommandCounterIncrement();
	create_undo_relation(call.object_id);
}

bool
undo_reserve(Relation table, Relation undo, Size need, UndoInsert *ins)
{
	if (need > storage::kUndoMaxImage + sizeof(storage::UndoRecordHeader))
		return false;
	for (int attempt = 0; attempt < 3; attempt++)
	{
		storage::UndoMetaData *meta;
		Buffer metabuf = lock_meta(undo, BUFFER_LOCK_SHARE, &meta);
		storage::UndoPtr seen = meta->insert;
		if (seen != storage::kInvalidUndoPtr)
		{
			uint64 lpn = storage::undo_page_of(seen);
			BlockNumber blk = storage::undo_block_for(meta, lpn);
			Buffer page = ReadBuffer(undo, blk);
			LockBuffer(page, BUFFER_LOCK_EXCLUSIVE);
			const char *why = nullptr;
			if (!storage::undo_page_check(BufferGetPage(page), lpn, &why))
			{
				UnlockReleaseBuffer(page);
				UnlockReleaseBuffer(metabuf);
				undo_corrupted(undo, blk, why);
			}
			Page p = BufferGetPage(page);
			if (storage::undo_page_free(p) >= need)
			{
				ins->meta = metabuf;
				ins->page = page;
				ins->position =
					storage::undo_position(lpn, (uint16) MAXALIGN(((PageHeader) p)->pd_lower));
				return true;
			}
			UnlockReleaseBuffer(page);
		}
		UnlockReleaseBuffer(metabuf);
		if (!undo_add_page(table, undo, seen))
			return false;
	}
	return false;
}

void
undo_release(UndoInsert *ins)
{
	UnlockReleaseBuffer(ins->page);
	UnlockReleaseBuffer(ins->meta);
	ins->page = ins->meta = InvalidBuffer;
}

bool
undo_nearly_full(Relation undo)
{
	if (RelationGetNumberOfBlocks(undo) == 0)
		return false;
	storage::UndoMetaData *meta;
	Buffer metabuf = lock_meta(undo, BUFFER_LOCK_SHARE, &meta);
	bool full = storage::undo_pages_in_use(meta) + 1 >= meta->capacity;
	UnlockReleaseBuffer(metabuf);
	return full;
}

} /* namespace rustydb::am */

/*
 * rustydb.create_undo(regclass): the table's undo store, created if it has
 * none (tables created before stores existed, or converted to rustydb by
 * ALTER TABLE ... SET ACCESS METHOD). The table's owner may call it.
 */
RUSTYDB_FUNCTION(rustydb_create_undo)
{
	Oid relid = PG_GETARG_OID(0);
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(get_rel_relkind(relid)),
					   get_rel_name(relid));
	/* self-conflicting: two sessions never create the same store */
	Relation rel = table_open(relid, ShareUpdateExclusiveLock);
	Oid undo = rustydb::am::create_undo_relation(relid);
	table_close(rel, NoLock);
	PG_RETURN_OID(undo);
}

/* rustydb.undo_relation(regclass): the table's undo store, or NULL. */
RUSTYDB_FUNCTION(rustydb_undo_relation)
{
	Oid relid = PG_GETARG_OID(0);
	char persistence = get_rel_persistence(relid);
	Oid undo = persistence == '\0' ? InvalidOid : rustydb::am::undo_relation_of(relid, persistence);
	if (!OidIsValid(undo))
		PG_RETURN_NULL();
	PG_RETURN_OID(undo);
}

namespace {

/* The rustydb table relid, opened with mode; ERROR for anything else. */
Relation
open_rustydb_table(Oid relid, LOCKMODE mode)
{
	Relation rel = table_open(relid, mode);
	Oid am = get_table_am_oid("rustydb", true);
	if (rel->rd_rel->relkind != RELKIND_RELATION || rel->rd_rel->relam != am)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
						errmsg("\"%s\" is not a rustydb table", RelationGetRelationName(rel))));
	return rel;
}

/* The store of rustydb table rel, opened with mode; ERROR when it has none. */
Relation
open_store_of(Relation rel, LOCKMODE mode)
{
	Relation undo = rustydb::am::undo_open(rel, mode);
	if (undo == nullptr)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("table \"%s\" has no undo store", RelationGetRelationName(rel)),
						errhint("SELECT rustydb.create_undo('%s') creates it.",
								RelationGetRelationName(rel))));
	return undo;
}

} /* namespace */

/*
 * rustydb.undo_store(regclass): the store's metapage. present = false (the
 * rest NULL, file_blocks 0) while nothing was written to it.
 */
RUSTYDB_FUNCTION(rustydb_undo_store)
{
	Relation rel = open_rustydb_table(PG_GETARG_OID(0), AccessShareLock);
	if (pg_class_aclcheck(RelationGetRelid(rel), GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						errmsg("permission denied for table %s", RelationGetRelationName(rel))));
	TupleDesc desc;
	if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	desc = BlessTupleDesc(desc);

	constexpr int kCols = 9;
	Datum values[kCols] = {0};
	bool nulls[kCols];
	for (bool &n : nulls)
		n = true;
	nulls[0] = false;
	values[0] = BoolGetDatum(false);
	Relation undo = rustydb::am::undo_open(rel, AccessShareLock);
	if (undo != nullptr)
	{
		BlockNumber nblocks = RelationGetNumberOfBlocks(undo);
		nulls[8] = false;
		values[8] = Int64GetDatum((int64) nblocks);
		if (nblocks > 0)
		{
			Buffer buf = ReadBuffer(undo, rustydb::storage::kUndoMetaBlock);
			LockBuffer(buf, BUFFER_LOCK_SHARE);
			const char *why = nullptr;
			const rustydb::storage::UndoMetaData *m =
				rustydb::storage::undo_meta_get(BufferGetPage(buf), &why);
			if (m != nullptr)
			{
				values[0] = BoolGetDatum(true);
				values[1] = BoolGetDatum((m->flags & rustydb::storage::kUndoEncrypted) != 0);
				values[2] = Int64GetDatum((int64) m->capacity);
				values[3] = Int64GetDatum((int64) rustydb::storage::undo_pages_in_use(m));
				values[4] = Int64GetDatum((int64) m->base);
				values[5] = Int64GetDatum((int64) m->insert);
				values[6] = Int64GetDatum((int64) m->discard);
				values[7] = TransactionIdGetDatum(m->discard_xid);
				for (int i = 1; i < 8; i++)
					nulls[i] = false;
			}
			UnlockReleaseBuffer(buf);
			if (m == nullptr && !PageIsNew(BufferGetPage(buf)))
				ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
								errmsg("invalid rustydb undo metapage in relation \"%s\"",
									   RelationGetRelationName(undo)),
								errdetail("%s.", why)));
		}
		table_close(undo, AccessShareLock);
	}
	table_close(rel, AccessShareLock);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/* rustydb.undo_discard(regclass): recycle what no snapshot needs; the pages recycled. */
RUSTYDB_FUNCTION(rustydb_undo_discard)
{
	Oid relid = PG_GETARG_OID(0);
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(get_rel_relkind(relid)),
					   get_rel_name(relid));
	Relation rel = open_rustydb_table(relid, RowExclusiveLock);
	Relation undo = rustydb::am::undo_open(rel, RowExclusiveLock);
	uint64 n = 0;
	if (undo != nullptr)
	{
		n = rustydb::am::undo_discard(rel, undo);
		table_close(undo, RowExclusiveLock);
	}
	table_close(rel, RowExclusiveLock);
	PG_RETURN_INT64((int64) n);
}

/*
 * rustydb.set_undo_size(regclass, size_mb): the ring capacity of the
 * table's store (owner). Only an empty store changes: its ring restarts
 * at block 1 (docs/storage.md, "Store layout"); the store is locked
 * against in-place updates (which hold it RowExclusiveLock) meanwhile.
 */
RUSTYDB_FUNCTION(rustydb_set_undo_size)
{
	Oid relid = PG_GETARG_OID(0);
	int32 mb = PG_GETARG_INT32(1);
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(get_rel_relkind(relid)),
					   get_rel_name(relid));
	if (mb < 1 || mb > rustydb::am::kMaxUndoSizeMb)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("undo size %d MB is out of range", mb),
				 errdetail("The size is between 1 and %d MB.", rustydb::am::kMaxUndoSizeMb)));
	Relation rel = open_rustydb_table(relid, RowExclusiveLock);
	Relation undo = open_store_of(rel, ExclusiveLock);
	rustydb::am::undo_set_size(rel, undo, mb);
	table_close(undo, NoLock);
	table_close(rel, NoLock);
	PG_RETURN_VOID();
}

/*
 * rustydb.selftest_undo_pages(regclass, n): start up to n new insert pages
 * in the table's store, as the in-place path does when a record does not
 * fit; returns how many were started (fewer when the ring is full). A
 * superuser diagnostic for the store's tests (WAL, standby, ring bound).
 */
RUSTYDB_FUNCTION(rustydb_selftest_undo_pages)
{
	Relation rel = open_rustydb_table(PG_GETARG_OID(0), RowExclusiveLock);
	int32 n = PG_GETARG_INT32(1);
	Relation undo = open_store_of(rel, RowExclusiveLock);
	int32 added = 0;
	while (added < n && rustydb::am::undo_add_page(rel, undo))
		added++;
	table_close(undo, RowExclusiveLock);
	table_close(rel, RowExclusiveLock);
	PG_RETURN_INT32(added);
}

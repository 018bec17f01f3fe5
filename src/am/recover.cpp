/*-------------------------------------------------------------------------
 *
 * recover.cpp
 *	  rustydb.recover_heap_pages(regclass): rebuild a rustydb table whose
 *	  files were replaced by a heap table's.
 *
 * A tool that rebuilds a table as a heap table and swaps the relation
 * files in pg_class without touching the access method (pg_repack before
 * rustydb steered its copies, docs/am.md) leaves a rustydb relation over
 * heap pages. Every read then stops with heap_pages_error (page.h). This
 * function reads those pages as heap pages (PostgreSQL's heap visibility
 * rules against a fresh snapshot, large values fetched from the TOAST
 * table the swap gave the relation) and writes the visible rows into a
 * transient rustydb relation that PostgreSQL's rewrite machinery
 * (make_new_heap / finish_heap_swap, as VACUUM FULL) swaps in, rebuilding
 * the indexes. An encrypted table's transient relation gets its keys
 * (crypto's relation_created), so the rows are sealed again. Nothing is
 * changed in place: an error leaves the table as it was.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/am/am.h"
#include "rustydb/common/boundary.h"
#include "rustydb/storage/page.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/table.h"
#include "commands/cluster.h"
#include "commands/defrem.h"
#include "commands/tablecmds.h"
#include "utils/acl.h"
RUSTYDB_PG_INCLUDE_END

namespace {

using namespace rustydb;

/* Is block 0 of rel's file a heap page? (an empty file: no) */
bool
holds_heap_pages(Relation rel)
{
	if (storage::phys_nblocks(rel) == 0)
		return false;
	Buffer buf = ReadBuffer(rel, storage::kMetaBlock);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	bool heap = storage::page_is_heap(BufferGetPage(buf));
	UnlockReleaseBuffer(buf);
	return heap;
}

/*
 * Copy the rows of old's heap pages visible to snapshot into dest; returns
 * how many. Pages are read under a share lock; a visible tuple is copied
 * and the lock released before its large values are fetched and it is
 * inserted.
 */
int64
copy_heap_rows(Relation old, Relation dest, Snapshot snapshot)
{
	TupleDesc desc = RelationGetDescr(old);
	BufferAccessStrategy strategy = GetAccessStrategy(BAS_BULKREAD);
	BulkInsertState bistate = GetBulkInsertState();
	TupleTableSlot *slot = MakeSingleTupleTableSlot(RelationGetDescr(dest), &TTSOpsHeapTuple);
	CommandId cid = GetCurrentCommandId(true);
	BlockNumber nblocks = storage::phys_nblocks(old);
	auto *copies = (HeapTuple *) palloc(MaxHeapTuplesPerPage * sizeof(HeapTuple));
	int64 rows = 0;

	/* nobody else reads or changes either table meanwhile */
	Assert(CheckRelationLockedByMe(old, AccessExclusiveLock, false));
	Assert(CheckRelationLockedByMe(dest, AccessExclusiveLock, false));

	for (BlockNumber blkno = 0; blkno < nblocks; blkno++)
	{
		CHECK_FOR_INTERRUPTS();
		Buffer buf = ReadBufferExtended(old, MAIN_FORKNUM, blkno, RBM_NORMAL, strategy);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		Page page = BufferGetPage(buf);
		int n = 0;
		if (!PageIsNew(page))
		{
			if (!storage::page_is_heap(page))
			{
				UnlockReleaseBuffer(buf);
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("block %u of relation \"%s\" is not a heap page", blkno,
								RelationGetRelationName(old)),
						 errdetail("rustydb.recover_heap_pages() reads a file of heap pages; this "
								   "one mixes page formats."),
						 errhint("Restore the table from a backup.")));
			}
			OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
			for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
			{
				ItemId lp = PageGetItemId(page, off);
				if (!ItemIdIsNormal(lp))
					continue;
				HeapTupleData tup;
				tup.t_data = (HeapTupleHeader) PageGetItem(page, lp);
				tup.t_len = ItemIdGetLength(lp);
				tup.t_tableOid = RelationGetRelid(old);
				ItemPointerSet(&tup.t_self, blkno, off);
				if (HeapTupleSatisfiesVisibility(&tup, snapshot, buf))
					copies[n++] = heap_copytuple(&tup);
			}
		}
		UnlockReleaseBuffer(buf);

		for (int i = 0; i < n; i++)
		{
			HeapTuple tup = copies[i];
			if (HeapTupleHasExternal(tup))
			{
				HeapTuple flat = toast_flatten_tuple(tup, desc);
				heap_freetuple(tup);
				tup = flat;
			}
			ExecStoreHeapTuple(tup, slot, true);
			table_tuple_insert(dest, slot, cid, 0, bistate);
			ExecClearTuple(slot);
			rows++;
		}
	}
	pfree(copies);
	ExecDropSingleTupleTableSlot(slot);
	FreeBulkInsertState(bistate);
	FreeAccessStrategy(strategy);
	return rows;
}

} /* namespace */

RUSTYDB_FUNCTION(rustydb_recover_heap_pages)
{
	Oid relid = PG_GETARG_OID(0);
	Relation rel = table_open(relid, AccessExclusiveLock);
	const char *amname = OidIsValid(rel->rd_rel->relam) ? get_am_name(rel->rd_rel->relam) : nullptr;
	if (rel->rd_rel->relkind != RELKIND_RELATION || amname == nullptr ||
		strcmp(amname, "rustydb") != 0)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
						errmsg("\"%s\" is not a rustydb table", RelationGetRelationName(rel)),
						errhint("rustydb.recover_heap_pages() repairs tables created USING "
								"rustydb.")));
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, OBJECT_TABLE, RelationGetRelationName(rel));
	CheckTableNotInUse(rel, "rustydb.recover_heap_pages()");
	if (!holds_heap_pages(rel))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("relation \"%s\" does not hold heap pages", RelationGetRelationName(rel)),
				 errdetail("Block 0 of its file is a rustydb metapage, or the file is "
						   "empty: there is nothing to recover."),
				 errhint("rustydb.verify_table() checks a rustydb table.")));

	Oid tablespace = rel->rd_rel->reltablespace;
	char persistence = rel->rd_rel->relpersistence;
	Oid am = rel->rd_rel->relam;
	table_close(rel, NoLock);

	Oid transient = make_new_heap(relid, tablespace, am, persistence, AccessExclusiveLock);
	Relation old = table_open(relid, NoLock);
	Relation dest = table_open(transient, NoLock);
	Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
	int64 rows = copy_heap_rows(old, dest, snapshot);
	UnregisterSnapshot(snapshot);
	table_close(dest, NoLock);
	table_close(old, NoLock);

	/* every row now carries this transaction's xid, newer than RecentXmin */
	finish_heap_swap(relid, transient, false, false, true, true, RecentXmin, GetOldestMultiXactId(),
					 persistence);
	ereport(NOTICE, (errmsg("relation \"%s\" rebuilt as a rustydb table from %lld rows of its heap "
							"pages",
							get_rel_name(relid), (long long) rows)));
	PG_RETURN_INT64(rows);
}

/*-------------------------------------------------------------------------
 *
 * inplace.cpp
 *	  In-place updates, reading their version chains, repairing aborted
 *	  in-place versions (docs/storage.md, "In-place updates and undo").
 *
 * Lock order: data page, then the undo store's metapage, then an undo
 * page. Readers hold the data page share-locked while they copy undo
 * images; the in-place path holds it exclusively while it reserves and
 * appends the undo record. Nothing here waits for a data page while
 * holding an undo page.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/am/inplace.h"

#include "rustydb/am/am.h"
#include "rustydb/am/groups.h"
#include "rustydb/am/undo_store.h"
#include "rustydb/am/xmax.h"
#include "rustydb/common/settings.h"
#include "rustydb/crypto/crypto.h"
#include "rustydb/mvcc/visibility.h"
#include "rustydb/storage/buffer.h"
#include "rustydb/storage/changes.h"
#include "rustydb/storage/page.h"
#include "rustydb/storage/undo.h"
#include "rustydb/wal/records.h"

namespace rustydb::am {

namespace {

[[noreturn]] void
bad_record(Relation rel, ItemPointer tid, storage::UndoPtr p, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("invalid rustydb undo record at %X/%X for row (%u,%u) of relation \"%s\"",
					(uint32) (p >> 32), (uint32) p, ItemPointerGetBlockNumber(tid),
					(unsigned) ItemPointerGetOffsetNumber(tid), RelationGetRelationName(rel)),
			 errdetail("%s.", why)));
}

/*
 * A palloc'd copy of the version the record at p holds: the version before
 * newer, which writer created at tid and which points at p (a delta
 * record is rebuilt against newer's payload). nullptr: recycled (*why
 * nullptr), or damaged (*why says how).
 */
/*
 * A palloc'd copy of the previous version at in-page pointer p of row
 * tid's page. The caller read the version pointing here from that page
 * and still holds its pin: compaction, which alone moves or drops the
 * bytes, needs a cleanup lock, and a previous version's bytes do not
 * change once a newer version points at them; so a pin, no lock.
 */
HeapTuple
read_in_page(Relation rel, ItemPointer tid, storage::UndoPtr p, const char **why)
{
	Buffer buf =
		ReadBufferExtended(rel, MAIN_FORKNUM, storage::phys_block(ItemPointerGetBlockNumber(tid)),
						   RBM_NORMAL, nullptr);
	HeapTupleHeader v = storage::in_page_version(BufferGetPage(buf), p, why);
	HeapTuple tup = nullptr;
	if (v != nullptr && !ItemPointerEquals(&v->t_ctid, tid))
		*why = "the previous version on the page belongs to another row";
	else if (v != nullptr)
	{
		Size len = storage::in_page_len(p);
		tup = (HeapTuple) palloc(HEAPTUPLESIZE + len);
		tup->t_len = (uint32) len;
		tup->t_self = *tid;
		tup->t_tableOid = RelationGetRelid(rel);
		tup->t_data = (HeapTupleHeader) ((char *) tup + HEAPTUPLESIZE);
		memcpy(tup->t_data, v, len);
	}
	ReleaseBuffer(buf);
	return tup;
}

HeapTuple
try_read_image(Relation rel, Relation undo, ItemPointer tid, storage::UndoPtr p,
			   TransactionId writer, HeapTuple newer, const char **why)
{
	*why = nullptr;
	if (storage::undo_ptr_in_page(p))
		return read_in_page(rel, tid, p, why);
	if (undo == nullptr)
	{
		*why = "the table has no undo store";
		return nullptr;
	}
	if (RelationGetNumberOfBlocks(undo) == 0)
	{
		*why = "the undo store is empty";
		return nullptr;
	}
	Buffer metabuf = ReadBuffer(undo, storage::kUndoMetaBlock);
	LockBuffer(metabuf, BUFFER_LOCK_SHARE);
	const storage::UndoMetaData *meta = storage::undo_meta_get(BufferGetPage(metabuf), why);
	if (meta == nullptr || storage::undo_is_discarded(meta, p))
	{
		UnlockReleaseBuffer(metabuf);
		return nullptr;
	}
	uint64 lpn = storage::undo_page_of(p);
	if (meta->insert == storage::kInvalidUndoPtr || lpn > storage::undo_page_of(meta->insert))
	{
		UnlockReleaseBuffer(metabuf);
		*why = "the position is beyond the store's insert page";
		return nullptr;
	}
	BlockNumber blk = storage::undo_block_for(meta, lpn);
	/* the page cannot be recycled while the metapage is share-locked */
	Buffer buf = ReadBuffer(undo, blk);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	Page page = BufferGetPage(buf);
	const storage::UndoRecordHeader *r = nullptr;
	if (storage::undo_page_check(page, lpn, why))
		r = storage::undo_record_at(page, storage::undo_offset_of(p), why);
	if (r != nullptr)
	{
		if (r->block != ItemPointerGetBlockNumber(tid) ||
			r->offnum != ItemPointerGetOffsetNumber(tid))
			*why = "the record belongs to another row";
		else if (r->relfilenode != rel->rd_node.relNode)
			*why = "the record belongs to another file of the table";
		else if (!TransactionIdEquals(r->writer, writer))
			*why = "the record was written by another transaction than the version pointing at it";
		else if ((r->flags & storage::kUndoRecordSealed) &&
				 !(meta->flags & storage::kUndoEncrypted))
			*why = "a sealed record in the undo store of an unencrypted table";
		else if (!(r->flags & storage::kUndoRecordSealed) &&
				 (meta->flags & storage::kUndoEncrypted))
			*why = "a record in plaintext in the undo store of an encrypted table";
	}
	else if (*why == nullptr)
		*why = "unreadable record";
	if (*why != nullptr)
	{
		UnlockReleaseBuffer(buf);
		UnlockReleaseBuffer(metabuf);
		return nullptr;
	}
	Size reclen;
	const char *image = storage::undo_record_image(r, &reclen);
	bool sealed = (r->flags & storage::kUndoRecordSealed) != 0;
	bool delta = r->kind == storage::kUndoDelta;
	/* a delta record's base: the payload of the version pointing at it */
	const char *base = (const char *) newer->t_data + newer->t_data->t_hoff;
	Size base_len = newer->t_len - newer->t_data->t_hoff;
	Size len = delta ? storage::delta_decoded_len(image, reclen, base_len) : reclen;
	if (len == 0)
	{
		UnlockReleaseBuffer(buf);
		UnlockReleaseBuffer(metabuf);
		*why = "the delta record does not fit the version pointing at it";
		return nullptr;
	}
	auto tup = (HeapTuple) palloc(HEAPTUPLESIZE + len);
	tup->t_len = (uint32) len;
	tup->t_self = *tid;
	tup->t_tableOid = RelationGetRelid(rel);
	tup->t_data = (HeapTupleHeader) ((char *) tup + HEAPTUPLESIZE);
	if (delta)
		storage::delta_decode(image, reclen, base, base_len, (char *) tup->t_data);
	else
		memcpy(tup->t_data, image, len);
	UnlockReleaseBuffer(buf);
	UnlockReleaseBuffer(metabuf);
	/* a sealed image (encrypted table): its payload is opened where values are needed */
	if (len < SizeofHeapTupleHeader || tup->t_data->t_hoff > len ||
		(sealed && len - tup->t_data->t_hoff < crypto::kSealOverhead) ||
		((tup->t_data->t_infomask2 & storage::kTupleHasUndo) &&
		 !storage::tuple_hoff_is_valid(tup->t_data)))
	{
		pfree(tup);
		*why = "the image's header is damaged";
		return nullptr;
	}
	if (storage::undo_ptr_in_page(storage::tuple_undo_ptr(tup->t_data)))
	{
		pfree(tup);
		*why = "an undo image points at a version on the data page";
		return nullptr;
	}
	return tup;
}

/* try_read_image of newer's predecessor, raising the damage as an error (XX001). */
HeapTuple
read_image(Relation rel, Relation undo, HeapTuple newer, ItemPointer tid)
{
	const char *why;
	storage::UndoPtr p = storage::tuple_undo_ptr(newer->t_data);
	HeapTuple img =
		try_read_image(rel, undo, tid, p, HeapTupleHeaderGetRawXmin(newer->t_data), newer, &why);
	if (img == nullptr && why != nullptr)
		bad_record(rel, tid, p, why);
	return img;
}

/*
 * A chain's undo store, opened at the first step that needs it: a step
 * through an in-page pointer reads the row's own page. No destructor (an
 * error may longjmp past it): close() releases it, and an error's
 * resource owner releases the lock.
 */
struct LazyUndo
{
	Relation rel;
	Relation undo = nullptr;
	bool opened = false;

	/* The store for the step from t's pointer: nullptr for an in-page pointer, or when there is none. */
	Relation for_step(HeapTupleHeader t)
	{
		if (!opened && !storage::undo_ptr_in_page(storage::tuple_undo_ptr(t)))
		{
			undo = undo_open(rel, AccessShareLock);
			opened = true;
		}
		return undo;
	}

	void close()
	{
		if (undo != nullptr)
			table_close(undo, AccessShareLock);
		undo = nullptr;
	}
};

/* The chain walk: from *tuple (page version or image) to the version accept() takes. */
template <typename Accept, typename Skip>
bool
walk(Relation rel, HeapTuple tuple, bool *copied, Accept accept, Skip skip)
{
	LazyUndo undo{rel};
	HeapTuple prev = nullptr;
	bool found = false;
	HeapTupleData cur = *tuple;

	*copied = false;
	for (int depth = 0;; depth++)
	{
		if ((depth & 63) == 63)
			CHECK_FOR_INTERRUPTS();
		/*
		 * The caller decided to pass the page version: not judged again (its
		 * creator may have ended since, and the walk would stop with nothing).
		 */
		if (!storage::tuple_has_undo(cur.t_data) || (depth > 0 && !skip(cur.t_data)))
			break;
		HeapTuple img = read_image(rel, undo.for_step(cur.t_data), &cur, &tuple->t_self);
		if (prev != nullptr)
			heap_freetuple(prev);
		prev = img;
		if (img == nullptr)
			break; /* recycled: no snapshot that may still run needs it */
		cur = *img;
		if (accept(img))
		{
			*tuple = *img; /* t_data is in img's chunk: release_copy frees it */
			prev = nullptr;
			*copied = true;
			found = true;
			break;
		}
	}
	if (prev != nullptr)
		heap_freetuple(prev);
	undo.close();
	return found;
}

/* The undo record an INPLACE UPDATE appends (block 1). */
struct UndoAppend
{
	const UndoInsert *ins;
	const storage::UndoRecordHeader *hdr;
	const void *image; /* the record's image: a whole version or a delta version */
	Size image_len;
};

/*
 * Log an INPLACE record (in the caller's critical section): the row at off
 * of buffer got a version, given as version (len bytes: the whole version,
 * or with delta a delta version against the page version it replaced);
 * for UPDATE, ua is the undo record appended at ua->ins->position. Sets
 * the pages' LSNs.
 */
void
log_inplace(Buffer buffer, uint8 sub, bool vm_cleared, OffsetNumber off, const void *version,
			Size len, bool delta, const UndoAppend *ua, const char *oldfields = nullptr,
			Size oldfields_len = 0)
{
	wal::XlInplace xl;
	memset(&xl, 0, sizeof(xl));
	xl.version = wal::kWalFormatVersion;
	xl.sub = sub;
	xl.flags = (vm_cleared ? wal::kFlagVmCleared : 0) | (delta ? wal::kFlagDeltaVersion : 0);
	xl.offnum = off;
	xl.position = ua != nullptr ? ua->ins->position : storage::kInvalidUndoPtr;
	if (ua != nullptr)
	{
		/* the rest of the record's header is the WAL record's (redo_inplace) */
		Assert(ua->hdr->offnum == off && ua->hdr->block == storage::data_block(buffer) &&
			   TransactionIdEquals(ua->hdr->writer, GetCurrentTransactionIdIfAny()));
		xl.undo_kind = ua->hdr->kind;
		xl.undo_flags = ua->hdr->flags;
	}
	XLogBeginInsert();
	/* LOCAL has no undo record: its main data stops before undo_flags */
	XLogRegisterData((char *) &xl,
					 sub == wal::kInplaceLocal ? offsetof(wal::XlInplace, undo_flags) : sizeof(xl));
	XLogRegisterBuffer(0, buffer, REGBUF_STANDARD);
	/* LOCAL: the previous version's changed header fields first */
	Assert((sub == wal::kInplaceLocal) == (oldfields != nullptr));
	if (oldfields != nullptr)
		XLogRegisterBufData(0, (char *) oldfields, oldfields_len);
	XLogRegisterBufData(0, (char *) version, len);
	if (ua != nullptr)
	{
		XLogRegisterBuffer(1, ua->ins->page, REGBUF_STANDARD);
		XLogRegisterBufData(1, (char *) ua->image, ua->image_len);
	}
	XLogRecPtr recptr = XLogInsert(RUSTYDB_RMGR_ID, wal::kInplace);
	PageSetLSN(BufferGetPage(buffer), recptr);
	if (ua != nullptr)
		PageSetLSN(BufferGetPage(ua->ins->page), recptr);
}

/*
 * The image of an undo record holding version, whose next newer version
 * is newer: a delta version against newer's payload when that is shorter
 * and version is not sealed (a palloc'd copy, *kind kUndoDelta), else
 * version's bytes themselves (*kind kUndoTuple).
 */
char *
undo_image(HeapTuple version, HeapTuple newer, bool sealed, uint8 *kind, Size *len)
{
	*kind = storage::kUndoTuple;
	*len = version->t_len;
	if (sealed)
		return (char *) version->t_data;
	auto *enc = (char *) palloc(version->t_len + sizeof(storage::PayloadDelta));
	Size n = storage::delta_encode(version->t_data, version->t_len,
								   (char *) newer->t_data + newer->t_data->t_hoff,
								   newer->t_len - newer->t_data->t_hoff, enc);
	if (n >= version->t_len)
	{
		pfree(enc);
		return (char *) version->t_data;
	}
	*kind = storage::kUndoDelta;
	*len = n;
	return enc;
}

/* The store holds sealed records exactly when the table is encrypted (XX001 otherwise). */
void
check_store_encryption(Relation rel, UndoInsert *ins, bool encrypted)
{
	const char *mwhy = nullptr;
	const storage::UndoMetaData *meta = storage::undo_meta_get(BufferGetPage(ins->meta), &mwhy);
	if (meta != nullptr && ((meta->flags & storage::kUndoEncrypted) != 0) == encrypted)
		return;
	undo_release(ins);
	ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
					errmsg("undo store of relation \"%s\" does not match the table's encryption",
						   RelationGetRelationName(rel)),
					errdetail("The table is %s, its undo store's metapage %s.",
							  encrypted ? "encrypted" : "not encrypted",
							  meta == nullptr                           ? mwhy
							  : (meta->flags & storage::kUndoEncrypted) ? "says encrypted"
																		: "says not encrypted")));
}

} /* namespace */

static_assert(storage::kTupleHasUndo != crypto::kValuesSealed,
			  "the undo bit and the sealed-values bit are distinct");

const char *
check_chain(Relation rel, HeapTuple tuple)
{
	LazyUndo undo{rel};
	const char *why = nullptr;
	HeapTupleData cur = *tuple;
	HeapTuple prev = nullptr;
	bool aborted = mvcc::creator_aborted(tuple->t_data);

	for (int depth = 0; why == nullptr && storage::tuple_has_undo(cur.t_data); depth++)
	{
		storage::UndoPtr p = storage::tuple_undo_ptr(cur.t_data);
		Relation u = undo.for_step(cur.t_data);
		if (u == nullptr && !storage::undo_ptr_in_page(p))
		{
			why = "an undo pointer in a table without an undo store";
			break;
		}
		HeapTuple img = try_read_image(rel, u, &tuple->t_self, p,
									   HeapTupleHeaderGetRawXmin(cur.t_data), &cur, &why);
		if (prev != nullptr)
			heap_freetuple(prev);
		prev = img;
		if (img == nullptr)
		{
			if (why == nullptr && depth == 0 && aborted)
				why = "an aborted in-place version whose predecessor was recycled";
			break;
		}
		cur = *img;
		aborted = false;
	}
	if (prev != nullptr)
		heap_freetuple(prev);
	undo.close();
	return why;
}

bool
succeeds(Relation rel, HeapTuple tuple, TransactionId prior_xmax)
{
	HeapTupleHeader t = tuple->t_data;
	if (TransactionIdEquals(HeapTupleHeaderGetXmin(t), prior_xmax))
		return true;
	if (!storage::tuple_has_undo(t))
		return false;
	/* changed in place since: one of the row's older versions is prior_xmax's */
	LazyUndo undo{rel};
	HeapTupleData cur = *tuple;
	HeapTuple prev = nullptr;
	bool found = false;
	for (int depth = 0; storage::tuple_has_undo(cur.t_data); depth++)
	{
		if ((depth & 63) == 63)
			CHECK_FOR_INTERRUPTS();
		HeapTuple img = read_image(rel, undo.for_step(cur.t_data), &cur, &tuple->t_self);
		if (prev != nullptr)
			heap_freetuple(prev);
		prev = img;
		if (img == nullptr)
		{
			/* recycled: the link is older than every snapshot, and the row is the same */
			found = true;
			break;
		}
		if (TransactionIdEquals(HeapTupleHeaderGetXmin(img->t_data), prior_xmax))
		{
			found = true;
			break;
		}
		cur = *img;
	}
	if (prev != nullptr)
		heap_freetuple(prev);
	undo.close();
	return found;
}

void
release_copy(HeapTuple tuple)
{
	pfree((char *) tuple->t_data - HEAPTUPLESIZE);
	tuple->t_data = nullptr;
}

bool
visible_version(Relation rel, Buffer buffer, HeapTuple tuple, Snapshot snapshot, bool ssi,
				bool *copied)
{
	*copied = false;
	bool visible = mvcc::satisfies(tuple, snapshot, buffer);
	/*
	 * SnapshotAny: the row as it stands, which an aborted in-place version
	 * or one whose creator (another transaction) still runs does not. The
	 * executor fetches the row it updates this way (ExecModifyTable, for
	 * the unchanged columns), as heap's old version: the committed one. A
	 * version the running command wrote stands for the row it replaced:
	 * the same command fetches its OLD row by TID after the update
	 * (GetTupleForTrigger for transition tables), as heap's old version.
	 */
	if (visible && snapshot->snapshot_type == SNAPSHOT_ANY &&
		storage::tuple_has_undo(tuple->t_data))
	{
		bool copied_any;
		HeapTupleData row = *tuple;
		bool found = effective_version(rel, &row, true, &copied_any);
		if (copied_any)
		{
			*tuple = row;
			*copied = true;
		}
		return found;
	}
	if (ssi)
		mvcc::check_serializable_conflict_out(visible, rel, tuple, buffer, snapshot);
	if (visible || !storage::tuple_has_undo(tuple->t_data))
		return visible;
	bool found = walk(
		rel, tuple, copied,
		[&](HeapTuple img) {
			bool v = mvcc::satisfies(img, snapshot, InvalidBuffer);
			if (ssi)
				mvcc::check_serializable_conflict_out(v, rel, img, InvalidBuffer, snapshot);
			return v;
		},
		[&](HeapTupleHeader t) { return mvcc::creator_invisible(t, snapshot); });
	return found;
}

bool
effective_version(Relation rel, HeapTuple tuple, bool skip_running, bool *copied)
{
	auto skip = [&](HeapTupleHeader t) {
		if (mvcc::creator_aborted(t))
			return true;
		if (!skip_running || HeapTupleHeaderXminCommitted(t))
			return false;
		TransactionId xmin = HeapTupleHeaderGetRawXmin(t);
		if (TransactionIdIsCurrentTransactionId(xmin))
			/* written by the running command: the row it replaced (see visible_version) */
			return HeapTupleHeaderGetCmin(t) >= GetCurrentCommandId(false);
		return TransactionIdIsInProgress(xmin);
	};
	*copied = false;
	if (!storage::tuple_has_undo(tuple->t_data) || !skip(tuple->t_data))
		return true;
	return walk(
		rel, tuple, copied, [&](HeapTuple img) { return !skip(img->t_data); }, skip);
}

void
older_versions(Relation rel, HeapTuple tuple, bool (*visit)(HeapTuple version, void *arg),
			   void *arg)
{
	bool copied = false;
	HeapTupleData start = *tuple;
	/* walk stops at the first version "accepted": here, where visit says stop */
	walk(
		rel, &start, &copied, [&](HeapTuple img) { return !visit(img, arg); },
		[](HeapTupleHeader) { return true; });
	if (copied)
		release_copy(&start);
}

/* ========================================================================
 * Repair
 * ========================================================================
 */

int
repair_aborted(Relation rel, Buffer buffer, HeapTuple tuple)
{
	Assert(storage::buffer_is_locked_exclusive(buffer));
	int repairs = 0;
	LazyUndo undo{rel};
	OffsetNumber off = ItemPointerGetOffsetNumber(&tuple->t_self);

	while (storage::tuple_has_undo(tuple->t_data) && mvcc::creator_aborted(tuple->t_data))
	{
		HeapTuple img = read_image(rel, undo.for_step(tuple->t_data), tuple, &tuple->t_self);
		if (img == nullptr)
			bad_record(rel, &tuple->t_self, storage::tuple_undo_ptr(tuple->t_data),
					   "the predecessor of an aborted in-place version was recycled");
		if (MAXALIGN(img->t_len) > MAXALIGN(tuple->t_len) &&
			!storage::inplace_fits(BufferGetPage(buffer), img->t_len))
			bad_record(rel, &tuple->t_self, storage::tuple_undo_ptr(tuple->t_data),
					   "the previous version is longer than the aborted one");

		/*
		 * The restored version's xmax: not the aborted writer's update the
		 * image records, but the lockers the aborted version carries (a
		 * key-share lock taken on it, lockers it inherited), so no lock is
		 * lost with the repair.
		 */
		HeapTupleHeader pv = tuple->t_data, rt = img->t_data;
		constexpr uint16 kXmaxBits = HEAP_XMAX_COMMITTED | HEAP_XMAX_INVALID | HEAP_XMAX_IS_MULTI |
									 HEAP_LOCK_MASK | HEAP_XMAX_LOCK_ONLY;
		rt->t_infomask &= ~(kXmaxBits | HEAP_COMBOCID);
		rt->t_infomask2 &= ~HEAP_KEYS_UPDATED;
		if (!(pv->t_infomask & HEAP_XMAX_INVALID) && HEAP_XMAX_IS_LOCKED_ONLY(pv->t_infomask))
		{
			rt->t_infomask |= pv->t_infomask & (kXmaxBits & ~HEAP_XMAX_COMMITTED);
			HeapTupleHeaderSetXmax(rt, HeapTupleHeaderGetRawXmax(pv));
		}
		else
		{
			rt->t_infomask |= HEAP_XMAX_INVALID;
			HeapTupleHeaderSetXmax(rt, InvalidTransactionId);
		}
		Buffer vmbuf = InvalidBuffer;
		storage::vm_pin_if_needed(rel, buffer, &vmbuf);
		START_CRIT_SECTION();
		bool vm_cleared = storage::vm_clear(rel, buffer, vmbuf);
		storage::repair_inplace(buffer, off, img->t_data, img->t_len);
		MarkBufferDirty(buffer);
		if (RelationNeedsWAL(rel))
			log_inplace(buffer, wal::kInplaceRepair, vm_cleared, off, img->t_data, img->t_len,
						false, nullptr);
		END_CRIT_SECTION();
		if (BufferIsValid(vmbuf))
			ReleaseBuffer(vmbuf);
		heap_freetuple(img);
		repairs++;
		Page page = BufferGetPage(buffer);
		if (!storage::tuple_at(rel, buffer, page, off, tuple))
			elog(ERROR, "rustydb: row (%u,%u) vanished during its repair",
				 storage::data_block(buffer), (unsigned) off);
	}
	undo.close();
	if (repairs > 0)
		undo_count(RelationGetRelid(rel), UndoEvent::Repair, repairs);
	return repairs;
}

/* ========================================================================
 * The in-place path of UPDATE
 * ========================================================================
 */

UndoEvent
inplace_prepare(Relation rel, Relation *undo, bool local)
{
	*undo = nullptr;
	/* not counted: what the table is, not what happened to an update */
	if (rel->rd_rel->relkind != RELKIND_RELATION)
		return UndoEvent::Count_;
	TriggerDesc *td = rel->trigdesc;
	if (td != nullptr && td->trig_update_after_row)
		return UndoEvent::Count_; /* they fetch old and new by TID, later */
	if (XLogLogicalInfoActive() && RelationIsLogicallyLogged(rel))
		return UndoEvent::Count_; /* decoding reads UPDATE records */
	if (!settings::update_in_place || settings::undo_max_size == 0)
		return UndoEvent::FallbackDisabled;
	if (rel->rd_createSubid != InvalidSubTransactionId ||
		rel->rd_firstRelfilenodeSubid != InvalidSubTransactionId)
		return UndoEvent::FallbackNewFile;
	/*
	 * A LOCAL update writes no undo: it needs only a store that exists,
	 * with its metapage, for pruning to move previous versions to. Its
	 * upkeep (opening it: a lock, two file-size calls and the metapage)
	 * is paid once in kUndoUpkeepEvery updates, which bounds what pruning
	 * can add between two discards; a full ring defers compaction, and
	 * updates then fall back out of place, as with undo at once.
	 */
	storage::RelAmCache *cache = local ? storage::rel_amcache(rel) : nullptr;
	if (cache != nullptr && cache->undo_ready && ++cache->local_updates % kUndoUpkeepEvery != 0)
		return UndoEvent::Inplace;
	*undo = undo_open(rel, RowExclusiveLock);
	if (*undo == nullptr)
		return UndoEvent::FallbackNoStore;
	if (RelationGetNumberOfBlocks(*undo) == 0)
		undo_ensure_meta(rel, *undo);
	else if (undo_nearly_full(*undo))
		undo_discard(rel, *undo); /* before any data page lock: discard may repair rows */
	if (cache != nullptr)
		cache->undo_ready = true;
	return UndoEvent::Inplace;
}

bool
update_in_place(Relation rel, Relation undo, const crypto::Cipher *cipher, Buffer buffer,
				HeapTuple oldtup, HeapTuple oldplain, HeapTuple newtup, TransactionId xid,
				CommandId cid, MultiXactStatus mine, UndoEvent *why)
{
	Page page = BufferGetPage(buffer);
	HeapTupleHeader ot = oldtup->t_data;
	OffsetNumber off = ItemPointerGetOffsetNumber(&oldtup->t_self);

	if (HeapTupleHeaderIsHeapOnly(ot))
	{
		*why = UndoEvent::FallbackHeapOnly;
		return false;
	}
	/*
	 * Encrypted: a member of a sealed group stays in its group, whose seal
	 * covers its offset and length (an out-of-place update leaves it there,
	 * and its new version is sealed on its own).
	 */
	int gslot, gordinal;
	if (cipher != nullptr && group_member(oldtup, &gslot, &gordinal))
	{
		*why = UndoEvent::FallbackGroupMember;
		return false;
	}
	/* the new version, with its undo pointer (set below) */
	HeapTuple nv = storage::tuple_with_undo(newtup, storage::kInvalidUndoPtr);
	Size nvlen = stored_size(cipher, nv->t_len);
	if (MAXALIGN(nvlen) < MAXALIGN(oldtup->t_len))
	{
		heap_freetuple(nv);
		*why = UndoEvent::FallbackShrinks;
		return false;
	}
	if (!storage::inplace_fits(page, nvlen))
	{
		heap_freetuple(nv);
		*why = UndoEvent::FallbackNoSpace;
		return false;
	}
	/* the previous version's image: sealed on its own for an encrypted table */
	Size need = sizeof(storage::UndoRecordHeader) + stored_size(cipher, oldplain->t_len);
	if (need > storage::kUndoMaxImage + sizeof(storage::UndoRecordHeader))
	{
		heap_freetuple(nv);
		*why = UndoEvent::FallbackTooLarge;
		return false;
	}
	/*
	 * Sealed as the out-of-place path seals a new version, once the
	 * extension is in the header: the associated data covers t_hoff, not
	 * the 8 bytes before it, where the undo pointer is written below.
	 */
	if (cipher != nullptr)
	{
		HeapTuple sealed = seal_for_page(cipher, nv);
		heap_freetuple(nv);
		nv = sealed;
	}

	CheckForSerializableConflictIn(rel, &oldtup->t_self, storage::data_block(buffer));

	/* the previous version as an out-of-place update would leave it */
	CommandId cmax = cid;
	bool iscombo;
	HeapTupleHeaderAdjustCmax(ot, &cmax, &iscombo);
	TransactionId new_xmax;
	uint16 im, im2;
	compose_xmax(ot, xid, mine, &new_xmax, &im, &im2);
	storage::TupleXact ox = with_xmax(ot, new_xmax, im, im2);

	/*
	 * Its payload in plaintext (oldplain: the opened page version), the
	 * header as the page has it now (with the undo pointer that continues
	 * the chain).
	 */
	HeapTuple img = heap_copytuple(oldplain);
	HeapTupleHeader it = img->t_data;
	Assert(oldplain == oldtup || ot->t_hoff == it->t_hoff);
	memcpy(it, ot, ot->t_hoff);
	it->t_infomask = (ox.infomask & ~HEAP_COMBOCID) | (iscombo ? HEAP_COMBOCID : 0);
	it->t_infomask2 = ox.infomask2 & ~(HEAP_HOT_UPDATED | HEAP_ONLY_TUPLE);
	HeapTupleHeaderSetXmax(it, ox.xmax);
	it->t_ctid = oldtup->t_self;
	HeapTupleHeaderSetCmax(it, cmax, iscombo);
	/*
	 * Its creator committed (acquire_right let us update it) unless it is
	 * ours: say so in the image, so that no reader of the image asks the
	 * commit log about an xid VACUUM may have frozen past meanwhile. Safe
	 * with asynchronous commit: this record follows that commit in WAL.
	 */
	if (!HeapTupleHeaderXminCommitted(it) &&
		!TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetRawXmin(it)))
		it->t_infomask |= HEAP_XMIN_COMMITTED;

	/*
	 * A plain table keeps the previous version on the page: its bytes stay
	 * where they are, with the header above, and the new version points at
	 * them; pruning moves it to undo if a snapshot may still need it when
	 * the page is compacted ("Previous versions on the page"). An encrypted
	 * table's goes to undo at once, re-sealed on its own.
	 */
	bool local = cipher == nullptr && settings::inplace_previous_on_page;
	if (!local && undo == nullptr)
	{
		heap_freetuple(img);
		heap_freetuple(nv);
		*why = UndoEvent::FallbackNoStore; /* the setting changed since inplace_prepare */
		return false;
	}
	UndoInsert ins{InvalidBuffer, InvalidBuffer, storage::kInvalidUndoPtr};
	storage::UndoRecordHeader hdr = storage::undo_record_header(
		storage::kUndoTuple, 0, storage::data_block(buffer), off, rel->rd_node.relNode, xid);
	char *image = nullptr;
	Size image_len = 0;
	if (!local)
	{
		if (cipher != nullptr)
		{
			/* re-sealed on its own: no plaintext reaches undo (docs/storage.md) */
			HeapTuple sealed = seal_for_page(cipher, img);
			explicit_bzero(img->t_data, img->t_len);
			heap_freetuple(img);
			img = sealed;
			hdr.flags |= storage::kUndoRecordSealed;
		}
		Assert(sizeof(hdr) + img->t_len == need);
		image = undo_image(img, nv, cipher != nullptr, &hdr.kind, &image_len);
		if (!undo_reserve(rel, undo, sizeof(hdr) + image_len, &ins))
		{
			if (image != (char *) img->t_data)
				pfree(image);
			heap_freetuple(img);
			heap_freetuple(nv);
			*why = UndoEvent::FallbackUndoFull;
			return false;
		}
		check_store_encryption(rel, &ins, cipher != nullptr);
	}

	storage::UndoPtr ptr =
		local ? storage::in_page_ptr((uint16) ItemIdGetOffset(PageGetItemId(page, off)),
									 (uint16) oldtup->t_len)
			  : ins.position;
	memcpy((char *) nv->t_data + nv->t_data->t_hoff - storage::kUndoExtSize, &ptr, sizeof(ptr));
	HeapTupleHeader nt = nv->t_data;
	nt->t_infomask2 &= ~(HEAP_HOT_UPDATED | HEAP_ONLY_TUPLE);
	nt->t_ctid = oldtup->t_self;
	/*
	 * A row lock of ours stays at its strength on the version lockers now
	 * find at this TID (an out-of-place update's new version gets key-share
	 * only, but there lockers still find the old version with our lock).
	 */
	if (!(ot->t_infomask & (HEAP_XMAX_INVALID | HEAP_XMAX_IS_MULTI)) &&
		HEAP_XMAX_IS_LOCKED_ONLY(ot->t_infomask) &&
		TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetRawXmax(ot)) &&
		TransactionIdEquals(HeapTupleHeaderGetRawXmax(nt), HeapTupleHeaderGetRawXmax(ot)))
	{
		nt->t_infomask = (nt->t_infomask & ~HEAP_LOCK_MASK) | (ot->t_infomask & HEAP_LOCK_MASK);
		nt->t_infomask2 =
			(nt->t_infomask2 & ~HEAP_KEYS_UPDATED) | (ot->t_infomask2 & HEAP_KEYS_UPDATED);
	}

	/*
	 * WAL: a plain table's new version as a delta version against the
	 * page version it replaces, whose bytes redo finds on the page; LOCAL
	 * logs it without the header fields redo knows (storage/undo.h), and
	 * of the previous version only the header fields the update changes.
	 */
	char *logged = (char *) nt;
	Size logged_len = nv->t_len;
	bool logged_delta = false;
	bool needs_wal = RelationNeedsWAL(rel);
	char oldfields[storage::kPackedFieldsMax];
	Size oldfields_len = 0;
	if (needs_wal && local)
	{
		/* redo takes the new version's xmin from the record */
		if (!TransactionIdEquals(HeapTupleHeaderGetRawXmin(nt), GetCurrentTransactionIdIfAny()))
			elog(ERROR, "rustydb: an in-place version not created by the current transaction");
		Assert(memcmp(it, ot, offsetof(HeapTupleHeaderData, t_choice.t_heap.t_xmax)) == 0 &&
			   it->t_hoff == ot->t_hoff && ItemPointerEquals(&it->t_ctid, &oldtup->t_self));
		storage::HeaderDefaults od{HeapTupleHeaderGetRawXmin(it), xid, oldtup->t_self};
		oldfields_len = storage::pack_header_fields(it, od, oldfields);
		storage::HeaderDefaults nd{xid, InvalidTransactionId, oldtup->t_self};
		logged = (char *) palloc(nv->t_len + sizeof(storage::PayloadDelta));
		logged_len = storage::local_new_pack(nt, nv->t_len, nd, (char *) ot + ot->t_hoff,
											 oldtup->t_len - ot->t_hoff, logged);
		logged_delta = true;
	}
	else if (needs_wal && cipher == nullptr)
	{
		char *enc = (char *) palloc(nv->t_len + sizeof(storage::PayloadDelta));
		Size n = storage::delta_encode(nt, nv->t_len, (char *) ot + ot->t_hoff,
									   oldtup->t_len - ot->t_hoff, enc);
		if (n < nv->t_len)
		{
			logged = enc;
			logged_len = n;
			logged_delta = true;
		}
		else
			pfree(enc);
	}

	Buffer vmbuf = InvalidBuffer;
	storage::vm_pin_if_needed(rel, buffer, &vmbuf);
	START_CRIT_SECTION();
	bool vm_cleared = storage::vm_clear(rel, buffer, vmbuf);
	PageSetPrunable(page, xid);
	if (local)
		storage::place_inplace_local(buffer, off, (char *) it, nt, nv->t_len);
	else
	{
		storage::undo_append_change(ins.page, storage::undo_offset_of(ins.position), hdr, image,
									image_len);
		storage::place_inplace(buffer, off, nt, nv->t_len);
		MarkBufferDirty(ins.page);
	}
	MarkBufferDirty(buffer);
	if (needs_wal)
	{
		UndoAppend ua{&ins, &hdr, image, image_len};
		log_inplace(buffer, local ? wal::kInplaceLocal : wal::kInplaceUpdate, vm_cleared, off,
					logged, logged_len, logged_delta && !local, local ? nullptr : &ua,
					local ? oldfields : nullptr, oldfields_len);
	}
	/* t_cid is backend-local: the page version keeps this command's cid as cmin */
	END_CRIT_SECTION();
	if (!local)
		undo_release(&ins);
	if (BufferIsValid(vmbuf))
		ReleaseBuffer(vmbuf);
	if (logged_delta)
		pfree(logged);
	if (image != nullptr && image != (char *) img->t_data)
		pfree(image);
	heap_freetuple(img);
	heap_freetuple(nv);
	newtup->t_self = oldtup->t_self;
	return true;
}

} /* namespace rustydb::am */

/* ========================================================================
 * Previous versions on the page, before compaction
 * ========================================================================
 */

namespace rustydb::am {

namespace {

/* Most previous versions one page can hold: every one at least a tuple header. */
constexpr int kMaxPageChain = BLCKSZ / MAXALIGN(storage::kTupleHeaderSize) + 1;

/*
 * May a snapshot, or a repair, still need the version before t? Yes while
 * t's creator is not committed and older than every snapshot (the pruning
 * horizon: vistest, or oldest_xmin).
 */
bool
needs_predecessor(HeapTupleHeader t, GlobalVisState *vistest, TransactionId oldest_xmin)
{
	if (HeapTupleHeaderXminFrozen(t))
		return false;
	TransactionId x = HeapTupleHeaderGetRawXmin(t);
	bool old_enough = vistest != nullptr ? GlobalVisTestIsRemovableXid(vistest, x)
										 : TransactionIdPrecedes(x, oldest_xmin);
	if (!old_enough)
		return true;
	/* older than every snapshot, so not running: committed, or aborted (a repair needs it) */
	return !(HeapTupleHeaderXminCommitted(t) || TransactionIdDidCommit(x));
}

/*
 * INPLACE MIGRATE: copy the previous version prev (on the page, pointed at
 * by the version at byte offset ref_off, whose payload is ref's) to undo
 * and point ref at it. drop_xid: valid when prev's own pointer into the
 * page is cleared in the copy (the versions before it are dropped). False
 * when the store has no room.
 */
bool
migrate_one(Relation rel, Relation undo, Buffer buffer, OffsetNumber row, uint16 ref_off,
			HeapTupleHeader ref, Size ref_len, HeapTupleHeader prev, Size prev_len,
			TransactionId drop_xid)
{
	HeapTupleData rt, pt;
	rt.t_data = ref;
	rt.t_len = (uint32) ref_len;
	/* the copy: prev's bytes, its pointer cleared when the versions before it are dropped */
	HeapTuple copy = (HeapTuple) palloc(HEAPTUPLESIZE + prev_len);
	copy->t_len = (uint32) prev_len;
	copy->t_data = (HeapTupleHeader) ((char *) copy + HEAPTUPLESIZE);
	memcpy(copy->t_data, prev, prev_len);
	if (TransactionIdIsValid(drop_xid))
	{
		storage::UndoPtr none = storage::kInvalidUndoPtr;
		memcpy((char *) copy->t_data + copy->t_data->t_hoff - storage::kUndoExtSize, &none,
			   sizeof(none));
	}
	pt = *copy;
	storage::UndoRecordHeader hdr =
		storage::undo_record_header(storage::kUndoTuple, 0, storage::data_block(buffer), row,
									rel->rd_node.relNode, HeapTupleHeaderGetRawXmin(ref));
	Size image_len;
	char *image = undo_image(&pt, &rt, false, &hdr.kind, &image_len);
	UndoInsert ins;
	bool ok = undo_reserve(rel, undo, sizeof(hdr) + image_len, &ins);
	if (ok)
	{
		check_store_encryption(rel, &ins, false);
		wal::XlInplace xl;
		memset(&xl, 0, sizeof(xl));
		xl.version = wal::kWalFormatVersion;
		xl.sub = wal::kInplaceMigrate;
		xl.undo_kind = hdr.kind;
		xl.offnum = row;
		xl.position = ins.position;
		wal::XlInplaceMigrate m{ref_off, 0, hdr.writer, drop_xid};

		START_CRIT_SECTION();
		storage::undo_append_change(ins.page, storage::undo_offset_of(ins.position), hdr, image,
									image_len);
		storage::move_to_undo(buffer, ref_off, ins.position);
		MarkBufferDirty(ins.page);
		MarkBufferDirty(buffer);
		if (RelationNeedsWAL(rel))
		{
			XLogBeginInsert();
			XLogRegisterData((char *) &xl, sizeof(xl));
			XLogRegisterData((char *) &m, sizeof(m));
			XLogRegisterBuffer(0, buffer, REGBUF_STANDARD);
			XLogRegisterBuffer(1, ins.page, REGBUF_STANDARD);
			XLogRegisterBufData(1, image, image_len);
			XLogRecPtr recptr = XLogInsert(RUSTYDB_RMGR_ID, wal::kInplace);
			PageSetLSN(BufferGetPage(buffer), recptr);
			PageSetLSN(BufferGetPage(ins.page), recptr);
		}
		END_CRIT_SECTION();
		undo_release(&ins);
	}
	if (image != (char *) copy->t_data)
		pfree(image);
	pfree(copy);
	return ok;
}

} /* namespace */

bool
settle_previous_versions(Relation rel, Relation undo, Buffer buffer, GlobalVisState *vistest,
						 TransactionId oldest_xmin, const bool *removed,
						 TransactionId *latest_removed)
{
	Assert(storage::buffer_is_locked_exclusive(buffer));
	Page page = BufferGetPage(buffer);
	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
	auto advance = [&](HeapTupleHeader t) {
		TransactionId x = HeapTupleHeaderGetRawXmin(t);
		if (TransactionIdIsNormal(x) &&
			(!TransactionIdIsValid(*latest_removed) || TransactionIdFollows(x, *latest_removed)))
			*latest_removed = x;
	};
	/* the links of one row's chain on the page: version refs[i] at offsets[i] points at refs[i + 1] */
	auto *refs = (HeapTupleHeader *) palloc(sizeof(HeapTupleHeader) * (kMaxPageChain + 1));
	auto *offsets = (uint16 *) palloc(sizeof(uint16) * (kMaxPageChain + 1));
	auto *lens = (Size *) palloc(sizeof(Size) * (kMaxPageChain + 1));
	bool ok = true;

	for (OffsetNumber off = FirstOffsetNumber; ok && off <= maxoff; off++)
	{
		ItemId lp = PageGetItemId(page, off);
		if (removed[off] || !ItemIdIsNormal(lp))
			continue;
		auto v = (HeapTupleHeader) PageGetItem(page, lp);
		if (!storage::undo_ptr_in_page(storage::tuple_undo_ptr(v)))
			continue;
		int n = 0;
		refs[0] = v;
		offsets[0] = (uint16) ItemIdGetOffset(lp);
		lens[0] = ItemIdGetLength(lp);
		TransactionId drop_xid = InvalidTransactionId;
		for (;;)
		{
			HeapTupleHeader x = refs[n];
			storage::UndoPtr p = storage::tuple_undo_ptr(x);
			if (!storage::undo_ptr_in_page(p))
				break;
			if (!needs_predecessor(x, vistest, oldest_xmin))
			{
				/* no snapshot needs what x replaced: dropped with the compaction */
				drop_xid = HeapTupleHeaderGetRawXmin(x);
				advance(x);
				break;
			}
			const char *why = nullptr;
			HeapTupleHeader prev = storage::in_page_version(page, p, &why);
			if (prev == nullptr || n + 1 >= kMaxPageChain)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("invalid rustydb tuple (%u,%u) in relation \"%s\"",
								storage::data_block(buffer), (unsigned) off,
								RelationGetRelationName(rel)),
						 errdetail("%s.", why != nullptr ? why
														 : "a chain of previous versions "
														   "on the page that does not end")));
			n++;
			refs[n] = prev;
			offsets[n] = storage::in_page_offset(p);
			lens[n] = storage::in_page_len(p);
		}
		if (n == 0)
			continue; /* the row's pointer is cleared by the compaction */
		if (undo == nullptr || IsInParallelMode())
		{
			ok = false;
			break;
		}
		/* the oldest first: each copy then carries its own pointer into undo */
		for (int i = n; ok && i >= 1; i--)
		{
			TransactionId drop = i == n ? drop_xid : InvalidTransactionId;
			ok = migrate_one(rel, undo, buffer, off, offsets[i - 1], refs[i - 1], lens[i - 1],
							 refs[i], lens[i], drop);
		}
	}
	pfree(refs);
	pfree(offsets);
	pfree(lens);
	return ok;
}

} /* namespace rustydb::am */

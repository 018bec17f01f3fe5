/*-------------------------------------------------------------------------
 *
 * rmgr.cpp
 *	  The "rustydb" WAL resource manager: redo, desc, identify, mask
 *	  (logical decoding, rm_decode: decode.cpp).
 *
 * Redo re-applies each record to the page with the function the original
 * change used (storage/changes.h), so that after masking (hint bits,
 * command ids, LSN, checksum, free space, line-pointer padding) the
 * replayed page equals the primary's: wal_consistency_checking =
 * 'rustydb' compares them on every record. Redo itself only checks what a
 * record says against the page (PANIC on a mismatch) and reads its blocks.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/wal/records.h"
#include "rustydb/wal/decode.h"

#include "rustydb/common/boundary.h"
#include "rustydb/storage/changes.h"
#include "rustydb/storage/page.h"
#include "rustydb/storage/undo.h"

namespace rustydb::wal {

using storage::page_init;

/* ========================================================================
 * Redo helpers
 * ========================================================================
 */

static void
check_version(XLogReaderState *record, uint8 version)
{
	if (version < kWalFormatOldest || version > kWalFormatVersion)
		elog(PANIC,
			 "rustydb WAL record of format version %u at %X/%X, this build reads versions %u to %u",
			 (unsigned) version, (uint32) (record->ReadRecPtr >> 32), (uint32) record->ReadRecPtr,
			 (unsigned) kWalFormatOldest, (unsigned) kWalFormatVersion);
}

/* The data block number of a record's block_id (a data page). */
static BlockNumber
data_block_of(XLogReaderState *record, uint8 block_id, RelFileNode *rnode)
{
	BlockNumber blkno;
	XLogRecGetBlockTag(record, block_id, rnode, nullptr, &blkno);
	if (blkno == storage::kMetaBlock)
		elog(PANIC, "rustydb redo: data-page record for the metapage at %X/%X",
			 (uint32) (record->ReadRecPtr >> 32), (uint32) record->ReadRecPtr);
	return blkno - 1;
}

/* Clear bits (both by default) of block_id's page in the visibility map. */
static void
clear_vm(XLogReaderState *record, uint8 block_id, uint8 bits = VISIBILITYMAP_VALID_BITS)
{
	RelFileNode rnode;
	BlockNumber blkno = data_block_of(record, block_id, &rnode);

	Assert(InRecovery);
	Relation reln = CreateFakeRelcacheEntry(rnode);
	Buffer vmbuffer = InvalidBuffer;
	visibilitymap_pin(reln, blkno, &vmbuffer);
	visibilitymap_clear(reln, blkno, vmbuffer, bits);
	ReleaseBuffer(vmbuffer);
	FreeFakeRelcacheEntry(reln);
}

/* A block redo changed: the record's end as its LSN (the buffer is still locked). */
static void
finish_block(XLogReaderState *record, Buffer buffer)
{
	Assert(storage::buffer_is_locked_exclusive(buffer));
	Page page = BufferGetPage(buffer);
	PageSetLSN(page, record->EndRecPtr);
	MarkBufferDirty(buffer);
}

/* Read block_id for redo; a record with kFlagInitPage re-creates it. */
static XLogRedoAction
read_block(XLogReaderState *record, uint8 block_id, bool init, Buffer *buffer, int group_slots = 0)
{
	Assert(InRecovery);
	if (init)
	{
		*buffer = XLogInitBufferForRedo(record, block_id);
		page_init(BufferGetPage(*buffer), group_slots);
		return BLK_NEEDS_REDO;
	}
	return XLogReadBufferForRedo(record, block_id, buffer);
}

/* The tuple a record changes: PANIC unless offnum is a tuple of the page. */
static HeapTupleHeader
tuple_for_redo(Page page, OffsetNumber offnum)
{
	if (offnum < FirstOffsetNumber || offnum > PageGetMaxOffsetNumber(page))
		elog(PANIC, "rustydb redo: offset %u out of range", (unsigned) offnum);
	ItemId lp = PageGetItemId(page, offnum);
	if (!ItemIdIsNormal(lp))
		elog(PANIC, "rustydb redo: item %u is not a tuple", (unsigned) offnum);
	return (HeapTupleHeader) PageGetItem(page, lp);
}

/*
 * A packed tuple of an INSERT or MULTI_INSERT record (format 7) rebuilt
 * into out, as the row (block, off) of the record's transaction: its
 * length. PANIC when the record's bytes are malformed.
 */
static Size
unpack_for_redo(XLogReaderState *record, const char *enc, Size enc_len, BlockNumber blkno,
				OffsetNumber off, char *out)
{
	storage::HeaderDefaults d{XLogRecGetXid(record), InvalidTransactionId, {}};
	ItemPointerSet(&d.ctid, blkno, off);
	Size len = storage::packed_tuple_len(enc, enc_len, d);
	if (len == 0)
		elog(PANIC, "rustydb redo: malformed packed tuple for item %u at %X/%X", (unsigned) off,
			 (uint32) (record->ReadRecPtr >> 32), (uint32) record->ReadRecPtr);
	storage::unpack_tuple(enc, enc_len, d, out);
	return len;
}

/* ========================================================================
 * Redo, one function per record kind
 * ========================================================================
 */

static void
redo_insert(XLogReaderState *record)
{
	auto *xl = (XlInsert *) XLogRecGetData(record);
	check_version(record, xl->version);
	Buffer buffer;

	if (xl->flags & kFlagVmCleared)
		clear_vm(record, 0);
	if (read_block(record, 0, xl->flags & kFlagInitPage, &buffer) == BLK_NEEDS_REDO)
	{
		Size len;
		char *data = XLogRecGetBlockData(record, 0, &len);
		PGAlignedBlock rebuilt;
		if (xl->flags & kFlagPackedTuple)
		{
			len = unpack_for_redo(record, data, len, data_block_of(record, 0, nullptr), xl->offnum,
								  rebuilt.data);
			data = rebuilt.data;
		}
		storage::place_tuple(buffer, xl->offnum, data, len);
		if (xl->flags & kFlagVmCleared)
			storage::page_clear_all_visible(buffer);
		finish_block(record, buffer);
	}
	if (BufferIsValid(buffer))
		UnlockReleaseBuffer(buffer);
}

static void
redo_multi_insert(XLogReaderState *record)
{
	auto *xl = (XlMultiInsert *) XLogRecGetData(record);
	check_version(record, xl->version);
	Buffer buffer;

	if (xl->flags & kFlagVmCleared)
		clear_vm(record, 0);
	/* with a new group table, the block data starts with its slot count */
	Size len = 0;
	char *data = XLogRecGetBlockData(record, 0, &len);
	int slots = 0;
	if ((xl->flags & kFlagGroupTable) && data != nullptr && len > 0)
	{
		slots = (uint8) data[0];
		data++;
		len--;
		if (slots < 1 || slots > storage::kGroupMaxSlots)
			elog(PANIC, "rustydb redo: group table of %d slots", slots);
	}
	if (read_block(record, 0, xl->flags & kFlagInitPage, &buffer, slots) == BLK_NEEDS_REDO)
	{
		char *end = data + len;
		Page page = BufferGetPage(buffer);
		BlockNumber blkno = data_block_of(record, 0, nullptr);
		PGAlignedBlock tup;
		for (int i = 0; i < xl->ntuples; i++)
		{
			OffsetNumber off;
			uint16 tlen;
			if (data + sizeof(off) + sizeof(tlen) > end)
				elog(PANIC, "rustydb redo: truncated multi-insert record");
			memcpy(&off, data, sizeof(off));
			memcpy(&tlen, data + sizeof(off), sizeof(tlen));
			data += sizeof(off) + sizeof(tlen);
			if (data + tlen > end)
				elog(PANIC, "rustydb redo: truncated multi-insert record");
			/* tuples are stored unaligned in the record: copy out (format 7: unpack) */
			Size ulen = tlen;
			if (xl->flags & kFlagPackedTuple)
				ulen = unpack_for_redo(record, data, tlen, blkno, off, tup.data);
			else if (tlen <= sizeof(tup.data))
				memcpy(tup.data, data, tlen);
			else
				elog(PANIC, "rustydb redo: multi-insert tuple of %u bytes", (unsigned) tlen);
			storage::place_tuple(buffer, off, tup.data, ulen);
			data += tlen;
		}
		if (xl->flags & kFlagGroupChanges)
			storage::apply_group_changes(page, data, end - data);
		else if (data != end)
			elog(PANIC, "rustydb redo: trailing bytes in multi-insert record");
		if (xl->flags & kFlagVmCleared)
			storage::page_clear_all_visible(buffer);
		finish_block(record, buffer);
	}
	if (BufferIsValid(buffer))
		UnlockReleaseBuffer(buffer);
}

static void
redo_tuple_state(XLogReaderState *record, uint8 kind)
{
	auto *xl = (XlTupleState *) XLogRecGetData(record);
	check_version(record, xl->version);
	Buffer buffer;

	if (xl->flags & kFlagVmCleared)
		clear_vm(record, 0);
	if (kind == kLock && (xl->flags & kFlagFrozenCleared))
		clear_vm(record, 0, VISIBILITYMAP_ALL_FROZEN);
	if (XLogReadBufferForRedo(record, 0, &buffer) == BLK_NEEDS_REDO)
	{
		Page page = BufferGetPage(buffer);
		tuple_for_redo(page, xl->offnum);
		storage::TupleXact x{xl->xmin, xl->xmax, xl->infomask, xl->infomask2, xl->ctid};
		storage::set_tuple_xact(buffer, xl->offnum, x);
		if (kind == kDelete || kind == kSuperDelete)
			PageSetPrunable(page, XLogRecGetXid(record));
		if (xl->flags & kFlagVmCleared)
			storage::page_clear_all_visible(buffer);
		finish_block(record, buffer);
	}
	if (BufferIsValid(buffer))
		UnlockReleaseBuffer(buffer);
}

static void
redo_update(XLogReaderState *record)
{
	auto *xl = (XlUpdate *) XLogRecGetData(record);
	check_version(record, xl->version);
	bool same_page = !XLogRecHasBlockRef(record, 1);
	uint8 old_block = same_page ? 0 : 1;
	Buffer oldbuf = InvalidBuffer, newbuf = InvalidBuffer;
	RelFileNode rnode;
	BlockNumber newblk = data_block_of(record, 0, &rnode);

	if (xl->flags & kFlagOldVmCleared)
		clear_vm(record, old_block);
	if (!same_page && (xl->flags & kFlagVmCleared))
		clear_vm(record, 0);

	/* The old version: its xmax and its link to the new version. */
	XLogRedoAction old_action = XLogReadBufferForRedo(record, old_block, &oldbuf);
	if (old_action == BLK_NEEDS_REDO)
	{
		Page page = BufferGetPage(oldbuf);
		storage::TupleXact x = storage::tuple_xact(tuple_for_redo(page, xl->old_offnum));
		x.xmax = xl->old_xmax;
		x.infomask = xl->old_infomask;
		x.infomask2 = xl->old_infomask2;
		ItemPointerSet(&x.ctid, newblk, xl->new_offnum);
		storage::set_tuple_xact(oldbuf, xl->old_offnum, x);
		PageSetPrunable(page, XLogRecGetXid(record));
		if (xl->flags & kFlagOldVmCleared)
			storage::page_clear_all_visible(oldbuf);
		if (!same_page)
			finish_block(record, oldbuf);
	}

	/* The new version. */
	XLogRedoAction new_action;
	if (same_page)
	{
		newbuf = oldbuf;
		new_action = old_action;
	}
	else
		new_action = read_block(record, 0, xl->flags & kFlagInitPage, &newbuf);
	if (new_action == BLK_NEEDS_REDO)
	{
		Size len;
		char *data = XLogRecGetBlockData(record, 0, &len);
		storage::place_tuple(newbuf, xl->new_offnum, data, len);
		if (!same_page && (xl->flags & kFlagVmCleared))
			storage::page_clear_all_visible(newbuf);
		finish_block(record, newbuf);
	}
	if (BufferIsValid(newbuf) && newbuf != oldbuf)
		UnlockReleaseBuffer(newbuf);
	if (BufferIsValid(oldbuf))
		UnlockReleaseBuffer(oldbuf);
}

static void
resolve_conflict(XLogReaderState *record, TransactionId latest_removed)
{
	if (InHotStandby && TransactionIdIsValid(latest_removed))
	{
		RelFileNode rnode;
		XLogRecGetBlockTag(record, 0, &rnode, nullptr, nullptr);
		ResolveRecoveryConflictWithSnapshot(latest_removed, rnode);
	}
}

static void
redo_prune(XLogReaderState *record, uint8 kind)
{
	auto *xl = (XlPrune *) XLogRecGetData(record);
	check_version(record, xl->version);
	Buffer buffer;

	resolve_conflict(record, xl->latest_removed_xid);
	if (XLogReadBufferForRedoExtended(record, 0, RBM_NORMAL, true, &buffer) == BLK_NEEDS_REDO)
	{
		Size len;
		char *data = XLogRecGetBlockData(record, 0, &len);
		Size offs_len =
			(Size) (2 * xl->nredirected + xl->ndead + xl->nunused) * sizeof(OffsetNumber);
		/* kFlagUndoStripped: a count and the offsets, after the others */
		uint16 nstripped = 0;
		Size strip_len = 0;
		if ((xl->flags & kFlagUndoStripped) && len >= offs_len + sizeof(nstripped))
		{
			memcpy(&nstripped, data + offs_len, sizeof(nstripped));
			strip_len = sizeof(nstripped) + nstripped * sizeof(OffsetNumber);
		}
		if (len < offs_len + strip_len || ((xl->flags & kFlagUndoStripped) && strip_len == 0) ||
			(len != offs_len + strip_len && !(xl->flags & kFlagGroupChanges)))
			elog(PANIC, "rustydb redo: prune record of the wrong length");
		/* the offsets are not aligned in the record: copy them out */
		auto *all = (OffsetNumber *) palloc(Max(offs_len + strip_len, 1));
		memcpy(all, data, offs_len);
		if (nstripped > 0)
			memcpy((char *) all + offs_len, data + offs_len + sizeof(nstripped),
				   nstripped * sizeof(OffsetNumber));
		if (kind == kPrune)
		{
			storage::PruneChanges c;
			c.redirected = all;
			c.nredirected = xl->nredirected;
			c.dead = all + 2 * xl->nredirected;
			c.ndead = xl->ndead;
			c.unused = c.dead + xl->ndead;
			c.nunused = xl->nunused;
			c.stripped = c.unused + xl->nunused;
			c.nstripped = nstripped;
			c.group_changes = data + offs_len + strip_len;
			c.group_changes_len = len - offs_len - strip_len;
			storage::prune_execute(buffer, c);
		}
		else
		{
			/* VACUUM records only make dead line pointers unused */
			if (xl->nredirected != 0 || xl->ndead != 0 || len != offs_len || strip_len != 0)
				elog(PANIC, "rustydb redo: vacuum record with more than unused line pointers");
			storage::vacuum_execute(buffer, all, xl->nunused);
		}
		pfree(all);
		finish_block(record, buffer);
	}
	if (BufferIsValid(buffer))
	{
		Size freespace = PageGetHeapFreeSpace(BufferGetPage(buffer));
		RelFileNode rnode;
		BlockNumber blkno;
		XLogRecGetBlockTag(record, 0, &rnode, nullptr, &blkno);
		UnlockReleaseBuffer(buffer);
		XLogRecordPageWithFreeSpace(rnode, blkno, freespace);
	}
}

static void
redo_freeze(XLogReaderState *record)
{
	auto *xl = (XlFreeze *) XLogRecGetData(record);
	check_version(record, xl->version);
	Buffer buffer;

	if (TransactionIdIsValid(xl->cutoff_xid))
	{
		TransactionId latest = xl->cutoff_xid;
		TransactionIdRetreat(latest);
		resolve_conflict(record, latest);
	}
	if (XLogReadBufferForRedo(record, 0, &buffer) == BLK_NEEDS_REDO)
	{
		Size len;
		auto *entries = (XlFreezeEntry *) XLogRecGetBlockData(record, 0, &len);
		Page page = BufferGetPage(buffer);
		if (len != xl->ntuples * sizeof(XlFreezeEntry))
			elog(PANIC, "rustydb redo: freeze record of the wrong length");
		for (int i = 0; i < xl->ntuples; i++)
			tuple_for_redo(page, entries[i].offnum);
		storage::freeze_execute(buffer, entries, xl->ntuples);
		finish_block(record, buffer);
	}
	if (BufferIsValid(buffer))
		UnlockReleaseBuffer(buffer);
}

/* NEW_PAGE and META_PAGE: block 0 re-created from scratch (meta: with flags). */
static void
redo_init_page(XLogReaderState *record, bool meta)
{
	uint32 meta_flags = 0;
	if (meta)
	{
		auto *xl = (XlMeta *) XLogRecGetData(record);
		check_version(record, xl->version);
		meta_flags = xl->meta_flags;
	}
	Buffer buffer = XLogInitBufferForRedo(record, 0);
	if (meta)
		storage::meta_init(BufferGetPage(buffer), meta_flags);
	else
		page_init(BufferGetPage(buffer));
	finish_block(record, buffer);
	UnlockReleaseBuffer(buffer);
}

/* UNDO: an undo store's metapage and ring pages (storage/undo.h). */
static void
redo_undo(XLogReaderState *record)
{
	auto *xl = (XlUndo *) XLogRecGetData(record);
	check_version(record, xl->version);
	Buffer meta = InvalidBuffer;

	switch (xl->sub)
	{
		case kUndoMeta:
			meta = XLogInitBufferForRedo(record, 0);
			storage::undo_meta_change(meta, xl->table_oid, xl->meta_flags, xl->capacity,
									  xl->position);
			finish_block(record, meta);
			break;
		case kUndoNewPage:
		{
			XLogRedoAction action = XLogReadBufferForRedo(record, 0, &meta);
			Buffer page = XLogInitBufferForRedo(record, 1);
			if (action == BLK_NEEDS_REDO)
			{
				storage::undo_new_page(meta, page, xl->lpn);
				finish_block(record, meta);
			}
			else
				storage::undo_page_init(BufferGetPage(page), xl->lpn); /* the metapage is newer */
			finish_block(record, page);
			UnlockReleaseBuffer(page);
			break;
		}
		case kUndoDiscard:
			resolve_conflict(record, xl->xid);
			if (XLogReadBufferForRedo(record, 0, &meta) == BLK_NEEDS_REDO)
			{
				storage::undo_discard_change(meta, xl->position, xl->xid);
				finish_block(record, meta);
			}
			break;
		default:
			elog(PANIC, "rustydb redo: unknown UNDO subkind %u", (unsigned) xl->sub);
	}
	if (BufferIsValid(meta))
		UnlockReleaseBuffer(meta);
}

/* INPLACE block 1: the undo record (format 6: its image; the header from the record) */
static void
redo_undo_append(XLogReaderState *record, const XlInplace *xl, TransactionId writer)
{
	Buffer ubuf = InvalidBuffer;
	if (XLogReadBufferForRedo(record, 1, &ubuf) == BLK_NEEDS_REDO)
	{
		Size len;
		char *data = XLogRecGetBlockData(record, 1, &len);
		storage::UndoRecordHeader hdr;
		if (xl->version >= 6)
		{
			/* the record's header: the row is block 0's */
			RelFileNode rnode;
			BlockNumber blkno;
			XLogRecGetBlockTag(record, 0, &rnode, nullptr, &blkno);
			if (data == nullptr || len < storage::kTupleHeaderSize || blkno == 0)
				elog(PANIC, "rustydb redo: INPLACE record without its undo record");
			hdr = storage::undo_record_header(xl->undo_kind, xl->undo_flags, blkno - 1, xl->offnum,
											  rnode.relNode, writer);
		}
		else
		{
			if (data == nullptr || len < sizeof(storage::UndoRecordHeader))
				elog(PANIC, "rustydb redo: INPLACE record without its undo record");
			memcpy(&hdr, data, sizeof(hdr));
			data += sizeof(hdr);
			len -= sizeof(hdr);
		}
		storage::undo_append_change(ubuf, storage::undo_offset_of(xl->position), hdr, data, len);
		finish_block(record, ubuf);
	}
	if (BufferIsValid(ubuf))
		UnlockReleaseBuffer(ubuf);
}

static void
redo_inplace(XLogReaderState *record)
{
	/* LOCAL's main data stops before undo_flags: the rest reads as zeroes */
	XlInplace xlcopy;
	memset(&xlcopy, 0, sizeof(xlcopy));
	if (XLogRecGetDataLen(record) < offsetof(XlInplace, undo_flags))
		elog(PANIC, "rustydb redo: INPLACE record too short");
	memcpy(&xlcopy, XLogRecGetData(record), Min(XLogRecGetDataLen(record), sizeof(xlcopy)));
	const XlInplace *xl = &xlcopy;
	check_version(record, xl->version);
	Buffer buf = InvalidBuffer;

	if (xl->sub == kInplaceMigrate)
	{
		XlInplaceMigrate m;
		if (XLogRecGetDataLen(record) < sizeof(XlInplace) + sizeof(m))
			elog(PANIC, "rustydb redo: INPLACE MIGRATE record too short");
		memcpy(&m, XLogRecGetData(record) + sizeof(XlInplace), sizeof(m));
		if (TransactionIdIsValid(m.conflict_xid))
			resolve_conflict(record, m.conflict_xid);
		if (XLogReadBufferForRedo(record, 0, &buf) == BLK_NEEDS_REDO)
		{
			storage::move_to_undo(buf, m.offset, xl->position);
			finish_block(record, buf);
		}
		if (BufferIsValid(buf))
			UnlockReleaseBuffer(buf);
		redo_undo_append(record, xl, m.writer);
		return;
	}

	if (xl->flags & kFlagVmCleared)
		clear_vm(record, 0);
	if (XLogReadBufferForRedo(record, 0, &buf) == BLK_NEEDS_REDO)
	{
		Size len;
		char *data = XLogRecGetBlockData(record, 0, &len);
		Page page = BufferGetPage(buf);
		HeapTupleHeader old = tuple_for_redo(page, xl->offnum);
		HeapTupleHeaderData oldhdr;
		PGAlignedBlock rebuilt;
		/* the page version the record's new version replaces: its payload is the delta's base */
		ItemId lp = PageGetItemId(page, xl->offnum);
		Size olen = ItemIdGetLength(lp);
		if (old->t_hoff > olen)
			elog(PANIC, "rustydb redo: item %u has a damaged header", (unsigned) xl->offnum);
		const char *base = (const char *) old + old->t_hoff;
		Size base_len = olen - old->t_hoff;
		if (xl->sub == kInplaceLocal)
		{
			/* the previous version's changed fields, the new version without what redo knows */
			BlockNumber blkno;
			XLogRecGetBlockTag(record, 0, nullptr, nullptr, &blkno);
			ItemPointerData self;
			ItemPointerSet(&self, blkno - 1, xl->offnum);
			TransactionId xid = XLogRecGetXid(record);
			memcpy(&oldhdr, old, storage::kTupleHeaderSize);
			storage::HeaderDefaults od{HeapTupleHeaderGetRawXmin(old), xid, self};
			Size used = storage::read_header_fields(xl->version, data, len, od, &oldhdr);
			if (used == 0)
				elog(PANIC, "rustydb redo: INPLACE LOCAL record too short");
			data += used;
			len -= used;
			storage::HeaderDefaults nd{xid, InvalidTransactionId, self};
			Size vlen = storage::local_new_unpacked_len(xl->version, data, len, nd, base_len);
			if (vlen == 0 || vlen > sizeof(rebuilt.data))
				elog(PANIC, "rustydb redo: INPLACE LOCAL version does not fit item %u",
					 (unsigned) xl->offnum);
			storage::local_new_unpack(
				xl->version, data, len, base, base_len, nd,
				storage::in_page_ptr((uint16) ItemIdGetOffset(lp), (uint16) olen), rebuilt.data);
			data = rebuilt.data;
			len = vlen;
		}
		else if (xl->flags & kFlagDeltaVersion)
		{
			/* a delta version against the page version it replaces (its payload) */
			Size vlen = storage::delta_decoded_len(data, len, base_len);
			if (vlen == 0 || vlen > sizeof(rebuilt.data))
				elog(PANIC, "rustydb redo: INPLACE delta version does not fit item %u",
					 (unsigned) xl->offnum);
			storage::delta_decode(data, len, base, base_len, rebuilt.data);
			data = rebuilt.data;
			len = vlen;
		}
		if (xl->sub == kInplaceUpdate)
			storage::place_inplace(buf, xl->offnum, data, len);
		else if (xl->sub == kInplaceLocal)
			storage::place_inplace_local(buf, xl->offnum, (const char *) &oldhdr, data, len);
		else if (xl->sub == kInplaceRepair)
			storage::repair_inplace(buf, xl->offnum, data, len);
		else
			elog(PANIC, "rustydb redo: unknown INPLACE subkind %u", (unsigned) xl->sub);
		if (xl->flags & kFlagVmCleared)
			storage::page_clear_all_visible(buf);
		if (xl->sub != kInplaceRepair)
			PageSetPrunable(BufferGetPage(buf), XLogRecGetXid(record));
		finish_block(record, buf);
	}
	if (BufferIsValid(buf))
		UnlockReleaseBuffer(buf);

	if (xl->sub == kInplaceUpdate)
		redo_undo_append(record, xl, XLogRecGetXid(record));
}

static void
redo_clear_visible(XLogReaderState *record)
{
	auto *xl = (XlClearVisible *) XLogRecGetData(record);
	check_version(record, xl->version);
	Buffer buffer;

	clear_vm(record, 0);
	if (XLogReadBufferForRedo(record, 0, &buffer) == BLK_NEEDS_REDO)
	{
		storage::page_clear_all_visible(buffer);
		finish_block(record, buffer);
	}
	if (BufferIsValid(buffer))
		UnlockReleaseBuffer(buffer);
}

static void
redo_visible(XLogReaderState *record)
{
	auto *xl = (XlVisible *) XLogRecGetData(record);
	check_version(record, xl->version);
	Buffer buffer;
	RelFileNode rnode;
	BlockNumber blkno = data_block_of(record, 1, &rnode);

	if (InHotStandby)
		ResolveRecoveryConflictWithSnapshot(xl->cutoff_xid, rnode);

	/* The data page: PD_ALL_VISIBLE (its LSN moves only when hints are logged). */
	if (XLogReadBufferForRedo(record, 1, &buffer) == BLK_NEEDS_REDO)
	{
		Page page = BufferGetPage(buffer);
		storage::page_set_all_visible(buffer);
		if (XLogHintBitIsNeeded())
			PageSetLSN(page, record->EndRecPtr);
		MarkBufferDirty(buffer);
	}
	if (BufferIsValid(buffer))
		UnlockReleaseBuffer(buffer);

	/* The visibility map page. */
	Buffer vmbuffer = InvalidBuffer;
	if (XLogReadBufferForRedoExtended(record, 0, RBM_ZERO_ON_ERROR, false, &vmbuffer) ==
		BLK_NEEDS_REDO)
	{
		Page vmpage = BufferGetPage(vmbuffer);
		if (PageIsNew(vmpage))
			PageInit(vmpage, BLCKSZ, 0);
		storage::vm_set(vmbuffer, blkno, (xl->flags & kFlagAllFrozen) != 0);
		finish_block(record, vmbuffer);
	}
	if (BufferIsValid(vmbuffer))
		UnlockReleaseBuffer(vmbuffer);
}

/* ========================================================================
 * rm_desc and rm_identify
 * ========================================================================
 */

/*
 * The group table changes at the end of block 0's data: which slots get
 * a new group (how many members, how many re-sealed payloads follow) or
 * are freed.
 */
/* PRUNE with kFlagUndoStripped: how many undo pointers it removes. */
static void
desc_stripped(StringInfo buf, XLogReaderState *record, const XlPrune *xl)
{
	if (!(xl->flags & kFlagUndoStripped) || !XLogRecHasBlockRef(record, 0))
		return;
	Size len;
	char *data = XLogRecGetBlockData(record, 0, &len);
	Size at = (Size) (2 * xl->nredirected + xl->ndead + xl->nunused) * sizeof(OffsetNumber);
	uint16 n;
	if (data == nullptr || len < at + sizeof(n))
		return; /* a full-page image without the data */
	memcpy(&n, data + at, sizeof(n));
	appendStringInfo(buf, " nstripped %u", (unsigned) n);
}

static void
desc_groups(StringInfo buf, XLogReaderState *record, uint8 flags)
{
	if (flags & kFlagGroupTable)
		appendStringInfoString(buf, "; group table");
	if (!(flags & kFlagGroupChanges) || !XLogRecHasBlockRef(record, 0))
		return;
	Size len;
	char *data = XLogRecGetBlockData(record, 0, &len);
	if (data == nullptr)
		return; /* a full-page image without the data */
	char *end = data + len;
	uint8 kind = XLogRecGetInfo(record) & XLR_RMGR_INFO_MASK;
	char *p = data;
	auto *xlrec = XLogRecGetData(record);
	if (kind == kMultiInsert && (flags & kFlagGroupTable))
		appendStringInfo(buf, " of %u slots", (unsigned) (uint8) *p++);
	if (kind == kMultiInsert)
	{
		auto *xl = (XlMultiInsert *) xlrec;
		for (int i = 0; i < xl->ntuples && p + 4 <= end; i++)
		{
			uint16 tlen;
			memcpy(&tlen, p + sizeof(OffsetNumber), sizeof(tlen));
			p += 4 + tlen;
		}
	}
	else
	{
		auto *xl = (XlPrune *) xlrec;
		p += (2 * xl->nredirected + xl->ndead + xl->nunused) * sizeof(OffsetNumber);
		uint16 nstripped = 0;
		if ((flags & kFlagUndoStripped) && p + sizeof(nstripped) <= end)
		{
			memcpy(&nstripped, p, sizeof(nstripped));
			p += sizeof(nstripped) + nstripped * sizeof(OffsetNumber);
		}
	}
	if (p >= end)
		return;
	int nslots = (uint8) *p++;
	appendStringInfoString(buf, "; groups");
	for (int i = 0; i < nslots && p + 2 + sizeof(storage::GroupEntry) <= end; i++)
	{
		storage::GroupEntry e;
		uint8 slot = (uint8) p[0], npayloads = (uint8) p[1];
		memcpy(&e, p + 2, sizeof(e));
		p += 2 + sizeof(e);
		if (e.nmembers == 0)
			appendStringInfo(buf, " %u: freed", (unsigned) slot);
		else
			appendStringInfo(buf, " %u: %u members at %u..%u, key version %u%s", (unsigned) slot,
							 (unsigned) e.nmembers, (unsigned) e.first, (unsigned) e.last,
							 (unsigned) (e.seal[2] | (e.seal[3] << 8)),
							 npayloads > 0 ? ", re-sealed" : "");
		for (int m = 0; m < npayloads && p + 4 <= end; m++)
		{
			uint16 plen;
			memcpy(&plen, p + sizeof(OffsetNumber), sizeof(plen));
			p += 4 + plen;
		}
	}
}

/* A row record's logical decoding trailer (kFlagLogical), after its struct of fixed bytes. */
static void
desc_logical(StringInfo buf, XLogReaderState *record, Size fixed)
{
	char *rec = XLogRecGetData(record);
	Size len = XLogRecGetDataLen(record);
	if (len < fixed + 1 || !((uint8) rec[1] & kFlagLogical))
		return;
	uint8 lf = (uint8) rec[fixed];
	appendStringInfoString(buf, "; logical");
	if (lf & kLogToastRelation)
		appendStringInfoString(buf, ", toast relation");
	if (lf & kLogLastInMulti)
		appendStringInfoString(buf, ", last in multi-insert");
	if (lf & kLogSealed)
		appendStringInfoString(buf, ", sealed");
	if (lf & kLogOldKey)
		appendStringInfo(buf, ", old key %zu bytes", len - fixed - 1);
}

static void
desc_record(StringInfo buf, XLogReaderState *record)
{
	char *rec = XLogRecGetData(record);
	uint8 kind = XLogRecGetInfo(record) & XLR_RMGR_INFO_MASK;

	if (XLogRecGetDataLen(record) > 0)
		appendStringInfo(buf, "v%u ", (unsigned) (uint8) rec[0]);
	switch (kind)
	{
		case kInsert:
		{
			auto *xl = (XlInsert *) rec;
			appendStringInfo(buf, "off %u flags 0x%02X%s", xl->offnum, xl->flags,
							 (xl->flags & kFlagPackedTuple) ? " packed" : "");
			desc_logical(buf, record, sizeof(XlInsert));
			break;
		}
		case kMultiInsert:
		{
			auto *xl = (XlMultiInsert *) rec;
			appendStringInfo(buf, "ntuples %u flags 0x%02X%s", xl->ntuples, xl->flags,
							 (xl->flags & kFlagPackedTuple) ? " packed" : "");
			desc_groups(buf, record, xl->flags);
			desc_logical(buf, record, sizeof(XlMultiInsert));
			break;
		}
		case kDelete:
		case kLock:
		case kConfirm:
		case kSuperDelete:
		{
			auto *xl = (XlTupleState *) rec;
			appendStringInfo(
				buf, "off %u xmax %u infomask 0x%04X infomask2 0x%04X flags 0x%02X%s", xl->offnum,
				xl->xmax, xl->infomask, xl->infomask2, xl->flags,
				kind == kLock && (xl->flags & kFlagFrozenCleared) ? " all-frozen cleared" : "");
			desc_logical(buf, record, sizeof(XlTupleState));
			break;
		}
		case kUpdate:
		{
			auto *xl = (XlUpdate *) rec;
			appendStringInfo(buf, "old off %u xmax %u infomask 0x%04X; new off %u flags 0x%02X",
							 xl->old_offnum, xl->old_xmax, xl->old_infomask, xl->new_offnum,
							 xl->flags);
			desc_logical(buf, record, sizeof(XlUpdate));
			break;
		}
		case kPrune:
		case kVacuum:
		{
			auto *xl = (XlPrune *) rec;
			appendStringInfo(buf, "nredirected %u ndead %u nunused %u latest_removed_xid %u",
							 xl->nredirected, xl->ndead, xl->nunused, xl->latest_removed_xid);
			desc_stripped(buf, record, xl);
			desc_groups(buf, record, xl->flags);
			break;
		}
		case kFreeze:
		{
			auto *xl = (XlFreeze *) rec;
			appendStringInfo(buf, "ntuples %u cutoff_xid %u", xl->ntuples, xl->cutoff_xid);
			break;
		}
		case kVisible:
		{
			auto *xl = (XlVisible *) rec;
			appendStringInfo(buf, "cutoff_xid %u%s", xl->cutoff_xid,
							 (xl->flags & kFlagAllFrozen) ? " all-frozen" : "");
			break;
		}
		case kNewPage:
			appendStringInfoString(buf, "empty page");
			break;
		case kMetaPage:
		{
			auto *xl = (XlMeta *) rec;
			appendStringInfo(buf, "metapage format %u, data pages of format %u, flags 0x%04X%s",
							 storage::kMetaFormatVersion, (unsigned) storage::kPageFormatVersion,
							 xl->meta_flags,
							 (xl->meta_flags & storage::kMetaEncrypted) ? " (encrypted)" : "");
			break;
		}
		case kClearVisible:
		{
			auto *xl = (XlClearVisible *) rec;
			appendStringInfo(buf, "all-visible cleared before truncation, flags 0x%02X", xl->flags);
			break;
		}
		case kInplace:
		{
			auto *xl = (XlInplace *) rec;
			if (xl->sub == kInplaceUpdate)
				appendStringInfo(buf, "update off %u undo %X/%X flags 0x%02X%s%s",
								 (unsigned) xl->offnum, (uint32) (xl->position >> 32),
								 (uint32) xl->position, (unsigned) xl->flags,
								 (xl->flags & kFlagDeltaVersion) ? " delta version" : "",
								 xl->version < 6                        ? ""
								 : xl->undo_kind == storage::kUndoDelta ? ", undo delta"
																		: ", undo image");
			else if (xl->sub == kInplaceRepair)
				appendStringInfo(buf, "repair off %u flags 0x%02X", (unsigned) xl->offnum,
								 (unsigned) xl->flags);
			else if (xl->sub == kInplaceLocal)
				appendStringInfo(buf, "local off %u flags 0x%02X", (unsigned) xl->offnum,
								 (unsigned) xl->flags);
			else if (xl->sub == kInplaceMigrate)
			{
				XlInplaceMigrate m;
				memcpy(&m, rec + sizeof(XlInplace), sizeof(m));
				appendStringInfo(
					buf, "migrate off %u from %u undo %X/%X writer %u conflict %u%s",
					(unsigned) xl->offnum, (unsigned) m.offset, (uint32) (xl->position >> 32),
					(uint32) xl->position, m.writer, m.conflict_xid,
					xl->undo_kind == storage::kUndoDelta ? ", undo delta" : ", undo image");
			}
			else
				appendStringInfo(buf, "unknown subkind %u", (unsigned) xl->sub);
			break;
		}
		case kUndo:
		{
			auto *xl = (XlUndo *) rec;
			if (xl->sub == kUndoMeta)
				appendStringInfo(buf, "meta table %u capacity %u base %X/%X flags 0x%04X",
								 xl->table_oid, xl->capacity, (uint32) (xl->position >> 32),
								 (uint32) xl->position, (unsigned) xl->meta_flags);
			else if (xl->sub == kUndoNewPage)
				appendStringInfo(buf, "new page %llu", (unsigned long long) xl->lpn);
			else if (xl->sub == kUndoDiscard)
				appendStringInfo(buf, "discard to %X/%X latest_removed_xid %u",
								 (uint32) (xl->position >> 32), (uint32) xl->position, xl->xid);
			else
				appendStringInfo(buf, "unknown subkind %u", (unsigned) xl->sub);
			break;
		}
	}
}

static const char *
identify_record(uint8 info)
{
	switch (info & XLR_RMGR_INFO_MASK)
	{
		case kInsert:
			return "INSERT";
		case kMultiInsert:
			return "MULTI_INSERT";
		case kDelete:
			return "DELETE";
		case kUpdate:
			return "UPDATE";
		case kLock:
			return "LOCK";
		case kConfirm:
			return "CONFIRM";
		case kSuperDelete:
			return "SUPER_DELETE";
		case kPrune:
			return "PRUNE";
		case kVacuum:
			return "VACUUM";
		case kFreeze:
			return "FREEZE";
		case kNewPage:
			return "NEW_PAGE";
		case kVisible:
			return "VISIBLE";
		case kMetaPage:
			return "META_PAGE";
		case kClearVisible:
			return "CLEAR_VISIBLE";
		case kInplace:
			return "INPLACE";
		case kUndo:
			return "UNDO";
	}
	return nullptr;
}

/* ========================================================================
 * rm_mask
 * ========================================================================
 */

/*
 * Bytes between pd_upper and pd_special that no line pointer covers: the
 * versions in-place updates replaced (storage::kPageGarbage), whose hint
 * bits the primary may have set after they were logged.
 */
static void
mask_uncovered(Page page)
{
	auto *hdr = (PageHeader) page;
	if (hdr->pd_upper >= hdr->pd_special || hdr->pd_special > BLCKSZ)
		return;
	bool covered[BLCKSZ];
	memset(covered + hdr->pd_upper, 0, hdr->pd_special - hdr->pd_upper);
	for (OffsetNumber off = 1; off <= PageGetMaxOffsetNumber(page); off++)
	{
		ItemId iid = PageGetItemId(page, off);
		if (!ItemIdHasStorage(iid))
			continue;
		unsigned from = ItemIdGetOffset(iid);
		unsigned to =
			Min((unsigned) (from + MAXALIGN(ItemIdGetLength(iid))), (unsigned) hdr->pd_special);
		for (unsigned i = Max(from, (unsigned) hdr->pd_upper); i < to; i++)
			covered[i] = true;
	}
	for (unsigned i = hdr->pd_upper; i < hdr->pd_special; i++)
		if (!covered[i])
			page[i] = MASK_MARKER;
}

static void
mask_page(char *pagedata, BlockNumber blkno)
{
	Page page = (Page) pagedata;

	mask_page_lsn_and_checksum(page);
	auto *hdr = (PageHeader) page;
	if (hdr->pd_special == BLCKSZ - storage::kSpecialSize)
	{
		uint8 kind = ((storage::PageSpecial *) (page + hdr->pd_special))->kind;
		if (blkno == storage::kMetaBlock && kind == storage::kPageMeta)
			return; /* the metapage: no line pointers, nothing else that may differ */
		if ((blkno == storage::kMetaBlock && kind == storage::kPageUndoMeta) ||
			kind == storage::kPageUndo)
		{
			/* undo store pages: records up to pd_lower, logged as written; no line pointers */
			mask_unused_space(page);
			return;
		}
	}
	mask_page_hint_bits(page);
	mask_unused_space(page);

	for (OffsetNumber off = 1; off <= PageGetMaxOffsetNumber(page); off++)
	{
		ItemId iid = PageGetItemId(page, off);
		char *item = page + ItemIdGetOffset(iid);

		if (ItemIdIsNormal(iid))
		{
			auto htup = (HeapTupleHeader) item;
			/* hint bits, and lock bits a crash may leave behind, are masked */
			if (!HeapTupleHeaderXminFrozen(htup))
				htup->t_infomask &= ~HEAP_XACT_MASK;
			else
				htup->t_infomask &= ~(HEAP_XMAX_INVALID | HEAP_XMAX_COMMITTED);
			htup->t_choice.t_heap.t_field3.t_cid = MASK_MARKER;
			if (HeapTupleHeaderIsSpeculative(htup))
				ItemPointerSet(&htup->t_ctid, blkno - 1, off); /* data block number */
		}
		if (ItemIdHasStorage(iid))
		{
			int len = ItemIdGetLength(iid);
			int padlen = MAXALIGN(len) - len;
			if (padlen > 0)
				memset(item + len, MASK_MARKER, padlen);
		}
	}
	mask_uncovered(page);
}

/* ========================================================================
 * Registration
 * ========================================================================
 */

extern "C" {

static void
rdb_redo(XLogReaderState *record) noexcept
{
	rustydb::boundary::run("rustydb_redo", [&] {
		uint8 kind = XLogRecGetInfo(record) & XLR_RMGR_INFO_MASK;
		switch (kind)
		{
			case kInsert:
				redo_insert(record);
				break;
			case kMultiInsert:
				redo_multi_insert(record);
				break;
			case kDelete:
			case kLock:
			case kConfirm:
			case kSuperDelete:
				redo_tuple_state(record, kind);
				break;
			case kUpdate:
				redo_update(record);
				break;
			case kPrune:
			case kVacuum:
				redo_prune(record, kind);
				break;
			case kFreeze:
				redo_freeze(record);
				break;
			case kNewPage:
				redo_init_page(record, false);
				break;
			case kVisible:
				redo_visible(record);
				break;
			case kMetaPage:
				redo_init_page(record, true);
				break;
			case kClearVisible:
				redo_clear_visible(record);
				break;
			case kInplace:
				redo_inplace(record);
				break;
			case kUndo:
				redo_undo(record);
				break;
			default:
				elog(PANIC, "rustydb redo: unknown record kind 0x%02X", (unsigned) kind);
		}
	});
}

static void
rdb_desc(StringInfo buf, XLogReaderState *record) noexcept
{
	rustydb::boundary::run("rustydb_desc", [&] { desc_record(buf, record); });
}

static const char *
rdb_identify(uint8 info) noexcept
{
	return rustydb::boundary::run("rustydb_identify", [&] { return identify_record(info); });
}

static void
rdb_mask(char *pagedata, BlockNumber blkno) noexcept
{
	rustydb::boundary::run("rustydb_mask", [&] { mask_page(pagedata, blkno); });
}

static void
rdb_decode(LogicalDecodingContext *ctx, XLogRecordBuffer *buf) noexcept
{
	rustydb::boundary::run("rustydb_decode", [&] { decode(ctx, buf); });
}

} /* extern "C" */

static RmgrData rmgr = {
	.rm_name = "rustydb",
	.rm_redo = rdb_redo,
	.rm_desc = rdb_desc,
	.rm_identify = rdb_identify,
	.rm_startup = nullptr,
	.rm_cleanup = nullptr,
	.rm_mask = rdb_mask,
	.rm_decode = rdb_decode,
};

void
register_rmgr()
{
	RegisterCustomRmgr(RUSTYDB_RMGR_ID, &rmgr);
}

} /* namespace rustydb::wal */

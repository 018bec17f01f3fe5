/*-------------------------------------------------------------------------
 *
 * changes.h
 *	  The page changes of rustydb's WAL records, one function each, called
 *	  by the change itself (src/am) and by its redo (src/wal).
 *
 * As PostgreSQL's heap_page_prune_execute serves both pruneheap.c and
 * heap_xlog_prune: what a record carries is exactly what its function
 * takes, so a page and its replay cannot drift apart. Each function
 * changes the page of one buffer and nothing else; the caller holds the
 * buffer's content lock exclusively, is in a critical section (or in
 * redo), marks the buffer dirty and writes (or replays) the record. The
 * functions assert those preconditions and the state of the items they
 * change.
 *
 *	record			page change
 *	INSERT			place_tuple
 *	MULTI_INSERT	place_tuple per tuple, apply_group_changes (page.h)
 *	UPDATE			place_tuple (new version), set_tuple_xact (old version)
 *	DELETE, LOCK, CONFIRM, SUPER_DELETE		set_tuple_xact
 *	PRUNE			prune_execute
 *	VACUUM			vacuum_execute
 *	FREEZE			freeze_execute
 *	NEW_PAGE		page_init (page.h)
 *	META_PAGE		meta_init (page.h)
 *	VISIBLE			page_set_all_visible, vm_set (page.h)
 *	CLEAR_VISIBLE, and the kFlagVmCleared of the others	page_clear_all_visible
 *	UNDO			undo_meta_change, undo_new_page, undo_discard_change (an undo
 *					store's metapage and ring pages, storage/undo.h)
 *	INPLACE			place_inplace, place_inplace_local, move_to_undo (data page),
 *					undo_append_change (undo page)
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_STORAGE_CHANGES_H
#define RUSTYDB_STORAGE_CHANGES_H

#include "rustydb/common/pgstorage.h"
#include "rustydb/storage/undo.h"

namespace rustydb::storage {

/* ---- placing a tuple: INSERT, MULTI_INSERT, UPDATE's new version ---- */

/*
 * The line pointer the next tuple placed on buf's page goes to: the first
 * unused one when the page's hint says there may be one (clearing a hint
 * found stale), else a new one at the end. The caller sets the tuple's
 * t_self and t_ctid from it before place_tuple.
 */
OffsetNumber next_tuple_offset(Buffer buf);

/*
 * Add the tuple (len bytes, header included, t_ctid final) to buf's page
 * at off: next_tuple_offset's choice in the change, the record's in redo.
 * PANIC if it does not fit.
 */
void place_tuple(Buffer buf, OffsetNumber off, const void *tuple, Size len);

/* ---- the transaction fields of one tuple ---- */

/*
 * What DELETE, LOCK, CONFIRM and SUPER_DELETE records carry, and UPDATE's
 * for the old version: the header fields that say who created, deleted,
 * updated or locks the tuple, and where its next version is. (t_cid is
 * backend-local: the change sets it after set_tuple_xact, redo never.)
 */
struct TupleXact
{
	TransactionId xmin; /* raw */
	TransactionId xmax; /* raw: a transaction id or a multixact */
	uint16 infomask;
	uint16 infomask2;
	ItemPointerData ctid;
};

/* The transaction fields of a tuple header as they are. */
TupleXact tuple_xact(HeapTupleHeader t);

/* Install x in the tuple at off of buf's page (an LP_NORMAL item). */
void set_tuple_xact(Buffer buf, OffsetNumber off, const TupleXact &x);

/* ---- freezing ---- */

/*
 * One tuple's new xmax fields, computed by am::prepare_freeze; the layout
 * of the FREEZE record's entries (wal::XlFreezeEntry).
 */
struct FreezeEntry
{
	TransactionId xmax;
	uint16 infomask;
	uint16 infomask2;
	OffsetNumber offnum;
	uint16 unused; /* 0 */
};
static_assert(sizeof(FreezeEntry) == 12, "FREEZE record entries are 12 bytes");

/* Freeze one tuple header: install e's xmax fields (e.offnum is not used). */
void freeze_tuple(HeapTupleHeader t, const FreezeEntry &e);

/* Freeze n tuples of buf's page, each at its entry's offset. */
void freeze_execute(Buffer buf, const FreezeEntry *entries, int n);

/* ---- pruning and VACUUM's second pass ---- */

/*
 * What pruning does to a page: roots redirected to the first surviving
 * version of their chain (redirected: nredirected pairs of from, to), roots
 * of dead chains made dead line pointers, dead heap-only versions made
 * unused, in-place versions whose creator every snapshot sees lose their
 * undo pointer (stripped: the tuple 8 bytes shorter, t_hoff moved, the
 * payload unchanged); the page compacted (PageRepairFragmentation); then,
 * for a page of sealed groups, the group table changes (page.h,
 * apply_group_changes) that free or re-seal the groups whose members lost
 * their storage.
 */
struct PruneChanges
{
	const OffsetNumber *redirected = nullptr;
	int nredirected = 0;
	const OffsetNumber *dead = nullptr;
	int ndead = 0;
	const OffsetNumber *unused = nullptr;
	int nunused = 0;
	const OffsetNumber *stripped = nullptr;
	int nstripped = 0;
	const char *group_changes = nullptr;
	Size group_changes_len = 0;
};

void prune_execute(Buffer buf, const PruneChanges &c);

/*
 * VACUUM's second pass on one page (or its first, on a table without
 * indexes): dead line pointers, whose index entries are gone, made unused,
 * and the line-pointer array truncated after the last used one.
 */
void vacuum_execute(Buffer buf, const OffsetNumber *unused, int nunused);

/* ---- the page's all-visible flag ---- */

/*
 * PD_ALL_VISIBLE set on buf's page (VISIBLE; the map's bit: vm_set) or
 * cleared (the map's bit: visibilitymap_clear, by vm_clear or redo). A new
 * page has no flag to clear.
 */
void page_set_all_visible(Buffer buf);
void page_clear_all_visible(Buffer buf);

/* ---- an undo store's metapage and ring (storage/undo.h) ---- */

/*
 * UNDO META: meta's page (new, or all-zero after a crash) initialised as
 * an empty store of table_oid with the ring's capacity and base.
 */
void undo_meta_change(Buffer meta, Oid table_oid, uint16 flags, uint32 capacity, uint64 base);

/*
 * UNDO NEW_PAGE: page initialised as the undo page of logical page lpn,
 * which becomes the store's insert page on meta (lpn must be the store's
 * next page, and the ring not full).
 */
void undo_new_page(Buffer meta, Buffer page, uint64 lpn);

/*
 * UNDO DISCARD: every position below discard (page-aligned, not past the
 * insert page's end) recycled; discard_xid the newest writer recycled.
 */
void undo_discard_change(Buffer meta, uint64 discard, TransactionId discard_xid);

/*
 * INPLACE UPDATE and REPAIR: the row at off gets the version tuple (len
 * bytes), written into the page's free space; off's line pointer moves to
 * it. The bytes of the version it replaces are left where they are (a
 * backend holding a pin may still read them) until the next compaction,
 * which pruning does under a cleanup lock. The page must have
 * MAXALIGN(len) bytes free (inplace_fits).
 */
void place_inplace(Buffer buf, OffsetNumber off, const void *tuple, Size len);

/*
 * INPLACE REPAIR: the row at off (an aborted in-place version) gets its
 * previous version back, written over the aborted version's bytes when it
 * fits their aligned length (no reader can be reading them: an aborted
 * version is never returned), else into free space.
 */
void repair_inplace(Buffer buf, OffsetNumber off, const void *tuple, Size len);

/*
 * INPLACE LOCAL: as place_inplace, and the version it replaces stays on
 * the page as the row's previous version: its fixed header (the first
 * kTupleHeaderSize bytes) becomes oldhdr, what an out-of-place update
 * would leave on it. The new version's undo pointer names those bytes
 * (in_page_ptr of the line pointer before the change).
 */
void place_inplace_local(Buffer buf, OffsetNumber off, const char *oldhdr, const void *tuple,
						 Size len);

/*
 * INPLACE MIGRATE: the version at byte offset of the page (the row's page
 * version or a previous version on the page), whose undo pointer names a
 * previous version on the page, points at undo position p instead (the
 * previous version was copied to undo before compaction).
 */
void move_to_undo(Buffer buf, uint16 offset, UndoPtr p);

/* Does a version of len bytes fit the page's free space for place_inplace? */
bool inplace_fits(Page page, Size len);

/*
 * INPLACE UPDATE, block 1: the undo record (hdr, image) appended to the
 * undo page buf at offset (the position the INPLACE record names: PANIC
 * if the page's next record would go elsewhere).
 */
void undo_append_change(Buffer buf, uint16 offset, const UndoRecordHeader &hdr, const void *image,
						Size image_len);

} /* namespace rustydb::storage */

#endif /* RUSTYDB_STORAGE_CHANGES_H */

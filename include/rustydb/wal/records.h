/*-------------------------------------------------------------------------
 *
 * records.h
 *	  rustydb WAL: the custom resource manager and its record formats.
 *
 * Resource manager "rustydb", id 144 (RUSTYDB_RMGR_ID). Every record's
 * main data starts with a format version byte (kWalFormatVersion); redo
 * refuses records of an unknown version. The record kind is the high four
 * bits of the xl_info byte. Block 0 is always the page changed; UPDATE
 * also registers the old page as block 1 when it differs. Full-page images
 * are PostgreSQL's (REGBUF_STANDARD: the hole between pd_lower and pd_upper
 * is left out). Formats are described in docs/storage.md.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_WAL_RECORDS_H
#define RUSTYDB_WAL_RECORDS_H

#include "rustydb/common/pgstorage.h"
#include "rustydb/storage/changes.h"

#define RUSTYDB_RMGR_ID 144

namespace rustydb::wal {

/*
 * 2: metapage records; block numbers in VM clears are data block numbers.
 * 3: sealed groups: MULTI_INSERT and PRUNE may carry group table changes.
 * 4: logical decoding: row records may carry kFlagLogical and its trailer.
 * 5: in-place versions: INPLACE records, tuples with an undo pointer.
 * 6: INPLACE UPDATE records carry delta versions (kFlagDeltaVersion,
 *    kUndoDelta records) and the undo record without its header.
 * 7: packed tuple headers (storage/undo.h): INSERT with kFlagPackedTuple,
 *    and INPLACE LOCAL's header fields, log only what redo cannot know.
 * 8: all-frozen pages: VISIBLE may set the map's all-frozen bit too
 *    (kFlagAllFrozen), LOCK may clear it (kFlagFrozenCleared). A build
 *    that reads only format 7 refuses these records rather than replaying
 *    a row lock without clearing the bit.
 */
constexpr uint8 kWalFormatVersion = 8;
static_assert(kWalFormatVersion >= storage::kPackedFieldsFormat,
			  "records of format 7 and later pack header fields");
/*
 * Oldest version redo reads: version 2 records are version 3 records
 * without group changes, version 3 records are version 4 records without
 * kFlagLogical (redo never reads the trailer), version 4 records are
 * version 5 records of a WAL without INPLACE records, and version 5
 * INPLACE records carry the whole new version in block 0 and the whole
 * undo record (header and image) in block 1.
 */
constexpr uint8 kWalFormatOldest = 2;

/* Record kinds (xl_info & XLR_RMGR_INFO_MASK). */
constexpr uint8 kInsert = 0x00;       /* one new tuple */
constexpr uint8 kMultiInsert = 0x10;  /* several new tuples on one page (COPY) */
constexpr uint8 kDelete = 0x20;       /* xmax set by DELETE */
constexpr uint8 kUpdate = 0x30;       /* old version's xmax + new version */
constexpr uint8 kLock = 0x40;         /* xmax set by a row lock */
constexpr uint8 kConfirm = 0x50;      /* speculative insertion confirmed */
constexpr uint8 kSuperDelete = 0x60;  /* speculative insertion killed */
constexpr uint8 kPrune = 0x70;        /* dead tuples reduced to dead line pointers */
constexpr uint8 kVacuum = 0x80;       /* dead line pointers made unused */
constexpr uint8 kFreeze = 0x90;       /* transaction ids frozen / stale xmax cleared */
constexpr uint8 kNewPage = 0xA0;      /* empty page initialised */
constexpr uint8 kVisible = 0xB0;      /* page set all-visible (heap block + VM block) */
constexpr uint8 kMetaPage = 0xC0;     /* metapage (block 0) created */
constexpr uint8 kClearVisible = 0xD0; /* all-visible cleared on an empty page VACUUM truncates */
constexpr uint8 kInplace = 0xE0;      /* a version written in place (XlInplace.sub) */
constexpr uint8 kUndo = 0xF0;         /* an undo store's metapage and ring (XlUndo.sub) */

/* Flags (the flags byte of each record). */
constexpr uint8 kFlagInitPage = 0x01;     /* re-initialise block 0 before applying */
constexpr uint8 kFlagVmCleared = 0x02;    /* all-visible cleared on block 0 */
constexpr uint8 kFlagOldVmCleared = 0x04; /* all-visible cleared on the old page (UPDATE) */
constexpr uint8 kFlagHotUpdate = 0x08;    /* UPDATE: new version heap-only on the same page */
/* LOCK (format 8; the same bit as kFlagOldVmCleared, another kind): block 0's all-frozen bit cleared */
constexpr uint8 kFlagFrozenCleared = 0x04;
/* VISIBLE (format 8): the map's all-frozen bit is set with all-visible */
constexpr uint8 kFlagAllFrozen = 0x01;
constexpr uint8 kFlagGroupTable = 0x10;   /* with kFlagInitPage: the page has a group table */
constexpr uint8 kFlagGroupChanges = 0x20; /* block 0 data ends with group table changes */
/*
 * INSERT, MULTI_INSERT, UPDATE, DELETE, CONFIRM, SUPER_DELETE written with
 * wal_level = logical for a logically logged relation: block 0 keeps its
 * tuple data even with a full-page image, and the main data continues after
 * the record's struct with one XlLogical byte (then, with kLogOldKey, the
 * old version's replica identity as a whole tuple, header included,
 * unaligned, to the end of the main data). Logical decoding (decode.cpp)
 * reads only records with this flag.
 */
constexpr uint8 kFlagLogical = 0x40;
/*
 * INPLACE UPDATE and LOCAL (format 6): block 0's data is the new version
 * as a delta version (storage/undo.h) against the payload of the version
 * it replaces, the row's page version before the record.
 */
constexpr uint8 kFlagDeltaVersion = 0x80;
/*
 * INSERT and MULTI_INSERT (format 7; the same bit as kFlagDeltaVersion,
 * another kind): block 0's data has each tuple in its packed form
 * (storage::pack_tuple:
 * header fields against the record's xid, xmax 0 and the row's TID, then
 * t_hoff and the bytes after the fixed header). Records with kFlagLogical
 * keep the whole tuple for logical decoding.
 */
constexpr uint8 kFlagPackedTuple = 0x80;
/*
 * PRUNE (format 6; the same bit as kFlagDeltaVersion, another kind):
 * block 0 data continues after the line-pointer offsets with a uint16
 * count and that many offsets of in-place versions whose undo pointer the
 * change removes (storage::PruneChanges.stripped), before any group table
 * changes.
 */
constexpr uint8 kFlagUndoStripped = 0x80;

/* The XlLogical byte. */
constexpr uint8 kLogToastRelation = 0x01; /* INSERT into a TOAST relation */
constexpr uint8 kLogLastInMulti = 0x02;   /* MULTI_INSERT: the last record of one multi_insert */
constexpr uint8 kLogSealed = 0x04;        /* the relation is encrypted: tuples are sealed */
constexpr uint8 kLogOldKey = 0x08;        /* UPDATE, DELETE: the old replica identity follows */

struct XlInsert
{
	uint8 version;
	uint8 flags;
	OffsetNumber offnum;
	/* block 0 data: the whole tuple, header included, or with kFlagPackedTuple its packed form */
};

struct XlMultiInsert
{
	uint8 version;
	uint8 flags;
	uint16 ntuples;
	/*
	 * block 0 data: ntuples x (OffsetNumber offnum, uint16 len, len bytes:
	 * the tuple, or with kFlagPackedTuple its packed form), then with kFlagGroupChanges the new group entries
	 * (storage::apply_group_changes)
	 */
};

/* DELETE, LOCK, CONFIRM, SUPER_DELETE: new transaction fields of one tuple. */
struct XlTupleState
{
	uint8 version;
	uint8 flags;
	OffsetNumber offnum;
	TransactionId xmin;
	TransactionId xmax;
	uint16 infomask;
	uint16 infomask2;
	ItemPointerData ctid;
};

struct XlUpdate
{
	uint8 version;
	uint8 flags;
	OffsetNumber old_offnum;
	OffsetNumber new_offnum;
	uint16 old_infomask;
	uint16 old_infomask2;
	TransactionId old_xmax;
	/* block 0: new page, data = new tuple; block 1: old page if different */
};

/* PRUNE and VACUUM */
struct XlPrune
{
	uint8 version;
	uint8 flags;
	uint16 nredirected;
	uint16 ndead;
	uint16 nunused;
	TransactionId latest_removed_xid; /* standby conflict horizon */
									  /*
	 * block 0 data: OffsetNumber redirected[2 * nredirected] (from, to pairs),
	 * dead[ndead], unused[nunused]; with kFlagUndoStripped uint16 nstripped,
	 * stripped[nstripped]; with kFlagGroupChanges the group table changes
	 */
};

/* One frozen tuple: its new xmax fields (storage::FreezeEntry, 12 bytes). */
using XlFreezeEntry = storage::FreezeEntry;

struct XlFreeze
{
	uint8 version;
	uint8 flags;
	uint16 ntuples;
	TransactionId cutoff_xid; /* standby conflict horizon */
							  /* block 0 data: XlFreezeEntry[ntuples] */
};

struct XlVisible
{
	uint8 version;
	uint8 flags;
	uint16 unused;
	TransactionId cutoff_xid;
	/* block 0: VM page, block 1: rustydb page */
};

/* META_PAGE: block 0 re-created from these fields */
struct XlMeta
{
	uint8 version;
	uint8 flags; /* record flags, 0 */
	uint16 unused;
	uint32 meta_flags; /* MetaPageData.flags */
};

/* CLEAR_VISIBLE: block 0 is the data page; flags carry kFlagVmCleared. */
struct XlClearVisible
{
	uint8 version;
	uint8 flags;
};

/*
 * UNDO: a change of an undo store (the companion relation of a table,
 * storage/undo.h). The undo records themselves travel in the INPLACE
 * records that write them (issue 21, not yet implemented).
 *	kUndoMeta	block 0: the store's metapage, initialised (WILL_INIT):
 *				table_oid, flags, capacity, position = base
 *	kUndoNewPage	block 0: metapage (insert page = lpn), block 1: the ring
 *				page, initialised (WILL_INIT): lpn
 *	kUndoDiscard	block 0: metapage: discard = position, discard_xid =
 *				xid (standby conflict horizon, like PRUNE's)
 */
constexpr uint8 kUndoMeta = 0;
constexpr uint8 kUndoNewPage = 1;
constexpr uint8 kUndoDiscard = 2;

struct XlUndo
{
	uint8 version;
	uint8 flags; /* 0 */
	uint8 sub;   /* kUndoMeta, kUndoNewPage, kUndoDiscard */
	uint8 unused;
	uint32 capacity;   /* META */
	Oid table_oid;     /* META */
	uint16 meta_flags; /* META: UndoMetaData.flags */
	uint16 unused2;
	uint64 lpn;        /* NEW_PAGE */
	uint64 position;   /* META: base; DISCARD: the new discard position */
	TransactionId xid; /* DISCARD: newest writer recycled (conflict horizon) */
	uint32 unused3;
};
static_assert(sizeof(XlUndo) == 40, "the UNDO record's main data is 40 bytes");

/* XlInplace.sub */
constexpr uint8 kInplaceUpdate = 0; /* block 0: the new version; block 1: the undo record */
constexpr uint8 kInplaceRepair = 1; /* block 0: the previous version, copied back */
constexpr uint8 kInplaceLocal =
	2; /* block 0: the new version, the previous one stays on the page */
constexpr uint8 kInplaceMigrate =
	3; /* block 0: a pointer moved to undo; block 1: the undo record */

/*
 * INPLACE. UPDATE: the row at offnum of block 0 gets the version in block
 * 0's data (written into free space, place_inplace; with
 * kFlagDeltaVersion a delta version against the page version it
 * replaces), and the undo record holding the version it replaces goes to
 * block 1 at position's offset (undo_append_change): block 1's data is
 * the record's image (kind undo_kind, flags undo_flags); redo rebuilds its
 * header from the record (the row: offnum and block 0's relation file and
 * block; the writer: the record's xid). REPAIR: block 0 only, the whole
 * previous version. Format 5 records carry the whole new version and the
 * whole undo record (UndoRecordHeader and image) in block 1.
 */
struct XlInplace
{
	uint8 version;
	uint8 flags;     /* kFlagVmCleared, kFlagDeltaVersion */
	uint8 sub;       /* kInplaceUpdate, kInplaceRepair */
	uint8 undo_kind; /* UPDATE, format 6: storage::UndoRecordKind */
	OffsetNumber offnum;
	uint16 undo_flags; /* UPDATE, format 6: UndoRecordHeader.flags */
	uint64 position;   /* UPDATE: the undo record's position */
};
static_assert(sizeof(XlInplace) == 16, "the INPLACE record's main data is 16 bytes");

/*
 * INPLACE LOCAL (format 6; plain tables): as UPDATE without block 1; block
 * 0's data starts with the previous version's fixed header (the first
 * SizeofHeapTupleHeader bytes: xmax, infomask as the update leaves them),
 * written over that version's header where it stays on the page, then the
 * new version (kFlagDeltaVersion as for UPDATE), whose undo pointer names
 * the previous version's bytes (place_inplace_local).
 *
 * INPLACE MIGRATE (format 6): before compaction, a previous version still
 * on the page that a snapshot may need goes to undo: block 1 gets the
 * undo record (its image; the header: the row at offnum of block 0, the
 * writer below), and the version at byte offset of block 0 that pointed
 * at it gets position as its undo pointer (move_to_undo). The main data
 * continues after XlInplace with XlInplaceMigrate. Redo first resolves
 * hot-standby conflicts with conflict_xid when valid: the image's own
 * pointer was cleared (the versions before it are dropped with the
 * compaction, which no snapshot older than conflict_xid's commit may
 * still need).
 */
struct XlInplaceMigrate
{
	uint16 offset; /* byte offset of the version pointing at the moved one */
	uint16 unused;
	TransactionId writer;       /* the undo record's writer: that version's creator */
	TransactionId conflict_xid; /* newest creator whose older versions are dropped, or invalid */
};
static_assert(sizeof(XlInplaceMigrate) == 12, "the MIGRATE trailer is 12 bytes");

/* Register the rmgr; from _PG_init through rustydb::am::init(). */
void register_rmgr();

} /* namespace rustydb::wal */

#endif /* RUSTYDB_WAL_RECORDS_H */

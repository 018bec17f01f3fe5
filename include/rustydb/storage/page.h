/*-------------------------------------------------------------------------
 *
 * page.h
 *	  rustydb page and tuple format (see docs/storage.md).
 *
 * A rustydb page is a standard PostgreSQL page (PageHeaderData: pd_lsn,
 * checksum, line-pointer array growing down, tuples growing up) followed by
 * an 8-byte rustydb special space at the end of the page carrying a magic
 * number, the page format version and the page kind.
 *
 * Block 0 of a relation that holds any page is its metapage (relation
 * format version, relation-level state); data pages follow. Everything
 * above the storage layer numbers data pages from 0 ("data block numbers":
 * the first number of a ctid, the visibility map, predicate locks, scans,
 * ANALYZE and TABLESAMPLE, rustydb's messages), so a row has the ctid heap
 * would give it; data block d is physical block d + 1. Only the buffer
 * reads below, the free space map and the relation's target block use
 * physical block numbers. An empty relation has no block at all: the
 * metapage is created with the first data page and goes when VACUUM or
 * TRUNCATE removes the last one, so an empty table is 0 bytes as in heap.
 *
 * A rustydb tuple is
 *
 *	RdbTupleHeader (23 bytes)  null bitmap  padding  payload
 *	|<------------------- t_hoff ----------------->|<-- t_len - t_hoff -->|
 *
 * The header's byte layout is deliberately the same as heap's
 * HeapTupleHeaderData, so PostgreSQL's executor slots (TTSOpsBufferHeapTuple;
 * TTSOpsHeapTuple for an encrypted table's opened copies),
 * system columns (xmin, xmax, cmin, cmax), combo command ids and the
 * toaster read our tuples in place, and ctids match heap's. Everything that
 * gives the header bits meaning (visibility, locking, pruning, freezing,
 * WAL) is rustydb's own code. The payload is one contiguous byte range;
 * for an encrypted table it is sealed for the page and opened from it in
 * one place, src/am/tuple.cpp (sealed groups, below, are one form it
 * writes). tuple_at locates and checks stored tuples and decrypts nothing.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_STORAGE_PAGE_H
#define RUSTYDB_STORAGE_PAGE_H

#include "rustydb/common/pgstorage.h"
#include "rustydb/storage/buffer.h"

namespace rustydb::storage {

/* ---- page special space ---- */

constexpr uint16 kPageMagic = 0x5259; /* "RY" */
/*
 * 2: relations start with a metapage (version 1 had data at block 0).
 * 3: a data page of an encrypted table may carry a group table (below).
 */
constexpr uint8 kPageFormatVersion = 3;
/* Oldest version read: version 2 pages are version 3 pages without a group table. */
constexpr uint8 kPageFormatOldest = 2;

enum PageKind : uint8
{
	kPageData = 1,     /* tuples */
	kPageMeta = 2,     /* block 0: MetaPageData */
	kPageUndoMeta = 3, /* block 0 of an undo store: UndoMetaData (storage/undo.h) */
	kPageUndo = 4,     /* a page of an undo store's ring: undo records */
};

/* PageSpecial.flags */
constexpr uint16 kPageGroupTable = 0x0001; /* a GroupTable follows (encrypted data pages) */
/*
 * Bytes between pd_upper and pd_special that no line pointer covers: an
 * in-place update (or repair) left the replaced version's bytes behind
 * (docs/storage.md, "The new version never overwrites the old bytes").
 * Set by place_inplace, cleared by the compaction of prune_execute; a hint
 * that makes pruning compact the page even when no line pointer changes.
 */
constexpr uint16 kPageGarbage = 0x0002;

struct PageSpecial
{
	uint16 magic;    /* kPageMagic */
	uint8 version;   /* kPageFormatVersion */
	uint8 kind;      /* PageKind */
	uint16 flags;    /* kPage* flags */
	uint16 reserved; /* reserved, 0 */
};
static_assert(sizeof(PageSpecial) == 8, "rustydb page special space is 8 bytes");

constexpr Size kSpecialSize = MAXALIGN(sizeof(PageSpecial));

/*
 * ---- sealed groups (encrypted tables, docs/tde.md) ----
 *
 * COPY seals the payloads of up to kGroupMaxMembers new tuples of one page
 * with one AEAD. The group's seal (crypto header, nonce, tag: the 36 bytes
 * crypto::kSealOverhead) is kept once, in an entry of the page's group
 * table, which follows PageSpecial at the end of the page; each member's
 * payload is a 2-byte member header (kMemberMarker and the slot's high
 * bits; the slot's low 2 bits and the ordinal) and its ciphertext, as
 * long as its plaintext. The table has as many slots as the page needs
 * for its groups (group_slots_for, 1 to kGroupMaxSlots), chosen when the
 * page is initialised; a page has its group table for life. A slot whose
 * nmembers is 0 is free.
 */
constexpr int kGroupMaxSlots = 64;
constexpr int kGroupMaxMembers = 16;
constexpr Size kGroupSealBytes = 36; /* crypto::kSealOverhead (checked in groups.cpp) */
constexpr Size kMemberHeaderBytes = 2;
constexpr uint8 kMemberMarker = 0x20; /* high nibble 2; per-row sealed payloads start with 1 */

struct GroupEntry
{
	uint8 seal[kGroupSealBytes]; /* format|algorithm, role, key version, session, counter, tag */
	uint16 first;                /* lowest member offset */
	uint16 last;                 /* highest member offset */
	uint8 nmembers;              /* 0: slot free */
	uint8 reserved1;             /* 0 */
	uint16 reserved2;            /* 0 */
};
static_assert(sizeof(GroupEntry) == 44, "a group entry is 44 bytes");

/* Special space of a page with a group table of nslots slots. */
constexpr Size
group_special_size(int nslots)
{
	return MAXALIGN(sizeof(PageSpecial) + nslots * sizeof(GroupEntry));
}

static inline void
member_header(int slot, int ordinal, uint8 *out)
{
	out[0] = (uint8) (kMemberMarker | (slot >> 2));
	out[1] = (uint8) (((slot & 3) << 6) | ordinal);
}

/* ---- the metapage (block 0) ---- */

constexpr uint32 kMetaMagic = 0x5244424D; /* "RDBM" */
constexpr uint32 kMetaFormatVersion = 1;
constexpr BlockNumber kMetaBlock = 0;

/* MetaPageData.flags */
constexpr uint32 kMetaEncrypted = 0x0001; /* payloads sealed (TDE), fixed at creation */

struct MetaPageData
{
	uint32 magic;          /* kMetaMagic */
	uint32 format_version; /* kMetaFormatVersion: layout of this struct */
	uint16 page_version;   /* kPageFormatVersion of the relation's data pages */
	uint16 block_size;     /* BLCKSZ of the build that created it */
	uint32 flags;          /* kMeta* */
	uint32 reserved;       /* 0 */
};
static_assert(sizeof(MetaPageData) == 20, "rustydb metapage data is 20 bytes");

/* Initialise page as a metapage with the given flags (pd_lower covers the data). */
void meta_init(Page page, uint32 flags);

/* The metadata of a valid metapage, or nullptr (reason in *why) if it is not one. */
const MetaPageData *meta_get(Page page, const char **why);

/* ---- block numbers ---- */

static inline BlockNumber
phys_block(BlockNumber data_block)
{
	return data_block + 1;
}

/* The data block number of a buffer holding a data page. */
static inline BlockNumber
data_block(Buffer buf)
{
	return BufferGetBlockNumber(buf) - 1;
}

/*
 * The file's block count, metapage included. RelationGetNumberOfBlocks()
 * is not it: for a table it asks the access method's relation_size, which
 * reports data blocks only (the block-number space of TIDs, the one BRIN,
 * ANALYZE and CREATE INDEX count in), so it is the smgr that is asked here.
 */
static inline BlockNumber
phys_nblocks(Relation rel)
{
	return smgrnblocks(RelationGetSmgr(rel), MAIN_FORKNUM);
}

/* Number of data pages of rel (its blocks less the metapage). */
static inline BlockNumber
data_nblocks(Relation rel)
{
	BlockNumber n = phys_nblocks(rel);
	return n > 0 ? n - 1 : 0;
}

/* Pin data block d of rel (no lock), through strategy if not null. */
static inline Buffer
read_data_block(Relation rel, BlockNumber d, BufferAccessStrategy strategy = nullptr)
{
	return ReadBufferExtended(rel, MAIN_FORKNUM, phys_block(d), RBM_NORMAL, strategy);
}

/* Physical block count that keeps data blocks [0, d): the metapage goes with the last. */
static inline BlockNumber
phys_nblocks_for(BlockNumber d)
{
	return d > 0 ? d + 1 : 0;
}

/* ---- tuple header ---- */

using RdbTupleHeader = HeapTupleHeaderData;
constexpr Size kTupleHeaderSize = SizeofHeapTupleHeader; /* 23 */

/* Largest tuple that fits on an empty rustydb page. */
constexpr Size kMaxTupleSize =
	BLCKSZ - MAXALIGN(SizeOfPageHeaderData + sizeof(ItemIdData)) - kSpecialSize;

/* Most line pointers a rustydb page can hold (never above heap's). */
constexpr int kMaxTuplesPerPage = (int) ((BLCKSZ - SizeOfPageHeaderData - kSpecialSize) /
										 (MAXALIGN(kTupleHeaderSize) + sizeof(ItemIdData)));
static_assert(kMaxTuplesPerPage <= MaxHeapTuplesPerPage, "TID bitmaps assume heap's limit");

/* ---- page functions (page.cpp) ---- */

/* Initialise an empty rustydb data page, with a group table of group_slots slots if > 0. */
void page_init(Page page, int group_slots = 0);

/* Initialise an empty page of kind with the plain special space (metapages, undo pages). */
void page_init_kind(Page page, PageKind kind);

/* Has the data page bytes no line pointer covers (kPageGarbage)? */
static inline bool
page_has_garbage(Page page)
{
	return !PageIsNew(page) &&
		   (((PageSpecial *) (page + ((PageHeader) page)->pd_special))->flags & kPageGarbage) != 0;
}

/* The group table of a checked data page (its slot count in *nslots), or nullptr. */
static inline GroupEntry *
page_groups(Page page, int *nslots = nullptr)
{
	auto *sp = (PageSpecial *) (page + ((PageHeader) page)->pd_special);
	if (PageIsNew(page) || !(sp->flags & kPageGroupTable))
		return nullptr;
	if (nslots != nullptr)
		*nslots = (int) ((BLCKSZ - ((PageHeader) page)->pd_special - sizeof(PageSpecial)) /
						 sizeof(GroupEntry));
	return (GroupEntry *) (sp + 1);
}

/*
 * Slots for a new page whose tuples are about tuple_len bytes (stored as
 * members) in groups of group_rows: enough for a page of such tuples, and
 * one more for smaller ones. Tuples a full table has no slot for are
 * sealed on their own.
 */
static inline int
group_slots_for(Size tuple_len, int group_rows)
{
	Size rows = (BLCKSZ - SizeOfPageHeaderData - sizeof(PageSpecial)) /
				(MAXALIGN(tuple_len) + sizeof(ItemIdData));
	int slots = (int) ((rows + group_rows - 1) / group_rows) + 1;
	return Max(1, Min(slots, kGroupMaxSlots));
}

/* Largest tuple that fits on an empty page with a group table of nslots. */
static inline Size
max_group_page_tuple_size(int nslots)
{
	return BLCKSZ - MAXALIGN(SizeOfPageHeaderData + sizeof(ItemIdData)) -
		   group_special_size(nslots);
}

/*
 * Apply changes to a page's group table (in a critical section, or in
 * redo): len bytes of
 *	uint8 nslots, then per slot: uint8 slot, uint8 npayloads,
 *	GroupEntry (the slot's new entry), then npayloads x (OffsetNumber off,
 *	uint16 len, len bytes replacing the payload of the tuple at off).
 * The format of the group changes in MULTI_INSERT and PRUNE records.
 */
void apply_group_changes(Page page, const char *data, Size len);

/* True when the page carries our special space (or is all zeroes). */
bool page_is_valid(Page page);

/*
 * Does the page look like a heap page (a valid standard header, no special
 * space)? Such a page in a rustydb relation means its files were replaced
 * by a heap table's (a tool that swaps relation files: docs/am.md).
 */
bool page_is_heap(Page page);

/*
 * ERROR (ERRCODE_DATA_CORRUPTED) for a rustydb relation whose file block
 * phys_blkno is a heap page: what happened and how to recover
 * (rustydb.recover_heap_pages).
 */
[[noreturn]] void heap_pages_error(Relation rel, BlockNumber phys_blkno);

/*
 * Once per relation cache entry (rebuilt whenever pg_class changes, e.g.
 * when a tool swaps the relation's files): check that block 0 is not a
 * heap page. Called where scans, fetches and inserts start, so a relation
 * whose files are a heap table's gives one clear error instead of reading
 * garbage or, for a one-block heap file, seeming empty. (A damaged
 * metapage is left to VACUUM and verify_table: the data pages stay
 * readable.)
 */
void check_storage(Relation rel);

/*
 * What this backend learnt about a rustydb table since its relation cache
 * entry was built (rd_amcache, allocated by check_storage; the relation
 * cache frees it whenever it rebuilds or drops the entry).
 */
struct RelAmCache
{
	bool undo_ready;      /* the undo store exists and has its metapage */
	uint32 local_updates; /* LOCAL in-place updates since (am::inplace_prepare) */
};

/* rel's RelAmCache (check_storage first). */
RelAmCache *rel_amcache(Relation rel);

/*
 * Check a page read from rel's data block blkno; ERROR
 * (ERRCODE_DATA_CORRUPTED) naming relation and block when it is not a valid
 * rustydb data page. New (all-zero) pages pass.
 */
void page_check(Relation rel, BlockNumber blkno, Page page);

/*
 * Point tuple at line pointer off of a checked page; ERROR naming relation,
 * block and offset when the item does not lie within the page or its
 * header is implausible. Returns false for a line pointer that is not
 * LP_NORMAL. The payload is as stored (sealed, for an encrypted table);
 * am::open_from_page opens it.
 */
bool tuple_at(Relation rel, Buffer buf, Page page, OffsetNumber off, HeapTuple tuple);

/*
 * The cheap check for the scan fast path: the line pointer is a tuple that
 * lies inside the page. Tuples passing only this (on all-visible pages,
 * whose headers a sequential scan never needs) are fully checked by
 * tuple_at wherever their header is interpreted (fetches, modifications,
 * visibility checks).
 */
static inline bool
lp_is_sane_tuple(Page page, ItemId lp)
{
	auto *hdr = (PageHeader) page;
	unsigned lpoff = ItemIdGetOffset(lp);
	return lpoff >= hdr->pd_upper && lpoff + ItemIdGetLength(lp) <= hdr->pd_special &&
		   ItemIdGetLength(lp) >= kTupleHeaderSize;
}

/* Point tuple at a line pointer already checked on this page. */
static inline void
tuple_at_checked(Relation rel, BlockNumber blkno, Page page, OffsetNumber off, HeapTuple tuple)
{
	Assert(off >= FirstOffsetNumber && off <= PageGetMaxOffsetNumber(page));
	ItemId lp = PageGetItemId(page, off);
	Assert(ItemIdIsNormal(lp));
	tuple->t_data = (HeapTupleHeader) PageGetItem(page, lp);
	tuple->t_len = ItemIdGetLength(lp);
	tuple->t_tableOid = RelationGetRelid(rel);
	ItemPointerSet(&tuple->t_self, blkno, off);
}

/* Free space left for a new tuple on the page, like PageGetHeapFreeSpace. */
Size page_free_space(Page page);

/*
 * The pointer reserve (hio.cpp; docs/storage.md, "The tuple header: a
 * pointer into undo"): the bytes the page's rows would need to gain their
 * undo pointers, kUndoExtSize for each normal line pointer whose version
 * has none yet. Exact: one look at each line pointer and, for a normal
 * one, its tuple's infomask2. The page must be locked.
 */
Size page_pointer_room(Page page);

/*
 * What the free space map records for a data page: its free space, less
 * page_pointer_room when the table keeps the pointer reserve (pointers),
 * so that the map offers a page only for rows that fit beside its rows'
 * pointers. The page must be locked.
 */
Size page_fsm_space(Page page, bool pointers);

/* ---- the visibility map (page.cpp) ----
 *
 * rustydb keeps PostgreSQL's visibility-map fork in PostgreSQL's format
 * (index-only scans read it directly) but changes it only through its own
 * WAL records: vm_set marks a heap block all-visible (and all-frozen) on
 * the VM page, in the VISIBLE record's critical section and in its redo.
 * Clearing uses visibilitymap_clear inside the critical section of the
 * rustydb record that carries kFlagVmCleared (both bits) or, for a row
 * lock, kFlagFrozenCleared (the all-frozen bit: the page stays
 * all-visible, as heap's does).
 *
 * All-frozen (format 8): every tuple of the page is all-visible, needs no
 * freezing ever (heap_tuple_needs_eventual_freeze: no xmin that is not
 * frozen, no xmax) and has no undo pointer (the previous versions it
 * names, in undo or on the page, carry transaction ids). An aggressive
 * VACUUM skips such pages.
 */

/*
 * What keeps tuple t from being all-frozen (nullptr: nothing): "an xmin or
 * xmax not frozen" or "an undo pointer". VACUUM's all-frozen test and
 * verify_table's check of the bit.
 */
const char *tuple_frozen_problem(HeapTupleHeader t);

/* Mark data block heapblk all-visible, and all-frozen if asked, on vmbuf (its VM page, locked exclusively). */
void vm_set(Buffer vmbuf, BlockNumber heapblk, bool all_frozen);

/*
 * Before a critical section (it may read the map): pin the VM page of
 * buf's page, exclusively locked, if the page is all-visible.
 */
void vm_pin_if_needed(Relation rel, Buffer buf, Buffer *vmbuf);

/*
 * In a critical section, buf locked exclusively and vmbuf pinned by
 * vm_pin_if_needed: clear all-visible; returns true if it was set.
 */
bool vm_clear(Relation rel, Buffer buf, Buffer vmbuf);

/*
 * The same for a row lock: clear the all-frozen bit only (the locker's
 * xmax must be frozen or seen by a later VACUUM); returns true if it was set.
 */
bool vm_clear_frozen(Relation rel, Buffer buf, Buffer vmbuf);

/* ---- finding a page for a new tuple (hio.cpp) ---- */

/*
 * Return a pinned, exclusively locked buffer with room for len bytes,
 * beside save more (am::page_fill_reserve), taking free space from the FSM
 * or extending the relation. pointers (am::page_pointer_reserve): an
 * existing page must also keep the undo pointers of its rows and of the
 * new one (page_pointer_room, plus kUndoExtSize), and a page refused for
 * want of room is recorded in the FSM as page_fsm_space says, so the map
 * does not offer it again for the same request. If other is
 * valid it is a pinned, unlocked buffer of the same relation that is
 * returned locked too (lock order by block number). A new page is
 * initialised here; WAL records carry an init flag when their tuple is the
 * first on the page, so redo re-creates the page from scratch.
 * group_slots > 0: a page initialised here gets a group table of that
 * many slots (encrypted COPY; len must then fit
 * max_group_page_tuple_size). Returns InvalidBuffer, having locked
 * nothing, when rel has no block at all: its metapage must be created
 * first (am::get_buffer_for_tuple does, then calls again).
 */
Buffer buffer_for_tuple(Relation rel, Size len, Size save, BulkInsertState bistate, Buffer other,
						int group_slots = 0, bool pointers = false);

/*
 * VACUUM's check of the metapage: ERROR (ERRCODE_DATA_CORRUPTED) naming
 * the relation when block 0 is not a valid metapage of this build's
 * formats. Returns true when block 0 is all zeroes, as a crash between the
 * first extension of a relation and its metapage's WAL record leaves it
 * (like any new page): the caller writes the metapage there
 * (am::check_metapage).
 */
bool check_metapage(Relation rel);

} /* namespace rustydb::storage */

#endif /* RUSTYDB_STORAGE_PAGE_H */

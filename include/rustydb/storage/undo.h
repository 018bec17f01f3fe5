/*-------------------------------------------------------------------------
 *
 * undo.h
 *	  The undo store's formats: its metapage, undo pages, undo records,
 *	  undo positions and the tuple header extension that points into undo
 *	  (docs/storage.md, "In-place updates and undo").
 *
 * A table's undo store is a companion relation (block 0 its metapage,
 * blocks 1..capacity a ring of undo pages). An undo position (UndoPtr) is
 * a byte address in an ever-growing logical space: logical page p =
 * position / BLCKSZ, the offset in that page = position % BLCKSZ, and
 * logical page p lives in ring block 1 + ((p - base page) mod capacity).
 * Positions never repeat, so "position < discard" says "recycled" without
 * reading anything.
 *
 * The functions here work on pages only (no buffer, no lock, no WAL):
 * changes.cpp wraps those that change a page for the records and their
 * redo; readers use the checks. Status: formats and page functions; the
 * companion relation, the records and the in-place path are the next
 * steps listed in docs/storage.md.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_STORAGE_UNDO_H
#define RUSTYDB_STORAGE_UNDO_H

#include "rustydb/common/pgstorage.h"
#include "rustydb/storage/page.h"

namespace rustydb::storage {

/* ---- undo positions ---- */

using UndoPtr = uint64;
constexpr UndoPtr kInvalidUndoPtr = 0; /* logical page 0 is never used */

static inline uint64
undo_page_of(UndoPtr p)
{
	return p / BLCKSZ;
}

static inline uint16
undo_offset_of(UndoPtr p)
{
	return (uint16) (p % BLCKSZ);
}

static inline UndoPtr
undo_position(uint64 lpn, uint16 offset)
{
	return lpn * BLCKSZ + offset;
}

/* ---- the store's metapage (block 0 of the companion relation) ---- */

constexpr uint32 kUndoMetaMagic = 0x5244554E; /* "RDUN" */
constexpr uint16 kUndoFormatVersion = 1;      /* UndoMetaData and UndoRecordHeader */
constexpr BlockNumber kUndoMetaBlock = 0;
constexpr uint32 kUndoMaxCapacity = MaxBlockNumber - 1; /* ring blocks 1..capacity */

/* UndoMetaData.flags */
constexpr uint16 kUndoEncrypted = 0x0001; /* records hold sealed payloads only */

struct UndoMetaData
{
	uint32 magic;              /* kUndoMetaMagic */
	uint16 format_version;     /* kUndoFormatVersion */
	uint16 flags;              /* kUndo* */
	Oid table_oid;             /* the table served */
	uint32 capacity;           /* ring size in pages */
	UndoPtr base;              /* position of ring block 1 in this ring epoch (page-aligned) */
	UndoPtr insert;            /* first position of the insert page; invalid: none yet */
	UndoPtr discard;           /* every position below is recycled (page-aligned) */
	TransactionId discard_xid; /* newest writer whose predecessors were recycled */
	uint32 reserved;           /* 0 */
};
static_assert(sizeof(UndoMetaData) == 48, "the undo metapage data is 48 bytes");

/*
 * Initialise page as an empty store's metapage: the ring starts at base
 * (page-aligned, > 0), discard = base, no insert page yet.
 */
void undo_meta_init(Page page, Oid table_oid, uint16 flags, uint32 capacity, UndoPtr base);

/* The data of a valid undo metapage, or nullptr with the reason in *why. */
const UndoMetaData *undo_meta_get(Page page, const char **why);

/* Writable data of a metapage undo_meta_get accepted. */
static inline UndoMetaData *
undo_meta_data(Page page)
{
	return (UndoMetaData *) PageGetContents(page);
}

/* The ring block (1..capacity) holding logical page lpn (>= the base page). */
static inline BlockNumber
undo_block_for(const UndoMetaData *meta, uint64 lpn)
{
	Assert(lpn >= undo_page_of(meta->base) && meta->capacity > 0);
	return (BlockNumber) (1 + (lpn - undo_page_of(meta->base)) % meta->capacity);
}

/* The logical page the next insert page will be. */
static inline uint64
undo_next_page(const UndoMetaData *meta)
{
	return meta->insert == kInvalidUndoPtr ? undo_page_of(meta->base)
										   : undo_page_of(meta->insert) + 1;
}

/* Logical pages in use: from the oldest not recycled to the insert page. */
static inline uint64
undo_pages_in_use(const UndoMetaData *meta)
{
	return undo_next_page(meta) - undo_page_of(meta->discard);
}

/* May a new insert page be started, or would it overwrite undo in use? */
static inline bool
undo_ring_full(const UndoMetaData *meta)
{
	return undo_pages_in_use(meta) >= meta->capacity;
}

/* Is the record at p recycled (or never written)? */
static inline bool
undo_is_discarded(const UndoMetaData *meta, UndoPtr p)
{
	return p < meta->discard || meta->insert == kInvalidUndoPtr ||
		   undo_page_of(p) > undo_page_of(meta->insert);
}

/* ---- undo pages (ring blocks 1..capacity) ---- */

/* Right after the page header: the page's logical page number. */
struct UndoPageHeader
{
	uint64 lpn;
};
static_assert(sizeof(UndoPageHeader) == 8, "the undo page header is 8 bytes");

/* Offset of an undo page's first record. */
constexpr uint16 kUndoFirstRecord = MAXALIGN(SizeOfPageHeaderData) + sizeof(UndoPageHeader);

/* Initialise page as the empty undo page of logical page lpn. */
void undo_page_init(Page page, uint64 lpn);

/* Is page a valid undo page of logical page lpn? (reason in *why if not) */
bool undo_page_check(Page page, uint64 lpn, const char **why);

/* The logical page number of a page undo_page_check accepted. */
static inline uint64
undo_page_lpn(Page page)
{
	return ((const UndoPageHeader *) PageGetContents(page))->lpn;
}

/* ---- undo records ---- */

enum UndoRecordKind : uint8
{
	kUndoTuple = 1, /* the full image of a previous version */
	kUndoDelta = 2, /* the previous version told against the next newer one (a delta version) */
};

/* UndoRecordHeader.flags */
constexpr uint16 kUndoRecordSealed = 0x0001; /* the image's payload is sealed (TDE) */

struct UndoRecordHeader
{
	uint8 version;        /* kUndoFormatVersion */
	uint8 kind;           /* UndoRecordKind */
	uint16 flags;         /* kUndoRecord* */
	uint16 len;           /* header and image, unaligned; records start MAXALIGNed */
	OffsetNumber offnum;  /* the row: its offset */
	BlockNumber block;    /* ... its data block number */
	Oid relfilenode;      /* ... and the relation file it lives in */
	TransactionId writer; /* the in-place update that pushed this version */
	uint32 reserved;      /* 0 */
						  /* the image follows: len - sizeof(UndoRecordHeader) bytes */
};
static_assert(sizeof(UndoRecordHeader) == 24, "the undo record header is 24 bytes");

/*
 * The header of the record an in-place update by writer of row (block,
 * offnum) of relation file relfilenode appends (the update and its redo).
 */
static inline UndoRecordHeader
undo_record_header(uint8 kind, uint16 flags, BlockNumber block, OffsetNumber offnum,
				   Oid relfilenode, TransactionId writer)
{
	UndoRecordHeader h;
	memset(&h, 0, sizeof(h));
	h.version = kUndoFormatVersion;
	h.kind = kind;
	h.flags = flags;
	h.offnum = offnum;
	h.block = block;
	h.relfilenode = relfilenode;
	h.writer = writer;
	return h;
}

/* Largest image an empty undo page holds. */
constexpr Size kUndoMaxImage = BLCKSZ - kSpecialSize - kUndoFirstRecord - sizeof(UndoRecordHeader);

/* Bytes left for one more record's header and image on an undo page. */
Size undo_page_free(Page page);

/*
 * Append a record (header, then image_len bytes of image) to an undo page;
 * hdr.len is set here. Returns the record's offset in the page. The caller
 * has checked undo_page_free (PANIC otherwise: this runs in critical
 * sections and redo).
 */
uint16 undo_append(Page page, const UndoRecordHeader &hdr, const void *image, Size image_len);

/*
 * The record at offset of a checked undo page, or nullptr with the reason
 * in *why: inside the records written so far, aligned, header plausible.
 * The caller checks that it is the record it wanted (TID, relation file,
 * writer).
 */
const UndoRecordHeader *undo_record_at(Page page, uint16 offset, const char **why);

/* A record's image and its length. */
static inline const char *
undo_record_image(const UndoRecordHeader *r, Size *len)
{
	*len = r->len - sizeof(UndoRecordHeader);
	return (const char *) (r + 1);
}

/* ---- delta versions ---- */

/*
 * A version told by its difference from a base payload (the bytes from
 * t_hoff to t_len of another version): its header verbatim (t_hoff bytes:
 * fixed fields, null bitmap, undo extension), a PayloadDelta, then the
 * bytes of its payload between the prefix and the suffix it shares with
 * the base. A kUndoDelta record's image is one, against the payload of the
 * version that points at the record (the version its writer created, whose
 * payload no later change touches: repair replaces a version with one that
 * points elsewhere); an INPLACE record's new version is one against the
 * version it replaces (docs/storage.md, "Delta versions").
 */
struct PayloadDelta
{
	uint16 prefix; /* the first prefix bytes are the base's */
	uint16 suffix; /* ... and so are the last suffix bytes */
};
static_assert(sizeof(PayloadDelta) == 4, "a payload delta is 4 bytes");

/*
 * Encode version (len bytes) against base (base_len bytes) into out (room
 * for len + sizeof(PayloadDelta) bytes); returns the encoding's length,
 * which may exceed len when the two share little (the caller keeps the
 * shorter form).
 */
Size delta_encode(HeapTupleHeader version, Size len, const char *base, Size base_len, char *out);

/*
 * The length of the version the encoding enc (enc_len bytes, any
 * alignment) rebuilds against a base payload of base_len bytes, or 0 when
 * the encoding is malformed or does not fit that base.
 */
Size delta_decoded_len(const char *enc, Size enc_len, Size base_len);

/* Rebuild the version into out (delta_decoded_len bytes, which was > 0). */
void delta_decode(const char *enc, Size enc_len, const char *base, Size base_len, char *out);

/*
 * Packed tuple headers (WAL format 7). INSERT (without kFlagLogical) and
 * INPLACE LOCAL log a tuple header's fields as one flags byte, then only
 * the fields that differ from what redo knows (HeaderDefaults: the
 * record's xid, an xmax of 0, the row's own TID), then infomask2 and
 * infomask: 5 bytes where the whole header is 23. t_cid is never logged:
 * redo writes FirstCommandId, as heap's redo does (a command id matters
 * only to the transaction that wrote it, which neither crash recovery nor
 * a standby resumes; rm_mask masks it).
 */
/* The WAL format whose records pack header fields (wal::kWalFormatVersion 7). */
constexpr uint8 kPackedFieldsFormat = 7;

struct HeaderDefaults
{
	TransactionId xmin;
	TransactionId xmax;
	ItemPointerData ctid;
};

/* The most pack_header_fields writes: flags, xmin, xmax, t_ctid, infomask2, infomask. */
constexpr Size kPackedFieldsMax = 1 + 4 + 4 + sizeof(ItemPointerData) + 4;

/* Pack h's xmin, xmax, t_ctid, infomask2 and infomask against d into out. */
Size pack_header_fields(HeapTupleHeader h, const HeaderDefaults &d, char *out);

/*
 * Read the fields a record of WAL format `format` logs into h (xmin, xmax,
 * t_cid, t_ctid, infomask2, infomask; t_hoff and the rest untouched):
 * format 7's packed fields, or format 6 LOCAL's 12 bytes (xmax, t_cid,
 * infomask2, infomask; xmin and t_ctid from d). Returns the bytes read, 0
 * when enc (len bytes, any alignment) is too short.
 */
Size read_header_fields(uint8 format, const char *enc, Size len, const HeaderDefaults &d,
						HeapTupleHeader h);

/*
 * INSERT's packed tuple (format 7): the packed fields, t_hoff, then the
 * tuple's bytes after its 23-byte fixed header (null bitmap, padding,
 * payload). out has room for len + kPackedFieldsMax bytes.
 */
Size pack_tuple(HeapTupleHeader h, Size len, const HeaderDefaults &d, char *out);

/*
 * The part of pack_tuple's output before the tuple's own bytes (the
 * packed fields and t_hoff, at most kPackedHeadMax bytes), for a caller
 * that registers the bytes after the 23-byte header from where they are.
 */
constexpr Size kPackedHeadMax = kPackedFieldsMax + 1;
Size pack_tuple_head(HeapTupleHeader h, const HeaderDefaults &d, char *out);

/* The length of the tuple enc rebuilds, or 0 when it is malformed. */
Size packed_tuple_len(const char *enc, Size enc_len, const HeaderDefaults &d);

/* Rebuild the tuple into out (packed_tuple_len bytes, which was > 0). */
void unpack_tuple(const char *enc, Size enc_len, const HeaderDefaults &d, char *out);

/*
 * The INPLACE LOCAL record's form of its versions. Of the previous
 * version, which stays where it is, only the header fields the update
 * changes: format 7's packed fields against {its own xmin, the record's
 * xid, the row} (its xmin, t_hoff, null bitmap and undo pointer stay, its
 * t_ctid is the row). The new version is a delta version against the
 * previous one's payload without the header fields redo knows (t_xmin, the
 * record's xid; t_ctid, the row; its undo pointer, the previous version's
 * place): the packed fields against {the record's xid, 0, the row}
 * (format 6: xmax, t_cid, infomask2, infomask), t_hoff, then the header
 * bytes from 23 to t_hoff - 8 (null bitmap, padding), then a PayloadDelta
 * and the middle bytes.
 */

/* Encode version (len bytes, with an undo pointer) against base into out (room for len + sizeof(PayloadDelta)). */
Size local_new_pack(HeapTupleHeader version, Size len, const HeaderDefaults &d, const char *base,
					Size base_len, char *out);

/* The length local_new_unpack rebuilds, or 0 when enc is malformed or does not fit base. */
Size local_new_unpacked_len(uint8 format, const char *enc, Size enc_len, const HeaderDefaults &d,
							Size base_len);

/* Rebuild the new version into out, with the defaults d and undo pointer p. */
void local_new_unpack(uint8 format, const char *enc, Size enc_len, const char *base, Size base_len,
					  const HeaderDefaults &d, UndoPtr p, char *out);

/* ---- the tuple header extension: a version's pointer into undo ---- */

/*
 * An in-place version has infomask2 bit kTupleHasUndo and, in the 8
 * bytes ending at t_hoff (after the null bitmap), the position of the
 * undo record holding the previous version. PostgreSQL's deforming,
 * system columns and toaster find attributes through t_hoff and never see
 * it; a tuple without the bit is the format 3 tuple.
 */
constexpr uint16 kTupleHasUndo =
	0x1000; /* a bit of t_infomask2 neither heap nor rustydb uses (crypto::kValuesSealed is 0x0800) */
constexpr Size kUndoExtSize = sizeof(UndoPtr);
static_assert((HEAP2_XACT_MASK & kTupleHasUndo) == 0 && (HEAP_NATTS_MASK & kTupleHasUndo) == 0,
			  "the undo bit is free in t_infomask2");

static inline bool
tuple_has_undo(HeapTupleHeader t)
{
	return (t->t_infomask2 & kTupleHasUndo) != 0;
}

/* The undo position of an in-place version (kInvalidUndoPtr without one). */
static inline UndoPtr
tuple_undo_ptr(HeapTupleHeader t)
{
	if (!tuple_has_undo(t))
		return kInvalidUndoPtr;
	UndoPtr p;
	memcpy(&p, (const char *) t + t->t_hoff - kUndoExtSize, sizeof(p));
	return p;
}

/*
 * A pointer to a previous version still on the data page (plain tables:
 * the bytes an in-place update left behind, docs/storage.md, "Previous
 * versions on the page"): bit 63 set, the version's byte offset in the
 * page in bits 0-15, its length in bits 16-31. Undo positions stay below
 * 2^63. Only versions on a data page carry one (never an undo image);
 * compaction moves the previous versions a snapshot may still need to
 * undo and clears the other pointers (set_undo_ptr, prune_execute).
 */
constexpr UndoPtr kInPageFlag = UINT64CONST(1) << 63;

static inline bool
undo_ptr_in_page(UndoPtr p)
{
	return (p & kInPageFlag) != 0;
}

static inline UndoPtr
in_page_ptr(uint16 offset, uint16 len)
{
	return kInPageFlag | ((UndoPtr) len << 16) | offset;
}

static inline uint16
in_page_offset(UndoPtr p)
{
	return (uint16) (p & 0xFFFF);
}

static inline uint16
in_page_len(UndoPtr p)
{
	return (uint16) ((p >> 16) & 0xFFFF);
}

/*
 * The version an in-page pointer names on page, or nullptr with the
 * reason in *why (out of the page's tuple space, unaligned, a header that
 * does not fit). The caller checks that it is the row's (t_ctid). Callers
 * hold a pin of the page: the bytes cannot move (compaction needs a
 * cleanup lock) and a previous version's bytes do not change once its
 * successor points at them.
 */
HeapTupleHeader in_page_version(Page page, UndoPtr p, const char **why);

/* The version at byte offset of page with its undo pointer set to p (in place). */
void set_undo_ptr_at(Page page, uint16 offset, UndoPtr p);

/*
 * A palloc'd copy of tuple with its undo pointer set to p (the extension
 * added if missing, t_hoff moved); the header's other fields and the
 * payload are unchanged.
 */
HeapTuple tuple_with_undo(HeapTuple tuple, UndoPtr p);

/* A palloc'd copy of tuple without the extension (tuple itself if it has none). */
HeapTuple tuple_without_undo(HeapTuple tuple);

/*
 * Does a tuple header's t_hoff agree with its attribute count, null bitmap
 * and undo bit? (tuple_at's check of the extension)
 */
bool tuple_hoff_is_valid(HeapTupleHeader t);

} /* namespace rustydb::storage */

#endif /* RUSTYDB_STORAGE_UNDO_H */

/*-------------------------------------------------------------------------
 *
 * undo.cpp
 *	  The undo store's page formats: metapage, undo pages, undo records,
 *	  and the tuple header extension that points into undo.
 *
 * Pages only: no buffer, lock or WAL here (changes.cpp wraps the page
 * changes for the records and their redo). Every check returns the reason
 * a page or record is refused, for the caller's ERRCODE_DATA_CORRUPTED
 * message; nothing is dereferenced outside the page before it is checked.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/storage/undo.h"

namespace rustydb::storage {

/* ------------------------------------------------------------------------
 * The metapage
 * ------------------------------------------------------------------------
 */

void
undo_meta_init(Page page, Oid table_oid, uint16 flags, uint32 capacity, UndoPtr base)
{
	Assert(capacity >= 1 && capacity <= kUndoMaxCapacity);
	Assert(base != kInvalidUndoPtr && undo_offset_of(base) == 0);
	page_init_kind(page, kPageUndoMeta);

	UndoMetaData *meta = undo_meta_data(page);
	memset(meta, 0, sizeof(*meta));
	meta->magic = kUndoMetaMagic;
	meta->format_version = kUndoFormatVersion;
	meta->flags = flags;
	meta->table_oid = table_oid;
	meta->capacity = capacity;
	meta->base = base;
	meta->insert = kInvalidUndoPtr;
	meta->discard = base;
	meta->discard_xid = InvalidTransactionId;
	/* pd_lower past the data, so that full-page images keep it (REGBUF_STANDARD) */
	((PageHeader) page)->pd_lower = (char *) (meta + 1) - (char *) page;
}

/* The special space of a page with the plain one, or nullptr. */
static const PageSpecial *
plain_special(Page page)
{
	auto *hdr = (PageHeader) page;
	if (PageIsNew(page) || hdr->pd_special != BLCKSZ - kSpecialSize ||
		PageGetPageSize(page) != BLCKSZ || hdr->pd_lower < SizeOfPageHeaderData ||
		hdr->pd_lower > hdr->pd_upper || hdr->pd_upper > hdr->pd_special)
		return nullptr;
	auto *sp = (const PageSpecial *) (page + hdr->pd_special);
	if (sp->magic != kPageMagic || sp->flags != 0)
		return nullptr;
	return sp;
}

const UndoMetaData *
undo_meta_get(Page page, const char **why)
{
	const char *reason = nullptr;
	const PageSpecial *sp = plain_special(page);
	const UndoMetaData *meta = undo_meta_data(page);

	if (PageIsNew(page))
		reason = "the page is all zeroes";
	else if (sp == nullptr || sp->kind != kPageUndoMeta)
		reason = "the page is not a rustydb undo metapage";
	else if (((PageHeader) page)->pd_lower < (char *) (meta + 1) - (char *) page)
		reason = "the page header does not cover the undo metapage data";
	else if (meta->magic != kUndoMetaMagic)
		reason = "bad undo metapage magic number";
	else if (meta->format_version != kUndoFormatVersion || sp->version < kPageFormatOldest ||
			 sp->version > kPageFormatVersion)
		reason = "unsupported undo format version";
	else if ((meta->flags & ~kUndoEncrypted) != 0 || meta->reserved != 0)
		reason = "unknown undo metapage flags";
	else if (meta->capacity < 1 || meta->capacity > kUndoMaxCapacity)
		reason = "undo ring capacity out of range";
	else if (meta->base == kInvalidUndoPtr || undo_offset_of(meta->base) != 0 ||
			 undo_offset_of(meta->discard) != 0 || meta->discard < meta->base ||
			 (meta->insert != kInvalidUndoPtr &&
			  (undo_offset_of(meta->insert) != 0 || meta->insert < meta->base)) ||
			 (meta->insert == kInvalidUndoPtr && meta->discard != meta->base) ||
			 undo_page_of(meta->discard) > undo_next_page(meta))
		reason = "undo positions out of order";
	else if (undo_pages_in_use(meta) > meta->capacity)
		reason = "more undo pages in use than the ring holds";
	if (why != nullptr)
		*why = reason;
	return reason == nullptr ? meta : nullptr;
}

/* ------------------------------------------------------------------------
 * Undo pages and records
 * ------------------------------------------------------------------------
 */

void
undo_page_init(Page page, uint64 lpn)
{
	Assert(lpn != 0);
	page_init_kind(page, kPageUndo);
	auto *uh = (UndoPageHeader *) PageGetContents(page);
	uh->lpn = lpn;
	((PageHeader) page)->pd_lower = kUndoFirstRecord;
}

bool
undo_page_check(Page page, uint64 lpn, const char **why)
{
	const char *reason = nullptr;
	const PageSpecial *sp = plain_special(page);

	if (PageIsNew(page))
		reason = "the page is all zeroes";
	else if (sp == nullptr || sp->kind != kPageUndo)
		reason = "the page is not a rustydb undo page";
	else if (sp->version < kPageFormatOldest || sp->version > kPageFormatVersion)
		reason = "unsupported undo page format version";
	else if (((PageHeader) page)->pd_lower < kUndoFirstRecord ||
			 ((PageHeader) page)->pd_upper != ((PageHeader) page)->pd_special)
		reason = "the page header does not describe an undo page";
	else if (undo_page_lpn(page) != lpn)
		reason = "the undo page belongs to another logical page (a recycled or misplaced page)";
	if (why != nullptr)
		*why = reason;
	return reason == nullptr;
}

Size
undo_page_free(Page page)
{
	auto *hdr = (PageHeader) page;
	Size next = MAXALIGN(hdr->pd_lower);
	return next < hdr->pd_upper ? hdr->pd_upper - next : 0;
}

uint16
undo_append(Page page, const UndoRecordHeader &hdr, const void *image, Size image_len)
{
	auto *ph = (PageHeader) page;
	Size need = sizeof(UndoRecordHeader) + image_len;
	if (need > undo_page_free(page))
		elog(PANIC, "rustydb undo: a record of %zu bytes does not fit an undo page with %zu free",
			 need, undo_page_free(page));
	auto off = (uint16) MAXALIGN(ph->pd_lower);
	auto *r = (UndoRecordHeader *) (page + off);
	memcpy(r, &hdr, sizeof(hdr));
	r->len = (uint16) need;
	memcpy(r + 1, image, image_len);
	/* the alignment gap before the record is zeroed, so pages compare equal after redo */
	memset(page + ph->pd_lower, 0, off - ph->pd_lower);
	ph->pd_lower = (LocationIndex) (off + need);
	return off;
}

const UndoRecordHeader *
undo_record_at(Page page, uint16 offset, const char **why)
{
	auto *ph = (PageHeader) page;
	const char *reason = nullptr;
	const auto *r = (const UndoRecordHeader *) (page + offset);

	if (offset < kUndoFirstRecord || offset != MAXALIGN(offset) ||
		(Size) offset + sizeof(UndoRecordHeader) > ph->pd_lower)
		reason = "the position is not that of a record on its undo page";
	else if (r->version != kUndoFormatVersion)
		reason = "unsupported undo record format version";
	else if (r->kind != kUndoTuple && r->kind != kUndoDelta)
		reason = "unsupported undo record kind";
	else if (r->kind == kUndoDelta && (r->flags & kUndoRecordSealed))
		reason = "a sealed delta record";
	else if ((r->flags & ~kUndoRecordSealed) != 0 || r->reserved != 0)
		reason = "unknown undo record flags";
	else if (r->len < sizeof(UndoRecordHeader) + kTupleHeaderSize ||
			 (Size) offset + r->len > ph->pd_lower)
		reason = "the undo record's length does not fit its page";
	else if (!OffsetNumberIsValid(r->offnum) || r->offnum > MaxHeapTuplesPerPage ||
			 r->block == InvalidBlockNumber || !TransactionIdIsNormal(r->writer))
		reason = "the undo record names no row or writer";
	if (why != nullptr)
		*why = reason;
	return reason == nullptr ? r : nullptr;
}

/* ------------------------------------------------------------------------
 * The tuple header extension
 * ------------------------------------------------------------------------
 */

/* t_hoff of a tuple with this header's attribute count and null bitmap, with or without undo. */
static Size
expected_hoff(HeapTupleHeader t, bool with_undo)
{
	Size len = SizeofHeapTupleHeader;
	if (t->t_infomask & HEAP_HASNULL)
		len += BITMAPLEN(HeapTupleHeaderGetNatts(t));
	return MAXALIGN(len) + (with_undo ? kUndoExtSize : 0);
}

bool
tuple_hoff_is_valid(HeapTupleHeader t)
{
	return t->t_hoff == expected_hoff(t, tuple_has_undo(t));
}

/* A palloc'd HeapTuple of len bytes (header of the result in one chunk). */
static HeapTuple
alloc_tuple(HeapTuple like, Size len)
{
	auto tup = (HeapTuple) palloc0(HEAPTUPLESIZE + len);
	tup->t_len = (uint32) len;
	tup->t_self = like->t_self;
	tup->t_tableOid = like->t_tableOid;
	tup->t_data = (HeapTupleHeader) ((char *) tup + HEAPTUPLESIZE);
	return tup;
}

HeapTuple
tuple_with_undo(HeapTuple tuple, UndoPtr p)
{
	HeapTupleHeader t = tuple->t_data;
	Assert(tuple_hoff_is_valid(t));
	if (tuple_has_undo(t))
	{
		HeapTuple copy = heap_copytuple(tuple);
		memcpy((char *) copy->t_data + copy->t_data->t_hoff - kUndoExtSize, &p, sizeof(p));
		return copy;
	}

	Size old_hoff = t->t_hoff;
	Size new_hoff = old_hoff + kUndoExtSize;
	Assert(new_hoff == expected_hoff(t, true) && new_hoff <= PG_UINT8_MAX);
	HeapTuple copy = alloc_tuple(tuple, tuple->t_len + kUndoExtSize);
	char *dst = (char *) copy->t_data;
	memcpy(dst, t, old_hoff);
	memcpy(dst + old_hoff, &p, sizeof(p));
	memcpy(dst + new_hoff, (char *) t + old_hoff, tuple->t_len - old_hoff);
	copy->t_data->t_hoff = (uint8) new_hoff;
	copy->t_data->t_infomask2 |= kTupleHasUndo;
	return copy;
}

HeapTuple
tuple_without_undo(HeapTuple tuple)
{
	HeapTupleHeader t = tuple->t_data;
	if (!tuple_has_undo(t))
		return tuple;
	Assert(tuple_hoff_is_valid(t));

	Size old_hoff = t->t_hoff;
	Size new_hoff = old_hoff - kUndoExtSize;
	HeapTuple copy = alloc_tuple(tuple, tuple->t_len - kUndoExtSize);
	char *dst = (char *) copy->t_data;
	memcpy(dst, t, new_hoff);
	memcpy(dst + new_hoff, (char *) t + old_hoff, tuple->t_len - old_hoff);
	copy->t_data->t_hoff = (uint8) new_hoff;
	copy->t_data->t_infomask2 &= ~kTupleHasUndo;
	return copy;
}

/* ------------------------------------------------------------------------
 * Previous versions on the data page
 * ------------------------------------------------------------------------
 */

HeapTupleHeader
in_page_version(Page page, UndoPtr p, const char **why)
{
	*why = nullptr;
	Size off = in_page_offset(p), len = in_page_len(p);
	Size special = ((PageHeader) page)->pd_special;
	if (!undo_ptr_in_page(p) || off != MAXALIGN(off) || off < SizeOfPageHeaderData ||
		len < kTupleHeaderSize || special > BLCKSZ || off + len > special)
	{
		*why = "an in-page pointer outside the page's tuple space";
		return nullptr;
	}
	auto t = (HeapTupleHeader) (page + off);
	if (t->t_hoff < kTupleHeaderSize || t->t_hoff > len ||
		(tuple_has_undo(t) && !tuple_hoff_is_valid(t)))
	{
		*why = "the previous version on the page has a damaged header";
		return nullptr;
	}
	return t;
}

void
set_undo_ptr_at(Page page, uint16 offset, UndoPtr p)
{
	auto t = (HeapTupleHeader) (page + offset);
	Assert(offset == MAXALIGN(offset) && tuple_has_undo(t));
	memcpy((char *) t + t->t_hoff - kUndoExtSize, &p, sizeof(p));
}

/* ------------------------------------------------------------------------
 * Delta versions
 * ------------------------------------------------------------------------
 */

Size
delta_encode(HeapTupleHeader version, Size len, const char *base, Size base_len, char *out)
{
	Size hoff = version->t_hoff;
	Assert(hoff >= kTupleHeaderSize && hoff <= len);
	const char *payload = (const char *) version + hoff;
	Size plen = len - hoff;
	Size most = Min(Min(plen, base_len), (Size) PG_UINT16_MAX);
	Size prefix = 0;
	while (prefix < most && payload[prefix] == base[prefix])
		prefix++;
	Size suffix = 0;
	while (suffix < most - prefix && payload[plen - 1 - suffix] == base[base_len - 1 - suffix])
		suffix++;
	PayloadDelta d{(uint16) prefix, (uint16) suffix};
	memcpy(out, version, hoff);
	memcpy(out + hoff, &d, sizeof(d));
	Size middle = plen - prefix - suffix;
	memcpy(out + hoff + sizeof(d), payload + prefix, middle);
	return hoff + sizeof(d) + middle;
}

Size
delta_decoded_len(const char *enc, Size enc_len, Size base_len)
{
	if (enc_len < kTupleHeaderSize)
		return 0;
	Size hoff = (uint8) enc[offsetof(HeapTupleHeaderData, t_hoff)];
	if (hoff < kTupleHeaderSize || hoff + sizeof(PayloadDelta) > enc_len)
		return 0;
	PayloadDelta d;
	memcpy(&d, enc + hoff, sizeof(d));
	if ((Size) d.prefix + d.suffix > base_len)
		return 0;
	Size len = enc_len - sizeof(PayloadDelta) + d.prefix + d.suffix;
	return len <= kMaxTupleSize ? len : 0;
}

void
delta_decode(const char *enc, Size enc_len, const char *base, Size base_len, char *out)
{
	Size hoff = (uint8) enc[offsetof(HeapTupleHeaderData, t_hoff)];
	PayloadDelta d;
	memcpy(&d, enc + hoff, sizeof(d));
	Size middle = enc_len - hoff - sizeof(d);
	Assert(delta_decoded_len(enc, enc_len, base_len) == hoff + d.prefix + middle + d.suffix);
	memcpy(out, enc, hoff);
	memcpy(out + hoff, base, d.prefix);
	memcpy(out + hoff + d.prefix, enc + hoff + sizeof(d), middle);
	memcpy(out + hoff + d.prefix + middle, base + base_len - d.suffix, d.suffix);
}

/* ------------------------------------------------------------------------
 * Packed tuple headers and the INPLACE LOCAL record's form
 * ------------------------------------------------------------------------
 */

namespace {

/* pack_header_fields' flags byte: which fields follow because they differ from the defaults */
constexpr uint8 kPackedXmin = 0x01;
constexpr uint8 kPackedXmax = 0x02;
constexpr uint8 kPackedCtid = 0x04;

/* Format 6 LOCAL's fields of a header: xmax, t_cid, infomask2, infomask. */
constexpr Size kFormat6Fields = 12;

template <typename T>
char *
put(char *out, const T &v)
{
	memcpy(out, &v, sizeof(v));
	return out + sizeof(v);
}

template <typename T>
const char *
get(const char *in, T *v)
{
	memcpy(v, in, sizeof(*v));
	return in + sizeof(*v);
}

} /* namespace */

Size
pack_header_fields(HeapTupleHeader h, const HeaderDefaults &d, char *out)
{
	/* t_field3 is a command id (never logged), not a VACUUM FULL xid of before 9.0 */
	Assert(!(h->t_infomask & HEAP_MOVED));
	TransactionId xmin = h->t_choice.t_heap.t_xmin;
	TransactionId xmax = h->t_choice.t_heap.t_xmax;
	uint8 flags =
		(xmin != d.xmin ? kPackedXmin : 0) | (xmax != d.xmax ? kPackedXmax : 0) |
		(!ItemPointerEquals(&h->t_ctid, const_cast<ItemPointer>(&d.ctid)) ? kPackedCtid : 0);
	char *p = put(out, flags);
	if (flags & kPackedXmin)
		p = put(p, xmin);
	if (flags & kPackedXmax)
		p = put(p, xmax);
	if (flags & kPackedCtid)
		p = put(p, h->t_ctid);
	p = put(p, h->t_infomask2);
	p = put(p, h->t_infomask);
	return (Size) (p - out);
}

Size
read_header_fields(uint8 format, const char *enc, Size len, const HeaderDefaults &d,
				   HeapTupleHeader h)
{
	TransactionId xmin = d.xmin;
	TransactionId xmax = d.xmax;
	CommandId cid = FirstCommandId;
	ItemPointerData ctid = d.ctid;
	const char *p = enc;
	if (format < kPackedFieldsFormat)
	{
		if (len < kFormat6Fields)
			return 0;
		p = get(p, &xmax);
		p = get(p, &cid);
	}
	else
	{
		uint8 flags;
		if (len < 1)
			return 0;
		p = get(p, &flags);
		Size need = 1 + ((flags & kPackedXmin) ? 4 : 0) + ((flags & kPackedXmax) ? 4 : 0) +
					((flags & kPackedCtid) ? sizeof(ItemPointerData) : 0) + 4;
		if ((flags & ~(kPackedXmin | kPackedXmax | kPackedCtid)) != 0 || len < need)
			return 0;
		if (flags & kPackedXmin)
			p = get(p, &xmin);
		if (flags & kPackedXmax)
			p = get(p, &xmax);
		if (flags & kPackedCtid)
			p = get(p, &ctid);
	}
	p = get(p, &h->t_infomask2);
	p = get(p, &h->t_infomask);
	h->t_choice.t_heap.t_xmin = xmin;
	h->t_choice.t_heap.t_xmax = xmax;
	h->t_choice.t_heap.t_field3.t_cid = cid;
	h->t_ctid = ctid;
	return (Size) (p - enc);
}

Size
pack_tuple_head(HeapTupleHeader h, const HeaderDefaults &d, char *out)
{
	Assert(h->t_hoff >= kTupleHeaderSize);
	Size n = pack_header_fields(h, d, out);
	out[n++] = (char) h->t_hoff;
	return n;
}

Size
pack_tuple(HeapTupleHeader h, Size len, const HeaderDefaults &d, char *out)
{
	Assert(h->t_hoff <= len);
	Size n = pack_tuple_head(h, d, out);
	memcpy(out + n, (char *) h + kTupleHeaderSize, len - kTupleHeaderSize);
	return n + len - kTupleHeaderSize;
}

Size
packed_tuple_len(const char *enc, Size enc_len, const HeaderDefaults &d)
{
	HeapTupleHeaderData h;
	Size n = read_header_fields(kPackedFieldsFormat, enc, enc_len, d, &h);
	if (n == 0 || n + 1 > enc_len)
		return 0;
	Size hoff = (uint8) enc[n];
	Size len = kTupleHeaderSize + enc_len - n - 1;
	if (hoff < kTupleHeaderSize || hoff != MAXALIGN(hoff) || hoff > len || len > kMaxTupleSize)
		return 0;
	return len;
}

void
unpack_tuple(const char *enc, Size enc_len, const HeaderDefaults &d, char *out)
{
	Assert(packed_tuple_len(enc, enc_len, d) > 0);
	HeapTupleHeaderData h;
	memset(&h, 0, sizeof(h));
	Size n = read_header_fields(kPackedFieldsFormat, enc, enc_len, d, &h);
	h.t_hoff = (uint8) enc[n++];
	memcpy(out, &h, kTupleHeaderSize);
	memcpy(out + kTupleHeaderSize, enc + n, enc_len - n);
}

Size
local_new_pack(HeapTupleHeader version, Size len, const HeaderDefaults &d, const char *base,
			   Size base_len, char *out)
{
	Size hoff = version->t_hoff;
	Assert(tuple_has_undo(version) && hoff >= kTupleHeaderSize + kUndoExtSize);
	PGAlignedBlock full;
	Size n = delta_encode(version, len, base, base_len, full.data);
	Size f = pack_header_fields(version, d, out);
	out[f++] = (char) hoff;
	Size mid = hoff - kUndoExtSize - kTupleHeaderSize; /* null bitmap and padding */
	memcpy(out + f, full.data + kTupleHeaderSize, mid);
	memcpy(out + f + mid, full.data + hoff, n - hoff);
	return f + mid + (n - hoff);
}

Size
local_new_unpacked_len(uint8 format, const char *enc, Size enc_len, const HeaderDefaults &d,
					   Size base_len)
{
	HeapTupleHeaderData h;
	Size f = read_header_fields(format, enc, enc_len, d, &h);
	if (f == 0 || f + 1 > enc_len)
		return 0;
	Size hoff = (uint8) enc[f++];
	if (hoff < kTupleHeaderSize + kUndoExtSize || hoff != MAXALIGN(hoff))
		return 0;
	Size mid = hoff - kUndoExtSize - kTupleHeaderSize;
	if (f + mid + sizeof(PayloadDelta) > enc_len)
		return 0;
	PayloadDelta pd;
	memcpy(&pd, enc + f + mid, sizeof(pd));
	if ((Size) pd.prefix + pd.suffix > base_len)
		return 0;
	Size len = hoff + (enc_len - f - mid - sizeof(pd)) + pd.prefix + pd.suffix;
	return len <= kMaxTupleSize ? len : 0;
}

void
local_new_unpack(uint8 format, const char *enc, Size enc_len, const char *base, Size base_len,
				 const HeaderDefaults &d, UndoPtr p, char *out)
{
	Assert(local_new_unpacked_len(format, enc, enc_len, d, base_len) > 0);
	/* the delta version with its whole header, then delta_decode */
	PGAlignedBlock full;
	HeapTupleHeaderData h;
	memset(&h, 0, sizeof(h));
	Size f = read_header_fields(format, enc, enc_len, d, &h);
	Size hoff = (uint8) enc[f++];
	h.t_hoff = (uint8) hoff;
	Size mid = hoff - kUndoExtSize - kTupleHeaderSize;
	memcpy(full.data, &h, kTupleHeaderSize);
	memcpy(full.data + kTupleHeaderSize, enc + f, mid);
	memcpy(full.data + hoff - kUndoExtSize, &p, sizeof(p));
	Size rest = enc_len - f - mid;
	memcpy(full.data + hoff, enc + f + mid, rest);
	delta_decode(full.data, hoff + rest, base, base_len, out);
}

} /* namespace rustydb::storage */

/*-------------------------------------------------------------------------
 *
 * undo_selftest.cpp
 *	  rustydb.selftest_undo(): checks of the undo store's page formats.
 *
 * Superuser-only diagnostic (EXECUTE revoked from PUBLIC by the extension
 * script) run by the am_undo regression test. It builds undo metapages,
 * undo pages, records and tuples with undo pointers in backend memory and
 * checks what storage/undo.h promises: ring arithmetic, the refusal of
 * damaged pages and records with a reason, records read back byte for
 * byte, the header extension invisible to deforming. Returns the number of
 * checks passed; the first failure is an ERROR naming it.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/common/boundary.h"
#include "rustydb/storage/undo.h"

namespace {

using namespace rustydb::storage;

int checks_passed = 0;

void
check(bool ok, const char *what)
{
	if (!ok)
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
						errmsg("rustydb undo self-test failed: %s", what)));
	checks_passed++;
}

/* a reason was given and it mentions word */
bool
refused(const char *why, const char *word)
{
	return why != nullptr && strstr(why, word) != nullptr;
}

void
test_meta()
{
	Page page = (Page) palloc0(BLCKSZ);
	const char *why = nullptr;
	const UndoPtr base = undo_position(1, 0);

	check(undo_meta_get(page, &why) == nullptr && refused(why, "zeroes"),
		  "an all-zero page is no undo metapage");
	page_init(page);
	check(undo_meta_get(page, &why) == nullptr && refused(why, "not a rustydb undo metapage"),
		  "a data page is no undo metapage");

	undo_meta_init(page, 16384, kUndoEncrypted, 4, base);
	const UndoMetaData *meta = undo_meta_get(page, &why);
	check(meta != nullptr && why == nullptr, "a new metapage is valid");
	check(meta->table_oid == 16384 && meta->capacity == 4 && meta->flags == kUndoEncrypted &&
			  meta->base == base && meta->discard == base && meta->insert == kInvalidUndoPtr,
		  "a new metapage has the fields it was made with");
	check(undo_pages_in_use(meta) == 0 && !undo_ring_full(meta) &&
			  undo_next_page(meta) == undo_page_of(base),
		  "a new store is empty and starts its ring at the base page");
	check(undo_is_discarded(meta, base + kUndoFirstRecord),
		  "no position of an empty store can be followed");
	check(!page_is_valid(page), "an undo metapage is not a valid data page");

	/* fill the ring page by page */
	UndoMetaData *m = undo_meta_data(page);
	BlockNumber seen[4] = {0, 0, 0, 0};
	for (int i = 0; i < 4; i++)
	{
		check(!undo_ring_full(m), "a ring with free pages is not full");
		uint64 lpn = undo_next_page(m);
		BlockNumber blk = undo_block_for(m, lpn);
		check(blk >= 1 && blk <= 4, "ring blocks are 1..capacity");
		seen[blk - 1]++;
		m->insert = undo_position(lpn, 0);
		check(undo_meta_get(page, &why) != nullptr, "a store filling its ring stays valid");
	}
	check(seen[0] == 1 && seen[1] == 1 && seen[2] == 1 && seen[3] == 1,
		  "one lap of the ring uses each block once");
	check(undo_ring_full(m) && undo_pages_in_use(m) == 4, "a ring of 4 pages in use is full");
	check(undo_block_for(m, undo_page_of(base) + 4) == 1 &&
			  undo_block_for(m, undo_page_of(base) + 9) == 2,
		  "logical pages wrap around the ring");

	/* recycle the oldest page */
	m->discard = undo_position(undo_page_of(base) + 1, 0);
	m->discard_xid = 1000;
	check(undo_meta_get(page, &why) != nullptr && !undo_ring_full(m) && undo_pages_in_use(m) == 3,
		  "recycling a page frees a ring slot");
	check(undo_is_discarded(m, base + kUndoFirstRecord), "a recycled position is discarded");
	check(!undo_is_discarded(m, m->insert + kUndoFirstRecord),
		  "a position on the insert page is not");
	check(undo_is_discarded(m, m->insert + BLCKSZ + kUndoFirstRecord),
		  "a position past the insert page was never written");
	check(undo_block_for(m, undo_next_page(m)) == 1, "the next insert page reuses block 1");

	/* damaged metapages are refused with a reason */
	UndoMetaData saved = *m;
	m->magic ^= 1;
	check(undo_meta_get(page, &why) == nullptr && refused(why, "magic"), "bad magic refused");
	*m = saved;
	m->capacity = 0;
	check(undo_meta_get(page, &why) == nullptr && refused(why, "capacity"),
		  "zero capacity refused");
	*m = saved;
	m->capacity = 2;
	check(undo_meta_get(page, &why) == nullptr && refused(why, "more undo pages"),
		  "more pages in use than the ring holds refused");
	*m = saved;
	m->discard = m->insert + 2 * BLCKSZ;
	check(undo_meta_get(page, &why) == nullptr && refused(why, "order"),
		  "a discard position past the insert page refused");
	*m = saved;
	m->insert += 17;
	check(undo_meta_get(page, &why) == nullptr && refused(why, "order"),
		  "an insert position inside a page refused");
	*m = saved;
	m->format_version = 2;
	check(undo_meta_get(page, &why) == nullptr && refused(why, "version"),
		  "an unknown format version refused");
	*m = saved;
	m->flags = 0x8000;
	check(undo_meta_get(page, &why) == nullptr && refused(why, "flags"), "unknown flags refused");
	*m = saved;
	check(undo_meta_get(page, &why) != nullptr, "the restored metapage is valid again");
	pfree(page);
}

UndoRecordHeader
record_for(OffsetNumber off, BlockNumber block, TransactionId writer)
{
	return undo_record_header(kUndoTuple, 0, block, off, 16385, writer);
}

void
test_pages()
{
	Page page = (Page) palloc0(BLCKSZ);
	const char *why = nullptr;
	char *image = (char *) palloc(BLCKSZ);
	for (int i = 0; i < BLCKSZ; i++)
		image[i] = (char) (i * 7 + 3);

	undo_page_init(page, 42);
	check(undo_page_check(page, 42, &why) && why == nullptr, "a new undo page is valid");
	check(!undo_page_check(page, 43, &why) && refused(why, "another logical page"),
		  "an undo page read for another logical page is refused");
	check(!page_is_valid(page), "an undo page is not a valid data page");
	Page meta = (Page) palloc0(BLCKSZ);
	undo_meta_init(meta, 1, 0, 8, undo_position(1, 0));
	check(!undo_page_check(meta, 42, &why) && refused(why, "not a rustydb undo page"),
		  "a metapage is not an undo page");
	check(undo_meta_get(page, &why) == nullptr, "an undo page is not a metapage");
	pfree(meta);

	/* an empty page takes the largest image exactly */
	check(undo_page_free(page) == sizeof(UndoRecordHeader) + kUndoMaxImage,
		  "an empty undo page holds one record of the largest image");

	/* fill the page with records of varying sizes */
	uint16 offs[400];
	Size lens[400];
	int n = 0;
	for (;;)
	{
		Size len = kTupleHeaderSize + 1 + (n * 37) % 300;
		if (undo_page_free(page) < sizeof(UndoRecordHeader) + len)
			break;
		UndoRecordHeader h = record_for((OffsetNumber) (n % 200 + 1), (BlockNumber) n, 700 + n);
		Size free_before = undo_page_free(page);
		offs[n] = undo_append(page, h, image + n, len);
		lens[n] = len;
		check(offs[n] == MAXALIGN(offs[n]) && offs[n] >= kUndoFirstRecord,
			  "records start aligned after the undo page header");
		check(undo_page_free(page) < free_before, "a record takes space");
		check(n == 0 || offs[n] > offs[n - 1], "records are appended in order");
		n++;
	}
	check(n > 20, "a page holds many small records");
	check(undo_page_check(page, 42, &why), "a full undo page is valid");
	for (int i = 0; i < n; i++)
	{
		const UndoRecordHeader *r = undo_record_at(page, offs[i], &why);
		check(r != nullptr && why == nullptr, "each record is found at its position");
		Size len;
		const char *img = undo_record_image(r, &len);
		check(len == lens[i] && memcmp(img, image + i, len) == 0 && r->writer == 700u + i &&
				  r->block == (BlockNumber) i && r->offnum == i % 200 + 1 &&
				  r->relfilenode == 16385 && r->len == sizeof(UndoRecordHeader) + len,
			  "a record reads back as written");
	}

	/* positions that are not records are refused */
	check(undo_record_at(page, 0, &why) == nullptr && refused(why, "not that of a record"),
		  "a position in the page header is refused");
	check(undo_record_at(page, offs[1] + 1, &why) == nullptr, "an unaligned position is refused");
	check(undo_record_at(page, ((PageHeader) page)->pd_lower + 8, &why) == nullptr,
		  "a position past the last record is refused");
	auto *r0 = (UndoRecordHeader *) (page + offs[0]);
	r0->version = 9;
	check(undo_record_at(page, offs[0], &why) == nullptr && refused(why, "version"),
		  "a record of an unknown version is refused");
	r0->version = kUndoFormatVersion;
	r0->kind = 7;
	check(undo_record_at(page, offs[0], &why) == nullptr && refused(why, "kind"),
		  "a record of an unknown kind is refused");
	r0->kind = kUndoDelta;
	r0->flags = kUndoRecordSealed;
	check(undo_record_at(page, offs[0], &why) == nullptr && refused(why, "sealed delta"),
		  "a sealed delta record is refused (encrypted tables' undo holds full images)");
	r0->flags = 0;
	check(undo_record_at(page, offs[0], &why) != nullptr, "a delta record reads");
	r0->kind = kUndoTuple;
	r0->len = BLCKSZ - 2;
	check(undo_record_at(page, offs[0], &why) == nullptr && refused(why, "length"),
		  "a record longer than its page is refused");
	r0->len = (uint16) (sizeof(UndoRecordHeader) + lens[0]);
	r0->writer = InvalidTransactionId;
	check(undo_record_at(page, offs[0], &why) == nullptr && refused(why, "writer"),
		  "a record without a writer is refused");
	r0->writer = 700;
	check(undo_record_at(page, offs[0], &why) != nullptr, "the repaired record reads again");

	/* a fresh page: the largest image fits, one byte more does not */
	undo_page_init(page, 43);
	UndoRecordHeader h = record_for(1, 0, 900);
	check(undo_page_free(page) < sizeof(UndoRecordHeader) + kUndoMaxImage + 1,
		  "one byte more than the largest image does not fit");
	uint16 off = undo_append(page, h, image, kUndoMaxImage);
	check(off == kUndoFirstRecord && undo_page_free(page) == 0,
		  "the largest image fills an empty undo page");
	check(undo_record_at(page, off, &why) != nullptr, "the largest record reads back");
	pfree(image);
	pfree(page);
}

void
test_tuples()
{
	TupleDesc desc = CreateTemplateTupleDesc(3);
	TupleDescInitBuiltinEntry(desc, 1, "a", INT4OID, -1, 0);
	TupleDescInitBuiltinEntry(desc, 2, "b", INT8OID, -1, 0);
	TupleDescInitBuiltinEntry(desc, 3, "c", BOOLOID, -1, 0);

	for (int withnull = 0; withnull <= 1; withnull++)
	{
		Datum values[3] = {Int32GetDatum(7), Int64GetDatum(INT64CONST(1) << 40),
						   BoolGetDatum(true)};
		bool nulls[3] = {false, withnull != 0, false};
		HeapTuple tup = heap_form_tuple(desc, values, nulls);
		ItemPointerSet(&tup->t_self, 3, 4);
		tup->t_tableOid = 16384;

		check(!tuple_has_undo(tup->t_data) && tuple_undo_ptr(tup->t_data) == kInvalidUndoPtr &&
				  tuple_hoff_is_valid(tup->t_data),
			  "a formed tuple has no undo pointer and a valid t_hoff");
		const UndoPtr p1 = undo_position(12345678901ULL, 64);
		HeapTuple ext = tuple_with_undo(tup, p1);
		check(tuple_has_undo(ext->t_data) && tuple_undo_ptr(ext->t_data) == p1,
			  "the undo pointer reads back");
		check(ext->t_len == tup->t_len + kUndoExtSize &&
				  ext->t_data->t_hoff == tup->t_data->t_hoff + kUndoExtSize &&
				  tuple_hoff_is_valid(ext->t_data),
			  "the extension makes the tuple 8 bytes longer before t_hoff");
		check(ItemPointerEquals(&ext->t_self, &tup->t_self) && ext->t_tableOid == 16384,
			  "the copy keeps the tuple's identity");

		Datum v[3];
		bool nl[3];
		heap_deform_tuple(ext, desc, v, nl);
		check(DatumGetInt32(v[0]) == 7 && nl[1] == (withnull != 0) &&
				  (withnull || DatumGetInt64(v[1]) == INT64CONST(1) << 40) && DatumGetBool(v[2]) &&
				  !nl[0] && !nl[2],
			  "deforming an extended tuple gives the same values");

		const UndoPtr p2 = undo_position(99, 4096);
		HeapTuple ext2 = tuple_with_undo(ext, p2);
		check(ext2->t_len == ext->t_len && tuple_undo_ptr(ext2->t_data) == p2,
			  "a new pointer replaces the old one in place");

		HeapTuple back = tuple_without_undo(ext2);
		check(back->t_len == tup->t_len && memcmp(back->t_data, tup->t_data, tup->t_len) == 0,
			  "removing the extension gives the original bytes");
		check(tuple_without_undo(tup) == tup, "a tuple without extension is returned as it is");

		ext2->t_data->t_hoff += MAXIMUM_ALIGNOF;
		check(!tuple_hoff_is_valid(ext2->t_data), "a t_hoff that disagrees is refused");
		ext2->t_data->t_hoff -= MAXIMUM_ALIGNOF;
		ext2->t_data->t_infomask2 &= ~kTupleHasUndo;
		check(!tuple_hoff_is_valid(ext2->t_data), "an extension without its bit is refused");
	}
}

/* enc rebuilds exactly version against base */
bool
rebuilds(const char *enc, Size enc_len, HeapTuple base, HeapTuple version)
{
	const char *bp = (const char *) base->t_data + base->t_data->t_hoff;
	Size blen = base->t_len - base->t_data->t_hoff;
	Size len = delta_decoded_len(enc, enc_len, blen);
	if (len != version->t_len)
		return false;
	char *out = (char *) palloc(len);
	delta_decode(enc, enc_len, bp, blen, out);
	bool same = memcmp(out, version->t_data, len) == 0;
	pfree(out);
	return same;
}

void
test_delta()
{
	TupleDesc desc = CreateTemplateTupleDesc(3);
	TupleDescInitBuiltinEntry(desc, 1, "id", INT4OID, -1, 0);
	TupleDescInitBuiltinEntry(desc, 2, "n", INT4OID, -1, 0);
	TupleDescInitBuiltinEntry(desc, 3, "pad", TEXTOID, -1, 0);
	auto form = [&](int n, const char *pad, bool padnull) {
		Datum values[3] = {Int32GetDatum(1), Int32GetDatum(n), CStringGetTextDatum(pad)};
		bool nulls[3] = {false, false, padnull};
		return heap_form_tuple(desc, values, nulls);
	};
	const char *pad = "0123456789012345678901234567890123456789012345678901234567890123456789";
	HeapTuple older = form(5, pad, false), newer = form(6, pad, false);
	Size blen = newer->t_len - newer->t_data->t_hoff;
	const char *bp = (const char *) newer->t_data + newer->t_data->t_hoff;
	char *enc = (char *) palloc(older->t_len + sizeof(PayloadDelta));

	/* a counter changed from 5 to 6: the encoding holds the header and the one byte that differs */
	Size n = delta_encode(older->t_data, older->t_len, bp, blen, enc);
	check(n == older->t_data->t_hoff + sizeof(PayloadDelta) + 1,
		  "a version differing in one byte encodes as its header, a delta and that byte");
	check(rebuilds(enc, n, newer, older), "it rebuilds byte for byte against its base");

	/* identical payloads: no middle bytes */
	n = delta_encode(newer->t_data, newer->t_len, bp, blen, enc);
	check(n == newer->t_data->t_hoff + sizeof(PayloadDelta) && rebuilds(enc, n, newer, newer),
		  "an unchanged payload encodes as its header and a delta");

	/* a longer and a shorter version, a null bitmap that appears */
	HeapTuple longer =
		form(5, "0123456789-longer-0123456789-longer-0123456789-longer-0123456789-longer", false);
	HeapTuple nulled = form(6, "", true);
	char *enc2 = (char *) palloc(longer->t_len + sizeof(PayloadDelta));
	n = delta_encode(longer->t_data, longer->t_len, bp, blen, enc2);
	check(rebuilds(enc2, n, newer, longer), "a longer version rebuilds");
	n = delta_encode(nulled->t_data, nulled->t_len, bp, blen, enc2);
	check(rebuilds(enc2, n, newer, nulled), "a version with a null bitmap rebuilds");
	const char *lp = (const char *) longer->t_data + longer->t_data->t_hoff;
	Size llen = longer->t_len - longer->t_data->t_hoff;
	n = delta_encode(newer->t_data, newer->t_len, lp, llen, enc2);
	check(rebuilds(enc2, n, longer, newer), "a version rebuilds against a longer base");

	/* encodings that do not fit their base or are cut short are refused */
	n = delta_encode(older->t_data, older->t_len, bp, blen, enc);
	check(delta_decoded_len(enc, n, 3) == 0,
		  "a delta whose prefix and suffix exceed the base is refused");
	check(delta_decoded_len(enc, older->t_data->t_hoff + 1, blen) == 0,
		  "an encoding cut inside its delta is refused");
	check(delta_decoded_len(enc, 10, blen) == 0, "an encoding shorter than a header is refused");
	enc[offsetof(HeapTupleHeaderData, t_hoff)] = 4;
	check(delta_decoded_len(enc, n, blen) == 0, "a header with a t_hoff below 23 is refused");
	pfree(enc);
	pfree(enc2);

	/* the INPLACE LOCAL form: without xmin, t_ctid and the undo pointer, which redo supplies */
	for (int withnull = 0; withnull <= 1; withnull++)
	{
		HeapTuple nv = form(7, withnull ? "" : pad, withnull != 0);
		ItemPointerData self;
		ItemPointerSet(&self, 12, 3);
		const UndoPtr here = in_page_ptr(4000, 120);
		HeapTuple ext = tuple_with_undo(nv, here);
		HeapTupleHeaderSetXmin(ext->t_data, 4242);
		HeapTupleHeaderSetXmax(ext->t_data, 77);
		ext->t_data->t_ctid = self;
		char *packed = (char *) palloc(ext->t_len + sizeof(PayloadDelta));
		char *full = (char *) palloc(ext->t_len + sizeof(PayloadDelta));
		const HeaderDefaults nd{4242, InvalidTransactionId, self};
		Size pn = local_new_pack(ext->t_data, ext->t_len, nd, bp, blen, packed);
		Size dn = delta_encode(ext->t_data, ext->t_len, bp, blen, full);
		/* 23 header bytes and the 8-byte pointer become 10: flags, xmax (77, not 0), infomasks, t_hoff */
		check(pn + 21 == dn,
			  "the LOCAL form is the delta version less xmin, t_cid, t_ctid and the pointer");
		Size ln = local_new_unpacked_len(kPackedFieldsFormat, packed, pn, nd, blen);
		char *out = (char *) palloc(ext->t_len);
		if (ln == ext->t_len)
			local_new_unpack(kPackedFieldsFormat, packed, pn, bp, blen, nd, here, out);
		/* t_cid is not logged: redo writes FirstCommandId */
		HeapTupleHeaderSetCmin(ext->t_data, FirstCommandId);
		check(ln == ext->t_len && memcmp(out, ext->t_data, ext->t_len) == 0,
			  withnull ? "the LOCAL form rebuilds a version with a null bitmap"
					   : "the LOCAL form rebuilds the version byte for byte");
		check(local_new_unpacked_len(kPackedFieldsFormat, packed, 12, nd, blen) == 0 &&
				  local_new_unpacked_len(kPackedFieldsFormat, packed, pn, nd, 0) == 0 &&
				  local_new_unpacked_len(kPackedFieldsFormat, packed, 3, nd, blen) == 0,
			  "a cut LOCAL form, or one that does not fit its base, is refused");
		/* the previous version's fields: only infomask2 and infomask when the defaults hold */
		HeaderDefaults od{HeapTupleHeaderGetRawXmin(older->t_data), 77, self};
		HeapTupleHeaderSetXmin(ext->t_data, HeapTupleHeaderGetRawXmin(older->t_data));
		char fields[kPackedFieldsMax];
		Size fn = pack_header_fields(ext->t_data, od, fields);
		HeapTupleHeaderData hdr;
		memcpy(&hdr, older->t_data, kTupleHeaderSize);
		Size rn = read_header_fields(kPackedFieldsFormat, fields, fn, od, &hdr);
		check(fn == 5 && rn == 5 && hdr.t_choice.t_heap.t_xmax == 77 &&
				  ItemPointerEquals(&hdr.t_ctid, &self) && hdr.t_hoff == older->t_data->t_hoff &&
				  hdr.t_infomask == ext->t_data->t_infomask,
			  "the previous version's header takes the logged fields and keeps its own t_hoff");
		check(read_header_fields(kPackedFieldsFormat, fields, 4, od, &hdr) == 0,
			  "cut header fields are refused");
		fields[0] = (char) 0x40;
		check(read_header_fields(kPackedFieldsFormat, fields, fn, od, &hdr) == 0,
			  "header fields with an unknown flag are refused");
		/* fields that differ from the defaults travel: xmin, xmax and t_ctid */
		HeaderDefaults other{1, 2, self};
		ItemPointerSet(&other.ctid, 99, 1);
		fn = pack_header_fields(ext->t_data, other, fields);
		memset(&hdr, 0, sizeof(hdr));
		rn = read_header_fields(kPackedFieldsFormat, fields, fn, other, &hdr);
		check(fn == kPackedFieldsMax && rn == fn &&
				  HeapTupleHeaderGetRawXmin(&hdr) == HeapTupleHeaderGetRawXmin(ext->t_data) &&
				  hdr.t_choice.t_heap.t_xmax == 77 && ItemPointerEquals(&hdr.t_ctid, &self),
			  "fields that differ from the defaults are logged and read back");
		/* INSERT's packed tuple */
		char *pt = (char *) palloc(ext->t_len + kPackedFieldsMax);
		Size ptn = pack_tuple(ext->t_data, ext->t_len, other, pt);
		Size ptl = packed_tuple_len(pt, ptn, other);
		if (ptl == ext->t_len)
			unpack_tuple(pt, ptn, other, out);
		check(ptl == ext->t_len && memcmp(out, ext->t_data, ext->t_len) == 0,
			  "INSERT's packed tuple rebuilds the tuple byte for byte");
		check(packed_tuple_len(pt, fn, other) == 0 && packed_tuple_len(pt, 2, other) == 0,
			  "a cut packed tuple is refused");
		pfree(pt);
		pfree(packed);
		pfree(full);
		pfree(out);
	}
}

} /* namespace */

RUSTYDB_FUNCTION(rustydb_selftest_undo)
{
	checks_passed = 0;
	test_meta();
	test_pages();
	test_tuples();
	test_delta();
	PG_RETURN_INT32(checks_passed);
}

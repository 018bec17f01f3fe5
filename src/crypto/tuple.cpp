/*-------------------------------------------------------------------------
 *
 * tuple.cpp
 *	  Sealing and opening whole tuples (heap tuple layout) and their large
 *	  values: the header stays in the clear and is partly authenticated,
 *	  the payload [t_hoff, t_len) is sealed. The table access method calls
 *	  these from src/am/tuple.cpp, where tuples are sealed for a page and
 *	  opened from one; slots are its business, not this file's.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/crypto/crypto_internal.h"

#include <cstring>

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/detoast.h"
#include "access/heaptoast.h"
#include "access/htup_details.h"
#include "utils/lsyscache.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace crypto {

/* The header fields that decide how the payload decodes, as associated data. */
size_t
tuple_ad(HeapTupleHeader h, unsigned char *ad)
{
	uint16 natts = HeapTupleHeaderGetNatts(h);
	uint16 flags = (h->t_infomask & (HEAP_HASNULL | HEAP_HASVARWIDTH | HEAP_HASEXTERNAL)) |
				   ((h->t_infomask2 & kValuesSealed) ? 0x8000 : 0);
	size_t n = 0;

	memcpy(ad + n, &natts, sizeof(natts));
	n += sizeof(natts);
	memcpy(ad + n, &flags, sizeof(flags));
	n += sizeof(flags);
	ad[n++] = h->t_hoff;
	if (h->t_infomask & HEAP_HASNULL)
	{
		memcpy(ad + n, h->t_bits, BITMAPLEN(natts));
		n += BITMAPLEN(natts);
	}
	return n;
}

namespace {

[[noreturn]] void
bad_tuple(const Cipher *c, BlockNumber blkno, const char *what)
{
	const char *name = get_rel_name(c->relid);

	ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
					errmsg("could not decrypt data in block %u of relation \"%s\"", blkno,
						   name ? name : "?"),
					errdetail("%s.", what)));
}

/* kMaxTupleAd: 5 bytes + a bitmap of 2047 attributes. */
static_assert(kMaxTupleAd <= kMaxAadBytes, "tuple associated data must fit");

} /* namespace */

HeapTuple
seal_tuple(const Cipher *cipher, HeapTuple plain)
{
	HeapTupleHeader h = plain->t_data;
	uint32 hoff = h->t_hoff;

	if (hoff > plain->t_len)
		elog(ERROR, "rustydb: tuple header longer than the tuple");
	uint32 payload = plain->t_len - hoff;
	uint32 len = hoff + static_cast<uint32>(sealed_size(payload));
	HeapTuple out = static_cast<HeapTuple>(palloc(HEAPTUPLESIZE + len));
	unsigned char ad[kMaxTupleAd];

	out->t_len = len;
	out->t_self = plain->t_self;
	out->t_tableOid = plain->t_tableOid;
	out->t_data = reinterpret_cast<HeapTupleHeader>(reinterpret_cast<char *>(out) + HEAPTUPLESIZE);
	memcpy(out->t_data, h, hoff);
	seal(cipher, reinterpret_cast<char *>(h) + hoff, payload, ad, tuple_ad(h, ad),
		 reinterpret_cast<char *>(out->t_data) + hoff);
	return out;
}

uint32
opened_tuple_len(const Cipher *cipher, HeapTuple stored, BlockNumber blkno)
{
	uint32 hoff = stored->t_data->t_hoff;

	if (hoff > stored->t_len || stored->t_len - hoff < kSealOverhead)
		bad_tuple(cipher, blkno,
				  "the stored tuple is shorter than its header and sealing overhead");
	return stored->t_len - static_cast<uint32>(kSealOverhead);
}

void
open_tuple(const Cipher *cipher, HeapTuple stored, HeapTuple dest, BlockNumber blkno)
{
	HeapTupleHeader h = stored->t_data;
	uint32 len = opened_tuple_len(cipher, stored, blkno);
	uint32 hoff = h->t_hoff;
	unsigned char ad[kMaxTupleAd];

	if ((h->t_infomask & HEAP_HASNULL) &&
		SizeofHeapTupleHeader + BITMAPLEN(HeapTupleHeaderGetNatts(h)) > hoff)
		bad_tuple(cipher, blkno, "the null bitmap overlaps the payload");
	memcpy(dest->t_data, h, hoff);
	open(cipher, reinterpret_cast<char *>(h) + hoff, stored->t_len - hoff, ad, tuple_ad(h, ad),
		 reinterpret_cast<char *>(dest->t_data) + hoff, blkno);
	dest->t_len = len;
	dest->t_self = stored->t_self;
	dest->t_tableOid = stored->t_tableOid;
}

bool
try_open_tuple(const Cipher *cipher, HeapTuple stored, HeapTuple dest)
{
	HeapTupleHeader h = stored->t_data;
	uint32 hoff = h->t_hoff;
	unsigned char ad[kMaxTupleAd];

	if (hoff > stored->t_len || stored->t_len - hoff < kSealOverhead ||
		((h->t_infomask & HEAP_HASNULL) &&
		 SizeofHeapTupleHeader + BITMAPLEN(HeapTupleHeaderGetNatts(h)) > hoff))
		return false;
	memcpy(dest->t_data, h, hoff);
	if (!try_open(cipher, reinterpret_cast<char *>(h) + hoff, stored->t_len - hoff, ad,
				  tuple_ad(h, ad), reinterpret_cast<char *>(dest->t_data) + hoff))
		return false;
	dest->t_len = stored->t_len - static_cast<uint32>(kSealOverhead);
	dest->t_self = stored->t_self;
	dest->t_tableOid = stored->t_tableOid;
	return true;
}

HeapTuple
open_tuple_copy(const Cipher *cipher, HeapTuple stored, BlockNumber blkno)
{
	uint32 len = opened_tuple_len(cipher, stored, blkno);
	HeapTuple out = static_cast<HeapTuple>(palloc(HEAPTUPLESIZE + len));

	out->t_data = reinterpret_cast<HeapTupleHeader>(reinterpret_cast<char *>(out) + HEAPTUPLESIZE);
	open_tuple(cipher, stored, out, blkno);
	return out;
}

namespace {

constexpr char kValueAad[] = "rustydb sealed value";

/* A new tuple from values, with the header (versioning, flags) of orig. */
HeapTuple
reform(TupleDesc desc, Datum *values, bool *isnull, HeapTuple orig, bool sealed)
{
	HeapTuple n = heap_form_tuple(desc, values, isnull);
	HeapTupleHeader o = orig->t_data, t = n->t_data;
	uint16 layout = HEAP_HASNULL | HEAP_HASVARWIDTH | HEAP_HASEXTERNAL;

	t->t_choice = o->t_choice;
	t->t_ctid = o->t_ctid;
	t->t_infomask = (t->t_infomask & layout) | (o->t_infomask & ~layout);
	t->t_infomask2 = (t->t_infomask2 & HEAP_NATTS_MASK) |
					 (o->t_infomask2 & ~(HEAP_NATTS_MASK | kValuesSealed)) |
					 (sealed ? kValuesSealed : 0);
	n->t_self = orig->t_self;
	n->t_tableOid = orig->t_tableOid;
	return n;
}

} /* namespace */

bool
needs_value_sealing(HeapTuple tup)
{
	return HeapTupleHasExternal(tup) || tup->t_len > TOAST_TUPLE_THRESHOLD;
}

HeapTuple
seal_values(const Cipher *cipher, TupleDesc desc, HeapTuple tup)
{
	if (!HeapTupleHasVarWidth(tup))
		return tup;
	int natts = desc->natts;
	Datum *values = static_cast<Datum *>(palloc(natts * sizeof(Datum)));
	bool *isnull = static_cast<bool *>(palloc(natts * sizeof(bool)));
	void **temps = static_cast<void **>(palloc(2 * natts * sizeof(void *)));
	int ntemps = 0;
	bool any = false;

	heap_deform_tuple(tup, desc, values, isnull);
	for (int i = 0; i < natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || isnull[i] || att->attlen != -1)
			continue;
		struct varlena *v = reinterpret_cast<struct varlena *>(DatumGetPointer(values[i]));
		struct varlena *flat = VARATT_IS_EXTENDED(v) ? detoast_attr(v) : v;
		size_t len = VARSIZE_ANY_EXHDR(flat);

		if (flat != v)
			temps[ntemps++] = flat;
		if (len <= kSealedValueMin)
		{
			values[i] = PointerGetDatum(flat);
			continue;
		}
		struct varlena *blob = static_cast<struct varlena *>(palloc(VARHDRSZ + sealed_size(len)));
		temps[ntemps++] = blob;
		SET_VARSIZE(blob, VARHDRSZ + sealed_size(len));
		seal(cipher, VARDATA_ANY(flat), len, kValueAad, sizeof(kValueAad), VARDATA(blob));
		values[i] = PointerGetDatum(blob);
		any = true;
	}
	HeapTuple out = any ? reform(desc, values, isnull, tup, true) : tup;
	for (int i = 0; i < ntemps; i++)
		pfree(temps[i]);
	pfree(temps);
	pfree(values);
	pfree(isnull);
	return out;
}

HeapTuple
open_values(const Cipher *cipher, TupleDesc desc, HeapTuple tup, BlockNumber blkno,
			bool keep_external)
{
	if (!(tup->t_data->t_infomask2 & kValuesSealed))
		return tup;
	int natts = desc->natts;
	Datum *values = static_cast<Datum *>(palloc(natts * sizeof(Datum)));
	bool *isnull = static_cast<bool *>(palloc(natts * sizeof(bool)));
	void **temps = static_cast<void **>(palloc(2 * natts * sizeof(void *)));
	int ntemps = 0;

	heap_deform_tuple(tup, desc, values, isnull);
	for (int i = 0; i < natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || isnull[i] || att->attlen != -1)
			continue;
		struct varlena *v = reinterpret_cast<struct varlena *>(DatumGetPointer(values[i]));
		if (VARATT_IS_EXTERNAL_ONDISK(v) && keep_external)
			continue;
		if (VARATT_IS_EXTERNAL_ONDISK(v))
		{
			v = detoast_external_attr(v);
			temps[ntemps++] = v;
		}
		if (VARATT_IS_COMPRESSED(v) || VARATT_IS_EXTERNAL(v))
			bad_tuple(cipher, blkno, "a sealed tuple holds an unsealed large value");
		size_t len = VARSIZE_ANY_EXHDR(v);
		if (len <= kSealedValueMin)
			continue;
		if (len < kSealOverhead)
			bad_tuple(cipher, blkno, "a sealed value is shorter than its overhead");
		size_t plen = len - kSealOverhead;
		struct varlena *plain = static_cast<struct varlena *>(palloc(VARHDRSZ + plen));
		SET_VARSIZE(plain, VARHDRSZ + plen);
		open(cipher, VARDATA_ANY(v), len, kValueAad, sizeof(kValueAad), VARDATA(plain), blkno);
		values[i] = PointerGetDatum(plain);
		temps[ntemps++] = plain;
	}
	HeapTuple out = reform(desc, values, isnull, tup, false);
	for (int i = 0; i < ntemps; i++)
		pfree(temps[i]);
	pfree(temps);
	pfree(values);
	pfree(isnull);
	return out;
}

bool
try_open_value(const Cipher *cipher, const struct varlena *value)
{
	if (VARATT_IS_COMPRESSED(value) || VARATT_IS_EXTERNAL(value))
		return false;
	size_t len = VARSIZE_ANY_EXHDR(value);
	if (len <= kSealedValueMin)
		return true;
	if (len < kSealOverhead)
		return false;
	size_t plen = len - kSealOverhead;
	void *plain = palloc(plen > 0 ? plen : 1);
	bool ok = try_open(cipher, VARDATA_ANY(value), len, kValueAad, sizeof(kValueAad), plain);
	sodium_memzero(plain, plen);
	pfree(plain);
	return ok;
}

} /* namespace crypto */
} /* namespace rustydb */

/*-------------------------------------------------------------------------
 *
 * logical.cpp
 *	  What rustydb's row records carry for logical decoding: the
 *	  kFlagLogical trailer (wal/records.h) and the old version's replica
 *	  identity of UPDATE and DELETE, decided as heap decides (heapam.c's
 *	  replica identity extraction). The decoder is src/wal/decode.cpp.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/am/am.h"
#include "rustydb/crypto/crypto.h"
#include "rustydb/wal/records.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "catalog/catalog.h"
#include "utils/relcache.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb::am {

LogicalTrailer
logical_trailer(Relation rel, const crypto::Cipher *c)
{
	LogicalTrailer lt;
	if (!RelationIsLogicallyLogged(rel))
		return lt;
	lt.logged = true;
	if (c != nullptr)
		lt.flags |= wal::kLogSealed;
	if (IsToastRelation(rel))
		lt.flags |= wal::kLogToastRelation;
	return lt;
}

/* Whether any column in attrs differs between the two versions, or is out of line in old. */
static bool
identity_needed(Relation rel, Bitmapset *attrs, HeapTuple old, HeapTuple newtup)
{
	TupleDesc desc = RelationGetDescr(rel);
	int x = -1;

	while ((x = bms_next_member(attrs, x)) >= 0)
	{
		int attno = x + FirstLowInvalidHeapAttributeNumber;
		if (attno <= 0)
			continue;
		Form_pg_attribute att = TupleDescAttr(desc, attno - 1);
		bool n1, n2;
		Datum v1 = heap_getattr(old, attno, desc, &n1);
		if (!n1 && att->attlen == -1 && VARATT_IS_EXTERNAL(DatumGetPointer(v1)))
			return true; /* the decoder could not find the old value otherwise */
		if (newtup == nullptr)
			continue;
		Datum v2 = heap_getattr(newtup, attno, desc, &n2);
		if (n1 != n2 || (!n1 && !datumIsEqual(v1, v2, att->attbyval, att->attlen)))
			return true;
	}
	return false;
}

/* A copy of tup with out-of-line values fetched, keeping rustydb's sealed-values mark. */
static HeapTuple
flattened(Relation rel, HeapTuple tup)
{
	if (!HeapTupleHasExternal(tup))
		return heap_copytuple(tup);
	HeapTuple flat = toast_flatten_tuple(tup, RelationGetDescr(rel));
	flat->t_data->t_infomask2 |= tup->t_data->t_infomask2 & crypto::kValuesSealed;
	return flat;
}

LogicalTrailer
logical_trailer_with_identity(Relation rel, const crypto::Cipher *c, HeapTuple oldplain,
							  HeapTuple newtup)
{
	LogicalTrailer lt = logical_trailer(rel, c);
	char ident = rel->rd_rel->relreplident;

	if (!lt.logged || ident == REPLICA_IDENTITY_NOTHING)
		return lt;

	HeapTuple key = nullptr;
	if (ident == REPLICA_IDENTITY_FULL)
		key = flattened(rel, oldplain);
	else
	{
		Bitmapset *idattrs = RelationGetIndexAttrBitmap(rel, INDEX_ATTR_BITMAP_IDENTITY_KEY);
		/* DELETE always logs the key, UPDATE when the decoder needs it */
		if (bms_is_empty(idattrs) ||
			(newtup != nullptr && !identity_needed(rel, idattrs, oldplain, newtup)))
			return lt;

		/* the identity columns, every other column null */
		TupleDesc desc = RelationGetDescr(rel);
		auto *values = (Datum *) palloc(desc->natts * sizeof(Datum));
		auto *nulls = (bool *) palloc(desc->natts * sizeof(bool));
		heap_deform_tuple(oldplain, desc, values, nulls);
		for (int i = 0; i < desc->natts; i++)
			if (!bms_is_member(i + 1 - FirstLowInvalidHeapAttributeNumber, idattrs))
				nulls[i] = true;
		HeapTuple formed = heap_form_tuple(desc, values, nulls);
		formed->t_data->t_infomask2 |= oldplain->t_data->t_infomask2 & crypto::kValuesSealed;
		key = flattened(rel, formed);
		heap_freetuple(formed);
		pfree(values);
		pfree(nulls);
		bms_free(idattrs);
	}
	lt.flags |= wal::kLogOldKey;
	lt.old_key = seal_for_page(c, key);
	if (lt.old_key != key)
		heap_freetuple(key);
	return lt;
}

void
register_logical_trailer(const LogicalTrailer &lt)
{
	if (!lt.logged)
		return;
	XLogRegisterData((char *) &lt.flags, sizeof(lt.flags));
	if (lt.old_key != nullptr)
		XLogRegisterData((char *) lt.old_key->t_data, lt.old_key->t_len);
}

void
free_logical_trailer(LogicalTrailer *lt)
{
	if (lt->old_key != nullptr)
		heap_freetuple(lt->old_key);
	lt->old_key = nullptr;
}

} /* namespace rustydb::am */

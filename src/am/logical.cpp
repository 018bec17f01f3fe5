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
#include "rustydb/common/boundary.h"
#include "rustydb/wal/decode.h"
#include "rustydb/wal/records.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/detoast.h"
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

/* ========================================================================
 * Decoding encrypted tables: sealed changes opened at apply time
 * ========================================================================
 *
 * rm_decode (wal/decode.cpp) cannot read the catalogs, so a sealed tuple
 * is queued as a shell. When the reorder buffer replays the transaction it
 * has a historic snapshot and the relation open: the wrapper below, put in
 * front of the reorder buffer's apply_change and stream_change the first
 * time a sealed change is queued, opens each shell with the relation's
 * data key (read from rustydb.table_keys, a user catalog table, through
 * the historic snapshot) for the duration of the output plugin's callback,
 * then puts the shell back so the reorder buffer frees what it allocated
 * and its memory accounting stays exact. Without the key the callback
 * fails with the key error a read gets, naming the relation: nothing is
 * sent, and the slot stays before the transaction, so decoding resumes
 * there once the key is back.
 */

namespace {

ReorderBufferApplyChangeCB orig_apply_change = nullptr;
ReorderBufferStreamChangeCB orig_stream_change = nullptr;

/*
 * The TOAST entry of one value in the reorder buffer's hash of the
 * transaction's chunks (txn->toast_hash): PostgreSQL 15's
 * ReorderBufferToastEnt, private to reorderbuffer.c, whose layout a major
 * release keeps.
 */
struct ToastEnt
{
	Oid chunk_id;
	int32 last_chunk_seq;
	Size num_chunks;
	Size size;
	dlist_head chunks;
	struct varlena *reconstructed;
};

/*
 * tup with each out-of-line value whose chunks the transaction wrote put
 * back inline from the reorder buffer's chunks (what
 * ReorderBufferToastReplace does for a plaintext row, which a sealed row
 * cannot get): rustydb sealed those values before the toaster stored them,
 * so they are sealed values, opened afterwards by crypto::open_values.
 */
HeapTuple
inline_toasted(ReorderBufferTXN *txn, Relation rel, HeapTuple tup)
{
	if (!HeapTupleHasExternal(tup) || txn->toast_hash == nullptr)
		return tup;
	TupleDesc desc = RelationGetDescr(rel);
	Relation toast_rel = RelationIdGetRelation(rel->rd_rel->reltoastrelid);
	if (!RelationIsValid(toast_rel))
		elog(ERROR, "could not open toast relation with OID %u (base relation \"%s\")",
			 rel->rd_rel->reltoastrelid, RelationGetRelationName(rel));
	TupleDesc toast_desc = RelationGetDescr(toast_rel);
	auto *values = (Datum *) palloc(desc->natts * sizeof(Datum));
	auto *isnull = (bool *) palloc(desc->natts * sizeof(bool));
	heap_deform_tuple(tup, desc, values, isnull);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		if (att->attisdropped || att->attlen != -1 || isnull[i])
			continue;
		auto *v = (struct varlena *) DatumGetPointer(values[i]);
		if (!VARATT_IS_EXTERNAL_ONDISK(v))
			continue;
		struct varatt_external ptr;
		VARATT_EXTERNAL_GET_POINTER(ptr, v);
		auto *ent = (ToastEnt *) hash_search(txn->toast_hash, &ptr.va_valueid, HASH_FIND, nullptr);
		if (ent == nullptr)
			continue;
		Size extsize = VARATT_EXTERNAL_GET_EXTSIZE(ptr);
		auto *whole = (struct varlena *) palloc0(extsize + VARHDRSZ);
		Size done = 0;
		/* dlist_foreach and dlist_container are C-only (GCC builtins C++ lacks) */
		for (dlist_node *n = ent->chunks.head.next; n != &ent->chunks.head; n = n->next)
		{
			auto *cchange =
				(ReorderBufferChange *) ((char *) n - offsetof(ReorderBufferChange, node));
			bool cnull;
			Pointer chunk = DatumGetPointer(
				fastgetattr(&cchange->data.tp.newtuple->tuple, 3, toast_desc, &cnull));
			Size clen = VARSIZE(chunk) - VARHDRSZ;
			if (cnull || VARATT_IS_EXTERNAL(chunk) || VARATT_IS_SHORT(chunk) ||
				done + clen > extsize)
				elog(ERROR, "rustydb decoding: unexpected TOAST chunk of value %u of \"%s\"",
					 ptr.va_valueid, RelationGetRelationName(rel));
			memcpy(VARDATA(whole) + done, VARDATA(chunk), clen);
			done += clen;
		}
		if (done != extsize)
			elog(ERROR, "rustydb decoding: value %u of \"%s\" has %zu of its %zu bytes",
				 ptr.va_valueid, RelationGetRelationName(rel), done, extsize);
		if (extsize < (Size) ptr.va_rawsize - VARHDRSZ) /* VARATT_EXTERNAL_IS_COMPRESSED */
		{
			SET_VARSIZE_COMPRESSED(whole, done + VARHDRSZ);
			whole = detoast_attr(whole);
		}
		else
			SET_VARSIZE(whole, done + VARHDRSZ);
		values[i] = PointerGetDatum(whole);
	}
	HeapTuple out = heap_form_tuple(desc, values, isnull);
	out->t_data->t_infomask2 |= tup->t_data->t_infomask2 & crypto::kValuesSealed;
	RelationClose(toast_rel);
	return out;
}

/* A plaintext reorder buffer tuple of the shell's sealed tuple, for rel. */
ReorderBufferTupleBuf *
open_shell(ReorderBuffer *rb, ReorderBufferTXN *txn, Relation rel, ReorderBufferTupleBuf *shell)
{
	if (shell->alloc_tuple_size < wal::kSealedShellPad + SizeofHeapTupleHeader)
		elog(ERROR, "rustydb decoding: sealed change of %zu bytes", shell->alloc_tuple_size);
	const crypto::Cipher *c = crypto::relation_cipher(rel);
	if (c == nullptr)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("cannot access encrypted relation \"%s\": no data key",
							   RelationGetRelationName(rel)),
						errdetail("rustydb.table_keys has no key for it in the decoding's "
								  "historic snapshot.")));
	/* everything but the result in a context of its own: one per change */
	MemoryContext tmp = AllocSetContextCreate(CurrentMemoryContext, "rustydb sealed change",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(tmp);
	HeapTupleData sealed;
	sealed.t_len = shell->alloc_tuple_size - wal::kSealedShellPad;
	sealed.t_data =
		(HeapTupleHeader) ((char *) shell->tuple.t_data + wal::kSealedShellPad); /* MAXALIGNed */
	ItemPointerSetInvalid(&sealed.t_self);
	sealed.t_tableOid = RelationGetRelid(rel);
	HeapTuple plain = crypto::open_tuple_copy(c, &sealed, 0);
	plain = inline_toasted(txn, rel, plain);
	if (plain->t_data->t_infomask2 & crypto::kValuesSealed)
	{
		plain = crypto::open_values(c, RelationGetDescr(rel), plain, 0, true);
		plain->t_data->t_infomask2 &= ~crypto::kValuesSealed;
	}
	MemoryContextSwitchTo(old);
	ReorderBufferTupleBuf *tb = ReorderBufferGetTupleBuf(rb, plain->t_len - SizeofHeapTupleHeader);
	memcpy(tb->tuple.t_data, plain->t_data, plain->t_len);
	tb->tuple.t_len = plain->t_len;
	ItemPointerSetInvalid(&tb->tuple.t_self);
	tb->tuple.t_tableOid = InvalidOid;
	MemoryContextDelete(tmp);
	return tb;
}

bool
is_row_change(ReorderBufferChange *change)
{
	return change->action == REORDER_BUFFER_CHANGE_INSERT ||
		   change->action == REORDER_BUFFER_CHANGE_UPDATE ||
		   change->action == REORDER_BUFFER_CHANGE_DELETE;
}

/*
 * Call fn with change's shells opened; the shells are back in change when
 * this returns or fails.
 */
template <typename Fn>
void
with_opened(ReorderBuffer *rb, ReorderBufferTXN *txn, Relation rel, ReorderBufferChange *change,
			Fn fn)
{
	ReorderBufferTupleBuf *volatile shell_new = nullptr;
	ReorderBufferTupleBuf *volatile shell_old = nullptr;
	ReorderBufferTupleBuf *volatile open_new = nullptr;
	ReorderBufferTupleBuf *volatile open_old = nullptr;

	if (is_row_change(change))
	{
		if (change->data.tp.newtuple != nullptr &&
			wal::tuple_is_sealed_shell(&change->data.tp.newtuple->tuple))
			shell_new = change->data.tp.newtuple;
		if (change->data.tp.oldtuple != nullptr &&
			wal::tuple_is_sealed_shell(&change->data.tp.oldtuple->tuple))
			shell_old = change->data.tp.oldtuple;
	}
	if (shell_new == nullptr && shell_old == nullptr)
	{
		fn();
		return;
	}
	if (shell_new != nullptr)
		open_new = open_shell(rb, txn, rel, shell_new);
	if (shell_old != nullptr)
		open_old = open_shell(rb, txn, rel, shell_old);
	PG_TRY();
	{
		if (open_new != nullptr)
			change->data.tp.newtuple = open_new;
		if (open_old != nullptr)
			change->data.tp.oldtuple = open_old;
		fn();
	}
	PG_FINALLY();
	{
		if (shell_new != nullptr)
			change->data.tp.newtuple = shell_new;
		if (shell_old != nullptr)
			change->data.tp.oldtuple = shell_old;
	}
	PG_END_TRY();
	if (open_new != nullptr)
		ReorderBufferReturnTupleBuf(rb, open_new);
	if (open_old != nullptr)
		ReorderBufferReturnTupleBuf(rb, open_old);
}

} /* namespace */

extern "C" {

static void
sealed_apply_change(ReorderBuffer *rb, ReorderBufferTXN *txn, Relation rel,
					ReorderBufferChange *change) noexcept
{
	rustydb::boundary::run("rustydb decoding apply_change", [&] {
		with_opened(rb, txn, rel, change, [&] { orig_apply_change(rb, txn, rel, change); });
	});
}

static void
sealed_stream_change(ReorderBuffer *rb, ReorderBufferTXN *txn, Relation rel,
					 ReorderBufferChange *change) noexcept
{
	rustydb::boundary::run("rustydb decoding stream_change", [&] {
		with_opened(rb, txn, rel, change, [&] { orig_stream_change(rb, txn, rel, change); });
	});
}

} /* extern "C" */

/* wal::sealed_change_queued: wrap rb's callbacks once (they are the same in every context). */
static void
wrap_sealed_apply(ReorderBuffer *rb)
{
	if (rb->apply_change != sealed_apply_change)
	{
		orig_apply_change = rb->apply_change;
		rb->apply_change = sealed_apply_change;
	}
	if (rb->stream_change != nullptr && rb->stream_change != sealed_stream_change)
	{
		orig_stream_change = rb->stream_change;
		rb->stream_change = sealed_stream_change;
	}
}

void
register_decoding()
{
	wal::sealed_change_queued = wrap_sealed_apply;
}

} /* namespace rustydb::am */

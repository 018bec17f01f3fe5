/*-------------------------------------------------------------------------
 *
 * decode.cpp
 *	  Logical decoding of rustydb records (the rmgr's rm_decode): each
 *	  record that changes a row queues the matching change in PostgreSQL's
 *	  reorder buffer, as heap's decoder does for heap records.
 *
 * Only records written with kFlagLogical (records.h) are decoded: the
 * writer sets it when wal_level = logical and the relation is logically
 * logged, and then keeps the tuple data with a full-page image and adds
 * the old replica identity to UPDATE and DELETE. Nothing here reads a
 * catalog: the relation is known by its relfilenode until the reorder
 * buffer replays the transaction under a historic snapshot.
 *
 *	INSERT			INSERT (speculative: INTERNAL_SPEC_INSERT)
 *	MULTI_INSERT	one INSERT per tuple
 *	UPDATE			UPDATE, new tuple and (kLogOldKey) old identity
 *	DELETE			DELETE with (kLogOldKey) old identity
 *	CONFIRM			INTERNAL_SPEC_CONFIRM
 *	SUPER_DELETE	INTERNAL_SPEC_ABORT
 *	others			nothing (no row changes)
 *
 * Tuples go to the reorder buffer as heap tuples: header fields other
 * than t_infomask, t_infomask2 and t_hoff cleared, t_self invalid,
 * t_tableOid invalid. A sealed tuple (kLogSealed: an encrypted relation)
 * is queued inside a shell tuple of no attributes and opened just before
 * the output plugin sees it (am/logical.cpp, sealed_apply).
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/wal/decode.h"

#include "rustydb/wal/records.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "replication/decode.h"
#include "replication/logical.h"
#include "replication/origin.h"
#include "replication/reorderbuffer.h"
#include "replication/snapbuild.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb::wal {

/* LSN_FORMAT_ARGS is C-only (a GCC builtin C++ lacks). */
#define LSN_PARTS(lsn) (uint32)((lsn) >> 32), (uint32) (lsn)

void (*sealed_change_queued)(ReorderBuffer *rb) = nullptr;

/* The fixed part of a record before its logical trailer. */
static Size
struct_size(uint8 kind)
{
	switch (kind)
	{
		case kInsert:
			return sizeof(XlInsert);
		case kMultiInsert:
			return sizeof(XlMultiInsert);
		case kUpdate:
			return sizeof(XlUpdate);
		default:
			return sizeof(XlTupleState);
	}
}

bool
tuple_is_sealed_shell(const HeapTupleData *tuple)
{
	return ItemPointerGetBlockNumberNoCheck(&tuple->t_self) == InvalidBlockNumber &&
		   ItemPointerGetOffsetNumberNoCheck(&tuple->t_self) == kSealedShellOffset;
}

/*
 * A reorder buffer tuple of the len-byte WAL tuple at data (unaligned,
 * header included). sealed: wrapped in a shell (decode.h).
 */
static ReorderBufferTupleBuf *
tuple_buf(ReorderBuffer *rb, const char *data, Size len, bool sealed, bool *speculative)
{
	if (len < SizeofHeapTupleHeader)
		elog(ERROR, "rustydb decoding: WAL tuple of %zu bytes, shorter than its header", len);
	Size total = sealed ? kSealedShellPad + len : len;
	ReorderBufferTupleBuf *tb = ReorderBufferGetTupleBuf(rb, total - SizeofHeapTupleHeader);
	HeapTupleHeader h = tb->tuple.t_data;

	tb->tuple.t_len = total;
	tb->tuple.t_tableOid = InvalidOid;
	if (sealed)
	{
		/* no attributes: nothing in PostgreSQL reads the sealed payload */
		memset(h, 0, kSealedShellPad);
		h->t_hoff = SizeofHeapTupleHeader;
		h->t_infomask = HEAP_XMAX_INVALID;
		memcpy((char *) h + kSealedShellPad, data, len);
		ItemPointerSet(&tb->tuple.t_self, InvalidBlockNumber, kSealedShellOffset);
		auto *inner = (HeapTupleHeader) ((char *) h + kSealedShellPad);
		if (speculative != nullptr)
			*speculative = HeapTupleHeaderIsSpeculative(inner);
		/* the inner header's transaction fields are of no use downstream */
		uint16 im = inner->t_infomask, im2 = inner->t_infomask2;
		uint8 hoff = inner->t_hoff;
		memset(inner, 0, SizeofHeapTupleHeader);
		inner->t_infomask = im;
		inner->t_infomask2 = im2;
		inner->t_hoff = hoff;
		return tb;
	}
	memcpy(h, data, len);
	if (speculative != nullptr)
		*speculative = HeapTupleHeaderIsSpeculative(h);
	uint16 im = h->t_infomask, im2 = h->t_infomask2;
	uint8 hoff = h->t_hoff;
	if (hoff < SizeofHeapTupleHeader || hoff > len)
		elog(ERROR, "rustydb decoding: WAL tuple header of %u bytes in a tuple of %zu",
			 (unsigned) hoff, len);
	memset(h, 0, SizeofHeapTupleHeader);
	h->t_infomask = im;
	h->t_infomask2 = im2;
	h->t_hoff = hoff;
	ItemPointerSetInvalid(&tb->tuple.t_self);
	return tb;
}

/* A change of the record's relation with its origin. */
static ReorderBufferChange *
new_change(LogicalDecodingContext *ctx, XLogReaderState *r, ReorderBufferChangeType action,
		   const RelFileNode &rnode)
{
	ReorderBufferChange *change = ReorderBufferGetChange(ctx->reorder);
	change->action = action;
	change->origin_id = XLogRecGetOrigin(r);
	change->data.tp.relnode = rnode;
	change->data.tp.clear_toast_afterwards = true;
	return change;
}

static void
queue(LogicalDecodingContext *ctx, XLogReaderState *r, XLogRecordBuffer *buf,
	  ReorderBufferChange *change, bool toast_insert, bool sealed)
{
	if (sealed && sealed_change_queued != nullptr)
		sealed_change_queued(ctx->reorder);
	ReorderBufferQueueChange(ctx->reorder, XLogRecGetXid(r), buf->origptr, change, toast_insert);
}

static void
decode_record(LogicalDecodingContext *ctx, XLogRecordBuffer *buf)
{
	XLogReaderState *r = buf->record;
	uint8 kind = XLogRecGetInfo(r) & XLR_RMGR_INFO_MASK;
	TransactionId xid = XLogRecGetXid(r);
	SnapBuild *builder = ctx->snapshot_builder;

	ReorderBufferProcessXid(ctx->reorder, xid, buf->origptr);

	/*
	 * Without a full snapshot there is nothing to decode; fast-forward
	 * still lets the snapshot builder see the change (its base snapshot).
	 */
	if (SnapBuildCurrentState(builder) < SNAPBUILD_FULL_SNAPSHOT)
		return;
	switch (kind)
	{
		case kInsert:
		case kMultiInsert:
		case kUpdate:
		case kDelete:
		case kConfirm:
		case kSuperDelete:
			break;
		default:
			return; /* no row changes */
	}

	if (!SnapBuildProcessChange(builder, xid, buf->origptr) || ctx->fast_forward)
		return;

	const char *rec = XLogRecGetData(r);
	Size reclen = XLogRecGetDataLen(r);
	Size fixed = struct_size(kind);
	if (reclen < fixed)
		elog(ERROR, "rustydb decoding: record of %zu bytes at %X/%X", reclen,
			 LSN_PARTS(buf->origptr));
	uint8 version = (uint8) rec[0];
	uint8 flags = (uint8) rec[1];
	/*
	 * Older records, and records of relations not logically logged
	 * (catalogs, rewrites by CLUSTER and VACUUM FULL), carry nothing to
	 * decode, as heap records without their tuple data.
	 */
	if (version < 4 || !(flags & kFlagLogical))
		return;
	if (reclen < fixed + 1)
		elog(ERROR, "rustydb decoding: record without its logical trailer at %X/%X",
			 LSN_PARTS(buf->origptr));
	uint8 lflags = (uint8) rec[fixed];
	bool sealed = (lflags & kLogSealed) != 0;

	RelFileNode rnode;
	XLogRecGetBlockTag(r, 0, &rnode, nullptr, nullptr);
	if (rnode.dbNode != ctx->slot->data.database)
		return;
	if (ctx->callbacks.filter_by_origin_cb != nullptr &&
		filter_by_origin_cb_wrapper(ctx, XLogRecGetOrigin(r)))
		return;

	ReorderBuffer *rb = ctx->reorder;
	switch (kind)
	{
		case kInsert:
		{
			Size len;
			char *data = XLogRecGetBlockData(r, 0, &len);
			if (data == nullptr)
				elog(ERROR, "rustydb decoding: INSERT without its tuple at %X/%X",
					 LSN_PARTS(buf->origptr));
			bool spec = false;
			ReorderBufferTupleBuf *tb = tuple_buf(rb, data, len, sealed, &spec);
			ReorderBufferChange *change = new_change(
				ctx, r,
				spec ? REORDER_BUFFER_CHANGE_INTERNAL_SPEC_INSERT : REORDER_BUFFER_CHANGE_INSERT,
				rnode);
			change->data.tp.newtuple = tb;
			queue(ctx, r, buf, change, (lflags & kLogToastRelation) != 0, sealed);
			break;
		}
		case kMultiInsert:
		{
			auto *xl = (const XlMultiInsert *) rec;
			Size len;
			char *data = XLogRecGetBlockData(r, 0, &len);
			if (data == nullptr)
				elog(ERROR, "rustydb decoding: MULTI_INSERT without its tuples at %X/%X",
					 LSN_PARTS(buf->origptr));
			char *end = data + len;
			if (xl->flags & kFlagGroupTable)
				data++; /* the new group table's slot count */
			for (int i = 0; i < xl->ntuples; i++)
			{
				uint16 tlen;
				if (data + sizeof(OffsetNumber) + sizeof(tlen) > end)
					elog(ERROR, "rustydb decoding: truncated MULTI_INSERT at %X/%X",
						 LSN_PARTS(buf->origptr));
				memcpy(&tlen, data + sizeof(OffsetNumber), sizeof(tlen));
				data += sizeof(OffsetNumber) + sizeof(tlen);
				if (data + tlen > end)
					elog(ERROR, "rustydb decoding: truncated MULTI_INSERT at %X/%X",
						 LSN_PARTS(buf->origptr));
				ReorderBufferChange *change =
					new_change(ctx, r, REORDER_BUFFER_CHANGE_INSERT, rnode);
				change->data.tp.newtuple = tuple_buf(rb, data, tlen, sealed, nullptr);
				/* TOAST of all the rows came first: reset it after the last one */
				change->data.tp.clear_toast_afterwards =
					(lflags & kLogLastInMulti) && i + 1 == xl->ntuples;
				queue(ctx, r, buf, change, false, sealed);
				data += tlen;
			}
			break;
		}
		case kUpdate:
		case kDelete:
		{
			ReorderBufferChange *change = new_change(ctx, r,
													 kind == kUpdate ? REORDER_BUFFER_CHANGE_UPDATE
																	 : REORDER_BUFFER_CHANGE_DELETE,
													 rnode);
			if (kind == kUpdate)
			{
				Size len;
				char *data = XLogRecGetBlockData(r, 0, &len);
				if (data == nullptr)
					elog(ERROR, "rustydb decoding: UPDATE without its new tuple at %X/%X",
						 LSN_PARTS(buf->origptr));
				change->data.tp.newtuple = tuple_buf(rb, data, len, sealed, nullptr);
			}
			if (lflags & kLogOldKey)
				change->data.tp.oldtuple =
					tuple_buf(rb, rec + fixed + 1, reclen - fixed - 1, sealed, nullptr);
			queue(ctx, r, buf, change, false, sealed);
			break;
		}
		case kConfirm:
			queue(ctx, r, buf,
				  new_change(ctx, r, REORDER_BUFFER_CHANGE_INTERNAL_SPEC_CONFIRM, rnode), false,
				  false);
			break;
		case kSuperDelete:
			queue(ctx, r, buf, new_change(ctx, r, REORDER_BUFFER_CHANGE_INTERNAL_SPEC_ABORT, rnode),
				  false, false);
			break;
	}
}

void
decode(LogicalDecodingContext *ctx, XLogRecordBuffer *buf)
{
	decode_record(ctx, buf);
}

} /* namespace rustydb::wal */

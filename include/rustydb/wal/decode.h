/*-------------------------------------------------------------------------
 *
 * decode.h
 *	  Logical decoding of rustydb records (src/wal/decode.cpp).
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_WAL_DECODE_H
#define RUSTYDB_WAL_DECODE_H

#include "rustydb/common/pgstorage.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "replication/decode.h"
#include "replication/reorderbuffer.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb::wal {

/* The rmgr's rm_decode. */
void decode(LogicalDecodingContext *ctx, XLogRecordBuffer *buf);

/*
 * A sealed tuple (an encrypted relation's) reaches the reorder buffer as a
 * shell: a heap tuple header of no attributes (so nothing in PostgreSQL
 * reads the payload), then from kSealedShellPad on the WAL tuple, header
 * included, to the end of the buffer (alloc_tuple_size), with t_self =
 * (InvalidBlockNumber, kSealedShellOffset) as its mark. When the
 * transaction also wrote TOAST chunks, the reorder buffer rewrites the
 * shell as a row of nulls (ReorderBufferToastReplace) before the output
 * plugin sees it: that row's header and null bitmap fit in the pad for any
 * number of columns, so the sealed tuple stays intact behind it.
 */
constexpr OffsetNumber kSealedShellOffset = 0xFFFE;
constexpr Size kSealedShellPad =
	MAXALIGN(SizeofHeapTupleHeader + BITMAPLEN(MaxTupleAttributeNumber));
bool tuple_is_sealed_shell(const HeapTupleData *tuple);

/*
 * Called (when set) each time a sealed change is queued, with the reorder
 * buffer: the access method wraps its apply callbacks there to open the
 * shells just before the output plugin sees them (am/logical.cpp).
 */
extern void (*sealed_change_queued)(ReorderBuffer *rb);

} /* namespace rustydb::wal */

#endif /* RUSTYDB_WAL_DECODE_H */

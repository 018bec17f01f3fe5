/*-------------------------------------------------------------------------
 *
 * verify.cpp
 *	  rustydb.verify_table(regclass): check every page and tuple invariant.
 *
 * Like amcheck's verify_heapam: reads every block under a share lock and
 * reports each problem as a row (blkno, offnum, msg); never stops at the
 * first problem and never trusts a byte before checking it.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/am/am.h"
#include "rustydb/am/inplace.h"

#include "rustydb/common/boundary.h"
#include "rustydb/crypto/crypto.h"
#include "rustydb/mvcc/visibility.h"
#include "rustydb/storage/page.h"
#include "rustydb/storage/undo.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/table.h"
#include "utils/acl.h"
#include "commands/defrem.h"
#include "funcapi.h"
RUSTYDB_PG_INCLUDE_END

namespace {

using namespace rustydb;

struct Reporter
{
	ReturnSetInfo *rsinfo;
	int count;
};

void report(Reporter *r, BlockNumber blkno, OffsetNumber off, const char *fmt, ...)
	pg_attribute_printf(4, 5);

void
report(Reporter *r, BlockNumber blkno, OffsetNumber off, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	Datum values[3];
	bool nulls[3] = {false, false, false};
	if (blkno == InvalidBlockNumber) /* the metapage */
		nulls[0] = true;
	values[0] = Int64GetDatum((int64) blkno);
	if (off == InvalidOffsetNumber)
	{
		nulls[1] = true;
		values[1] = (Datum) 0;
	}
	else
		values[1] = Int32GetDatum((int32) off);
	values[2] = CStringGetTextDatum(msg);
	tuplestore_putvalues(r->rsinfo->setResult, r->rsinfo->setDesc, values, nulls);
	r->count++;
}

/*
 * Does the tuple's version link (t_ctid) lead anywhere? Only an update
 * that committed or is still running leaves a link to a newer version; a
 * row never updated, only locked, or whose updater aborted or crashed
 * keeps whatever t_ctid was written last (an aborted update's link points
 * at a version that pruning may remove and VACUUM may truncate away), as
 * with heap. xmax is not in the future here (checked before); one older
 * than the relation's freeze horizons cannot be looked up, and is left
 * alone.
 */
bool
link_is_live(Relation rel, HeapTupleHeader t, TransactionId next_xid, TransactionId relfrozenxid)
{
	uint16 im = t->t_infomask;
	if ((im & HEAP_XMAX_INVALID) || HEAP_XMAX_IS_LOCKED_ONLY(im))
		return false;
	if (im & HEAP_XMAX_COMMITTED)
		return true;
	TransactionId raw = HeapTupleHeaderGetRawXmax(t);
	if (im & HEAP_XMAX_IS_MULTI)
	{
		MultiXactId relminmxid = rel->rd_rel->relminmxid;
		if (!MultiXactIdIsValid(raw) ||
			(MultiXactIdIsValid(relminmxid) && MultiXactIdPrecedes(raw, relminmxid)))
			return false;
	}
	else if (!TransactionIdIsNormal(raw) || !TransactionIdPrecedes(raw, next_xid) ||
			 (TransactionIdIsNormal(relfrozenxid) && TransactionIdPrecedes(raw, relfrozenxid)))
		return false;
	TransactionId up = mvcc::update_xid(t);
	if (!TransactionIdIsNormal(up))
		return false;
	return TransactionIdIsCurrentTransactionId(up) || TransactionIdIsInProgress(up) ||
		   TransactionIdDidCommit(up);
}

/* Returns whether the tuple header is readable (in the page, its length and t_hoff sane). */
bool
check_tuple(Reporter *r, Relation rel, BlockNumber nblocks, BlockNumber blkno, Page page,
			OffsetNumber off, TransactionId next_xid, TransactionId relfrozenxid)
{
	auto *hdr = (PageHeader) page;
	/* a page that passed page_is_valid, share-locked by the caller */
	Assert(blkno < nblocks);
	Assert(off >= FirstOffsetNumber && off <= PageGetMaxOffsetNumber(page));
	Assert(PageGetMaxOffsetNumber(page) <= storage::kMaxTuplesPerPage);
	ItemId lp = PageGetItemId(page, off);
	unsigned lpoff = ItemIdGetOffset(lp), lplen = ItemIdGetLength(lp);

	if (ItemIdIsDead(lp) || !ItemIdIsUsed(lp))
	{
		if (ItemIdHasStorage(lp) && ItemIdIsDead(lp))
			report(r, blkno, off, "dead line pointer has storage (offset %u, length %u)", lpoff,
				   lplen);
		return false;
	}
	if (ItemIdIsRedirected(lp))
	{
		OffsetNumber to = ItemIdGetRedirect(lp);
		ItemId tlp = (to >= FirstOffsetNumber && to <= PageGetMaxOffsetNumber(page))
						 ? PageGetItemId(page, to)
						 : nullptr;
		if (tlp == nullptr || !ItemIdIsNormal(tlp))
			report(r, blkno, off, "redirect to %u, which is not a tuple", (unsigned) to);
		else if (ItemIdGetOffset(tlp) >= ((PageHeader) page)->pd_upper &&
				 ItemIdGetOffset(tlp) + ItemIdGetLength(tlp) <= ((PageHeader) page)->pd_special &&
				 !HeapTupleHeaderIsHeapOnly((HeapTupleHeader) PageGetItem(page, tlp)))
			report(r, blkno, off, "redirect to %u, which is not a heap-only version",
				   (unsigned) to);
		return false;
	}
	if (lpoff < hdr->pd_upper || lpoff + lplen > hdr->pd_special || lpoff != MAXALIGN(lpoff))
	{
		report(r, blkno, off, "line pointer out of range (offset %u, length %u)", lpoff, lplen);
		return false;
	}
	if (lplen < storage::kTupleHeaderSize)
	{
		report(r, blkno, off, "tuple length %u shorter than the header", lplen);
		return false;
	}
	auto *t = (HeapTupleHeader) (page + lpoff);
	int natts = HeapTupleHeaderGetNatts(t);
	bool readable = true;
	if (t->t_hoff < storage::kTupleHeaderSize || t->t_hoff > lplen ||
		t->t_hoff != MAXALIGN(t->t_hoff))
	{
		report(r, blkno, off, "bad header length %u", (unsigned) t->t_hoff);
		readable = false;
	}
	if (natts > RelationGetDescr(rel)->natts)
		report(r, blkno, off, "%d attributes, the relation has %d", natts,
			   RelationGetDescr(rel)->natts);
	if ((t->t_infomask & HEAP_HASNULL) && storage::kTupleHeaderSize + BITMAPLEN(natts) > t->t_hoff)
		report(r, blkno, off, "null bitmap overlaps the payload");
	bool undo_ptr = storage::tuple_has_undo(t);
	if (!(t->t_infomask & HEAP_HASNULL) &&
		MAXALIGN(storage::kTupleHeaderSize) + (undo_ptr ? storage::kUndoExtSize : 0) != t->t_hoff)
		report(r, blkno, off, "header length %u without a null bitmap", (unsigned) t->t_hoff);
	else if (undo_ptr && !storage::tuple_hoff_is_valid(t))
	{
		report(r, blkno, off, "undo pointer does not end at the header length %u",
			   (unsigned) t->t_hoff);
		readable = false;
	}
	else if (undo_ptr)
	{
		HeapTupleData tup;
		tup.t_data = t;
		tup.t_len = lplen;
		tup.t_tableOid = RelationGetRelid(rel);
		ItemPointerSet(&tup.t_self, blkno, off);
		if (const char *why = am::check_chain(rel, &tup))
			report(r, blkno, off, "undo chain: %s", why);
	}

	TransactionId xmin = HeapTupleHeaderGetRawXmin(t);
	if (!HeapTupleHeaderXminFrozen(t) && TransactionIdIsNormal(xmin))
	{
		if (!TransactionIdPrecedes(xmin, next_xid))
			report(r, blkno, off, "xmin %u is in the future (next xid %u)", xmin, next_xid);
		else if (TransactionIdIsNormal(relfrozenxid) && TransactionIdPrecedes(xmin, relfrozenxid))
			report(r, blkno, off, "xmin %u precedes relfrozenxid %u", xmin, relfrozenxid);
	}
	if ((t->t_infomask & HEAP_XMAX_COMMITTED) && (t->t_infomask & HEAP_XMAX_INVALID))
		report(r, blkno, off, "xmax both committed and invalid");
	if ((t->t_infomask & HEAP_XMAX_COMMITTED) && (t->t_infomask & HEAP_XMAX_IS_MULTI))
		report(r, blkno, off, "multixact xmax marked committed");
	if (!(t->t_infomask & (HEAP_XMAX_INVALID | HEAP_XMAX_IS_MULTI)))
	{
		TransactionId xmax = HeapTupleHeaderGetRawXmax(t);
		if (TransactionIdIsNormal(xmax) && !TransactionIdPrecedes(xmax, next_xid))
			report(r, blkno, off, "xmax %u is in the future (next xid %u)", xmax, next_xid);
	}
	if (!HeapTupleHeaderIsSpeculative(t) && !HeapTupleHeaderIndicatesMovedPartitions(t) &&
		link_is_live(rel, t, next_xid, relfrozenxid))
	{
		BlockNumber cblk = ItemPointerGetBlockNumberNoCheck(&t->t_ctid);
		OffsetNumber coff = ItemPointerGetOffsetNumberNoCheck(&t->t_ctid);
		if (cblk >= nblocks || coff < FirstOffsetNumber || coff > storage::kMaxTuplesPerPage)
			report(r, blkno, off, "version link (%u,%u) points outside the relation", cblk,
				   (unsigned) coff);
	}
	return readable;
}

/*
 * The metapage (reported with a null block): present with the first data
 * page, of this build's formats, and its encrypted flag agreeing with the
 * key catalog. An all-zero block 0 is a crash during the relation's first
 * extension, like an all-zero data page not an error (VACUUM rewrites it).
 */
void
verify_metapage(Reporter *r, Relation rel, BufferAccessStrategy strategy)
{
	if (storage::phys_nblocks(rel) == 0)
		return;
	bool encrypted = crypto::relation_has_keys(RelationGetRelid(rel)); /* before the lock */
	Buffer buf = ReadBufferExtended(rel, MAIN_FORKNUM, storage::kMetaBlock, RBM_NORMAL, strategy);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	Page page = BufferGetPage(buf);
	if (!PageIsNew(page))
	{
		const char *why;
		const storage::MetaPageData *meta = storage::meta_get(page, &why);
		if (meta == nullptr)
			report(r, InvalidBlockNumber, InvalidOffsetNumber, "metapage: %s", why);
		else if (((meta->flags & storage::kMetaEncrypted) != 0) != encrypted)
			report(r, InvalidBlockNumber, InvalidOffsetNumber,
				   "metapage: the table is %s, the key catalog says it is %s",
				   (meta->flags & storage::kMetaEncrypted) ? "encrypted" : "not encrypted",
				   encrypted ? "encrypted" : "not encrypted");
	}
	UnlockReleaseBuffer(buf);
}

/* Open a rustydb table or materialized view the caller may SELECT from. */
Relation
open_table(Oid relid, const char *fn)
{
	Relation rel = table_open(relid, AccessShareLock);
	char *amname = OidIsValid(rel->rd_rel->relam) ? get_am_name(rel->rd_rel->relam) : nullptr;
	if ((rel->rd_rel->relkind != RELKIND_RELATION && rel->rd_rel->relkind != RELKIND_MATVIEW) ||
		amname == nullptr || strcmp(amname, "rustydb") != 0)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
						errmsg("\"%s\" is not a rustydb table", RelationGetRelationName(rel)),
						errhint("%s reads tables created USING rustydb.", fn)));
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						errmsg("permission denied for table %s", RelationGetRelationName(rel))));
	return rel;
}

} /* namespace */

/*
 * rustydb.metapage(regclass): the metapage's fields; present = false (and
 * nulls) for a relation without blocks. An invalid metapage is an ERROR.
 */
RUSTYDB_FUNCTION(rustydb_metapage)
{
	Relation rel = open_table(PG_GETARG_OID(0), "rustydb.metapage()");
	TupleDesc desc;
	if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	desc = BlessTupleDesc(desc);

	Datum values[6] = {0};
	bool nulls[6] = {false, true, true, true, true, false};
	values[0] = BoolGetDatum(false);
	values[5] = Int64GetDatum((int64) storage::data_nblocks(rel));
	if (storage::phys_nblocks(rel) > 0)
	{
		Buffer buf = ReadBuffer(rel, storage::kMetaBlock);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		Page page = BufferGetPage(buf);
		const char *why = nullptr;
		const storage::MetaPageData *meta =
			PageIsNew(page) ? nullptr : storage::meta_get(page, &why);
		if (meta != nullptr)
		{
			values[0] = BoolGetDatum(true);
			values[1] = Int32GetDatum((int32) meta->format_version);
			values[2] = Int32GetDatum((int32) meta->page_version);
			values[3] = Int32GetDatum((int32) meta->block_size);
			values[4] = BoolGetDatum((meta->flags & storage::kMetaEncrypted) != 0);
			for (int i = 1; i <= 4; i++)
				nulls[i] = false;
		}
		UnlockReleaseBuffer(buf);
		if (why != nullptr)
			ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
							errmsg("invalid rustydb metapage in relation \"%s\"",
								   RelationGetRelationName(rel)),
							errdetail("Block 0 of the file: %s.", why),
							errhint("rustydb.verify_table() lists every problem of the table.")));
	}
	HeapTuple tup = heap_form_tuple(desc, values, nulls);
	table_close(rel, AccessShareLock);
	PG_RETURN_DATUM(HeapTupleGetDatum(tup));
}

/*
 * The visibility map's bits of the (share-locked) page: both are set and
 * cleared only under the page's exclusive lock, so they cannot change
 * while we look. All-visible needs the page's own flag; all-frozen needs
 * every tuple free of transaction ids (what VACUUM checked when it set the
 * bit: an aggressive VACUUM skips the page, so an id left there would
 * escape freezing).
 */
static void
check_visibility_map(Reporter *r, Relation rel, BlockNumber blkno, Page page, Buffer *vmbuf,
					 const bool *readable)
{
	uint8 bits = visibilitymap_get_status(rel, blkno, vmbuf);
	if ((bits & VISIBILITYMAP_ALL_VISIBLE) && !PageIsAllVisible(page))
		report(r, blkno, InvalidOffsetNumber,
			   "the visibility map marks the page all-visible, the page does not");
	if ((bits & VISIBILITYMAP_ALL_FROZEN) == 0)
		return;
	if ((bits & VISIBILITYMAP_ALL_VISIBLE) == 0)
		report(r, blkno, InvalidOffsetNumber,
			   "the visibility map marks the page all-frozen but not all-visible");
	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
	for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
	{
		/* a tuple check_tuple found unreadable is reported already */
		if (!readable[off])
			continue;
		auto t = (HeapTupleHeader) PageGetItem(page, PageGetItemId(page, off));
		if (const char *why = storage::tuple_frozen_problem(t))
			report(r, blkno, off,
				   "on a page the visibility map marks all-frozen: %s (xmin %u, xmax %u)", why,
				   HeapTupleHeaderGetRawXmin(t), HeapTupleHeaderGetRawXmax(t));
	}
}

RUSTYDB_FUNCTION(rustydb_verify_table)
{
	Oid relid = PG_GETARG_OID(0);

	InitMaterializedSRF(fcinfo, 0);
	Reporter r{(ReturnSetInfo *) fcinfo->resultinfo, 0};

	Relation rel = open_table(relid, "rustydb.verify_table()");

	TransactionId next_xid = XidFromFullTransactionId(ReadNextFullTransactionId());
	TransactionId relfrozenxid = rel->rd_rel->relfrozenxid;
	BlockNumber nblocks = storage::data_nblocks(rel);
	BufferAccessStrategy strategy = GetAccessStrategy(BAS_BULKREAD);

	verify_metapage(&r, rel, strategy);
	Buffer vmbuf = InvalidBuffer;
	for (BlockNumber blkno = 0; blkno < nblocks; blkno++)
	{
		CHECK_FOR_INTERRUPTS();
		Buffer buf = storage::read_data_block(rel, blkno, strategy);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		Page page = BufferGetPage(buf);
		if (!PageIsNew(page))
		{
			if (!storage::page_is_valid(page))
				report(&r, blkno, InvalidOffsetNumber,
					   "not a valid rustydb page (pd_lower %u, pd_upper %u, pd_special %u)",
					   (unsigned) ((PageHeader) page)->pd_lower,
					   (unsigned) ((PageHeader) page)->pd_upper,
					   (unsigned) ((PageHeader) page)->pd_special);
			else
			{
				OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
				if (maxoff > storage::kMaxTuplesPerPage)
					report(&r, blkno, InvalidOffsetNumber, "%u line pointers, at most %d fit",
						   (unsigned) maxoff, storage::kMaxTuplesPerPage);
				else
				{
					bool readable[storage::kMaxTuplesPerPage + 1];
					for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
						readable[off] =
							check_tuple(&r, rel, nblocks, blkno, page, off, next_xid, relfrozenxid);
					check_visibility_map(&r, rel, blkno, page, &vmbuf, readable);
				}
			}
		}
		UnlockReleaseBuffer(buf);
	}
	if (BufferIsValid(vmbuf))
		ReleaseBuffer(vmbuf);
	FreeAccessStrategy(strategy);
	table_close(rel, AccessShareLock);
	return (Datum) 0;
}

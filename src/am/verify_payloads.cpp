/*-------------------------------------------------------------------------
 *
 * verify_payloads.cpp
 *	  The payload verifier the access method registers with the encryption
 *	  subsystem: rustydb.verify_encryption(regclass) opens every stored
 *	  payload of an encrypted table through it.
 *
 * Every tuple version on every page (live, dead, aborted: every line
 * pointer with storage) is opened with crypto::try_open_tuple under the key
 * version its header names, and each sealed large value it references is
 * fetched (from the TOAST table when out of line) and opened with
 * crypto::try_open_value. A payload that does not open is counted and the
 * first one described (relation, block, offset, attribute); it is never an
 * ERROR. Pages are read through a bulk-read buffer strategy under a share
 * lock; large values are fetched after the lock is released.
 *
 * The large values of a version that is dead to this transaction's
 * snapshot horizon are not fetched: VACUUM of the TOAST table may already
 * have removed them. Every other version's TOAST chunks stay, since this
 * backend's snapshot holds the horizon back.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/am/am.h"
#include "rustydb/am/groups.h"
#include "rustydb/crypto/crypto.h"
#include "rustydb/mvcc/visibility.h"
#include "rustydb/storage/page.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/detoast.h"
#include "commands/defrem.h"
#include "utils/memutils.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb::am {

namespace {

void fail(crypto::PayloadCheck *res, Relation rel, BlockNumber blkno, OffsetNumber off,
		  const char *fmt, ...) pg_attribute_printf(5, 6);

void
fail(crypto::PayloadCheck *res, Relation rel, BlockNumber blkno, OffsetNumber off, const char *fmt,
	 ...)
{
	if (res->failed++ > 0)
		return;
	char what[160];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (off == InvalidOffsetNumber)
		snprintf(res->first_failure, sizeof(res->first_failure), "relation \"%s\", block %u: %s",
				 RelationGetRelationName(rel), blkno, what);
	else
		snprintf(res->first_failure, sizeof(res->first_failure),
				 "relation \"%s\", block %u, offset %u: %s", RelationGetRelationName(rel), blkno,
				 (unsigned) off, what);
}

/* An opened version whose sealed large values are checked after the page lock. */
struct Pending
{
	HeapTuple tuple;
	Pending *next;
};

void
check_values(const crypto::Cipher *c, Relation rel, HeapTuple t, crypto::PayloadCheck *res)
{
	TupleDesc desc = RelationGetDescr(rel);
	Datum *values = static_cast<Datum *>(palloc(desc->natts * sizeof(Datum)));
	bool *isnull = static_cast<bool *>(palloc(desc->natts * sizeof(bool)));
	BlockNumber blkno = ItemPointerGetBlockNumber(&t->t_self);
	OffsetNumber off = ItemPointerGetOffsetNumber(&t->t_self);

	heap_deform_tuple(t, desc, values, isnull);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || isnull[i] || att->attlen != -1)
			continue;
		auto *v = reinterpret_cast<struct varlena *>(DatumGetPointer(values[i]));
		if (VARSIZE_ANY_EXHDR(v) <= crypto::kSealedValueMin && !VARATT_IS_EXTERNAL(v))
			continue;
		res->values++;
		struct varlena *fetched = VARATT_IS_EXTERNAL_ONDISK(v) ? detoast_external_attr(v) : v;
		uint16_t version;
		if (!crypto::try_open_value(c, fetched))
			fail(res, rel, blkno, off, "large value of column \"%s\"%s does not open",
				 NameStr(att->attname),
				 VARATT_IS_EXTERNAL_ONDISK(v) ? " (stored in the TOAST table)" : "");
		else if (VARSIZE_ANY_EXHDR(fetched) > crypto::kSealedValueMin &&
				 crypto::sealed_version(VARDATA_ANY(fetched), VARSIZE_ANY_EXHDR(fetched),
										&version) &&
				 version != crypto::cipher_current_version(c))
			res->older_versions++;
		if (fetched != v)
			pfree(fetched);
	}
	pfree(values);
	pfree(isnull);
}

void
verify_payloads(Relation rel, crypto::PayloadCheck *res)
{
	char *amname = OidIsValid(rel->rd_rel->relam) ? get_am_name(rel->rd_rel->relam) : nullptr;
	if (amname == nullptr || strcmp(amname, "rustydb") != 0)
	{
		fail(res, rel, 0, InvalidOffsetNumber,
			 "not a rustydb table (a TOAST table is checked through its table)");
		return;
	}
	const crypto::Cipher *c = crypto::relation_cipher(rel); /* before any buffer lock */
	if (c == nullptr)
		return;
	Snapshot snap = GetActiveSnapshot();
	TransactionId horizon = snap != nullptr ? snap->xmin : GetOldestNonRemovableTransactionId(rel);
	BlockNumber nblocks = storage::data_nblocks(rel);
	BufferAccessStrategy strategy = GetAccessStrategy(BAS_BULKREAD);
	MemoryContext pagecxt = AllocSetContextCreate(CurrentMemoryContext, "rustydb verify payloads",
												  ALLOCSET_DEFAULT_SIZES);
	OpenedGroups *groups = opened_groups_create(CurrentMemoryContext);
	MemoryContext old = MemoryContextSwitchTo(pagecxt);

	for (BlockNumber blkno = 0; blkno < nblocks; blkno++)
	{
		CHECK_FOR_INTERRUPTS();
		Pending *pending = nullptr;
		Buffer buf = storage::read_data_block(rel, blkno, strategy);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		Page page = BufferGetPage(buf);

		if (!PageIsNew(page) && !storage::page_is_valid(page))
			fail(res, rel, blkno, InvalidOffsetNumber, "not a valid rustydb page");
		else if (!PageIsNew(page))
		{
			OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
			for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
			{
				ItemId lp = PageGetItemId(page, off);
				if (!ItemIdIsNormal(lp))
					continue;
				res->payloads++;
				if (!storage::lp_is_sane_tuple(page, lp))
				{
					fail(res, rel, blkno, off, "line pointer does not hold a tuple in the page");
					continue;
				}
				HeapTupleData stored;
				storage::tuple_at_checked(rel, blkno, page, off, &stored);
				HeapTuple opened;
				uint16_t version;
				bool versioned;
				int slot, ordinal;
				if (group_member(&stored, &slot, &ordinal))
				{
					/* a member of a sealed group: the group is opened (once per page) */
					const char *why = nullptr;
					opened = try_open_member(rel, c, &stored, buf, groups, &why);
					if (opened == nullptr)
					{
						fail(res, rel, blkno, off,
							 "payload does not authenticate (sealed group: %s)", why);
						continue;
					}
					versioned = crypto::sealed_version(storage::page_groups(page)[slot].seal,
													   storage::kGroupSealBytes, &version);
				}
				else
				{
					opened = static_cast<HeapTuple>(palloc(HEAPTUPLESIZE + stored.t_len));
					opened->t_data = reinterpret_cast<HeapTupleHeader>(
						reinterpret_cast<char *>(opened) + HEAPTUPLESIZE);
					if (!crypto::try_open_tuple(c, &stored, opened))
					{
						fail(res, rel, blkno, off, "payload does not authenticate");
						continue;
					}
					versioned = crypto::sealed_version(
						reinterpret_cast<char *>(stored.t_data) + stored.t_data->t_hoff,
						stored.t_len - stored.t_data->t_hoff, &version);
				}
				if (versioned && version != crypto::cipher_current_version(c))
					res->older_versions++;
				if (!(opened->t_data->t_infomask2 & crypto::kValuesSealed))
					continue;
				if (mvcc::satisfies_vacuum(&stored, horizon, buf) == HEAPTUPLE_DEAD)
				{
					res->values_skipped++;
					continue;
				}
				auto *p = static_cast<Pending *>(palloc(sizeof(Pending)));
				*p = Pending{opened, pending};
				pending = p;
			}
		}
		UnlockReleaseBuffer(buf);
		for (Pending *p = pending; p != nullptr; p = p->next)
			check_values(c, rel, p->tuple, res);
		MemoryContextReset(pagecxt);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(pagecxt);
	opened_groups_free(groups);
	FreeAccessStrategy(strategy);
}

} /* namespace */

void
register_payload_verifier()
{
	crypto::set_payload_verifier(verify_payloads);
}

} /* namespace rustydb::am */

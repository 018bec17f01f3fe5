/*-------------------------------------------------------------------------
 *
 * page.cpp
 *	  rustydb page initialisation and validation.
 *
 * Every page a rustydb function reads goes through page_check and every
 * tuple through tuple_at: bytes that do not form a valid rustydb page or
 * tuple give ERRCODE_DATA_CORRUPTED naming the relation, block and offset,
 * before anything is dereferenced.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/storage/page.h"
#include "rustydb/storage/undo.h"

#include "rustydb/storage/changes.h"

namespace rustydb::storage {

/* ------------------------------------------------------------------------
 * Page initialisation
 * ------------------------------------------------------------------------
 */

/* An empty page of the given kind with the rustydb special space. */
static void
init_with_special(Page page, PageKind kind, int group_slots)
{
	Assert(group_slots >= 0 && group_slots <= kGroupMaxSlots);
	Assert(kind == kPageData || group_slots == 0);
	bool groups = group_slots > 0;
	PageInit(page, BLCKSZ, groups ? group_special_size(group_slots) : kSpecialSize);
	auto *sp = (PageSpecial *) PageGetSpecialPointer(page);
	sp->magic = kPageMagic;
	sp->version = kPageFormatVersion;
	sp->kind = kind;
	sp->flags = groups ? kPageGroupTable : 0;
	sp->reserved = 0;
	/* PageInit zeroed the group table: every slot free */
}

void
page_init(Page page, int group_slots)
{
	Assert(group_slots >= 0);
	init_with_special(page, kPageData, Min(group_slots, kGroupMaxSlots));
}

void
page_init_kind(Page page, PageKind kind)
{
	Assert(kind != kPageData);
	init_with_special(page, kind, 0);
}

void
meta_init(Page page, uint32 flags)
{
	init_with_special(page, kPageMeta, 0);

	auto *meta = (MetaPageData *) PageGetContents(page);
	meta->magic = kMetaMagic;
	meta->format_version = kMetaFormatVersion;
	meta->page_version = kPageFormatVersion;
	meta->block_size = BLCKSZ;
	meta->flags = flags;
	meta->reserved = 0;
	/* pd_lower past the data, so that full-page images keep it (REGBUF_STANDARD) */
	((PageHeader) page)->pd_lower = (char *) (meta + 1) - (char *) page;
}

/* ------------------------------------------------------------------------
 * Validation
 * ------------------------------------------------------------------------
 */

const MetaPageData *
meta_get(Page page, const char **why)
{
	auto *hdr = (PageHeader) page;
	auto *meta = (const MetaPageData *) PageGetContents(page);
	const char *reason = nullptr;

	if (PageIsNew(page))
		reason = "the page is all zeroes";
	else if (page_is_heap(page))
		reason = "it is a heap page (the table's files were replaced by a heap table's)";
	else if (hdr->pd_special != BLCKSZ - kSpecialSize ||
			 hdr->pd_lower < (char *) (meta + 1) - (char *) page || hdr->pd_lower > hdr->pd_upper ||
			 hdr->pd_upper > hdr->pd_special)
		reason = "the page header does not describe a rustydb metapage";
	else
	{
		auto *sp = (PageSpecial *) (page + hdr->pd_special);
		if (sp->magic != kPageMagic || sp->kind != kPageMeta)
			reason = "the special space does not mark a rustydb metapage";
		else if (meta->magic != kMetaMagic)
			reason = "bad metapage magic number";
		else if (meta->format_version != kMetaFormatVersion || sp->version < kPageFormatOldest ||
				 sp->version > kPageFormatVersion || meta->page_version < kPageFormatOldest ||
				 meta->page_version > kPageFormatVersion)
			reason = "unsupported rustydb format version";
		else if (meta->block_size != BLCKSZ)
			reason = "the relation was created with a different block size";
		else if ((meta->flags & ~kMetaEncrypted) != 0)
			reason = "unknown metapage flags";
	}
	if (why != nullptr)
		*why = reason;
	return reason == nullptr ? meta : nullptr;
}

bool
page_is_valid(Page page)
{
	if (PageIsNew(page))
		return true;
	auto *hdr = (PageHeader) page;
	if (hdr->pd_special > BLCKSZ - kSpecialSize)
		return false;
	Size special = BLCKSZ - hdr->pd_special;
	int nslots = (int) ((special - Min(special, sizeof(PageSpecial))) / sizeof(GroupEntry));
	bool groups = special != kSpecialSize;
	if (groups && (nslots < 1 || nslots > kGroupMaxSlots || special != group_special_size(nslots)))
		return false;
	if (hdr->pd_lower < SizeOfPageHeaderData || hdr->pd_lower > hdr->pd_upper ||
		hdr->pd_upper > hdr->pd_special)
		return false;
	auto *sp = (PageSpecial *) (page + hdr->pd_special);
	/* the special space's size and its group-table flag agree */
	/* version 2 pages have no group table */
	return sp->magic == kPageMagic && sp->kind == kPageData &&
		   (sp->version == kPageFormatVersion || (sp->version == kPageFormatOldest && !groups)) &&
		   (sp->flags & ~kPageGarbage) == (groups ? kPageGroupTable : 0);
}

bool
page_is_heap(Page page)
{
	auto *hdr = (PageHeader) page;
	return !PageIsNew(page) && hdr->pd_special == BLCKSZ && PageGetPageSize(page) == BLCKSZ &&
		   PageGetPageLayoutVersion(page) == PG_PAGE_LAYOUT_VERSION &&
		   hdr->pd_lower >= SizeOfPageHeaderData && hdr->pd_lower <= hdr->pd_upper &&
		   hdr->pd_upper <= hdr->pd_special;
}

void
heap_pages_error(Relation rel, BlockNumber phys_blkno)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_CORRUPTED),
			 errmsg("relation \"%s\" holds heap pages, not rustydb pages",
					RelationGetRelationName(rel)),
			 errdetail("Block %u of its file is a heap page: the table's files were replaced by "
					   "a heap table's, as a tool that rebuilds tables and swaps their files "
					   "(such as pg_repack without rustydb's support) does.",
					   phys_blkno),
			 errhint("SELECT rustydb.recover_heap_pages('%s') rebuilds the table from those pages "
					 "as a rustydb table.",
					 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
												RelationGetRelationName(rel)))));
}

void
check_storage(Relation rel)
{
	if (likely(rel->rd_amcache != nullptr))
		return;
	if (phys_nblocks(rel) > 0)
	{
		Buffer buf = ReadBuffer(rel, kMetaBlock);
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		bool heap = page_is_heap(BufferGetPage(buf));
		UnlockReleaseBuffer(buf);
		/*
		 * Only a heap page is refused here: a damaged metapage leaves the
		 * data pages readable (each is checked as it is read), so that a
		 * DBA can still copy out what is intact; VACUUM and verify_table
		 * report it.
		 */
		if (heap)
			heap_pages_error(rel, kMetaBlock);
	}
	/* freed by the relation cache whenever it rebuilds or drops the entry */
	rel->rd_amcache = MemoryContextAllocZero(CacheMemoryContext, sizeof(RelAmCache));
}

RelAmCache *
rel_amcache(Relation rel)
{
	check_storage(rel);
	return static_cast<RelAmCache *>(rel->rd_amcache);
}

void
page_check(Relation rel, BlockNumber blkno, Page page)
{
	if (likely(page_is_valid(page)))
		return;
	if (page_is_heap(page))
		heap_pages_error(rel, phys_block(blkno));
	auto *hdr = (PageHeader) page;
	ereport(
		ERROR,
		(errcode(ERRCODE_DATA_CORRUPTED),
		 errmsg("invalid rustydb page in block %u of relation \"%s\"", blkno,
				RelationGetRelationName(rel)),
		 errdetail("pd_lower %u, pd_upper %u, pd_special %u; expected a rustydb data page "
				   "of format version %u (data block %u is block %u of the file).",
				   (unsigned) hdr->pd_lower, (unsigned) hdr->pd_upper, (unsigned) hdr->pd_special,
				   (unsigned) kPageFormatVersion, blkno, phys_block(blkno)),
		 errhint("Restore the table from a backup; rustydb.verify_table() lists the "
				 "damaged pages.")));
}

[[noreturn]] static void
tuple_corrupt(Relation rel, BlockNumber blkno, OffsetNumber off, const char *what)
{
	ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
					errmsg("invalid rustydb tuple (%u,%u) in relation \"%s\": %s", blkno,
						   (unsigned) off, RelationGetRelationName(rel), what),
					errhint("Restore the table from a backup; rustydb.verify_table() lists the "
							"damaged pages.")));
}

bool
tuple_at(Relation rel, Buffer buf, Page page, OffsetNumber off, HeapTuple tuple)
{
	auto *hdr = (PageHeader) page;
	BlockNumber blkno = data_block(buf);

	/* the callers check offsets read from outside the page (TIDs) before */
	Assert(page == BufferGetPage(buf));
	Assert(off >= FirstOffsetNumber && off <= PageGetMaxOffsetNumber(page));
	ItemId lp = PageGetItemId(page, off);
	if (!ItemIdIsNormal(lp))
		return false;
	unsigned lpoff = ItemIdGetOffset(lp);
	unsigned lplen = ItemIdGetLength(lp);
	if (lpoff < hdr->pd_upper || lpoff + lplen > hdr->pd_special || lpoff != MAXALIGN(lpoff))
		tuple_corrupt(rel, blkno, off, "line pointer out of range");
	if (lplen < kTupleHeaderSize)
		tuple_corrupt(rel, blkno, off, "tuple shorter than its header");

	auto *th = (HeapTupleHeader) (page + lpoff);
	if (th->t_hoff < kTupleHeaderSize || th->t_hoff > lplen || th->t_hoff != MAXALIGN(th->t_hoff))
		tuple_corrupt(rel, blkno, off, "bad header length");
	/*
	 * No check of the attribute count against the relation's: a tuple
	 * inserted by a subtransaction that also added columns and then rolled
	 * back (ALTER TABLE ADD COLUMN ... ROLLBACK TO) has more attributes than
	 * the relation has now, legitimately, as with heap; deforming reads only
	 * the relation's.
	 */
	if ((th->t_infomask & HEAP_HASNULL) &&
		kTupleHeaderSize + BITMAPLEN(HeapTupleHeaderGetNatts(th)) > th->t_hoff)
		tuple_corrupt(rel, blkno, off, "null bitmap overlaps the payload");
	if ((th->t_infomask2 & kTupleHasUndo) && !tuple_hoff_is_valid(th))
		tuple_corrupt(rel, blkno, off, "undo pointer does not end at the header length");

	tuple->t_data = th;
	tuple->t_len = lplen;
	tuple->t_tableOid = RelationGetRelid(rel);
	ItemPointerSet(&tuple->t_self, blkno, off);
	return true;
}

/* ------------------------------------------------------------------------
 * Group tables
 * ------------------------------------------------------------------------
 */

void
apply_group_changes(Page page, const char *data, Size len)
{
	const char *p = data;
	const char *end = data + len;
	int nslots = 0;
	GroupEntry *table = page_groups(page, &nslots);

	if (len == 0)
		return;
	if (table == nullptr)
		elog(ERROR, "rustydb: group table changes for a page without a group table");
	uint8 nchanged = (uint8) *p++;
	for (int i = 0; i < nchanged; i++)
	{
		if (p + 2 + sizeof(GroupEntry) > end)
			elog(ERROR, "rustydb: truncated group table changes");
		uint8 slot = (uint8) p[0];
		uint8 npayloads = (uint8) p[1];
		p += 2;
		if (slot >= nslots)
			elog(ERROR, "rustydb: group slot %u out of range", (unsigned) slot);
		memcpy(&table[slot], p, sizeof(GroupEntry));
		p += sizeof(GroupEntry);
		for (int m = 0; m < npayloads; m++)
		{
			OffsetNumber off;
			uint16 plen;
			if (p + sizeof(off) + sizeof(plen) > end)
				elog(ERROR, "rustydb: truncated group table changes");
			memcpy(&off, p, sizeof(off));
			memcpy(&plen, p + sizeof(off), sizeof(plen));
			p += sizeof(off) + sizeof(plen);
			if (p + plen > end || off < FirstOffsetNumber || off > PageGetMaxOffsetNumber(page))
				elog(ERROR, "rustydb: bad member payload in group table changes");
			ItemId lp = PageGetItemId(page, off);
			auto *t = (HeapTupleHeader) PageGetItem(page, lp);
			if (!ItemIdIsNormal(lp) || ItemIdGetLength(lp) != (unsigned) t->t_hoff + plen)
				elog(ERROR, "rustydb: group member %u does not match its new payload",
					 (unsigned) off);
			memcpy((char *) t + t->t_hoff, p, plen);
			p += plen;
		}
	}
	if (p != end)
		elog(ERROR, "rustydb: trailing bytes after group table changes");
}

/* ------------------------------------------------------------------------
 * Visibility map
 * ------------------------------------------------------------------------
 */

/* PostgreSQL's layout: 2 bits per heap block after the VM page's header */
constexpr Size kMapBytes = BLCKSZ - MAXALIGN(SizeOfPageHeaderData);
constexpr uint32 kHeapBlocksPerByte = BITS_PER_BYTE / BITS_PER_HEAPBLOCK;
constexpr uint32 kHeapBlocksPerMapPage = kMapBytes * kHeapBlocksPerByte;

const char *
tuple_frozen_problem(HeapTupleHeader t)
{
	if (heap_tuple_needs_eventual_freeze(t))
		return "an xmin or xmax not frozen";
	if (tuple_undo_ptr(t) != kInvalidUndoPtr)
		return "an undo pointer";
	return nullptr;
}

void
vm_set(Buffer vmbuf, BlockNumber heapblk, bool all_frozen)
{
	Assert(buffer_is_locked_exclusive(vmbuf));
	Assert(in_page_change());
	Assert(BufferGetBlockNumber(vmbuf) == heapblk / kHeapBlocksPerMapPage);
	uint32 byte = (heapblk % kHeapBlocksPerMapPage) / kHeapBlocksPerByte;
	uint32 shift = (heapblk % kHeapBlocksPerByte) * BITS_PER_HEAPBLOCK;
	auto *map = (uint8 *) PageGetContents(BufferGetPage(vmbuf));

	uint8 bits = VISIBILITYMAP_ALL_VISIBLE | (all_frozen ? VISIBILITYMAP_ALL_FROZEN : 0);
	map[byte] |= (uint8) (bits << shift);
}

void
vm_pin_if_needed(Relation rel, Buffer buf, Buffer *vmbuf)
{
	Assert(CritSectionCount == 0); /* visibilitymap_pin may read the map */
	Assert(buffer_is_locked_exclusive(buf));
	if (PageIsAllVisible(BufferGetPage(buf)))
		visibilitymap_pin(rel, data_block(buf), vmbuf);
}

bool
vm_clear(Relation rel, Buffer buf, Buffer vmbuf)
{
	Assert(CritSectionCount > 0);
	Assert(buffer_is_locked_exclusive(buf));
	Page page = BufferGetPage(buf);
	if (!PageIsAllVisible(page))
		return false;
	/* pinned beforehand by vm_pin_if_needed (visibilitymap_clear checks it is the right page) */
	Assert(BufferIsValid(vmbuf));
	page_clear_all_visible(buf);
	visibilitymap_clear(rel, data_block(buf), vmbuf, VISIBILITYMAP_VALID_BITS);
	return true;
}

bool
vm_clear_frozen(Relation rel, Buffer buf, Buffer vmbuf)
{
	Assert(CritSectionCount > 0);
	Assert(buffer_is_locked_exclusive(buf));
	if (!PageIsAllVisible(BufferGetPage(buf)))
		return false; /* no bit of the page is set */
	Assert(BufferIsValid(vmbuf));
	return visibilitymap_clear(rel, data_block(buf), vmbuf, VISIBILITYMAP_ALL_FROZEN);
}

Size
page_free_space(Page page)
{
	return PageGetHeapFreeSpace(page);
}

} /* namespace rustydb::storage */

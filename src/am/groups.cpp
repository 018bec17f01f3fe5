/*-------------------------------------------------------------------------
 *
 * groups.cpp
 *	  Sealed groups of an encrypted table's page: writing them (COPY),
 *	  opening them (every read path), re-sealing them (pruning) and
 *	  checking them (verify_encryption). See groups.h and docs/tde.md.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/am/groups.h"

#include "rustydb/am/am.h"
#include "rustydb/common/settings.h"
#include "rustydb/crypto/pagecache.h"

#include <cstring>

namespace rustydb::am {

using storage::GroupEntry;
using storage::kGroupMaxMembers;
using storage::kGroupMaxSlots;
using storage::kMemberHeaderBytes;
using storage::kMemberMarker;

static_assert(storage::kGroupSealBytes == crypto::kSealOverhead,
			  "a group entry keeps one detached seal");
static_assert(kGroupMaxSlots <= 64 && kGroupMaxSlots <= 8 * sizeof(uint64),
			  "the member header has six bits for the slot");
static_assert(kGroupMaxMembers <= 64, "the member header has six bits for the ordinal");

/* Group associated data: 10 bytes, then per member 4 bytes and its tuple's. */
constexpr Size kMaxGroupAd = 10 + kGroupMaxMembers * (4 + crypto::kMaxTupleAd);
static_assert(kMaxGroupAd <= crypto::kMaxGroupAadBytes, "group associated data must fit");

struct OpenedMember
{
	OffsetNumber off;
	uint16 start; /* in plain[] */
	uint16 len;   /* plaintext payload bytes */
};

/* One opened group of the page. */
struct OpenedSlot
{
	int slot;
	GroupEntry entry; /* the page's entry when opened: its identity */
	OpenedMember m[kGroupMaxMembers];
};

struct OpenedGroups
{
	RelFileNode node;
	BlockNumber blkno;
	OpenedSlot *open; /* nopen opened groups of the page (room for capacity) */
	int nopen;
	int capacity;
	int hint; /* the one found last: rows are read group by group */
	MemoryContext cxt;
	Size used;                     /* bytes of plain in use */
	Size size;                     /* bytes allocated for plain, grown on demand up to BLCKSZ */
	char *plain;                   /* the plaintexts of the opened groups */
	crypto::pagecache::Image *img; /* the shared cache's image of the page, or nullptr */
	crypto::pagecache::Mode mode;  /* how og reads the cache (img made on first use) */
};

static void forget_page(OpenedGroups *og);

static OpenedGroups *backend_groups = nullptr;
/* gathered ciphertext of the group being opened (transient) */
static char gathered[BLCKSZ];

OpenedGroups *
opened_groups_create(MemoryContext cxt)
{
	/* small: an index scan of one row allocates one, the plaintext buffer comes later */
	auto *og = (OpenedGroups *) MemoryContextAllocZero(cxt, sizeof(OpenedGroups));
	og->blkno = InvalidBlockNumber;
	og->cxt = cxt;
	return og;
}

void
opened_groups_free(OpenedGroups *og)
{
	if (og == nullptr)
		return;
	if (og->plain != nullptr)
	{
		explicit_bzero(og->plain, og->used);
		pfree(og->plain);
	}
	if (og->open != nullptr)
		pfree(og->open);
	crypto::pagecache::image_free(og->img);
	pfree(og);
}

void
opened_groups_use_cache(OpenedGroups *og, Relation rel, bool whole_pages, BlockNumber nblocks)
{
	if (og == nullptr || og->mode != crypto::pagecache::Mode::Off)
		return;
	/* the image (8 kB) is made when a read first uses the cache: most fetches do not */
	og->mode = crypto::pagecache::mode_for(rel, whole_pages, nblocks);
}

/* og's image of the cache, made on first use; nullptr: og bypasses the cache. */
static crypto::pagecache::Image *
cache_image(OpenedGroups *og)
{
	if (og->img == nullptr && og->mode != crypto::pagecache::Mode::Off)
		og->img = crypto::pagecache::image_create(og->cxt, og->mode);
	return og->img;
}

/* The opened group of slot, or nullptr. */
static OpenedSlot *
find_opened(OpenedGroups *og, int slot)
{
	if (og->hint < og->nopen && og->open[og->hint].slot == slot)
		return &og->open[og->hint];
	for (int i = 0; i < og->nopen; i++)
		if (og->open[i].slot == slot)
		{
			og->hint = i;
			return &og->open[i];
		}
	return nullptr;
}

/* A new entry for slot (its group not opened yet). */
static OpenedSlot *
add_opened(OpenedGroups *og, int slot)
{
	if (og->nopen == og->capacity)
	{
		int capacity = Max(4, og->capacity * 2);
		auto *open = (OpenedSlot *) MemoryContextAlloc(og->cxt, capacity * sizeof(OpenedSlot));
		if (og->open != nullptr)
		{
			memcpy(open, og->open, og->nopen * sizeof(OpenedSlot));
			pfree(og->open);
		}
		og->open = open;
		og->capacity = capacity;
	}
	OpenedSlot *os = &og->open[og->nopen++];
	os->slot = slot;
	os->entry.nmembers = 0; /* not opened */
	return os;
}

/* Room for n more plaintext bytes (n <= BLCKSZ), dropping the page's groups if full. */
static void
reserve(OpenedGroups *og, Size n)
{
	if (og->used + n > BLCKSZ)
		forget_page(og);
	if (og->used + n <= og->size)
		return;
	Size size = Min((Size) BLCKSZ, Max(Max(og->size * 2, og->used + n), (Size) 1024));
	char *plain = (char *) MemoryContextAlloc(og->cxt, size);
	if (og->plain != nullptr)
	{
		memcpy(plain, og->plain, og->used);
		explicit_bzero(og->plain, og->used);
		pfree(og->plain);
	}
	og->plain = plain;
	og->size = size;
}

static void
forget_page(OpenedGroups *og)
{
	og->nopen = 0;
	og->hint = 0;
	if (og->plain != nullptr)
		explicit_bzero(og->plain, og->used);
	og->used = 0;
}

/* The slot and ordinal of a member header; false if p is not one. */
static inline bool
decode_member(const uint8 *p, int *slot, int *ordinal)
{
	if ((p[0] & 0xF0) != kMemberMarker)
		return false;
	*slot = ((p[0] & 0x0F) << 2) | (p[1] >> 6);
	*ordinal = p[1] & 0x3F;
	return true;
}

bool
group_member(HeapTuple stored, int *slot, int *ordinal)
{
	HeapTupleHeader t = stored->t_data;
	uint32 hoff = t->t_hoff;

	if (stored->t_len < hoff + kMemberHeaderBytes)
		return false;
	return decode_member((const uint8 *) t + hoff, slot, ordinal);
}

/* ========================================================================
 * Members and associated data
 * ========================================================================
 */

/* A tuple of the page whose header tuple_ad can read; nullptr if not. */
static HeapTupleHeader
plausible_tuple(Page page, OffsetNumber off)
{
	ItemId lp = PageGetItemId(page, off);
	if (!ItemIdIsNormal(lp) || !storage::lp_is_sane_tuple(page, lp))
		return nullptr;
	auto *t = (HeapTupleHeader) PageGetItem(page, lp);
	unsigned lplen = ItemIdGetLength(lp);
	if (t->t_hoff < storage::kTupleHeaderSize || t->t_hoff + kMemberHeaderBytes > lplen)
		return nullptr;
	if ((t->t_infomask & HEAP_HASNULL) &&
		storage::kTupleHeaderSize + BITMAPLEN(HeapTupleHeaderGetNatts(t)) > t->t_hoff)
		return nullptr;
	return t;
}

/* Payload bytes of a member (after its member header). */
static uint16
member_len(Page page, OffsetNumber off)
{
	ItemId lp = PageGetItemId(page, off);
	auto *t = (HeapTupleHeader) PageGetItem(page, lp);
	return (uint16) (ItemIdGetLength(lp) - t->t_hoff - kMemberHeaderBytes);
}

/* The members of slot's group in ordinal order into moff; false (why) if they are not all there. */
static bool
find_members(Page page, int slot, const GroupEntry *e, OffsetNumber *moff, const char **why)
{
	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);
	int n = e->nmembers;

	if (n < 1 || n > kGroupMaxMembers || e->first < FirstOffsetNumber || e->first > e->last ||
		e->last > maxoff)
	{
		*why = "the page's group entry is not valid";
		return false;
	}
	memset(moff, 0, n * sizeof(OffsetNumber));
	int found = 0;
	for (OffsetNumber off = e->first; off <= e->last; off++)
	{
		HeapTupleHeader t = plausible_tuple(page, off);
		if (t == nullptr)
			continue;
		int mslot, ord;
		if (!decode_member((const uint8 *) t + t->t_hoff, &mslot, &ord) || mslot != slot)
			continue;
		if (ord >= n || moff[ord] != InvalidOffsetNumber)
		{
			*why = "a group member's ordinal is out of range or repeated";
			return false;
		}
		moff[ord] = off;
		found++;
	}
	if (found != n)
	{
		*why = "a member of a sealed group is missing";
		return false;
	}
	return true;
}

/* Associated data of a group of n members at moff (ordinal order) into ad. */
static Size
group_ad(Page page, BlockNumber blkno, int slot, const OffsetNumber *moff, int n, uint8 *ad)
{
	OffsetNumber first = moff[0], last = moff[0];
	for (int i = 1; i < n; i++)
	{
		first = Min(first, moff[i]);
		last = Max(last, moff[i]);
	}
	Size k = 0;
	memcpy(ad + k, &blkno, 4);
	k += 4;
	ad[k++] = (uint8) slot;
	ad[k++] = (uint8) n;
	memcpy(ad + k, &first, 2);
	k += 2;
	memcpy(ad + k, &last, 2);
	k += 2;
	for (int i = 0; i < n; i++)
	{
		auto *t = (HeapTupleHeader) PageGetItem(page, PageGetItemId(page, moff[i]));
		uint16 len = member_len(page, moff[i]);
		memcpy(ad + k, &moff[i], 2);
		memcpy(ad + k + 2, &len, 2);
		k += 4;
		k += crypto::tuple_ad(t, ad + k);
	}
	return k;
}

/* The ciphertexts of the members, concatenated into ct; returns the length. */
static Size
gather(Page page, const OffsetNumber *moff, int n, char *ct, OpenedMember *m)
{
	Size total = 0;
	for (int i = 0; i < n; i++)
	{
		auto *t = (HeapTupleHeader) PageGetItem(page, PageGetItemId(page, moff[i]));
		uint16 len = member_len(page, moff[i]);
		memcpy(ct + total, (char *) t + t->t_hoff + kMemberHeaderBytes, len);
		if (m != nullptr)
			m[i] = OpenedMember{moff[i], (uint16) total, len};
		total += len;
	}
	return total;
}

/*
 * Seal the plaintexts pt (total bytes, the n members at moff in ordinal
 * order, already on the page with their final lengths) as slot's group:
 * the ciphertext goes to ct, the returned entry holds the seal.
 */
static GroupEntry
seal_group(const crypto::Cipher *c, Page page, BlockNumber blkno, int slot,
		   const OffsetNumber *moff, int n, const char *pt, Size total, char *ct)
{
	uint8 ad[kMaxGroupAd];
	Size adlen = group_ad(page, blkno, slot, moff, n, ad);
	GroupEntry e;
	memset(&e, 0, sizeof(e));
	e.nmembers = (uint8) n;
	e.first = e.last = moff[0];
	for (int i = 1; i < n; i++)
	{
		e.first = Min(e.first, moff[i]);
		e.last = Max(e.last, moff[i]);
	}
	crypto::seal_detached(c, pt, total, ad, adlen, ct, e.seal);
	return e;
}

/* ========================================================================
 * Opening
 * ========================================================================
 */

/*
 * Open slot's group of the (at least share-locked or pinned and stable)
 * page into og. Never raises for bad data: false with *why.
 */
static bool
open_group(OpenedGroups *og, Relation rel, const crypto::Cipher *c, Page page, BlockNumber blkno,
		   int slot, const char **why)
{
	if (!RelFileNodeEquals(og->node, rel->rd_node) || og->blkno != blkno)
	{
		forget_page(og);
		og->node = rel->rd_node;
		og->blkno = blkno;
	}
	const GroupEntry *e = &storage::page_groups(page)[slot];
	OpenedSlot *os = find_opened(og, slot);
	if (os != nullptr)
		os->entry.nmembers = 0; /* no longer opened */
	OffsetNumber moff[kGroupMaxMembers];
	if (!find_members(page, slot, e, moff, why))
		return false;
	uint8 ad[kMaxGroupAd];
	Size adlen = group_ad(page, blkno, slot, moff, e->nmembers, ad);
	OpenedMember m[kGroupMaxMembers];
	Size total = gather(page, moff, e->nmembers, gathered, m);
	reserve(og, total); /* may forget the page's other groups */
	if (!crypto::try_open_detached(c, e->seal, gathered, total, ad, adlen, og->plain + og->used,
								   why))
		return false;
	os = find_opened(og, slot);
	if (os == nullptr)
		os = add_opened(og, slot);
	for (int i = 0; i < e->nmembers; i++)
	{
		os->m[i] = m[i];
		os->m[i].start += (uint16) og->used;
	}
	og->used += total;
	os->entry = *e;
	return true;
}

/* The opened member (slot, ordinal) at off, if og has it for this page's current group. */
static const OpenedMember *
lookup(OpenedGroups *og, Relation rel, BlockNumber blkno, Page page, int slot, int ordinal,
	   OffsetNumber off)
{
	if (og->blkno != blkno || !RelFileNodeEquals(og->node, rel->rd_node))
		return nullptr;
	const OpenedSlot *os = find_opened(og, slot);
	const GroupEntry *e = &storage::page_groups(page)[slot];
	/* the nonce (session, counter) identifies a seal: a re-sealed group has another */
	if (os == nullptr || ordinal >= os->entry.nmembers || os->m[ordinal].off != off ||
		memcmp(os->entry.seal + 4, e->seal + 4, 16) != 0 || os->entry.nmembers != e->nmembers ||
		os->entry.first != e->first || os->entry.last != e->last)
		return nullptr;
	return &os->m[ordinal];
}

[[noreturn]] static void
bad_member(Relation rel, BlockNumber blkno, OffsetNumber off, const char *why)
{
	ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
					errmsg("could not decrypt data in block %u of relation \"%s\"", blkno,
						   RelationGetRelationName(rel)),
					errdetail("Tuple (%u,%u): %s.", blkno, (unsigned) off, why),
					errhint("The data on disk was damaged or tampered with; restore the table "
							"from a backup.")));
}

/* A HeapTuple of stored's header and plaintext payload len bytes at plain. */
static HeapTuple
member_tuple(HeapTuple stored, const char *plain, uint16 len)
{
	uint32 hoff = stored->t_data->t_hoff;
	auto out = (HeapTuple) palloc(HEAPTUPLESIZE + hoff + len);
	out->t_data = (HeapTupleHeader) ((char *) out + HEAPTUPLESIZE);
	memcpy(out->t_data, stored->t_data, hoff);
	memcpy((char *) out->t_data + hoff, plain, len);
	out->t_len = hoff + len;
	out->t_self = stored->t_self;
	out->t_tableOid = stored->t_tableOid;
	return out;
}

/*
 * The member's opened payload, opening its group if og does not have it;
 * nullptr with *why if it does not open.
 */
static const OpenedMember *
open_member(Relation rel, const crypto::Cipher *c, HeapTuple stored, Page page, Buffer buf,
			bool locked, OpenedGroups *og, const char **why)
{
	int slot, ordinal;
	BlockNumber blkno = storage::data_block(buf);
	OffsetNumber off = ItemPointerGetOffsetNumber(&stored->t_self);

	if (!group_member(stored, &slot, &ordinal))
	{
		*why = "not a group member";
		return nullptr;
	}
	int nslots = 0;
	if (storage::page_groups(page, &nslots) == nullptr)
	{
		*why = "a group member on a page without a group table";
		return nullptr;
	}
	if (slot >= nslots)
	{
		*why = "a group member of a slot the page's group table does not have";
		return nullptr;
	}
	const OpenedMember *m = lookup(og, rel, blkno, page, slot, ordinal, off);
	if (m != nullptr)
		return m;
	if (!locked)
		LockBuffer(buf, BUFFER_LOCK_SHARE);
	bool ok = open_group(og, rel, c, page, blkno, slot, why);
	if (!locked)
		LockBuffer(buf, BUFFER_LOCK_UNLOCK);
	if (!ok)
		return nullptr;
	m = lookup(og, rel, blkno, page, slot, ordinal, off);
	if (m == nullptr)
		*why = "the tuple is not the member of its group it claims to be";
	return m;
}

/*
 * The identity of the sealed bytes behind stored (see pagecache.h) into
 * ident, and the plaintext length they open to; false if it has none (the
 * open that follows reports why).
 */
static bool
sealed_identity(HeapTuple stored, Page page, bool member, int slot, uint8 *ident, uint16 *len)
{
	uint32 hoff = stored->t_data->t_hoff;
	if (hoff > stored->t_len)
		return false;
	uint32 sealed = stored->t_len - hoff;
	if (member)
	{
		int nslots = 0;
		const GroupEntry *table = storage::page_groups(page, &nslots);
		if (table == nullptr || slot >= nslots || sealed < kMemberHeaderBytes)
			return false;
		memcpy(ident, table[slot].seal, crypto::pagecache::kIdentBytes);
		*len = (uint16) (sealed - kMemberHeaderBytes);
		return true;
	}
	if (sealed < crypto::kSealOverhead)
		return false;
	/* header, session and counter, then the tag */
	const char *p = (const char *) stored->t_data + hoff;
	memcpy(ident, p, 20);
	memcpy(ident + 20, p + sealed - 16, 16);
	*len = (uint16) (sealed - crypto::kSealOverhead);
	return true;
}

static OpenedGroups *
the_groups(Relation rel, OpenedGroups *og)
{
	if (og != nullptr)
		return og;
	if (backend_groups == nullptr)
	{
		backend_groups = opened_groups_create(TopMemoryContext);
		opened_groups_use_cache(backend_groups, rel, false, 0);
	}
	return backend_groups;
}

/*
 * The plaintext bytes opening a row of plen bytes opens: its own, or its
 * group's (a member's length times the members, near enough).
 */
static Size
open_bytes(Page page, bool member, int slot, uint16 plen)
{
	if (!member)
		return plen;
	int nslots = 0;
	const GroupEntry *table = storage::page_groups(page, &nslots);
	return table != nullptr && slot < nslots ? (Size) plen * Max(table[slot].nmembers, 1) : plen;
}

/* What a read of stored needs from the cache: its image (or nullptr) and identity. */
struct CacheProbe
{
	crypto::pagecache::Image *img;
	bool member;
	int slot;
	uint16 plen;
	uint8 ident[crypto::pagecache::kIdentBytes];
};

/* The cached plaintext payload of stored (its length in probe->plen), or nullptr. */
static const char *
probe_cache(Relation rel, HeapTuple stored, Buffer buf, OpenedGroups *og, CacheProbe *probe)
{
	int ordinal = 0;
	probe->slot = 0;
	probe->member = group_member(stored, &probe->slot, &ordinal);
	/* the key is loaded (the caller has c): a backend without it never gets here */
	probe->img = nullptr;
	if (og->mode == crypto::pagecache::Mode::Off || RelationUsesLocalBuffers(rel) ||
		!sealed_identity(stored, BufferGetPage(buf), probe->member, probe->slot, probe->ident,
						 &probe->plen))
		return nullptr;
	/*
	 * a single row: the cache only if what it would open (its group) is
	 * large enough for a copy from the shared entry to cost less
	 */
	if (og->mode == crypto::pagecache::Mode::Items &&
		open_bytes(BufferGetPage(buf), probe->member, probe->slot, probe->plen) <
			(Size) settings::tde_cache_min_read)
		return nullptr;
	probe->img = cache_image(og);
	crypto::pagecache::image_enter(probe->img, rel->rd_node, storage::data_block(buf));
	uint16 len = 0;
	const char *p = crypto::pagecache::image_lookup(
		probe->img, ItemPointerGetOffsetNumber(&stored->t_self), probe->ident, &len);
	return p != nullptr && len == probe->plen ? p : nullptr;
}

/* Open stored (not cached) and remember what was opened in the probe's image. */
static HeapTuple
open_and_remember(Relation rel, const crypto::Cipher *c, HeapTuple stored, Buffer buf, bool locked,
				  OpenedGroups *og, const CacheProbe *probe)
{
	BlockNumber blkno = storage::data_block(buf);
	OffsetNumber off = ItemPointerGetOffsetNumber(&stored->t_self);
	crypto::pagecache::Image *img = probe->img;

	if (!probe->member)
	{
		HeapTuple out = crypto::open_tuple_copy(c, stored, blkno);
		if (img != nullptr)
			crypto::pagecache::image_add(img, off, probe->ident,
										 (const char *) out->t_data + out->t_data->t_hoff,
										 probe->plen);
		return out;
	}
	const char *why = nullptr;
	const OpenedMember *m = open_member(rel, c, stored, BufferGetPage(buf), buf, locked, og, &why);
	if (m == nullptr)
		bad_member(rel, blkno, off, why);
	if (m->len != stored->t_len - stored->t_data->t_hoff - kMemberHeaderBytes)
		bad_member(rel, blkno, m->off, "the member's length changed");
	if (img != nullptr)
	{
		/* the whole group: the page's other members are read next */
		const OpenedSlot *os = find_opened(og, probe->slot);
		if (os != nullptr &&
			memcmp(os->entry.seal, probe->ident, crypto::pagecache::kIdentBytes) == 0)
			for (int i = 0; i < os->entry.nmembers; i++)
				crypto::pagecache::image_add(img, os->m[i].off, probe->ident,
											 og->plain + os->m[i].start, os->m[i].len);
	}
	return member_tuple(stored, og->plain + m->start, m->len);
}

HeapTuple
open_stored_tuple(Relation rel, const crypto::Cipher *c, HeapTuple stored, Buffer buf, bool locked,
				  OpenedGroups *og)
{
	CacheProbe probe;
	og = the_groups(rel, og);
	const char *p = probe_cache(rel, stored, buf, og, &probe);
	if (p != nullptr)
	{
		crypto::count_cached_opens(c, 1);
		return member_tuple(stored, p, probe.plen);
	}
	return open_and_remember(rel, c, stored, buf, locked, og, &probe);
}

uint32
open_stored_into(Relation rel, const crypto::Cipher *c, HeapTuple stored, Buffer buf, bool locked,
				 OpenedGroups *og, char *dest, Size room)
{
	CacheProbe probe;
	og = the_groups(rel, og);
	uint32 hoff = stored->t_data->t_hoff;
	const char *p = probe_cache(rel, stored, buf, og, &probe);
	if (p != nullptr)
	{
		if (hoff + probe.plen > room)
			return 0;
		crypto::count_cached_opens(c, 1);
		memcpy(dest, stored->t_data, hoff);
		memcpy(dest + hoff, p, probe.plen);
		return hoff + probe.plen;
	}
	HeapTuple t = open_and_remember(rel, c, stored, buf, locked, og, &probe);
	uint32 len = t->t_len;
	if (len <= room)
		memcpy(dest, t->t_data, len);
	else
		len = 0;
	explicit_bzero(t->t_data, t->t_len);
	heap_freetuple(t);
	return len;
}

int
open_page_rows(Relation rel, const crypto::Cipher *c, Buffer buf, OpenedGroups *og, int n,
			   HeapTuple stored, HeapTuple *outs)
{
	using crypto::pagecache::kIdentBytes;
	static uint8 idents[MaxHeapTuplesPerPage][kIdentBytes]; /* rows sealed on their own */
	static uint8 seals[kGroupMaxSlots][kIdentBytes];        /* the page's groups */
	static const uint8 *ident_of[MaxHeapTuplesPerPage];
	uint64 copied = 0; /* slots whose seal is in seals[] */
	static_assert(kGroupMaxSlots <= 64, "copied is a bitmap of slots");
	static uint16 lens[MaxHeapTuplesPerPage];
	static OffsetNumber offs[MaxHeapTuplesPerPage];
	static char *dests[MaxHeapTuplesPerPage];
	static bool hit[MaxHeapTuplesPerPage];
	static bool member[MaxHeapTuplesPerPage];
	static int slots[MaxHeapTuplesPerPage];

	og = the_groups(rel, og);
	Page page = BufferGetPage(buf);
	BlockNumber blkno = storage::data_block(buf);
	crypto::pagecache::Image *img = nullptr;
	int m = 0; /* rows with an identity, identities in ident_of[] */
	int done = 0;

	Assert(n <= MaxHeapTuplesPerPage);
	if (og->mode != crypto::pagecache::Mode::Off && !RelationUsesLocalBuffers(rel))
	{
		/*
		 * the cache when the rows are many bytes (a bitmap scan's single
		 * row is not: as for a fetch); image_read_items looks the page up
		 * and decides whether its misses are kept, under one lock (a page
		 * neither cached nor admitted: image_add keeps nothing)
		 */
		Size bytes = 0;
		for (int i = 0; i < n; i++)
			bytes += stored[i].t_len - Min(stored[i].t_len, stored[i].t_data->t_hoff);
		if (bytes >= (Size) settings::tde_cache_min_read)
			img = cache_image(og);
	}
	int nslots = 0;
	const GroupEntry *table = storage::page_groups(page, &nslots);
	for (int i = 0; i < n; i++)
	{
		HeapTupleHeader t = stored[i].t_data;
		uint32 hoff = t->t_hoff;
		uint32 tlen = stored[i].t_len;
		/* the usual header of a row without nulls at a fixed size (no rep movs) */
		if (likely(hoff == MAXALIGN(SizeofHeapTupleHeader) && tlen >= hoff))
			memcpy(outs[i]->t_data, t, MAXALIGN(SizeofHeapTupleHeader));
		else
			memcpy(outs[i]->t_data, t, Min(hoff, tlen));
		dests[i] = (char *) outs[i]->t_data + hoff;
		offs[i] = ItemPointerGetOffsetNumber(&stored[i].t_self);
		hit[i] = false;
		lens[i] = UINT16_MAX; /* no identity: opened below, which reports why */
		slots[i] = 0;
		member[i] = false;
		if (hoff > tlen)
			continue;
		/* sealed_identity, with the page's group table looked up once */
		const uint8 *p = (const uint8 *) t + hoff;
		uint32 sealed = tlen - hoff;
		int ordinal;
		if (sealed >= kMemberHeaderBytes && decode_member(p, &slots[i], &ordinal))
		{
			member[i] = true;
			if (img == nullptr || table == nullptr || slots[i] >= nslots)
				continue;
			/* copied once per group: its members compare the same bytes */
			if (!(copied & (UINT64CONST(1) << slots[i])))
			{
				memcpy(seals[slots[i]], table[slots[i]].seal, kIdentBytes);
				copied |= UINT64CONST(1) << slots[i];
			}
			ident_of[i] = seals[slots[i]];
			lens[i] = (uint16) (sealed - kMemberHeaderBytes);
		}
		else
		{
			if (img == nullptr || sealed < crypto::kSealOverhead)
				continue;
			memcpy(idents[i], p, 20);
			memcpy(idents[i] + 20, p + sealed - 16, 16);
			ident_of[i] = idents[i];
			lens[i] = (uint16) (sealed - crypto::kSealOverhead);
		}
		m++;
	}
	if (img != nullptr && m > 0)
	{
		crypto::pagecache::image_enter(img, rel->rd_node, blkno, false);
		int hits = crypto::pagecache::image_read_items(img, n, offs, ident_of, lens, dests, hit);
		if (hits > 0)
			crypto::count_cached_opens(c, hits);
	}
	int added = -1; /* the row whose group was remembered last */
	for (int i = 0; i < n; i++)
	{
		outs[i]->t_self = stored[i].t_self;
		outs[i]->t_tableOid = stored[i].t_tableOid;
		if (hit[i])
		{
			outs[i]->t_len = stored[i].t_data->t_hoff + lens[i];
			done++;
			continue;
		}
		OffsetNumber off = offs[i];
		bool remember = img != nullptr && lens[i] != UINT16_MAX;
		if (!member[i])
		{
			/* opened straight into its place */
			crypto::open_tuple(c, &stored[i], outs[i], blkno);
			if (remember)
				crypto::pagecache::image_add(
					img, off, ident_of[i], (const char *) outs[i]->t_data + outs[i]->t_data->t_hoff,
					lens[i]);
			done++;
			continue;
		}
		const char *why = nullptr;
		const OpenedMember *mm = open_member(rel, c, &stored[i], page, buf, false, og, &why);
		if (mm == nullptr)
			bad_member(rel, blkno, off, why);
		uint32 hoff = stored[i].t_data->t_hoff;
		if (mm->len != stored[i].t_len - hoff - kMemberHeaderBytes)
			bad_member(rel, blkno, mm->off, "the member's length changed");
		memcpy(dests[i], og->plain + mm->start, mm->len);
		outs[i]->t_len = hoff + mm->len;
		/* the group's members, once per group (they follow each other) */
		if (remember && (added < 0 || memcmp(ident_of[added], ident_of[i], kIdentBytes) != 0))
		{
			const OpenedSlot *os = find_opened(og, slots[i]);
			if (os != nullptr && memcmp(os->entry.seal, ident_of[i], kIdentBytes) == 0)
				for (int k = 0; k < os->entry.nmembers; k++)
					crypto::pagecache::image_add(img, os->m[k].off, ident_of[i],
												 og->plain + os->m[k].start, os->m[k].len);
			added = i;
		}
		done++;
	}
	return done;
}

/* ========================================================================
 * Writing (COPY)
 * ========================================================================
 */

static int
free_slot(const GroupEntry *table, int nslots)
{
	if (table == nullptr)
		return -1;
	for (int s = 0; s < nslots; s++)
		if (table[s].nmembers == 0)
			return s;
	return -1;
}

/*
 * Append slot's new entry to group table changes (storage::apply_group_changes),
 * npayloads member payloads to follow; the first call starts the count.
 */
static void
note_entry(char *changes, Size *len, int slot, const GroupEntry *e, int npayloads)
{
	if (*len == 0)
	{
		changes[0] = 0;
		*len = 1;
	}
	changes[0]++;
	changes[*len] = (char) slot;
	changes[*len + 1] = (char) npayloads;
	memcpy(changes + *len + 2, e, sizeof(GroupEntry));
	*len += 2 + sizeof(GroupEntry);
}

int
place_sealed(Relation rel, const crypto::Cipher *c, Buffer buf, HeapTuple *tuples, int n, Size save,
			 int max_members, char *scratch, OffsetNumber *offs, char **changes, Size *changes_len)
{
	Page page = (Page) scratch;
	BlockNumber blkno = storage::data_block(buf);
	memcpy(scratch, BufferGetPage(buf), BLCKSZ);
	int nslots = 0;
	GroupEntry *table = storage::page_groups(page, &nslots);
	char *item = (char *) palloc(BLCKSZ);
	char *pt = nullptr, *ct = nullptr;
	int done = 0;

	*changes = (char *) palloc(1 + kGroupMaxSlots * (2 + sizeof(GroupEntry)));
	*changes_len = 0;

	auto placed = [&](int i, OffsetNumber off) {
		offs[i] = off;
		ItemPointerSet(&tuples[i]->t_self, blkno, off);
		((HeapTupleHeader) PageGetItem(page, PageGetItemId(page, off)))->t_ctid = tuples[i]->t_self;
	};

	while (done < n)
	{
		int slot = max_members > 1 ? free_slot(table, nslots) : -1;
		if (slot < 0)
		{
			/* no group slot left: sealed on its own (if it fits: no seal wasted) */
			Size sealed_len = crypto::sealed_size(tuples[done]->t_len);
			if (done > 0 && PageGetHeapFreeSpace(page) < MAXALIGN(sealed_len) + save)
				break;
			HeapTuple sealed = seal_for_page(c, tuples[done]);
			OffsetNumber off = PageAddItem(page, (Item) sealed->t_data, sealed->t_len,
										   InvalidOffsetNumber, false, true);
			pfree(sealed);
			if (off == InvalidOffsetNumber)
			{
				if (done == 0)
					elog(ERROR, "rustydb: no room for a new tuple on block %u", blkno);
				break;
			}
			placed(done, off);
			done++;
			continue;
		}

		/* a group: place the members with zeroed payloads, then seal them together */
		OffsetNumber moff[kGroupMaxMembers];
		int k = 0;
		while (done + k < n && k < Min(max_members, kGroupMaxMembers))
		{
			HeapTupleHeader h = tuples[done + k]->t_data;
			uint32 hoff = h->t_hoff;
			uint32 plen = tuples[done + k]->t_len - hoff;
			uint32 mlen = hoff + kMemberHeaderBytes + plen;
			if (done + k > 0 && PageGetHeapFreeSpace(page) < MAXALIGN(mlen) + save)
				break;
			memcpy(item, h, hoff);
			storage::member_header(slot, k, (uint8 *) item + hoff);
			memset(item + hoff + kMemberHeaderBytes, 0, plen);
			OffsetNumber off =
				PageAddItem(page, (Item) item, mlen, InvalidOffsetNumber, false, true);
			if (off == InvalidOffsetNumber)
			{
				if (done + k == 0)
					elog(ERROR, "rustydb: no room for a new tuple on block %u", blkno);
				break;
			}
			moff[k++] = off;
		}
		if (k == 0)
			break;
		if (pt == nullptr)
		{
			pt = (char *) palloc(BLCKSZ);
			ct = (char *) palloc(BLCKSZ);
		}
		Size total = 0;
		for (int i = 0; i < k; i++)
		{
			HeapTuple t = tuples[done + i];
			uint32 hoff = t->t_data->t_hoff;
			memcpy(pt + total, (char *) t->t_data + hoff, t->t_len - hoff);
			total += t->t_len - hoff;
		}
		GroupEntry e = seal_group(c, page, blkno, slot, moff, k, pt, total, ct);
		explicit_bzero(pt, total);
		Size pos = 0;
		for (int i = 0; i < k; i++)
		{
			auto *t = (HeapTupleHeader) PageGetItem(page, PageGetItemId(page, moff[i]));
			uint16 len = member_len(page, moff[i]);
			memcpy((char *) t + t->t_hoff + kMemberHeaderBytes, ct + pos, len);
			pos += len;
			placed(done + i, moff[i]);
		}
		table[slot] = e;
		note_entry(*changes, changes_len, slot, &e, 0);
		done += k;
	}
	pfree(item);
	if (pt != nullptr)
	{
		pfree(pt);
		pfree(ct);
	}
	return done;
}

/* ========================================================================
 * Pruning
 * ========================================================================
 */

bool
prepare_group_changes(Relation rel, const crypto::Cipher *c, Page page, BlockNumber blkno,
					  const bool *loses, char **changes, Size *changes_len)
{
	int nslots = 0;
	GroupEntry *table = storage::page_groups(page, &nslots);
	*changes = nullptr;
	*changes_len = 0;
	if (table == nullptr)
		return true;

	/* at most: the slot headers and every survivor's payload */
	char *out =
		(char *) palloc(1 + nslots * (2 + sizeof(GroupEntry)) + BLCKSZ + MaxHeapTuplesPerPage * 4);
	char *plain = nullptr, *ct = nullptr;
	Size len = 0;

	for (int slot = 0; slot < nslots; slot++)
	{
		const GroupEntry *e = &table[slot];
		if (e->nmembers == 0)
			continue;
		OffsetNumber moff[kGroupMaxMembers];
		const char *why = nullptr;
		if (!find_members(page, slot, e, moff, &why))
		{
			/* a damaged group: left as it is unless pruning would drop part of it */
			bool touched = false;
			for (OffsetNumber off = Max(e->first, FirstOffsetNumber);
				 off <= Min(e->last, PageGetMaxOffsetNumber(page)); off++)
				touched |= loses[off];
			if (touched)
				bad_member(rel, blkno, e->first, why);
			continue;
		}
		int n = e->nmembers, lost = 0;
		for (int i = 0; i < n; i++)
			lost += loses[moff[i]] ? 1 : 0;
		if (lost == 0)
			continue;
		if (lost == n)
		{
			GroupEntry freed;
			memset(&freed, 0, sizeof(freed));
			note_entry(out, &len, slot, &freed, 0);
			continue;
		}
		if (c == nullptr)
		{
			pfree(out);
			return false;
		}
		if (plain == nullptr)
		{
			plain = (char *) palloc(BLCKSZ);
			ct = (char *) palloc(BLCKSZ);
		}
		/* open the group as it is */
		uint8 ad[kMaxGroupAd];
		Size adlen = group_ad(page, blkno, slot, moff, n, ad);
		OpenedMember m[kGroupMaxMembers];
		Size total = gather(page, moff, n, ct, m);
		crypto::open_detached(c, e->seal, ct, total, ad, adlen, plain, blkno);

		/* the survivors, in their old order, as a new group with a fresh nonce */
		OffsetNumber soff[kGroupMaxMembers];
		int ns = 0;
		Size stotal = 0;
		for (int i = 0; i < n; i++)
		{
			if (loses[moff[i]])
				continue;
			soff[ns++] = moff[i];
			memmove(plain + stotal, plain + m[i].start, m[i].len);
			stotal += m[i].len;
		}
		/* survivors' member headers change their ordinal: not in the AD, which orders them */
		GroupEntry ne = seal_group(c, page, blkno, slot, soff, ns, plain, stotal, ct);
		explicit_bzero(plain, BLCKSZ);
		note_entry(out, &len, slot, &ne, ns);
		Size pos = 0;
		for (int i = 0; i < ns; i++)
		{
			uint16 mlen = member_len(page, soff[i]);
			uint16 plen = (uint16) (kMemberHeaderBytes + mlen);
			memcpy(out + len, &soff[i], sizeof(OffsetNumber));
			memcpy(out + len + 2, &plen, sizeof(plen));
			storage::member_header(slot, i, (uint8 *) out + len + 4);
			memcpy(out + len + 6, ct + pos, mlen);
			pos += mlen;
			len += 4 + plen;
		}
	}
	if (plain != nullptr)
	{
		pfree(plain);
		pfree(ct);
	}
	if (len == 0)
	{
		pfree(out);
		return true;
	}
	*changes = out;
	*changes_len = len;
	return true;
}

/* ========================================================================
 * Verification
 * ========================================================================
 */

HeapTuple
try_open_member(Relation rel, const crypto::Cipher *c, HeapTuple stored, Buffer buf,
				OpenedGroups *og, const char **why)
{
	const OpenedMember *m = open_member(rel, c, stored, BufferGetPage(buf), buf, true, og, why);
	if (m == nullptr)
		return nullptr;
	if (m->len != stored->t_len - stored->t_data->t_hoff - kMemberHeaderBytes)
	{
		*why = "the member's length changed";
		return nullptr;
	}
	return member_tuple(stored, og->plain + m->start, m->len);
}

} /* namespace rustydb::am */

/*-------------------------------------------------------------------------
 *
 * pagecache.cpp
 *	  The shared cache of opened payloads (see pagecache.h, docs/tde.md).
 *
 * Shared memory: nslots entries of BLCKSZ bytes each, a chained hash table
 * of (RelFileNode, block) keys whose buckets are split over kPartitions
 * LWLocks (the partition lock of a bucket protects its chain and the
 * contents of the entries on it), and a clock sweep with usage counts
 * for replacement. An entry's state is FREE, VALID (on a chain) or BUSY
 * (claimed by one backend, on no chain).
 *
 * An entry (and a backend's Image) is laid out like a small page: a
 * 4-byte head, items from the front (offset, length, where its plaintext
 * and its identity are), plaintexts and identities from the back.
 *
 * Admission: a read that misses does not fill the cache unless it is the
 * second miss of the same thing within a window. A table of 32-bit
 * fingerprints (nghosts, sets of kGhostWays per bucket) remembers the last
 * misses that were not admitted: a page without an entry for the Pages
 * mode, an item (page and seal) for the Items mode. A miss whose
 * fingerprint is there is admitted; otherwise it is written there and the
 * reader opens what it needs without copying it anywhere. Newer misses
 * overwrite older ones, which is the window. Bulk reads (Ring) and pages
 * that already have an entry are always admitted. The table holds no
 * plaintext, only hashes of page numbers and of 4 bytes of a seal's tag;
 * a wrong answer only admits or refuses an entry, never serves one.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/crypto/pagecache.h"

#include "rustydb/common/boundary.h"
#include "rustydb/common/settings.h"
#include "rustydb/common/shmem.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/htup_details.h"
#include "common/hashfn.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "port/atomics.h"
#include "storage/bufmgr.h"
#include "storage/lwlock.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"
RUSTYDB_PG_INCLUDE_END

#include <cstring>

namespace rustydb {
namespace crypto {
namespace pagecache {

namespace {

constexpr int kPartitions = 64;
constexpr uint32 kMaxUsage = 5;
constexpr int kRingSize = 16;
constexpr int kGhostWays = 4; /* refused misses remembered: kGhostWays x buckets */
constexpr Size kBlock = BLCKSZ;

enum : uint32
{
	kFree = 0,
	kValid = 1,
	kBusy = 2
};

struct Head
{
	uint16 nitems;
	uint16 data_start; /* plaintexts and identities occupy [data_start, kBlock) */
};

struct Item
{
	uint16 off;
	uint16 len;
	uint16 start; /* plaintext at block + start */
	uint16 ident; /* identity at block + ident */
};

constexpr Size kItemsAt = sizeof(Head);

struct Key
{
	RelFileNode node;
	BlockNumber blkno;
};

struct Slot
{
	Key key;
	uint32 hash;
	int32 next; /* chain, -1 at the end */
	pg_atomic_uint32 state;
	pg_atomic_uint32 usage;
	uint32 bytes; /* head and items */
};

struct Shared
{
	int32 nslots;
	uint32 nbuckets; /* a power of 2 */
	uint32 nghosts;  /* a power of 2 */
	pg_atomic_uint32 hand;
	pg_atomic_uint32 nvalid;
	pg_atomic_uint32 high_water;
	pg_atomic_uint64 hits;
	pg_atomic_uint64 misses;
	pg_atomic_uint64 inserts;
	pg_atomic_uint64 evictions;
	pg_atomic_uint64 invalidations;
	pg_atomic_uint64 used_bytes;
};

Shared *shared = nullptr;
int32 *buckets = nullptr;
pg_atomic_uint32 *ghosts = nullptr;
Slot *slots = nullptr;
char *blocks = nullptr;
LWLockPadded *locks = nullptr;

/* ---- sizing ---- */

Size
cache_bytes()
{
	int64 kb = settings::tde_cache_size;
	if (kb < 0)
	{
		bool provider = (settings::keyring_file != nullptr && settings::keyring_file[0] != '\0') ||
						(settings::key_command != nullptr && settings::key_command[0] != '\0');
		return provider ? static_cast<Size>(NBuffers) * BLCKSZ / 4 : 0;
	}
	return static_cast<Size>(kb) * 1024;
}

int32
slot_count()
{
	return static_cast<int32>(Min(cache_bytes() / kBlock, (Size) (PG_INT32_MAX / 2)));
}

uint32
bucket_count(int32 nslots)
{
	uint32 n = 1;
	while (n < static_cast<uint32>(Max(nslots, 1)))
		n <<= 1;
	return n;
}

uint32
ghost_count(int32 nslots)
{
	return bucket_count(nslots) * kGhostWays;
}

Size
header_bytes(int32 nslots)
{
	return TYPEALIGN(64, MAXALIGN(sizeof(Shared)) + MAXALIGN(bucket_count(nslots) * sizeof(int32)) +
							 MAXALIGN(ghost_count(nslots) * sizeof(pg_atomic_uint32)) +
							 MAXALIGN(static_cast<Size>(nslots) * sizeof(Slot)));
}

Size
segment_size()
{
	int32 n = slot_count();
	return header_bytes(n) + static_cast<Size>(n) * kBlock + 64;
}

void
segment_init(void *ptr, bool found, LWLockPadded *lw)
{
	shared = static_cast<Shared *>(ptr);
	locks = lw;
	int32 n = found ? shared->nslots : slot_count();
	char *p = static_cast<char *>(ptr) + MAXALIGN(sizeof(Shared));
	buckets = reinterpret_cast<int32 *>(p);
	p += MAXALIGN(bucket_count(n) * sizeof(int32));
	ghosts = reinterpret_cast<pg_atomic_uint32 *>(p);
	p += MAXALIGN(ghost_count(n) * sizeof(pg_atomic_uint32));
	slots = reinterpret_cast<Slot *>(p);
	blocks = static_cast<char *>(ptr) + header_bytes(n);
	if (found)
		return;
	memset(shared, 0, sizeof(Shared));
	shared->nslots = n;
	shared->nbuckets = bucket_count(n);
	shared->nghosts = ghost_count(n);
	pg_atomic_init_u32(&shared->hand, 0);
	pg_atomic_init_u32(&shared->nvalid, 0);
	pg_atomic_init_u32(&shared->high_water, 0);
	pg_atomic_init_u64(&shared->hits, 0);
	pg_atomic_init_u64(&shared->misses, 0);
	pg_atomic_init_u64(&shared->inserts, 0);
	pg_atomic_init_u64(&shared->evictions, 0);
	pg_atomic_init_u64(&shared->invalidations, 0);
	pg_atomic_init_u64(&shared->used_bytes, 0);
	for (uint32 b = 0; b < shared->nbuckets; b++)
		buckets[b] = -1;
	for (uint32 g = 0; g < shared->nghosts; g++)
		pg_atomic_init_u32(&ghosts[g], 0);
	for (int32 i = 0; i < n; i++)
	{
		memset(&slots[i], 0, sizeof(Slot));
		slots[i].next = -1;
		pg_atomic_init_u32(&slots[i].state, kFree);
		pg_atomic_init_u32(&slots[i].usage, 0);
	}
}

void
segment_usage(const void *ptr, shmem::Usage *out)
{
	auto *s = static_cast<const Shared *>(ptr);
	out->entries = pg_atomic_read_u32(const_cast<pg_atomic_uint32 *>(&s->nvalid));
	out->limit = s->nslots;
	out->high_water = pg_atomic_read_u32(const_cast<pg_atomic_uint32 *>(&s->high_water));
	out->limit_setting = "rustydb.tde_cache_size";
}

/* ---- the hash table (partition lock of the bucket held) ---- */

inline uint32
key_hash(const Key &k)
{
	return hash_bytes(reinterpret_cast<const unsigned char *>(&k), sizeof(Key));
}

inline uint32
bucket_of(uint32 hash)
{
	return hash & (shared->nbuckets - 1);
}

inline LWLock *
lock_of(uint32 hash)
{
	return &locks[bucket_of(hash) % kPartitions].lock;
}

/* Two identities are equal (36 bytes: four 8-byte words and one 4-byte word). */
inline bool
ident_equal(const void *a, const void *b)
{
	uint64 x[4], y[4];
	uint32 u, v;
	memcpy(x, a, 32);
	memcpy(y, b, 32);
	memcpy(&u, static_cast<const char *>(a) + 32, 4);
	memcpy(&v, static_cast<const char *>(b) + 32, 4);
	return ((x[0] ^ y[0]) | (x[1] ^ y[1]) | (x[2] ^ y[2]) | (x[3] ^ y[3]) | (u ^ v)) == 0;
}
static_assert(kIdentBytes == 36, "ident_equal compares 36 bytes");

inline bool
key_equal(const Key &a, const Key &b)
{
	return a.blkno == b.blkno && RelFileNodeEquals(a.node, b.node);
}

int32
find(const Key &k, uint32 hash)
{
	for (int32 i = buckets[bucket_of(hash)]; i >= 0; i = slots[i].next)
		if (slots[i].hash == hash && key_equal(slots[i].key, k))
			return i;
	return -1;
}

/*
 * The bucket of hash is empty (read without its lock: a concurrent insert
 * may be missed, which only costs a hit).
 */
inline bool
bucket_empty(uint32 hash)
{
	return *reinterpret_cast<volatile int32 *>(&buckets[bucket_of(hash)]) < 0;
}

/* ---- admission (see the file header) ---- */

/*
 * A miss of what fp stands for: whether it is admitted (fp is among the
 * refused misses remembered in its set of kGhostWays), else remembered
 * for next time in an empty way of the set, else one picked at random (a
 * fixed choice would
 * let misses that share a set push each other out on every pass of a
 * scan, and never be admitted).
 */
bool
second_miss(uint32 fp)
{
	static uint32 turn = 0;
	pg_atomic_uint32 *set = &ghosts[(fp & (shared->nghosts / kGhostWays - 1)) * kGhostWays];
	fp |= 1; /* 0 is an empty way */
	int empty = -1;
	for (int w = 0; w < kGhostWays; w++)
	{
		uint32 v = pg_atomic_read_u32(&set[w]);
		if (v == fp)
			return true;
		if (v == 0 && empty < 0)
			empty = w;
	}
	turn += 0x9E3779B9u;
	pg_atomic_write_u32(&set[empty >= 0 ? empty : (turn >> 30) % kGhostWays], fp);
	return false;
}

/* The fingerprint of an item: its page's hash and the tag part of its identity. */
inline uint32
item_fingerprint(uint32 page_hash, const uint8 *ident)
{
	uint32 tag;
	memcpy(&tag, ident + kIdentBytes - 16, sizeof(tag));
	return page_hash ^ (tag * 0x9E3779B1u);
}

void
unlink_slot(int32 s)
{
	int32 *p = &buckets[bucket_of(slots[s].hash)];
	while (*p >= 0 && *p != s)
		p = &slots[*p].next;
	if (*p == s)
		*p = slots[s].next;
	slots[s].next = -1;
}

inline char *
block_of(int32 s)
{
	return blocks + static_cast<Size>(s) * kBlock;
}

inline uint32
used_of(const char *block)
{
	auto *h = reinterpret_cast<const Head *>(block);
	return static_cast<uint32>(kItemsAt + h->nitems * sizeof(Item) + (kBlock - h->data_start));
}

/* Take slot s off its chain (its partition lock held, state VALID): it becomes BUSY. */
void
take_valid(int32 s)
{
	unlink_slot(s);
	pg_atomic_write_u32(&slots[s].state, kBusy);
	pg_atomic_sub_fetch_u32(&shared->nvalid, 1);
	pg_atomic_sub_fetch_u64(&shared->used_bytes, used_of(block_of(s)));
}

/*
 * Try to claim slot s whose key was k (hash) for reuse: conditional on its
 * partition lock, still VALID with that key, and its usage at most
 * max_usage.
 */
bool
try_evict(int32 s, const Key *k, uint32 max_usage)
{
	uint32 hash = slots[s].hash;
	LWLock *lock = lock_of(hash);
	if (!LWLockConditionalAcquire(lock, LW_EXCLUSIVE))
		return false;
	bool ok = pg_atomic_read_u32(&slots[s].state) == kValid && slots[s].hash == hash &&
			  (k == nullptr || key_equal(slots[s].key, *k)) &&
			  pg_atomic_read_u32(&slots[s].usage) <= max_usage;
	if (ok)
		take_valid(s);
	LWLockRelease(lock);
	if (ok)
		pg_atomic_fetch_add_u64(&shared->evictions, 1);
	return ok;
}

/* A BUSY slot for a new entry by the clock sweep, or -1 (give up: not cached). */
int32
claim()
{
	int32 n = shared->nslots;
	for (int64 step = 0; step < static_cast<int64>(n) * (kMaxUsage + 2); step++)
	{
		int32 s = static_cast<int32>(pg_atomic_fetch_add_u32(&shared->hand, 1) % n);
		uint32 st = pg_atomic_read_u32(&slots[s].state);
		if (st == kFree)
		{
			uint32 expected = kFree;
			if (pg_atomic_compare_exchange_u32(&slots[s].state, &expected, kBusy))
				return s;
			continue;
		}
		if (st != kValid)
			continue;
		uint32 u = pg_atomic_read_u32(&slots[s].usage);
		if (u > 0)
		{
			pg_atomic_compare_exchange_u32(&slots[s].usage, &u, u - 1);
			continue;
		}
		if (try_evict(s, nullptr, 0))
			return s;
	}
	return -1;
}

/* ---- backend scratch ---- */

char scratch[kBlock] alignas(8);

} /* namespace */

/* ========================================================================
 * Images
 * ========================================================================
 */

struct Ring
{
	int n;
	int pos;
	int32 slot[kRingSize];
	Key key[kRingSize];
};

struct Image
{
	Mode mode;
	bool valid;
	bool dirty;
	bool admit; /* image_add keeps what it is given (Pages: this page; Items: the last miss) */
	Key key;
	uint32 hash;
	uint16 last_ident; /* identity added last (members of one group share it), 0: none */
	int64 hits;
	int64 misses;
	Ring ring;
	uint16 map[MaxHeapTuplesPerPage + 1]; /* offset -> item + 1 */
	alignas(8) char block[kBlock];
};

namespace {

inline Head *
head(char *block)
{
	return reinterpret_cast<Head *>(block);
}

inline Item *
items(char *block)
{
	return reinterpret_cast<Item *>(block + kItemsAt);
}

inline Size
free_bytes(char *block)
{
	Head *h = head(block);
	return h->data_start - (kItemsAt + h->nitems * sizeof(Item));
}

void
block_reset(char *block)
{
	head(block)->nitems = 0;
	head(block)->data_start = kBlock;
}

/*
 * Zero block. The bytes between the items and data_start of a block are
 * zero (blocks are filled by block_copy or block_add onto a wiped or reset
 * block), so only the used parts are wiped, unless the head is not a
 * valid layout (a slot never used: all of it).
 */
void
wipe_block(char *block)
{
	Head *h = head(block);
	Size items_end = kItemsAt + static_cast<Size>(h->nitems) * sizeof(Item);
	if (h->data_start < items_end || h->data_start > kBlock)
	{
		explicit_bzero(block, kBlock);
		return;
	}
	explicit_bzero(block + h->data_start, kBlock - h->data_start);
	explicit_bzero(block, items_end);
}

void
map_clear(Image *img)
{
	Head *h = head(img->block);
	Item *it = items(img->block);
	for (int i = 0; i < h->nitems; i++)
		if (it[i].off <= MaxHeapTuplesPerPage)
			img->map[it[i].off] = 0;
}

void
map_build(Image *img)
{
	Head *h = head(img->block);
	Item *it = items(img->block);
	for (int i = 0; i < h->nitems; i++)
		if (it[i].off >= FirstOffsetNumber && it[i].off <= MaxHeapTuplesPerPage)
			img->map[it[i].off] = static_cast<uint16>(i + 1);
}

/* Append an item to block (map and last_ident of img if given); false if no room. */
bool
block_add(char *block, uint16 *last_ident, OffsetNumber off, const uint8 *ident, const char *plain,
		  uint16 len)
{
	Head *h = head(block);
	bool reuse = *last_ident != 0 && ident_equal(block + *last_ident, ident);
	Size need = sizeof(Item) + len + (reuse ? 0 : kIdentBytes);
	if (free_bytes(block) < need)
		return false;
	if (!reuse)
	{
		h->data_start -= kIdentBytes;
		memcpy(block + h->data_start, ident, kIdentBytes);
		*last_ident = h->data_start;
	}
	h->data_start -= len;
	memcpy(block + h->data_start, plain, len);
	items(block)[h->nitems++] = Item{off, len, h->data_start, *last_ident};
	return true;
}

/* Keep only the items the map points to. */
void
compact(Image *img)
{
	char *from = img->block;
	Head *h = head(from);
	Item *it = items(from);
	block_reset(scratch);
	uint16 last = 0;
	for (int i = 0; i < h->nitems; i++)
		if (img->map[it[i].off] == i + 1)
			block_add(scratch, &last, it[i].off, (const uint8 *) from + it[i].ident,
					  from + it[i].start, it[i].len);
	map_clear(img);
	memcpy(img->block, scratch, kItemsAt + head(scratch)->nitems * sizeof(Item));
	memcpy(img->block + head(scratch)->data_start, scratch + head(scratch)->data_start,
		   kBlock - head(scratch)->data_start);
	wipe_block(scratch);
	img->last_ident = 0;
	map_build(img);
}

/* Copy block from (a valid layout) into to. */
void
block_copy(char *to, const char *from)
{
	auto *h = reinterpret_cast<const Head *>(from);
	memcpy(to, from, kItemsAt + h->nitems * sizeof(Item));
	memcpy(to + h->data_start, from + h->data_start, kBlock - h->data_start);
}

void
flush_stats(Image *img)
{
	if (img->hits > 0)
		pg_atomic_fetch_add_u64(&shared->hits, img->hits);
	if (img->misses > 0)
		pg_atomic_fetch_add_u64(&shared->misses, img->misses);
	img->hits = img->misses = 0;
}

inline void
touch(int32 s)
{
	uint32 u = pg_atomic_read_u32(&slots[s].usage);
	if (u < kMaxUsage)
		pg_atomic_compare_exchange_u32(&slots[s].usage, &u, u + 1);
}

/* The newest item of each offset of the entry at block (index + 1) into smap. */
uint16 smap[MaxHeapTuplesPerPage + 1];

void
entry_map(char *block)
{
	Head *h = head(block);
	Item *it = items(block);
	memset(smap, 0, sizeof(smap));
	for (int i = 0; i < h->nitems; i++)
		if (it[i].off <= MaxHeapTuplesPerPage)
			smap[it[i].off] = static_cast<uint16>(i + 1);
}

/* Merge img's live items into the entry at block (exclusive lock held) through scratch. */
void
merge_into(char *block, Image *img)
{
	/* the entry's items, newest per offset, then img's where different */
	Item *it = items(block);
	entry_map(block);
	block_reset(scratch);
	uint16 last = 0;
	bool fits = true;
	Head *ih = head(img->block);
	Item *iit = items(img->block);
	for (int i = 0; i < ih->nitems && fits; i++)
	{
		if (img->map[iit[i].off] != i + 1)
			continue;
		fits = block_add(scratch, &last, iit[i].off, (const uint8 *) img->block + iit[i].ident,
						 img->block + iit[i].start, iit[i].len);
	}
	for (OffsetNumber off = FirstOffsetNumber; off <= MaxHeapTuplesPerPage && fits; off++)
	{
		int i = smap[off] - 1;
		if (i < 0 || img->map[off] != 0)
			continue;
		fits = block_add(scratch, &last, off, (const uint8 *) block + it[i].ident,
						 block + it[i].start, it[i].len);
	}
	/* whatever did not fit is left out: the entry is a cache */
	pg_atomic_sub_fetch_u64(&shared->used_bytes, used_of(block));
	wipe_block(block);
	block_copy(block, scratch);
	pg_atomic_add_fetch_u64(&shared->used_bytes, used_of(block));
	wipe_block(scratch);
}

/*
 * Append img's live items that the entry at block (exclusive lock held)
 * does not hold with the same identity, in place: a later item of an
 * offset supersedes an earlier one for every reader (the newest wins), so
 * the entry is not rebuilt. False, and nothing changed, if they do not all
 * fit (merge_into rebuilds it then, dropping superseded items).
 */
bool
append_into(char *block, Image *img)
{
	Item *it = items(block);
	entry_map(block);
	Head *ih = head(img->block);
	Item *iit = items(img->block);
	auto is_new = [&](int i) {
		if (img->map[iit[i].off] != i + 1)
			return false;
		int e = smap[iit[i].off] - 1;
		return e < 0 || it[e].len != iit[i].len ||
			   !ident_equal(block + it[e].ident, img->block + iit[i].ident);
	};
	/* room: every new item with its own identity at most */
	Size need = 0;
	for (int i = 0; i < ih->nitems; i++)
		if (is_new(i))
			need += sizeof(Item) + iit[i].len + kIdentBytes;
	if (need == 0)
		return true;
	if (need > free_bytes(block))
		return false;
	uint32 before = used_of(block);
	uint16 last = 0;
	for (int i = 0; i < ih->nitems; i++)
		if (is_new(i))
			block_add(block, &last, iit[i].off, (const uint8 *) img->block + iit[i].ident,
					  img->block + iit[i].start, iit[i].len);
	pg_atomic_add_fetch_u64(&shared->used_bytes, used_of(block) - before);
	return true;
}

void
ring_note(Image *img, int32 s)
{
	Ring *r = &img->ring;
	if (r->n < kRingSize)
	{
		r->slot[r->n] = s;
		r->key[r->n++] = img->key;
		return;
	}
	r->slot[r->pos] = s;
	r->key[r->pos] = img->key;
	r->pos = (r->pos + 1) % kRingSize;
}

/* A slot for img's new entry: its ring's oldest (a bulk read) or the clock's. */
int32
claim_for(Image *img)
{
	Ring *r = &img->ring;
	if (img->mode == Mode::Ring && r->n == kRingSize)
	{
		int32 s = r->slot[r->pos];
		if (try_evict(s, &r->key[r->pos], 1))
			return s;
	}
	return claim();
}

void
publish(Image *img)
{
	if (!img->dirty || shared == nullptr || shared->nslots == 0)
		return;
	img->dirty = false;
	if (head(img->block)->nitems == 0)
		return;
	LWLock *lock = lock_of(img->hash);
	LWLockAcquire(lock, LW_EXCLUSIVE);
	int32 s = find(img->key, img->hash);
	if (s >= 0)
	{
		/* a Pages image holds the entry as loaded: its items come first either way */
		if (!append_into(block_of(s), img))
			merge_into(block_of(s), img);
		LWLockRelease(lock);
		return;
	}
	LWLockRelease(lock);

	int32 v = claim_for(img);
	if (v < 0)
		return;
	/* BUSY: ours alone */
	char *block = block_of(v);
	wipe_block(block);
	block_copy(block, img->block);
	slots[v].key = img->key;
	slots[v].hash = img->hash;
	slots[v].next = -1;
	pg_atomic_write_u32(&slots[v].usage, img->mode == Mode::Ring ? 0 : 1);

	LWLockAcquire(lock, LW_EXCLUSIVE);
	if (find(img->key, img->hash) >= 0)
	{
		/* another backend was quicker */
		LWLockRelease(lock);
		wipe_block(block);
		pg_atomic_write_u32(&slots[v].state, kFree);
		return;
	}
	int32 *b = &buckets[bucket_of(img->hash)];
	slots[v].next = *b;
	*b = v;
	pg_atomic_write_u32(&slots[v].state, kValid);
	uint32 nvalid = pg_atomic_add_fetch_u32(&shared->nvalid, 1);
	pg_atomic_add_fetch_u64(&shared->used_bytes, used_of(block));
	LWLockRelease(lock);
	pg_atomic_fetch_add_u64(&shared->inserts, 1);
	uint32 hw = pg_atomic_read_u32(&shared->high_water);
	while (nvalid > hw && !pg_atomic_compare_exchange_u32(&shared->high_water, &hw, nvalid))
	{}
	if (img->mode == Mode::Ring)
		ring_note(img, v);
}

/*
 * Whether what a Pages image opens on its page is kept: always when the
 * page has an entry (found) or in a bulk read, else on the page's second
 * miss.
 */
void
decide_page(Image *img, bool found)
{
	if (found || img->mode == Mode::Ring)
		img->admit = true;
	else if (!img->admit && img->mode == Mode::Pages)
		img->admit = second_miss(img->hash);
}

/* Pages modes: the shared entry of img's page into img. */
void
load(Image *img)
{
	int32 s = -1;
	if (!bucket_empty(img->hash))
	{
		LWLock *lock = lock_of(img->hash);
		LWLockAcquire(lock, LW_SHARED);
		s = find(img->key, img->hash);
		if (s >= 0)
			block_copy(img->block, block_of(s));
		LWLockRelease(lock);
	}
	decide_page(img, s >= 0);
	if (s < 0)
		return;
	touch(s);
	map_build(img);
}

/* Items mode: the item at off with identity ident from the shared entry into img. */
const char *
fetch_item(Image *img, OffsetNumber off, const uint8 *ident, uint16 *len)
{
	if (bucket_empty(img->hash))
		return nullptr;
	LWLock *lock = lock_of(img->hash);
	const char *out = nullptr;
	LWLockAcquire(lock, LW_SHARED);
	int32 s = find(img->key, img->hash);
	if (s >= 0)
	{
		char *block = block_of(s);
		Head *h = head(block);
		Item *it = items(block);
		for (int i = h->nitems - 1; i >= 0; i--)
		{
			if (it[i].off != off)
				continue;
			if (ident_equal(block + it[i].ident, ident) &&
				(free_bytes(img->block) >= sizeof(Item) + it[i].len + kIdentBytes ||
				 (compact(img), free_bytes(img->block) >= sizeof(Item) + it[i].len + kIdentBytes)))
			{
				block_add(img->block, &img->last_ident, off, ident, block + it[i].start, it[i].len);
				int n = head(img->block)->nitems;
				img->map[off] = static_cast<uint16>(n);
				Item *mine = &items(img->block)[n - 1];
				out = img->block + mine->start;
				*len = mine->len;
			}
			break;
		}
	}
	LWLockRelease(lock);
	if (out != nullptr)
		touch(s);
	return out;
}

void
evict_where(bool (*match)(const Slot &, const void *), const void *arg)
{
	if (shared == nullptr)
		return;
	int64 n = 0;
	for (int32 s = 0; s < shared->nslots; s++)
	{
		if (pg_atomic_read_u32(&slots[s].state) != kValid || !match(slots[s], arg))
			continue;
		LWLock *lock = lock_of(slots[s].hash);
		LWLockAcquire(lock, LW_EXCLUSIVE);
		bool ok = pg_atomic_read_u32(&slots[s].state) == kValid && match(slots[s], arg);
		if (ok)
		{
			take_valid(s);
			wipe_block(block_of(s));
			pg_atomic_write_u32(&slots[s].state, kFree);
			n++;
		}
		LWLockRelease(lock);
	}
	if (n > 0)
		pg_atomic_fetch_add_u64(&shared->invalidations, n);
}

bool
match_node(const Slot &s, const void *arg)
{
	return RelFileNodeEquals(s.key.node, *static_cast<const RelFileNode *>(arg));
}

bool
match_all(const Slot &, const void *)
{
	return true;
}

} /* namespace */

/* ========================================================================
 * Interface
 * ========================================================================
 */

void
register_segment()
{
	shmem::register_segment(
		{"rustydb tde cache", segment_size, kPartitions, segment_init, segment_usage});
}

bool
enabled()
{
	return shared != nullptr && shared->nslots > 0;
}

Mode
mode_for(Relation rel, bool whole_pages, BlockNumber nblocks)
{
	if (!enabled() || RelationUsesLocalBuffers(rel))
		return Mode::Off;
	if (!whole_pages)
		return Mode::Items;
	/* a relation larger than the cache would flush it: it reuses its own entries */
	return nblocks > static_cast<BlockNumber>(shared->nslots) ? Mode::Ring : Mode::Pages;
}

Image *
image_create(MemoryContext cxt, Mode mode)
{
	if (mode == Mode::Off)
		return nullptr;
	auto *img = static_cast<Image *>(MemoryContextAlloc(cxt, sizeof(Image)));
	img->mode = mode;
	img->valid = false;
	img->dirty = false;
	img->admit = false;
	img->hits = img->misses = 0;
	img->last_ident = 0;
	img->ring.n = img->ring.pos = 0;
	memset(img->map, 0, sizeof(img->map));
	block_reset(img->block);
	return img;
}

Mode
image_mode(const Image *img)
{
	return img == nullptr ? Mode::Off : img->mode;
}

void
image_free(Image *img)
{
	if (img == nullptr)
		return;
	publish(img);
	flush_stats(img);
	/* only the used part holds plaintext */
	Head *h = head(img->block);
	explicit_bzero(img->block + h->data_start, kBlock - h->data_start);
	pfree(img);
}

void
image_enter(Image *img, const RelFileNode &node, BlockNumber blkno, bool load_entry)
{
	if (img->valid && img->key.blkno == blkno && RelFileNodeEquals(img->key.node, node))
		return;
	if (img->valid)
	{
		publish(img);
		flush_stats(img);
		map_clear(img);
		/* only the used part holds plaintext */
		Head *h = head(img->block);
		explicit_bzero(img->block + h->data_start, kBlock - h->data_start);
	}
	block_reset(img->block);
	img->last_ident = 0;
	memset(&img->key, 0, sizeof(Key));
	img->key.node = node;
	img->key.blkno = blkno;
	img->hash = key_hash(img->key);
	img->valid = true;
	img->dirty = false;
	img->admit = img->mode == Mode::Ring;
	if (load_entry && (img->mode == Mode::Pages || img->mode == Mode::Ring))
		load(img);
}

const char *
image_lookup(Image *img, OffsetNumber off, const uint8 *ident, uint16 *len)
{
	Assert(img->valid);
	if (off < FirstOffsetNumber || off > MaxHeapTuplesPerPage)
		return nullptr;
	int i = img->map[off] - 1;
	if (i >= 0)
	{
		Item *it = &items(img->block)[i];
		if (ident_equal(img->block + it->ident, ident))
		{
			img->hits++;
			*len = it->len;
			return img->block + it->start;
		}
	}
	if (img->mode == Mode::Items)
	{
		const char *p = fetch_item(img, off, ident, len);
		if (p != nullptr)
		{
			img->hits++;
			return p;
		}
		/* what the caller opens next is kept on the item's second miss */
		img->admit = second_miss(item_fingerprint(img->hash, ident));
	}
	img->misses++;
	return nullptr;
}

void
image_add(Image *img, OffsetNumber off, const uint8 *ident, const char *plain, uint16 len)
{
	Assert(img->valid);
	if (!img->admit || off < FirstOffsetNumber || off > MaxHeapTuplesPerPage)
		return;
	if (!block_add(img->block, &img->last_ident, off, ident, plain, len))
	{
		compact(img);
		if (!block_add(img->block, &img->last_ident, off, ident, plain, len))
			return;
	}
	img->map[off] = head(img->block)->nitems;
	img->dirty = true;
}

int
image_read_items(Image *img, int n, const OffsetNumber *offs, const uint8 *const *idents,
				 const uint16 *lens, char *const *dests, bool *hit)
{
	uint16 map[MaxHeapTuplesPerPage + 1];
	int hits = 0;

	Assert(img->valid);
	memset(hit, 0, n * sizeof(bool));
	if (bucket_empty(img->hash))
	{
		decide_page(img, false);
		/* a page neither cached nor admitted: only remembered, not counted */
		if (img->admit)
			img->misses += n;
		return 0;
	}
	LWLock *lock = lock_of(img->hash);
	LWLockAcquire(lock, LW_SHARED);
	int32 s = find(img->key, img->hash);
	if (s >= 0)
	{
		char *block = block_of(s);
		Head *h = head(block);
		Item *it = items(block);
		memset(map, 0, sizeof(map));
		for (int i = 0; i < h->nitems; i++)
			if (it[i].off <= MaxHeapTuplesPerPage)
				map[it[i].off] = static_cast<uint16>(i + 1);
		/* the last pair of identities found equal (a group's members share theirs) */
		uint16 same_entry = 0;
		const uint8 *same_row = nullptr;
		for (int k = 0; k < n; k++)
		{
			if (offs[k] > MaxHeapTuplesPerPage || map[offs[k]] == 0)
				continue;
			const Item *e = &it[map[offs[k]] - 1];
			if (e->len != lens[k])
				continue;
			if (e->ident != same_entry || idents[k] != same_row)
			{
				if (!ident_equal(block + e->ident, idents[k]))
					continue;
				same_entry = e->ident;
				same_row = idents[k];
			}
			memcpy(dests[k], block + e->start, e->len);
			hit[k] = true;
			hits++;
		}
	}
	LWLockRelease(lock);
	decide_page(img, s >= 0);
	if (s < 0 && !img->admit)
		return 0;
	if (s >= 0 && hits > 0)
		touch(s);
	img->hits += hits;
	img->misses += n - hits;
	return hits;
}

void
forget_node(const RelFileNode &node)
{
	evict_where(match_node, &node);
}

void
forget_all()
{
	evict_where(match_all, nullptr);
	/* and the misses remembered for admission: as after a restart */
	if (shared != nullptr)
		for (uint32 g = 0; g < shared->nghosts; g++)
			pg_atomic_write_u32(&ghosts[g], 0);
}

bool
stats(Stats *out)
{
	if (shared == nullptr)
		return false;
	out->size_bytes = static_cast<int64>(shared->nslots) * static_cast<int64>(kBlock);
	out->slots = shared->nslots;
	out->used_slots = pg_atomic_read_u32(&shared->nvalid);
	out->used_bytes = static_cast<int64>(pg_atomic_read_u64(&shared->used_bytes));
	out->hits = static_cast<int64>(pg_atomic_read_u64(&shared->hits));
	out->misses = static_cast<int64>(pg_atomic_read_u64(&shared->misses));
	out->inserts = static_cast<int64>(pg_atomic_read_u64(&shared->inserts));
	out->evictions = static_cast<int64>(pg_atomic_read_u64(&shared->evictions));
	out->invalidations = static_cast<int64>(pg_atomic_read_u64(&shared->invalidations));
	return true;
}

} /* namespace pagecache */
} /* namespace crypto */
} /* namespace rustydb */

RUSTYDB_FUNCTION(rustydb_tde_cache)
{
	using namespace rustydb::crypto;
	pagecache::Stats s;
	TupleDesc desc;

	if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "rustydb: return type must be a row type");
	if (!pagecache::stats(&s))
		memset(&s, 0, sizeof(s));
	Datum values[9] = {
		Int64GetDatum(s.size_bytes), Int64GetDatum(s.slots),     Int64GetDatum(s.used_slots),
		Int64GetDatum(s.used_bytes), Int64GetDatum(s.hits),      Int64GetDatum(s.misses),
		Int64GetDatum(s.inserts),    Int64GetDatum(s.evictions), Int64GetDatum(s.invalidations)};
	bool nulls[9] = {false, false, false, false, false, false, false, false, false};
	return HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls));
}

RUSTYDB_FUNCTION(rustydb_tde_cache_reset)
{
	if (!superuser())
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						errmsg("only a superuser can empty the cache of opened payloads")));
	rustydb::crypto::pagecache::forget_all();
	PG_RETURN_VOID();
}

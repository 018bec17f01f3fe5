/*-------------------------------------------------------------------------
 *
 * pagecache.h
 *	  The shared cache of opened payloads of encrypted tables
 *	  (rustydb.tde_cache_size; docs/tde.md, "The opened-payload cache").
 *
 * One entry per data page (RelFileNode, block) holds the plaintext
 * payloads that readers have opened from that page, each tagged with the
 * identity of the sealed bytes it came from: the 36 bytes of header,
 * session, counter and tag of its own seal (a row sealed on its own) or of
 * its group's seal (a group member). A nonce is used for one seal only, so
 * a cached plaintext is used for a page tuple only when the tuple's sealed
 * bytes carry the same identity, whatever happened to the page meanwhile
 * (updates, pruning and re-sealing, rewrites, redo on a standby, unlogged
 * pages whose LSN does not move, a relfilenode reused after DROP: new
 * keys, new sessions). Nothing here is written to a file or WAL.
 *
 * Readers keep an Image of their current page (backend-local, same
 * format as a shared entry) and publish it when they leave the page.
 * The caller has obtained the relation's key before any of this is used.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_CRYPTO_PAGECACHE_H
#define RUSTYDB_CRYPTO_PAGECACHE_H

#include "rustydb/pg.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "storage/block.h"
#include "storage/off.h"
#include "storage/relfilenode.h"
#include "utils/rel.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace crypto {
namespace pagecache {

/* Identity of the sealed bytes a plaintext came from. */
constexpr int kIdentBytes = 36;

/* How a reader uses the cache. */
enum class Mode : uint8
{
	Off,   /* never (verification, temporary relations, cache size 0) */
	Items, /* fetch single items (index fetches, row fetches) */
	Pages, /* load whole pages (sequential, bitmap, sample scans) */
	Ring   /* Pages, but a relation larger than the cache: reuse its own entries */
};

struct Image;

/* Register the shared segment (from crypto::init). */
void register_segment();

/* Whether the cache has room (rustydb.tde_cache_size resolved to > 0). */
bool enabled();

/* The mode a reader of rel should use: off for temporary relations. */
Mode mode_for(Relation rel, bool whole_pages, BlockNumber nblocks);

Image *image_create(MemoryContext cxt, Mode mode);
/* Publish what is new, wipe and free. */
void image_free(Image *img);
Mode image_mode(const Image *img);

/*
 * Make img the image of (node, blkno): if it holds another page, publish
 * it and start this one (loaded from the shared entry in the Pages modes,
 * unless load_entry is false: the caller reads with image_read_items).
 */
void image_enter(Image *img, const RelFileNode &node, BlockNumber blkno, bool load_entry = true);

/*
 * The plaintext payload of the item at off if its identity is ident (the
 * Items mode also asks the shared entry); nullptr if not cached.
 */
const char *image_lookup(Image *img, OffsetNumber off, const uint8 *ident, uint16 *len);

/*
 * Batch read of a page's rows (img entered on the page): for each k whose
 * item at offs[k] is cached with identity *idents[k] and length lens[k],
 * its plaintext is copied to dests[k] and hit[k] set; one shared lock for
 * the whole page, no copy of the entry. Rows whose idents[k] point to the
 * same bytes (a group's members) have their identity compared once with
 * each identity of the entry. Also decides, under the same lock, whether
 * what the caller opens on the page is kept (image_add): when the page has
 * an entry, in a bulk read, or on the page's second miss; a page neither
 * cached nor admitted counts no miss. Returns the hits.
 */
int image_read_items(Image *img, int n, const OffsetNumber *offs, const uint8 *const *idents,
					 const uint16 *lens, char *const *dests, bool *hit);

/*
 * Remember the plaintext payload of the item at off, sealed as ident, if
 * the miss was admitted: a page that has an entry or is read in bulk, else
 * the second miss of the page (Pages modes) or of the item (Items mode)
 * within a window (pagecache.cpp); otherwise nothing is copied.
 */
void image_add(Image *img, OffsetNumber off, const uint8 *ident, const char *plain, uint16 len);

/* Evict every entry of a relation file (DROP, TRUNCATE, rewrites, rotation). */
void forget_node(const RelFileNode &node);
/* Evict every entry (the key provider was removed). */
void forget_all();

struct Stats
{
	int64 size_bytes;
	int64 slots;
	int64 used_slots;
	int64 used_bytes;
	int64 hits;
	int64 misses;
	int64 inserts;
	int64 evictions;
	int64 invalidations;
};
bool stats(Stats *out);

} /* namespace pagecache */
} /* namespace crypto */
} /* namespace rustydb */

#endif /* RUSTYDB_CRYPTO_PAGECACHE_H */

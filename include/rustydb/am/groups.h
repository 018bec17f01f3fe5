/*-------------------------------------------------------------------------
 *
 * groups.h
 *	  Sealed groups: the payloads of up to kGroupMaxMembers tuples of one
 *	  page of an encrypted table sealed with one AEAD (page layout in
 *	  storage/page.h, design in docs/tde.md).
 *
 * One form of a tuple sealed for a page (am.h, "stored tuples"): written
 * by COPY (multi_insert, through am::seal_onto_page) on pages that have a
 * group table; opened by every read through am::open_from_page
 * (open_stored_tuple); re-sealed by pruning when some of a group's members
 * lose their storage (the survivors get a fresh nonce and new ordinals, in
 * place, same sizes).
 *
 * The associated data of a group binds the data block number, the slot,
 * the member count, the offset range and, for each member in ordinal
 * order, its offset, its payload length and the tuple header fields that
 * crypto::tuple_ad covers; so moving, dropping, adding or reordering
 * members, or moving the group to another page or slot, fails to open.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_AM_GROUPS_H
#define RUSTYDB_AM_GROUPS_H

#include "rustydb/am/pgincludes.h"
#include "rustydb/crypto/crypto.h"
#include "rustydb/storage/page.h"

namespace rustydb::am {

/*
 * Opened groups of one page: their plaintexts, kept by a scan or an index
 * fetch (one per scan, so that nested scans do not evict each other), or
 * the backend's own one for other callers. An entry is used only while
 * the page's group entry is byte-for-byte the one opened (its nonce is
 * unique), so it never outlives a change of the group.
 */
struct OpenedGroups;

OpenedGroups *opened_groups_create(MemoryContext cxt);
/* Wipe the plaintexts and free. */
void opened_groups_free(OpenedGroups *og);
/*
 * Read through the shared cache of opened payloads (crypto/pagecache.h):
 * whole pages for scans (whole_pages; nblocks decides whether it is a bulk
 * read), single items for fetches. Without this call og bypasses the
 * cache (verification).
 */
void opened_groups_use_cache(OpenedGroups *og, Relation rel, bool whole_pages, BlockNumber nblocks);

/* Whether stored (a page tuple) is a group member: its slot and ordinal. */
bool group_member(HeapTuple stored, int *slot, int *ordinal);

/*
 * The plaintext of a page tuple of an encrypted relation (sealed on its
 * own or a group member), palloc'd in the current memory context as one
 * HeapTuple. buf holds the page, pinned; locked says whether the caller
 * holds its content lock (a group is opened under a share lock, taken
 * here if not held). og: nullptr for the backend's own. ERROR naming the
 * relation and block when the payload does not authenticate.
 */
HeapTuple open_stored_tuple(Relation rel, const crypto::Cipher *c, HeapTuple stored, Buffer buf,
							bool locked, OpenedGroups *og);

/*
 * open_stored_tuple's plaintext tuple (header and payload) written at dest
 * instead of palloc'd: its length, or 0 if it does not fit in room.
 */
uint32 open_stored_into(Relation rel, const crypto::Cipher *c, HeapTuple stored, Buffer buf,
						bool locked, OpenedGroups *og, char *dest, Size room);

/*
 * A page-mode scan's batch: the plaintexts of the n page tuples stored[]
 * of the pinned page in buf into outs[i] (t_data pointing at room for at
 * least stored[i].t_len bytes): cached ones copied under one shared lock
 * of the cache, the others opened (and remembered). ERROR as
 * open_stored_tuple. Returns n.
 */
int open_page_rows(Relation rel, const crypto::Cipher *c, Buffer buf, OpenedGroups *og, int n,
				   HeapTuple stored, HeapTuple *outs);

/*
 * COPY: place tuples[0..n) (headers final, payloads in plaintext) on the
 * exclusively locked page of buf as far as they fit (at least one), as
 * sealed groups while the page has free group slots, else sealed one by
 * one. The page is built in scratch (BLCKSZ bytes): copy it over the page
 * in the critical section. Fills offs[] with the new tuples' offsets and
 * writes the group table changes for the WAL record into *changes
 * (palloc'd, *changes_len bytes; 0 when none). Returns how many were
 * placed. save: free space to leave (fillfactor); max_members: the
 * largest group (1: every tuple sealed on its own).
 */
int place_sealed(Relation rel, const crypto::Cipher *c, Buffer buf, HeapTuple *tuples, int n,
				 Size save, int max_members, char *scratch, OffsetNumber *offs, char **changes,
				 Size *changes_len);

/*
 * Pruning, before the critical section: the groups of the cleanup-locked
 * page that lose members (loses[off] for offsets whose storage goes) are
 * freed when no member survives, else re-sealed. *changes (palloc'd,
 * *changes_len bytes, 0 when nothing changes) is what
 * storage::apply_group_changes applies after the line pointers changed
 * and the page was compacted, and what the prune record carries. Returns
 * false, changing nothing, when a group must be re-sealed and c is null
 * (the caller loads the key and retries, or leaves the page unpruned).
 */
bool prepare_group_changes(Relation rel, const crypto::Cipher *c, Page page, BlockNumber blkno,
						   const bool *loses, char **changes, Size *changes_len);

/*
 * verify_encryption: the plaintext of a group member of a share-locked
 * page (palloc'd), or nullptr with *why when it does not open. Never an
 * ERROR for bad data.
 */
HeapTuple try_open_member(Relation rel, const crypto::Cipher *c, HeapTuple stored, Buffer buf,
						  OpenedGroups *og, const char **why);

} /* namespace rustydb::am */

#endif /* RUSTYDB_AM_GROUPS_H */

/*-------------------------------------------------------------------------
 *
 * inplace.h
 *	  In-place updates and the version chains they leave in the table's
 *	  undo store (docs/storage.md, "In-place updates and undo").
 *
 *	inplace.cpp		the in-place path of UPDATE (INPLACE UPDATE records),
 *					reading chains (the version a snapshot sees), repair of
 *					aborted in-place versions (INPLACE REPAIR records)
 *
 * A page version with storage::kTupleHasUndo was written in place; the
 * record at its undo pointer holds the version it replaced, whose own
 * pointer continues the chain. Readers call visible_version instead of
 * mvcc::satisfies; writers repair an aborted in-place version before
 * they judge the row.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_AM_INPLACE_H
#define RUSTYDB_AM_INPLACE_H

#include "rustydb/am/pgincludes.h"
#include "rustydb/am/undo_stats.h"

namespace rustydb::crypto {
struct Cipher;
}

namespace rustydb::am {

/*
 * The version of the row whose page version is *tuple (buffer pinned and
 * locked) that snapshot sees. False: none. True: *tuple is the page
 * version, unchanged, or (*copied) a palloc'd copy of an undo image in
 * CurrentMemoryContext with t_self and t_tableOid set (release_copy frees
 * it); an encrypted table's copy is sealed, as undo holds it: its header
 * is in the clear, open_from_page opens its payload. With ssi, reports SERIALIZABLE conflicts out for the
 * versions it judged (the page version's creator when it walked past it).
 */
bool visible_version(Relation rel, Buffer buffer, HeapTuple tuple, Snapshot snapshot, bool ssi,
					 bool *copied);

/*
 * verify_table: the reason the chain of the page version *tuple is
 * damaged (a record that is not the row's, a writer that does not match,
 * an aborted version whose predecessor is gone), or nullptr.
 */
const char *check_chain(Relation rel, HeapTuple tuple);

/*
 * Following an update link (t_ctid) from a version prior_xmax updated: is
 * the page version *tuple (buffer locked) that version's successor? Its
 * xmin is prior_xmax, or it was changed in place since and one of its
 * older versions (or a recycled one) is prior_xmax's. The xmin test of a
 * heap chain step, for rows that keep their TID through in-place updates.
 */
bool succeeds(Relation rel, HeapTuple tuple, TransactionId prior_xmax);

/* Free the copy visible_version or effective_version returned in tuple. */
void release_copy(HeapTuple tuple);

/*
 * The version that stands for the row when no snapshot is involved
 * (ANALYZE): the page version, or, when its creator aborted (or, with
 * skip_running, is another transaction still running), the newest version
 * of its chain whose creator is neither (a palloc'd copy, *copied).
 * False: none left (recycled).
 */
bool effective_version(Relation rel, HeapTuple tuple, bool skip_running, bool *copied);

/*
 * The older versions of tuple's chain (tuple: a page version or an image,
 * its memory valid throughout), newest first: visit gets each as a
 * palloc'd copy that is freed after it returns, until it returns false or
 * the chain ends (no older version, or recycled). An encrypted table's
 * versions come sealed, as undo holds them. CLUSTER and VACUUM FULL
 * copy the ones a snapshot may still need.
 */
void older_versions(Relation rel, HeapTuple tuple, bool (*visit)(HeapTuple version, void *arg),
					void *arg);

/*
 * Buffer exclusively locked, *tuple the page version at its offset: if it
 * is an in-place version whose creator aborted, copy its predecessor back
 * (INPLACE REPAIR), repeatedly, and point *tuple at the result. Returns the
 * number of repairs.
 */
int repair_aborted(Relation rel, Buffer buffer, HeapTuple tuple);

/*
 * Before any buffer lock: can an UPDATE of rel go in place at all? Returns
 * UndoEvent::Inplace with *undo opened (RowExclusiveLock, the caller
 * closes it), or the reason it cannot: a counted fallback, or Count_ when
 * the table never updates in place (not a plain table, after-row update
 * triggers, logically logged under wal_level = logical). local: the
 * update keeps the previous version on the page (a plain table,
 * rustydb.inplace_previous_on_page) and writes no undo; then *undo stays
 * nullptr except at every kUndoUpkeepEvery-th such update of the table in
 * this backend (and the first since its relation cache entry was built),
 * which opens the store and keeps it up (metapage, discard when nearly
 * full) for the versions pruning moves there.
 */
UndoEvent inplace_prepare(Relation rel, Relation *undo, bool local);

/* How often a backend's LOCAL updates of a table look after its undo store. */
constexpr uint32 kUndoUpkeepEvery = 16;

/*
 * With the old version's page exclusively locked and the right to update
 * acquired: write newtup (its transaction fields set, payload in
 * plaintext) in place of the page version oldtup, its previous version
 * into undo. cipher: the table's (nullptr: not encrypted); oldplain:
 * oldtup's payload opened (oldtup itself when not encrypted). An
 * encrypted table's new version is sealed as the out-of-place path seals
 * it and the image re-sealed on its own (kUndoRecordSealed); a member of a
 * sealed group is not updated in place. True when done (newtup->t_self
 * set); false with the reason in *why, nothing changed.
 */
bool update_in_place(Relation rel, Relation undo, const crypto::Cipher *cipher, Buffer buffer,
					 HeapTuple oldtup, HeapTuple oldplain, HeapTuple newtup, TransactionId xid,
					 CommandId cid, MultiXactStatus mine, UndoEvent *why);

/*
 * Before pruning compacts buffer's page (cleanup lock held): each row's
 * previous versions still on the page (plain tables' in-place updates,
 * rustydb.inplace_previous_on_page) that a snapshot or a repair may need
 * (their successor's creator is running, aborted, or newer than the
 * horizon: vistest, or oldest_xmin) are moved to undo, oldest first
 * (INPLACE MIGRATE); the others are dropped by the compaction, which
 * clears the pointers naming them (prune_execute). *latest_removed
 * advances to the newest creator whose previous versions are dropped.
 * removed[off]: the line pointers pruning removes. False when a move
 * fails (undo is null, the store is full, or parallel mode): the page
 * must not be compacted now (moves already done stand).
 */
bool settle_previous_versions(Relation rel, Relation undo, Buffer buffer, GlobalVisState *vistest,
							  TransactionId oldest_xmin, const bool *removed,
							  TransactionId *latest_removed);

} /* namespace rustydb::am */

#endif /* RUSTYDB_AM_INPLACE_H */

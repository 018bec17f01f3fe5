/*-------------------------------------------------------------------------
 *
 * visibility.h
 *	  rustydb MVCC: tuple visibility for every PostgreSQL snapshot type.
 *
 * The one module that interprets a rustydb tuple header's transaction
 * fields (see docs/storage.md, "Visibility rules"). Hint bits record a
 * creator's or deleter's final state on the tuple once it is known, so
 * commit status is looked up in pg_xact at most once per tuple.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_MVCC_VISIBILITY_H
#define RUSTYDB_MVCC_VISIBILITY_H

#include "rustydb/common/pgstorage.h"

namespace rustydb::mvcc {

/* Is tuple visible to snapshot? buffer is pinned and at least share-locked. */
bool satisfies(HeapTuple tuple, Snapshot snapshot, Buffer buffer);

/*
 * Does snapshot not see the creator of this version (in progress, aborted,
 * committed after the snapshot, or a later command of this transaction)?
 * Then an older version of the row, in undo, may be the one it sees
 * (docs/storage.md, "Reading through chains"). Sets no hint bits.
 */
bool creator_invisible(HeapTupleHeader tuple, Snapshot snapshot);

/* Did the creator of this version abort (or crash)? Sets no hint bits. */
bool creator_aborted(HeapTupleHeader tuple);

/*
 * May command curcid of this transaction update/delete/lock tuple? With
 * running_creator_passes, a creator still running (an in-place no-key
 * update a key-share lock passes) does not make it invisible: only its
 * xmax is judged.
 */
TM_Result satisfies_update(HeapTuple tuple, CommandId curcid, Buffer buffer,
						   bool running_creator_passes = false);

/*
 * The tuple's state for VACUUM and pruning. A deleted tuple whose deleter
 * committed is RECENTLY_DEAD with *dead_after set to the deleter; callers
 * decide with their horizon whether it is DEAD.
 */
HTSV_Result satisfies_vacuum_horizon(HeapTuple tuple, Buffer buffer, TransactionId *dead_after);

/* Same, judged against OldestXmin. */
HTSV_Result satisfies_vacuum(HeapTuple tuple, TransactionId oldest_xmin, Buffer buffer);

/* Same, judged against a GlobalVisState. */
HTSV_Result satisfies_vacuum_vis(HeapTuple tuple, GlobalVisState *vistest, Buffer buffer);

/* The updating transaction of a tuple whose xmax is a multixact (or plain xid). */
TransactionId update_xid(HeapTupleHeader tuple);

/* True if the tuple is locked only, or the locker/updater has gone away. */
bool xmax_is_lock_only_or_aborted(HeapTupleHeader tuple);

/*
 * SERIALIZABLE: report a read-write conflict out for a tuple read by a
 * scan, given whether it was visible. Cheap no-op outside SERIALIZABLE.
 */
void check_serializable_conflict_out(bool visible, Relation rel, HeapTuple tuple, Buffer buffer,
									 Snapshot snapshot);

/* Newest xid whose removal of this (dead) tuple a standby must wait for. */
void advance_latest_removed_xid(HeapTupleHeader tuple, TransactionId *latest);

} /* namespace rustydb::mvcc */

#endif /* RUSTYDB_MVCC_VISIBILITY_H */

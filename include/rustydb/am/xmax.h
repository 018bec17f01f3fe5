/*-------------------------------------------------------------------------
 *
 * xmax.h
 *	  Who holds a row: the xmax representation shared by delete, update and
 *	  row locks (src/am/xmax.cpp), used by src/am/modify.cpp and
 *	  src/am/rowlock.cpp.
 *
 * Row locks and updates share one representation in the tuple's xmax: a
 * single transaction id with lock-strength bits, or a multixact listing
 * lockers and at most one updater (PostgreSQL's MultiXact machinery).
 * Waiting for conflicting lockers uses the tuple's heavyweight lock for
 * queue fairness, then the lockers' transaction locks, so deadlocks are
 * detected by PostgreSQL's lock manager and NOWAIT / SKIP LOCKED work.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_AM_XMAX_H
#define RUSTYDB_AM_XMAX_H

#include "rustydb/am/am.h"
#include "rustydb/storage/changes.h"

namespace rustydb::am {

/* The members of a tuple's xmax. */
struct Members
{
	int n;
	MultiXactMember m[1]; /* palloc'd with room for more */
};

enum class WaitResult
{
	kProceed,   /* nobody else holds a conflicting lock: go ahead */
	kRecheck,   /* we waited: look at the tuple again */
	kWouldBlock /* SKIP LOCKED: give up on this row */
};

/* The heavyweight lock mode matching a multixact member status. */
LOCKMODE lockmode_of_status(MultiXactStatus status);

/* The member status of a row lock of this mode. */
MultiXactStatus status_of_lock(LockTupleMode mode);

/* The member status of an update taking this lock mode. */
MultiXactStatus status_of_update(LockTupleMode mode);

/* Lock strength order for "do we already hold it": key share < ... < update. */
int strength(MultiXactStatus s);

/* The tuple's current xmax as a member list (palloc'd, one spare slot). */
Members *get_members(HeapTupleHeader t);

/*
 * With buffer exclusively locked, wait (per policy) for every other
 * running transaction whose lock or update on the tuple conflicts with
 * mine. Returns with the buffer locked again.
 */
WaitResult wait_for_conflicts(Relation rel, Buffer buffer, HeapTuple tuple, MultiXactStatus mine,
							  LockWaitPolicy policy, XLTW_Oper oper, bool *have_tuplock);

/*
 * After waiting: the tuple's xmax holds only non-conflicting or finished
 * members. If an updater committed, the row is gone for us.
 */
TM_Result result_after_wait(HeapTuple tuple);

/*
 * A key-share lock does not conflict with an update that left the key
 * columns alone, even a committed one: the old version can still be locked.
 */
bool keyshare_passes_update(HeapTupleHeader t, MultiXactStatus mine);

/*
 * Compute the xmax that adds (xid, mine) to the tuple's current lockers
 * and updater. Members that have finished are dropped (an updater only if
 * it aborted); our own weaker locks are subsumed. Must run outside a
 * critical section: it may create a multixact.
 */
void compose_xmax(HeapTupleHeader t, TransactionId xid, MultiXactStatus mine, TransactionId *xmax,
				  uint16 *infomask, uint16 *infomask2);

/* The tuple's transaction fields with a new xmax, for storage::set_tuple_xact. */
storage::TupleXact with_xmax(HeapTupleHeader t, TransactionId xmax, uint16 infomask,
							 uint16 infomask2);

/*
 * Log a tuple's new transaction fields (DELETE, LOCK, CONFIRM, SUPER_DELETE),
 * with lt's logical decoding trailer when there is one (am.h).
 */
void log_tuple_state(Relation rel, Buffer buffer, uint8 kind, OffsetNumber off, HeapTupleHeader t,
					 uint8 flags, const LogicalTrailer *lt = nullptr);

/* What the executor is told about a row it could not change (tmfd). */
void fail_data(HeapTuple tuple, TM_Result result, TM_FailureData *tmfd);

/* Read and lock the page of tid and point tuple at it; ERROR if not a tuple. */
Buffer read_target(Relation rel, ItemPointer tid, HeapTuple tuple, const char *what);

/*
 * Decide whether this transaction may modify the tuple (buffer locked),
 * waiting for conflicting transactions as needed. On return the buffer is
 * locked and the tuple pointer valid.
 */
TM_Result acquire_right(Relation rel, Buffer buffer, HeapTuple tuple, CommandId cid,
						Snapshot snapshot, Snapshot crosscheck, MultiXactStatus mine,
						LockWaitPolicy policy, bool wait, XLTW_Oper oper, bool *have_tuplock);

/*
 * In-place versions (docs/storage.md, "Update, delete, lock"), buffer
 * exclusively locked and *tuple the page version: repair it if its
 * creator aborted, wait (per policy) while its creator runs, as for an
 * updater. TM_Ok when the creator committed or is an earlier command of
 * ours; TM_SelfModified for a later command of ours; TM_BeingModified
 * (wait false) or TM_WouldBlock. A key-share lock (mine) passes a running
 * creator: TM_Ok with *passes (satisfies_update's running_creator_passes).
 */
TM_Result settle_creator(Relation rel, Buffer buffer, HeapTuple tuple, CommandId cid,
						 MultiXactStatus mine, LockWaitPolicy policy, bool wait, XLTW_Oper oper,
						 bool *have_tuplock, bool *passes);

/*
 * Was the row changed in place by a transaction the executor's snapshot
 * does not see (and that we have not locked since)? Then the version the
 * executor read is gone: TM_Updated at the same TID.
 */
bool changed_under_snapshot(HeapTuple tuple, Snapshot snapshot);

/* Does a failure on this page version come from its in-place creator (fail_data)? */
bool inplace_creator_conflict(HeapTupleHeader t);

} /* namespace rustydb::am */

#endif /* RUSTYDB_AM_XMAX_H */

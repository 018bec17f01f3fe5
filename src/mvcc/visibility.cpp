/*-------------------------------------------------------------------------
 *
 * visibility.cpp
 *	  rustydb MVCC: which tuple versions each snapshot sees.
 *
 * A tuple carries its creator (xmin, with cmin) and its deleter, updater or
 * lockers (xmax: one transaction id or a multixact, with cmax; cmin and cmax
 * share one field through PostgreSQL's combo command ids). Flag bits say
 * whether xmax only locks, which lock strength, whether the key columns
 * were updated, and cache the final state of xmin and xmax (hint bits):
 *
 *	XMIN_COMMITTED / XMIN_INVALID	creator committed / aborted (both: frozen)
 *	XMAX_COMMITTED / XMAX_INVALID	deleter committed / aborted or no deleter
 *
 * Hint bits are set here only, never WAL-logged on their own (a checksum-
 * protected page gets a full-page image through MarkBufferDirtyHint), and
 * never before the commit record that justifies them is flushed.
 *
 * ========================================================================
 * Hint bits and helpers
 * ========================================================================
 */
#include "rustydb/mvcc/visibility.h"

#include "rustydb/storage/buffer.h"

namespace rustydb::mvcc {

static inline void
set_hint(HeapTupleHeader t, Buffer buffer, uint16 bits, TransactionId xid)
{
	if (!BufferIsValid(buffer))
		return;
	/* a hint may be set under a share lock (MarkBufferDirtyHint) */
	Assert(storage::buffer_is_locked(buffer));
	if (TransactionIdIsValid(xid))
	{
		/* An asynchronous commit must be flushed before we rely on it. */
		XLogRecPtr commit_lsn = TransactionIdGetCommitLSN(xid);

		if (BufferIsPermanent(buffer) && XLogNeedsFlush(commit_lsn) &&
			BufferGetLSNAtomic(buffer) < commit_lsn)
			return;
	}
	t->t_infomask |= bits;
	MarkBufferDirtyHint(buffer, true);
}

TransactionId
update_xid(HeapTupleHeader t)
{
	TransactionId xmax = HeapTupleHeaderGetRawXmax(t);

	if (!(t->t_infomask & HEAP_XMAX_IS_MULTI))
		return xmax;
	if (HEAP_XMAX_IS_LOCKED_ONLY(t->t_infomask))
		return InvalidTransactionId;

	MultiXactMember *members = nullptr;
	int n = GetMultiXactIdMembers(xmax, &members, false, false);
	TransactionId up = InvalidTransactionId;
	for (int i = 0; i < n; i++)
	{
		if (ISUPDATE_from_mxstatus(members[i].status))
		{
			up = members[i].xid;
			break;
		}
	}
	if (members != nullptr)
		pfree(members);
	return up;
}

bool
xmax_is_lock_only_or_aborted(HeapTupleHeader t)
{
	if ((t->t_infomask & HEAP_XMAX_INVALID) || HEAP_XMAX_IS_LOCKED_ONLY(t->t_infomask))
		return true;
	if (t->t_infomask & HEAP_XMAX_COMMITTED)
		return false;
	TransactionId xmax = update_xid(t);
	if (!TransactionIdIsValid(xmax))
		return true;
	if (TransactionIdIsCurrentTransactionId(xmax) || TransactionIdIsInProgress(xmax) ||
		TransactionIdDidCommit(xmax))
		return false;
	return true;
}

/* ========================================================================
 * The creator: shared first half of the snapshot tests
 * ========================================================================
 */

enum XminState
{
	kXminInvisible, /* aborted, or not yet visible by rule */
	kXminCurrent,   /* inserted by this transaction: caller decides on cmin */
	kXminInProgress,
	kXminCommitted
};

/* Classify xmin, setting hint bits once the creator's fate is known. */
static XminState
xmin_state(HeapTupleHeader t, Buffer buffer)
{
	if (HeapTupleHeaderXminCommitted(t))
		return kXminCommitted;
	if (HeapTupleHeaderXminInvalid(t))
		return kXminInvisible;

	TransactionId xmin = HeapTupleHeaderGetRawXmin(t);
	if (!TransactionIdIsValid(xmin))
		return kXminInvisible; /* super-deleted speculative insertion */
	if (TransactionIdIsCurrentTransactionId(xmin))
		return kXminCurrent;
	if (TransactionIdIsInProgress(xmin))
		return kXminInProgress;
	if (TransactionIdDidCommit(xmin))
	{
		set_hint(t, buffer, HEAP_XMIN_COMMITTED, xmin);
		return kXminCommitted;
	}
	set_hint(t, buffer, HEAP_XMIN_INVALID, InvalidTransactionId);
	return kXminInvisible;
}

/*
 * For a tuple inserted by the current transaction: is it still there for a
 * reader at curcid (use_cid) or for any reader of this transaction?
 */
static bool
own_insert_not_deleted(HeapTupleHeader t, Buffer buffer, bool use_cid, CommandId curcid)
{
	if (t->t_infomask & HEAP_XMAX_INVALID)
		return true;
	if (HEAP_XMAX_IS_LOCKED_ONLY(t->t_infomask))
		return true;
	if (t->t_infomask & HEAP_XMAX_IS_MULTI)
	{
		TransactionId xmax = update_xid(t);
		if (!TransactionIdIsCurrentTransactionId(xmax))
			return true; /* updating subtransaction aborted */
		return use_cid && HeapTupleHeaderGetCmax(t) >= curcid;
	}
	if (!TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetRawXmax(t)))
	{
		/* deleting subtransaction must have aborted */
		set_hint(t, buffer, HEAP_XMAX_INVALID, InvalidTransactionId);
		return true;
	}
	return use_cid && HeapTupleHeaderGetCmax(t) >= curcid;
}

/* ========================================================================
 * MVCC snapshots
 * ========================================================================
 */

static bool
satisfies_mvcc(HeapTuple tuple, Snapshot snapshot, Buffer buffer)
{
	HeapTupleHeader t = tuple->t_data;

	Assert(snapshot->snapshot_type == SNAPSHOT_MVCC);

	switch (xmin_state(t, buffer))
	{
		case kXminInvisible:
		case kXminInProgress:
			return false;
		case kXminCurrent:
			if (HeapTupleHeaderGetCmin(t) >= snapshot->curcid)
				return false; /* inserted after scan started */
			return own_insert_not_deleted(t, buffer, true, snapshot->curcid);
		case kXminCommitted:
			if (!HeapTupleHeaderXminFrozen(t) &&
				XidInMVCCSnapshot(HeapTupleHeaderGetRawXmin(t), snapshot))
				return false;
			break;
	}

	/* The creator committed and is visible; now the deleter. */
	if (t->t_infomask & HEAP_XMAX_INVALID)
		return true;
	if (HEAP_XMAX_IS_LOCKED_ONLY(t->t_infomask))
		return true;

	if (t->t_infomask & HEAP_XMAX_IS_MULTI)
	{
		TransactionId xmax = update_xid(t);
		if (TransactionIdIsCurrentTransactionId(xmax))
			return HeapTupleHeaderGetCmax(t) >= snapshot->curcid;
		if (XidInMVCCSnapshot(xmax, snapshot))
			return true;
		if (TransactionIdDidCommit(xmax))
			return false;
		return true; /* updater aborted */
	}

	TransactionId xmax = HeapTupleHeaderGetRawXmax(t);
	if (!(t->t_infomask & HEAP_XMAX_COMMITTED))
	{
		if (TransactionIdIsCurrentTransactionId(xmax))
			return HeapTupleHeaderGetCmax(t) >= snapshot->curcid;
		if (XidInMVCCSnapshot(xmax, snapshot))
			return true;
		if (!TransactionIdDidCommit(xmax))
		{
			set_hint(t, buffer, HEAP_XMAX_INVALID, InvalidTransactionId);
			return true;
		}
		set_hint(t, buffer, HEAP_XMAX_COMMITTED, xmax);
	}
	else if (XidInMVCCSnapshot(xmax, snapshot))
		return true;
	return false;
}

/* ========================================================================
 * SnapshotSelf and SnapshotDirty
 * ========================================================================
 */

/*
 * Self: everything committed plus the current transaction's changes, in
 * progress others' not. Dirty: like Self but in-progress inserts count as
 * present and in-progress deletes as not done, and snapshot->xmin/xmax
 * report whom to wait for (speculativeToken for a speculative insertion).
 */
static bool
satisfies_self_or_dirty(HeapTuple tuple, Snapshot snapshot, Buffer buffer, bool dirty)
{
	HeapTupleHeader t = tuple->t_data;

	Assert(snapshot->snapshot_type == (dirty ? SNAPSHOT_DIRTY : SNAPSHOT_SELF));

	if (dirty)
	{
		snapshot->xmin = snapshot->xmax = InvalidTransactionId;
		snapshot->speculativeToken = 0;
	}

	switch (xmin_state(t, buffer))
	{
		case kXminInvisible:
			return false;
		case kXminCurrent:
			return own_insert_not_deleted(t, buffer, false, 0);
		case kXminInProgress:
			if (!dirty)
				return false;
			if (HeapTupleHeaderIsSpeculative(t))
				snapshot->speculativeToken = HeapTupleHeaderGetSpeculativeToken(t);
			snapshot->xmin = HeapTupleHeaderGetRawXmin(t);
			return true;
		case kXminCommitted:
			break;
	}

	if (t->t_infomask & HEAP_XMAX_INVALID)
		return true;
	if (t->t_infomask & HEAP_XMAX_COMMITTED)
		return HEAP_XMAX_IS_LOCKED_ONLY(t->t_infomask);

	if (t->t_infomask & HEAP_XMAX_IS_MULTI)
	{
		if (HEAP_XMAX_IS_LOCKED_ONLY(t->t_infomask))
			return true;
		TransactionId xmax = update_xid(t);
		if (TransactionIdIsCurrentTransactionId(xmax))
			return false;
		if (TransactionIdIsInProgress(xmax))
		{
			if (dirty)
				snapshot->xmax = xmax;
			return true;
		}
		return !TransactionIdDidCommit(xmax);
	}

	TransactionId xmax = HeapTupleHeaderGetRawXmax(t);
	if (TransactionIdIsCurrentTransactionId(xmax))
		return HEAP_XMAX_IS_LOCKED_ONLY(t->t_infomask);
	if (TransactionIdIsInProgress(xmax))
	{
		if (dirty && !HEAP_XMAX_IS_LOCKED_ONLY(t->t_infomask))
			snapshot->xmax = xmax;
		return true;
	}
	if (!TransactionIdDidCommit(xmax))
	{
		set_hint(t, buffer, HEAP_XMAX_INVALID, InvalidTransactionId);
		return true;
	}
	if (HEAP_XMAX_IS_LOCKED_ONLY(t->t_infomask))
	{
		set_hint(t, buffer, HEAP_XMAX_INVALID, InvalidTransactionId);
		return true;
	}
	set_hint(t, buffer, HEAP_XMAX_COMMITTED, xmax);
	return false;
}

/* ========================================================================
 * Toast, Any, NonVacuumable
 * ========================================================================
 */

static bool
satisfies_toast(HeapTuple tuple)
{
	HeapTupleHeader t = tuple->t_data;

	if (HeapTupleHeaderXminCommitted(t))
		return true;
	if (HeapTupleHeaderXminInvalid(t))
		return false;
	/* a super-deleted speculative insertion leaves an invalid xmin */
	return TransactionIdIsValid(HeapTupleHeaderGetRawXmin(t));
}

HTSV_Result
satisfies_vacuum_vis(HeapTuple tuple, GlobalVisState *vistest, Buffer buffer)
{
	Assert(vistest != nullptr);
	TransactionId dead_after = InvalidTransactionId;
	HTSV_Result res = satisfies_vacuum_horizon(tuple, buffer, &dead_after);

	if (res == HEAPTUPLE_RECENTLY_DEAD && GlobalVisTestIsRemovableXid(vistest, dead_after))
		res = HEAPTUPLE_DEAD;
	return res;
}

/* A tuple of a relation (its ctid and table known), on a page pinned and locked, or off-page. */
static inline void
assert_tuple(HeapTuple tuple, Buffer buffer)
{
	Assert(tuple->t_data != nullptr);
	Assert(ItemPointerIsValid(&tuple->t_self));
	Assert(OidIsValid(tuple->t_tableOid));
	Assert(!BufferIsValid(buffer) || storage::buffer_is_locked(buffer));
}

bool
satisfies(HeapTuple tuple, Snapshot snapshot, Buffer buffer)
{
	if (snapshot->snapshot_type != SNAPSHOT_ANY)
		assert_tuple(tuple, buffer);
	switch (snapshot->snapshot_type)
	{
		case SNAPSHOT_MVCC:
			return satisfies_mvcc(tuple, snapshot, buffer);
		case SNAPSHOT_SELF:
			return satisfies_self_or_dirty(tuple, snapshot, buffer, false);
		case SNAPSHOT_DIRTY:
			return satisfies_self_or_dirty(tuple, snapshot, buffer, true);
		case SNAPSHOT_ANY:
			return true;
		case SNAPSHOT_TOAST:
			return satisfies_toast(tuple);
		case SNAPSHOT_NON_VACUUMABLE:
			return satisfies_vacuum_vis(tuple, snapshot->vistest, buffer) != HEAPTUPLE_DEAD;
		case SNAPSHOT_HISTORIC_MVCC:
			ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							errmsg("rustydb tables cannot be read with a historic snapshot"),
							errdetail("Logical decoding does not decode rustydb tables.")));
	}
	return false; /* keep compiler quiet */
}

/* ========================================================================
 * Update, lock and delete
 * ========================================================================
 */

static TM_Result
deleted_or_updated(HeapTuple tuple)
{
	return ItemPointerEquals(&tuple->t_self, &tuple->t_data->t_ctid) ? TM_Deleted : TM_Updated;
}

TM_Result
satisfies_update(HeapTuple tuple, CommandId curcid, Buffer buffer, bool running_creator_passes)
{
	HeapTupleHeader t = tuple->t_data;

	/* the answer holds while the lock does: the modification follows under it */
	assert_tuple(tuple, buffer);
	Assert(BufferIsValid(buffer) && storage::buffer_is_locked_exclusive(buffer));

	XminState state = xmin_state(t, buffer);
	if (state == kXminInProgress && running_creator_passes)
		state = kXminCommitted; /* judged by its xmax alone (settle_creator) */
	switch (state)
	{
		case kXminInvisible:
		case kXminInProgress:
			return TM_Invisible;
		case kXminCurrent:
		{
			if (HeapTupleHeaderGetCmin(t) >= curcid)
				return TM_Invisible; /* inserted after scan started */
			if (t->t_infomask & HEAP_XMAX_INVALID)
				return TM_Ok;
			TransactionId raw = HeapTupleHeaderGetRawXmax(t);
			if (HEAP_XMAX_IS_LOCKED_ONLY(t->t_infomask))
			{
				if (t->t_infomask & HEAP_XMAX_IS_MULTI)
					return MultiXactIdIsRunning(raw, true) ? TM_BeingModified : TM_Ok;
				return TransactionIdIsInProgress(raw) ? TM_BeingModified : TM_Ok;
			}
			if (t->t_infomask & HEAP_XMAX_IS_MULTI)
			{
				TransactionId xmax = update_xid(t);
				if (!TransactionIdIsCurrentTransactionId(xmax))
					return MultiXactIdIsRunning(raw, false) ? TM_BeingModified : TM_Ok;
				return HeapTupleHeaderGetCmax(t) >= curcid ? TM_SelfModified : TM_Invisible;
			}
			if (!TransactionIdIsCurrentTransactionId(raw))
			{
				set_hint(t, buffer, HEAP_XMAX_INVALID, InvalidTransactionId);
				return TM_Ok;
			}
			return HeapTupleHeaderGetCmax(t) >= curcid ? TM_SelfModified : TM_Invisible;
		}
		case kXminCommitted:
			break;
	}

	if (t->t_infomask & HEAP_XMAX_INVALID)
		return TM_Ok;
	if (t->t_infomask & HEAP_XMAX_COMMITTED)
	{
		if (HEAP_XMAX_IS_LOCKED_ONLY(t->t_infomask))
			return TM_Ok;
		return deleted_or_updated(tuple);
	}

	TransactionId raw = HeapTupleHeaderGetRawXmax(t);
	if (t->t_infomask & HEAP_XMAX_IS_MULTI)
	{
		if (HEAP_XMAX_IS_LOCKED_ONLY(t->t_infomask))
		{
			if (MultiXactIdIsRunning(raw, true))
				return TM_BeingModified;
			set_hint(t, buffer, HEAP_XMAX_INVALID, InvalidTransactionId);
			return TM_Ok;
		}
		TransactionId xmax = update_xid(t);
		if (!TransactionIdIsValid(xmax))
			return MultiXactIdIsRunning(raw, false) ? TM_BeingModified : TM_Ok;
		if (TransactionIdIsCurrentTransactionId(xmax))
			return HeapTupleHeaderGetCmax(t) >= curcid ? TM_SelfModified : TM_Invisible;
		if (MultiXactIdIsRunning(raw, false))
			return TM_BeingModified;
		if (TransactionIdDidCommit(xmax))
			return deleted_or_updated(tuple);
		set_hint(t, buffer, HEAP_XMAX_INVALID, InvalidTransactionId);
		return TM_Ok;
	}

	if (TransactionIdIsCurrentTransactionId(raw))
	{
		if (HEAP_XMAX_IS_LOCKED_ONLY(t->t_infomask))
			return TM_BeingModified;
		return HeapTupleHeaderGetCmax(t) >= curcid ? TM_SelfModified : TM_Invisible;
	}
	if (TransactionIdIsInProgress(raw))
		return TM_BeingModified;
	if (!TransactionIdDidCommit(raw))
	{
		set_hint(t, buffer, HEAP_XMAX_INVALID, InvalidTransactionId);
		return TM_Ok;
	}
	if (HEAP_XMAX_IS_LOCKED_ONLY(t->t_infomask))
	{
		set_hint(t, buffer, HEAP_XMAX_INVALID, InvalidTransactionId);
		return TM_Ok;
	}
	set_hint(t, buffer, HEAP_XMAX_COMMITTED, raw);
	return deleted_or_updated(tuple);
}

/* ========================================================================
 * VACUUM and pruning
 * ========================================================================
 */

HTSV_Result
satisfies_vacuum_horizon(HeapTuple tuple, Buffer buffer, TransactionId *dead_after)
{
	HeapTupleHeader t = tuple->t_data;

	assert_tuple(tuple, buffer);
	Assert(dead_after != nullptr);

	*dead_after = InvalidTransactionId;
	switch (xmin_state(t, buffer))
	{
		case kXminInvisible:
			return HEAPTUPLE_DEAD;
		case kXminInProgress:
			return HEAPTUPLE_INSERT_IN_PROGRESS;
		case kXminCurrent:
			if (t->t_infomask & HEAP_XMAX_INVALID)
				return HEAPTUPLE_INSERT_IN_PROGRESS;
			if (xmax_is_lock_only_or_aborted(t))
				return HEAPTUPLE_INSERT_IN_PROGRESS;
			if (TransactionIdIsCurrentTransactionId(update_xid(t)))
				return HEAPTUPLE_DELETE_IN_PROGRESS;
			return HEAPTUPLE_INSERT_IN_PROGRESS;
		case kXminCommitted:
			break;
	}

	if (t->t_infomask & HEAP_XMAX_INVALID)
		return HEAPTUPLE_LIVE;

	TransactionId raw = HeapTupleHeaderGetRawXmax(t);
	if (HEAP_XMAX_IS_LOCKED_ONLY(t->t_infomask))
	{
		/* Locked only: live whatever the locker did; hint once it is gone. */
		if (!(t->t_infomask & HEAP_XMAX_COMMITTED))
		{
			if (t->t_infomask & HEAP_XMAX_IS_MULTI)
			{
				if (MultiXactIdIsRunning(raw, true))
					return HEAPTUPLE_LIVE;
			}
			else if (TransactionIdIsInProgress(raw))
				return HEAPTUPLE_LIVE;
			set_hint(t, buffer, HEAP_XMAX_INVALID, InvalidTransactionId);
		}
		return HEAPTUPLE_LIVE;
	}

	if (t->t_infomask & HEAP_XMAX_IS_MULTI)
	{
		TransactionId xmax = update_xid(t);
		if (!TransactionIdIsValid(xmax))
			return HEAPTUPLE_LIVE;
		if (TransactionIdIsInProgress(xmax))
			return HEAPTUPLE_DELETE_IN_PROGRESS;
		if (TransactionIdDidCommit(xmax))
		{
			*dead_after = xmax;
			return HEAPTUPLE_RECENTLY_DEAD;
		}
		if (!MultiXactIdIsRunning(raw, false))
			set_hint(t, buffer, HEAP_XMAX_INVALID, InvalidTransactionId);
		return HEAPTUPLE_LIVE;
	}

	if (!(t->t_infomask & HEAP_XMAX_COMMITTED))
	{
		if (TransactionIdIsInProgress(raw))
			return HEAPTUPLE_DELETE_IN_PROGRESS;
		if (!TransactionIdDidCommit(raw))
		{
			set_hint(t, buffer, HEAP_XMAX_INVALID, InvalidTransactionId);
			return HEAPTUPLE_LIVE;
		}
		set_hint(t, buffer, HEAP_XMAX_COMMITTED, raw);
	}
	*dead_after = raw;
	return HEAPTUPLE_RECENTLY_DEAD;
}

HTSV_Result
satisfies_vacuum(HeapTuple tuple, TransactionId oldest_xmin, Buffer buffer)
{
	Assert(TransactionIdIsValid(oldest_xmin));
	TransactionId dead_after = InvalidTransactionId;
	HTSV_Result res = satisfies_vacuum_horizon(tuple, buffer, &dead_after);

	if (res == HEAPTUPLE_RECENTLY_DEAD && TransactionIdPrecedes(dead_after, oldest_xmin))
		res = HEAPTUPLE_DEAD;
	return res;
}

void
advance_latest_removed_xid(HeapTupleHeader t, TransactionId *latest)
{
	TransactionId xmin = HeapTupleHeaderGetXmin(t);
	TransactionId xmax = (t->t_infomask & HEAP_XMAX_INVALID) ? InvalidTransactionId : update_xid(t);

	if (!TransactionIdIsNormal(xmax))
		return;
	if (HeapTupleHeaderXminCommitted(t) ||
		(!HeapTupleHeaderXminInvalid(t) && TransactionIdDidCommit(xmin)))
	{
		if (xmax != xmin && TransactionIdFollows(xmax, *latest))
			*latest = xmax;
	}
}

/* ========================================================================
 * Creators (in-place versions: chains into undo)
 * ========================================================================
 */

bool
creator_invisible(HeapTupleHeader t, Snapshot snapshot)
{
	XminState state = xmin_state(t, InvalidBuffer);

	switch (snapshot->snapshot_type)
	{
		case SNAPSHOT_MVCC:
			if (state == kXminCurrent)
				return HeapTupleHeaderGetCmin(t) >= snapshot->curcid;
			if (state == kXminCommitted)
				return !HeapTupleHeaderXminFrozen(t) &&
					   XidInMVCCSnapshot(HeapTupleHeaderGetRawXmin(t), snapshot);
			return true;
		case SNAPSHOT_SELF:
			return state == kXminInvisible || state == kXminInProgress;
		case SNAPSHOT_DIRTY:
		case SNAPSHOT_ANY:
		case SNAPSHOT_NON_VACUUMABLE:
			/* these see in-progress creators; only an aborted version is skipped */
			return state == kXminInvisible;
		default:
			return false;
	}
}

bool
creator_aborted(HeapTupleHeader t)
{
	return xmin_state(t, InvalidBuffer) == kXminInvisible;
}

/* ========================================================================
 * SERIALIZABLE
 * ========================================================================
 */

void
check_serializable_conflict_out(bool visible, Relation rel, HeapTuple tuple, Buffer buffer,
								Snapshot snapshot)
{
	if (!CheckForSerializableConflictOutNeeded(rel, snapshot))
		return;

	TransactionId xid;
	switch (satisfies_vacuum(tuple, TransactionXmin, buffer))
	{
		case HEAPTUPLE_LIVE:
			if (visible)
				return;
			xid = HeapTupleHeaderGetXmin(tuple->t_data);
			break;
		case HEAPTUPLE_RECENTLY_DEAD:
		case HEAPTUPLE_DELETE_IN_PROGRESS:
			xid = visible ? update_xid(tuple->t_data) : HeapTupleHeaderGetXmin(tuple->t_data);
			if (TransactionIdPrecedes(xid, TransactionXmin))
				return;
			break;
		case HEAPTUPLE_INSERT_IN_PROGRESS:
			xid = HeapTupleHeaderGetXmin(tuple->t_data);
			break;
		case HEAPTUPLE_DEAD:
		default:
			return;
	}
	if (!TransactionIdIsValid(xid) || TransactionIdEquals(xid, GetTopTransactionIdIfAny()))
		return;
	xid = SubTransGetTopmostTransaction(xid);
	if (TransactionIdPrecedes(xid, TransactionXmin))
		return;
	CheckForSerializableConflictOut(rel, xid, snapshot);
}

} /* namespace rustydb::mvcc */

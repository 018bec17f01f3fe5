/*-------------------------------------------------------------------------
 *
 * rowlock.cpp
 *	  Row locks (SELECT FOR UPDATE/SHARE, EvalPlanQual's locks, and the
 *	  chain of newer versions of an updated row). The xmax representation
 *	  and waiting are in xmax.cpp.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/am/am.h"
#include "rustydb/am/inplace.h"
#include "rustydb/am/xmax.h"
#include "rustydb/common/settings.h"
#include "rustydb/crypto/crypto.h"

#include "rustydb/mvcc/visibility.h"
#include "rustydb/storage/changes.h"
#include "rustydb/storage/page.h"
#include "rustydb/wal/records.h"

namespace rustydb::am {

using storage::page_check;
using storage::tuple_at;

/* ========================================================================
 * Row locks
 * ========================================================================
 */

/* Do we already hold a lock at least as strong as wanted? */
static bool
already_hold(HeapTupleHeader t, MultiXactStatus wanted)
{
	if (t->t_infomask & HEAP_XMAX_INVALID)
		return false;
	Members *ms = get_members(t);
	bool held = false;
	for (int i = 0; i < ms->n && !held; i++)
	{
		if (TransactionIdIsCurrentTransactionId(ms->m[i].xid) &&
			strength(ms->m[i].status) >= strength(wanted))
			held = true;
	}
	pfree(ms);
	return held;
}

/* Lock one tuple version; *buffer returned pinned (not locked). */
static TM_Result
lock_one(Relation rel, HeapTuple tuple, Snapshot snapshot, uint8 flags, CommandId cid,
		 LockTupleMode mode, LockWaitPolicy policy, Buffer *bufferp, TM_FailureData *tmfd)
{
	TransactionId xid = GetCurrentTransactionId();
	MultiXactStatus mine = status_of_lock(mode);
	bool have_tuplock = false;
	ItemPointerData tid = tuple->t_self;
	Buffer buffer = read_target(rel, &tid, tuple, "lock");
	TM_Result result;

	*bufferp = buffer;
	bool passes;
	result = settle_creator(rel, buffer, tuple, cid, mine, policy, true, XLTW_Lock, &have_tuplock,
							&passes);
	/*
	 * A version this very command wrote in place: heap finds such a version
	 * invisible to the command (ON CONFLICT reaching a row twice), and one of
	 * a later command self-modified (a cursor's FOR UPDATE).
	 */
	if (result == TM_SelfModified && HeapTupleHeaderGetCmin(tuple->t_data) == cid)
		result = TM_Invisible;
	if (result == TM_Ok)
		result = mvcc::satisfies_update(tuple, cid, buffer, passes);
	/*
	 * REPEATABLE READ and SERIALIZABLE: a row changed in place since the
	 * snapshot fails at once, before waiting for its lockers, as heap's old
	 * version does.
	 */
	if ((result == TM_Ok || result == TM_BeingModified) && mine != MultiXactStatusForKeyShare &&
		!(flags & TUPLE_LOCK_FLAG_FIND_LAST_VERSION) && IsolationUsesXactSnapshot() &&
		changed_under_snapshot(tuple, snapshot))
		result = TM_Updated;
	if (result == TM_BeingModified && already_hold(tuple->t_data, mine))
		result = TM_Ok;
	else if (result == TM_BeingModified)
		result = acquire_right(rel, buffer, tuple, cid, InvalidSnapshot, InvalidSnapshot, mine,
							   policy, true, XLTW_Lock, &have_tuplock);
	if (result == TM_Updated && keyshare_passes_update(tuple->t_data, mine))
	{
		/* other lockers may still conflict with key share: wait for them */
		WaitResult w;
		while ((w = wait_for_conflicts(rel, buffer, tuple, mine, policy, XLTW_Lock,
									   &have_tuplock)) == WaitResult::kRecheck)
			;
		if (w == WaitResult::kWouldBlock)
			result = TM_WouldBlock;
		else if (keyshare_passes_update(tuple->t_data, mine))
			result = TM_Ok;
	}

	if (result == TM_Ok && mine != MultiXactStatusForKeyShare &&
		((flags & TUPLE_LOCK_FLAG_FIND_LAST_VERSION) || IsolationUsesXactSnapshot()) &&
		changed_under_snapshot(tuple, snapshot))
	{
		/*
		 * Changed in place since the snapshot: the newest version is at the
		 * same TID. READ COMMITTED (FIND_LAST_VERSION) locks it and tells
		 * the executor it moved on; otherwise (REPEATABLE READ, SERIALIZABLE)
		 * it is a concurrent update. ON CONFLICT in READ COMMITTED locks the
		 * newest version it found, as with heap. A key-share lock passes (an
		 * in-place update never changes a key column), as heap's passes a
		 * no-key update of the old version.
		 */
		if (flags & TUPLE_LOCK_FLAG_FIND_LAST_VERSION)
			tmfd->traversed = true;
		else
			result = TM_Updated;
	}
	if (result != TM_Ok)
	{
		fail_data(tuple, result, tmfd);
		LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
		if (have_tuplock)
			UnlockTuple(rel, &tid, lockmode_of_status(mine));
		return result;
	}

	if (!already_hold(tuple->t_data, mine))
	{
		TransactionId new_xmax;
		uint16 im, im2;
		compose_xmax(tuple->t_data, xid, mine, &new_xmax, &im, &im2);
		Buffer vmbuf = InvalidBuffer;
		storage::vm_pin_if_needed(rel, buffer, &vmbuf);
		START_CRIT_SECTION();
		storage::TupleXact x = with_xmax(tuple->t_data, new_xmax, im, im2);
		if (HEAP_XMAX_IS_LOCKED_ONLY(im))
			x.ctid = tid;
		storage::set_tuple_xact(buffer, ItemPointerGetOffsetNumber(&tid), x);
		bool frozen_cleared = storage::vm_clear_frozen(rel, buffer, vmbuf);
		MarkBufferDirty(buffer);
		log_tuple_state(rel, buffer, wal::kLock, ItemPointerGetOffsetNumber(&tid), tuple->t_data,
						frozen_cleared ? wal::kFlagFrozenCleared : 0);
		END_CRIT_SECTION();
		if (BufferIsValid(vmbuf))
			ReleaseBuffer(vmbuf);
	}
	LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
	if (have_tuplock)
		UnlockTuple(rel, &tid, lockmode_of_status(mine));
	return TM_Ok;
}

/*
 * Lock the newer versions of a row whose update is still in progress (a
 * key-share lock passes a no-key update). Without this a third transaction
 * could delete the new version although our lock protects the key.
 */
static TM_Result
lock_update_chain(Relation rel, ItemPointerData tid, TransactionId prior_xmax, LockTupleMode mode,
				  LockWaitPolicy policy)
{
	TransactionId xid = GetCurrentTransactionId();
	MultiXactStatus mine = status_of_lock(mode);

	for (;;)
	{
		HeapTupleData tup;
		bool have_tuplock = false;
		BlockNumber blkno = ItemPointerGetBlockNumber(&tid);
		if (blkno >= storage::data_nblocks(rel))
			return TM_Ok;
		Buffer buffer = storage::read_data_block(rel, blkno);
		LockBuffer(buffer, BUFFER_LOCK_EXCLUSIVE);
		Page page = BufferGetPage(buffer);
		page_check(rel, blkno, page);
		OffsetNumber off = ItemPointerGetOffsetNumber(&tid);
		if (PageIsNew(page) || off > PageGetMaxOffsetNumber(page) ||
			!tuple_at(rel, buffer, page, off, &tup) || !succeeds(rel, &tup, prior_xmax) ||
			HeapTupleHeaderXminInvalid(tup.t_data))
		{
			UnlockReleaseBuffer(buffer);
			return TM_Ok; /* the chain ends here */
		}
		if (!TransactionIdIsCurrentTransactionId(prior_xmax) &&
			!TransactionIdIsInProgress(prior_xmax) && !TransactionIdDidCommit(prior_xmax))
		{
			UnlockReleaseBuffer(buffer);
			return TM_Ok; /* the updater aborted: nothing to protect */
		}

		WaitResult w;
		while ((w = wait_for_conflicts(rel, buffer, &tup, mine, policy, XLTW_LockUpdated,
									   &have_tuplock)) == WaitResult::kRecheck)
			;
		if (w == WaitResult::kWouldBlock)
		{
			UnlockReleaseBuffer(buffer);
			if (have_tuplock)
				UnlockTuple(rel, &tid, lockmode_of_status(mine));
			return TM_WouldBlock;
		}
		TM_Result after = result_after_wait(&tup);
		if (after != TM_Ok && !keyshare_passes_update(tup.t_data, mine))
		{
			/* a committed change of this version conflicts with our lock */
			UnlockReleaseBuffer(buffer);
			if (have_tuplock)
				UnlockTuple(rel, &tid, lockmode_of_status(mine));
			return TM_Updated;
		}
		if (!already_hold(tup.t_data, mine))
		{
			TransactionId new_xmax;
			uint16 im, im2;
			compose_xmax(tup.t_data, xid, mine, &new_xmax, &im, &im2);
			Buffer vmbuf = InvalidBuffer;
			storage::vm_pin_if_needed(rel, buffer, &vmbuf);
			START_CRIT_SECTION();
			storage::TupleXact x = with_xmax(tup.t_data, new_xmax, im, im2);
			if (HEAP_XMAX_IS_LOCKED_ONLY(im))
				x.ctid = tid;
			storage::set_tuple_xact(buffer, off, x);
			bool frozen_cleared = storage::vm_clear_frozen(rel, buffer, vmbuf);
			MarkBufferDirty(buffer);
			log_tuple_state(rel, buffer, wal::kLock, off, tup.t_data,
							frozen_cleared ? wal::kFlagFrozenCleared : 0);
			END_CRIT_SECTION();
			if (BufferIsValid(vmbuf))
				ReleaseBuffer(vmbuf);
		}

		/* Further versions? */
		HeapTupleHeader t = tup.t_data;
		bool updated = !(t->t_infomask & HEAP_XMAX_INVALID) &&
					   !HEAP_XMAX_IS_LOCKED_ONLY(t->t_infomask) &&
					   !ItemPointerEquals(&tup.t_self, &t->t_ctid);
		ItemPointerData next = t->t_ctid;
		TransactionId next_xmax = updated ? mvcc::update_xid(t) : InvalidTransactionId;
		UnlockReleaseBuffer(buffer);
		if (have_tuplock)
			UnlockTuple(rel, &tid, lockmode_of_status(mine));
		if (!updated || !TransactionIdIsValid(next_xmax) ||
			ItemPointerIndicatesMovedPartitions(&next))
			return TM_Ok;
		tid = next;
		prior_xmax = next_xmax;
	}
}

/*
 * A version reached along an update link from prior_xmax's update (pinned,
 * unlocked): the successor, possibly changed in place since (succeeds)?
 */
static bool
reached_successor(Relation rel, Buffer buffer, HeapTuple tuple, TransactionId prior_xmax)
{
	if (TransactionIdEquals(HeapTupleHeaderGetXmin(tuple->t_data), prior_xmax))
		return true;
	LockBuffer(buffer, BUFFER_LOCK_SHARE);
	bool same_row = succeeds(rel, tuple, prior_xmax);
	LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
	return same_row;
}

/* Wait for xid per policy (no buffer lock held): false when LockWaitSkip would block. */
static bool
wait_per_policy(Relation rel, TransactionId xid, ItemPointer tid, LockWaitPolicy policy)
{
	switch (policy)
	{
		case LockWaitBlock:
			XactLockTableWait(xid, rel, tid, XLTW_FetchUpdated);
			return true;
		case LockWaitSkip:
			return ConditionalXactLockTableWait(xid);
		case LockWaitError:
			if (!ConditionalXactLockTableWait(xid))
				ereport(ERROR, (errcode(ERRCODE_LOCK_NOT_AVAILABLE),
								errmsg("could not obtain lock on row in relation \"%s\"",
									   RelationGetRelationName(rel))));
			return true;
	}
	return true;
}

TM_Result
lock_tuple(Relation rel, ItemPointer tid, Snapshot snapshot, TupleTableSlot *slot, CommandId cid,
		   LockTupleMode mode, LockWaitPolicy wait_policy, uint8 flags, TM_FailureData *tmfd)
{
	HeapTupleData locked;
	HeapTuple tuple = &locked;
	Buffer buffer;
	TM_Result result;

	tmfd->traversed = false;
retry:
	tuple->t_self = *tid;
	result = lock_one(rel, tuple, snapshot, flags, cid, mode, wait_policy, &buffer, tmfd);

	if (result == TM_Ok && (flags & TUPLE_LOCK_FLAG_LOCK_UPDATE_IN_PROGRESS))
	{
		/* our lock passed an update: lock the newer versions too */
		LockBuffer(buffer, BUFFER_LOCK_SHARE);
		HeapTupleHeader t = tuple->t_data;
		bool updated = !(t->t_infomask & HEAP_XMAX_INVALID) &&
					   !HEAP_XMAX_IS_LOCKED_ONLY(t->t_infomask) &&
					   !ItemPointerEquals(&tuple->t_self, &t->t_ctid) &&
					   !HeapTupleHeaderIndicatesMovedPartitions(t);
		ItemPointerData next = t->t_ctid;
		TransactionId upd = updated ? mvcc::update_xid(t) : InvalidTransactionId;
		LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
		if (updated && TransactionIdIsValid(upd) && !TransactionIdIsCurrentTransactionId(upd))
		{
			TM_Result chain = lock_update_chain(rel, next, upd, mode, wait_policy);
			if (chain == TM_WouldBlock)
			{
				ReleaseBuffer(buffer);
				return TM_WouldBlock;
			}
			if (chain != TM_Ok)
			{
				/* report it like an update of this version: the caller re-checks */
				result = TM_Updated;
				tmfd->ctid = next;
				tmfd->xmax = upd;
				tmfd->cmax = InvalidCommandId;
			}
		}
	}

	if (result == TM_Updated && (flags & TUPLE_LOCK_FLAG_FIND_LAST_VERSION))
	{
		ReleaseBuffer(buffer);
		if (ItemPointerEquals(&tmfd->ctid, &tuple->t_self))
			return TM_Deleted;

		/* Follow the update chain to the newest version and lock that. */
		SnapshotData dirty;
		TransactionId prior_xmax = tmfd->xmax;
		*tid = tmfd->ctid;
		tmfd->traversed = true;
		InitDirtySnapshot(dirty);
		for (;;)
		{
			if (ItemPointerIndicatesMovedPartitions(tid))
				ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
								errmsg("tuple to be locked was already moved to another "
									   "partition due to concurrent update")));
			tuple->t_self = *tid;
			if (fetch(rel, &dirty, tuple, &buffer, true))
			{
				if (!reached_successor(rel, buffer, tuple, prior_xmax))
				{
					ReleaseBuffer(buffer);
					return TM_Deleted;
				}
				if (TransactionIdIsValid(dirty.xmin) &&
					!TransactionIdEquals(HeapTupleHeaderGetXmin(tuple->t_data), prior_xmax))
				{
					/* an in-place update of the successor still runs: wait for it, look again */
					TransactionId creator = dirty.xmin;
					ReleaseBuffer(buffer);
					if (!wait_per_policy(rel, creator, &tuple->t_self, wait_policy))
						return TM_WouldBlock;
					continue;
				}
				if (TransactionIdIsValid(dirty.xmin))
					ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
									errmsg_internal("t_xmin %u is uncommitted in tuple (%u,%u) "
													"to be updated in table \"%s\"",
													dirty.xmin, ItemPointerGetBlockNumber(tid),
													ItemPointerGetOffsetNumber(tid),
													RelationGetRelationName(rel))));
				if (TransactionIdIsValid(dirty.xmax))
				{
					ReleaseBuffer(buffer);
					if (!wait_per_policy(rel, dirty.xmax, &tuple->t_self, wait_policy))
						return TM_WouldBlock;
					continue;
				}
				if (TransactionIdIsCurrentTransactionId(prior_xmax) &&
					HeapTupleHeaderGetCmin(tuple->t_data) >= cid)
				{
					tmfd->xmax = prior_xmax;
					tmfd->cmax = HeapTupleHeaderGetCmin(tuple->t_data);
					ReleaseBuffer(buffer);
					return TM_SelfModified;
				}
				ReleaseBuffer(buffer);
				goto retry;
			}
			if (tuple->t_data == nullptr)
				return TM_Deleted;
			if (!reached_successor(rel, buffer, tuple, prior_xmax))
			{
				ReleaseBuffer(buffer);
				return TM_Deleted;
			}
			if (ItemPointerEquals(&tuple->t_self, &tuple->t_data->t_ctid))
			{
				ReleaseBuffer(buffer);
				return TM_Deleted;
			}
			*tid = tuple->t_data->t_ctid;
			prior_xmax = mvcc::update_xid(tuple->t_data);
			ReleaseBuffer(buffer);
		}
	}

	tuple->t_tableOid = RelationGetRelid(rel);
	store_tuple(rel, tuple, slot, buffer, true);
	return result;
}

} /* namespace rustydb::am */

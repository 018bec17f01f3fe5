/*-------------------------------------------------------------------------
 *
 * xmax.cpp
 *	  Who holds a row: composing a tuple's xmax from its lockers and
 *	  updater, waiting for conflicting ones, and the first half shared by
 *	  delete, update and row locks (include/rustydb/am/xmax.h).
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/am/am.h"
#include "rustydb/am/inplace.h"
#include "rustydb/am/xmax.h"
#include "rustydb/storage/buffer.h"
#include "rustydb/common/settings.h"
#include "rustydb/crypto/crypto.h"

#include "rustydb/mvcc/visibility.h"
#include "rustydb/storage/changes.h"
#include "rustydb/storage/page.h"
#include "rustydb/storage/undo.h"
#include "rustydb/wal/records.h"

namespace rustydb::am {

using storage::page_check;
using storage::tuple_at;

/* ========================================================================
 * Lock modes
 * ========================================================================
 */

/* The heavyweight lock mode matching a multixact member status. */
LOCKMODE
lockmode_of_status(MultiXactStatus status)
{
	switch (status)
	{
		case MultiXactStatusForKeyShare:
			return AccessShareLock;
		case MultiXactStatusForShare:
			return RowShareLock;
		case MultiXactStatusForNoKeyUpdate:
		case MultiXactStatusNoKeyUpdate:
			return ExclusiveLock;
		case MultiXactStatusForUpdate:
		case MultiXactStatusUpdate:
			return AccessExclusiveLock;
	}
	return AccessExclusiveLock;
}

MultiXactStatus
status_of_lock(LockTupleMode mode)
{
	switch (mode)
	{
		case LockTupleKeyShare:
			return MultiXactStatusForKeyShare;
		case LockTupleShare:
			return MultiXactStatusForShare;
		case LockTupleNoKeyExclusive:
			return MultiXactStatusForNoKeyUpdate;
		case LockTupleExclusive:
			return MultiXactStatusForUpdate;
	}
	return MultiXactStatusForUpdate;
}

MultiXactStatus
status_of_update(LockTupleMode mode)
{
	return mode == LockTupleExclusive ? MultiXactStatusUpdate : MultiXactStatusNoKeyUpdate;
}

/* Lock strength order for "do we already hold it": key share < ... < update. */
int
strength(MultiXactStatus s)
{
	switch (s)
	{
		case MultiXactStatusForKeyShare:
			return 0;
		case MultiXactStatusForShare:
			return 1;
		case MultiXactStatusForNoKeyUpdate:
		case MultiXactStatusNoKeyUpdate:
			return 2;
		case MultiXactStatusForUpdate:
		case MultiXactStatusUpdate:
			return 3;
	}
	return 3;
}

/* The status of a plain (non-multi) xmax, from the lock bits. */
static MultiXactStatus
single_status(uint16 infomask, uint16 infomask2)
{
	if (HEAP_XMAX_IS_LOCKED_ONLY(infomask))
	{
		if (HEAP_XMAX_IS_KEYSHR_LOCKED(infomask))
			return MultiXactStatusForKeyShare;
		if (HEAP_XMAX_IS_SHR_LOCKED(infomask))
			return MultiXactStatusForShare;
		if (HEAP_XMAX_IS_EXCL_LOCKED(infomask) && !(infomask2 & HEAP_KEYS_UPDATED))
			return MultiXactStatusForNoKeyUpdate;
		return MultiXactStatusForUpdate;
	}
	return (infomask2 & HEAP_KEYS_UPDATED) ? MultiXactStatusUpdate : MultiXactStatusNoKeyUpdate;
}

/* ========================================================================
 * xmax members: who locks or updates a tuple
 * ========================================================================
 */

/* The tuple's current xmax as a member list (palloc'd, one spare slot). */
Members *
get_members(HeapTupleHeader t)
{
	uint16 infomask = t->t_infomask;
	Members *ms;

	if (infomask & HEAP_XMAX_INVALID)
	{
		ms = (Members *) palloc(offsetof(Members, m) + 2 * sizeof(MultiXactMember));
		ms->n = 0;
		return ms;
	}
	TransactionId raw = HeapTupleHeaderGetRawXmax(t);
	if (infomask & HEAP_XMAX_IS_MULTI)
	{
		MultiXactMember *members = nullptr;
		int n = GetMultiXactIdMembers(raw, &members, false, HEAP_XMAX_IS_LOCKED_ONLY(infomask));
		if (n < 0)
			n = 0;
		ms = (Members *) palloc(offsetof(Members, m) + (n + 2) * sizeof(MultiXactMember));
		ms->n = n;
		if (n > 0)
		{
			memcpy(ms->m, members, n * sizeof(MultiXactMember));
			pfree(members);
		}
		return ms;
	}
	ms = (Members *) palloc(offsetof(Members, m) + 3 * sizeof(MultiXactMember));
	ms->n = 1;
	ms->m[0].xid = raw;
	ms->m[0].status = single_status(infomask, t->t_infomask2);
	return ms;
}

/* The heavyweight tuple lock establishes who goes first among waiters. */
static bool
acquire_tuplock(Relation rel, ItemPointer tid, MultiXactStatus mine, LockWaitPolicy policy,
				bool *have)
{
	if (*have)
		return true;
	LOCKMODE mode = lockmode_of_status(mine);
	switch (policy)
	{
		case LockWaitBlock:
			LockTuple(rel, tid, mode);
			break;
		case LockWaitSkip:
			if (!ConditionalLockTuple(rel, tid, mode))
				return false;
			break;
		case LockWaitError:
			if (!ConditionalLockTuple(rel, tid, mode))
				ereport(ERROR, (errcode(ERRCODE_LOCK_NOT_AVAILABLE),
								errmsg("could not obtain lock on row in relation \"%s\"",
									   RelationGetRelationName(rel))));
			break;
	}
	*have = true;
	return true;
}

/*
 * With buffer exclusively locked, wait (per policy) for every other
 * running transaction whose lock or update on the tuple conflicts with
 * mine. Returns with the buffer locked again.
 */
WaitResult
wait_for_conflicts(Relation rel, Buffer buffer, HeapTuple tuple, MultiXactStatus mine,
				   LockWaitPolicy policy, XLTW_Oper oper, bool *have_tuplock)
{
	Assert(storage::buffer_is_locked_exclusive(buffer));
	Assert(CritSectionCount == 0);

	Members *ms = get_members(tuple->t_data);
	TransactionId waits[64];
	int nwaits = 0;
	bool overflow = false;
	bool hold_some = false;

	for (int i = 0; i < ms->n; i++)
	{
		TransactionId xid = ms->m[i].xid;
		if (TransactionIdIsCurrentTransactionId(xid))
		{
			hold_some = true;
			continue;
		}
		if (!DoLockModesConflict(lockmode_of_status(ms->m[i].status), lockmode_of_status(mine)))
			continue;
		if (!TransactionIdIsInProgress(xid))
			continue;
		if (nwaits < (int) lengthof(waits))
			waits[nwaits++] = xid;
		else
			overflow = true;
	}
	pfree(ms);
	if (nwaits == 0)
		return WaitResult::kProceed;

	ItemPointerData tid = tuple->t_self;
	LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
	/*
	 * Holding a weaker lock on the tuple already, we must not queue for the
	 * tuple lock: a waiter for a stronger lock queued behind us would wait
	 * for us while we wait for it (upgrade deadlock).
	 */
	if (!hold_some && !acquire_tuplock(rel, &tid, mine, policy, have_tuplock))
	{
		LockBuffer(buffer, BUFFER_LOCK_EXCLUSIVE);
		return WaitResult::kWouldBlock;
	}
	for (int i = 0; i < nwaits; i++)
	{
		switch (policy)
		{
			case LockWaitBlock:
				XactLockTableWait(waits[i], rel, &tid, oper);
				break;
			case LockWaitSkip:
				if (!ConditionalXactLockTableWait(waits[i]))
				{
					LockBuffer(buffer, BUFFER_LOCK_EXCLUSIVE);
					return WaitResult::kWouldBlock;
				}
				break;
			case LockWaitError:
				if (!ConditionalXactLockTableWait(waits[i]))
					ereport(ERROR, (errcode(ERRCODE_LOCK_NOT_AVAILABLE),
									errmsg("could not obtain lock on row in relation \"%s\"",
										   RelationGetRelationName(rel))));
				break;
		}
	}
	(void) overflow; /* the recheck finds any member we did not wait for */
	LockBuffer(buffer, BUFFER_LOCK_EXCLUSIVE);
	/* the line pointer may have moved meanwhile (an in-place update) */
	if (!storage::tuple_at(rel, buffer, BufferGetPage(buffer), ItemPointerGetOffsetNumber(&tid),
						   tuple))
		elog(ERROR, "rustydb: row (%u,%u) vanished while pinned", ItemPointerGetBlockNumber(&tid),
			 (unsigned) ItemPointerGetOffsetNumber(&tid));
	return WaitResult::kRecheck;
}

/*
 * After waiting: the tuple's xmax holds only non-conflicting or finished
 * members. If an updater committed, the row is gone for us.
 */
TM_Result
result_after_wait(HeapTuple tuple)
{
	HeapTupleHeader t = tuple->t_data;

	if ((t->t_infomask & HEAP_XMAX_INVALID) || HEAP_XMAX_IS_LOCKED_ONLY(t->t_infomask))
		return TM_Ok;
	TransactionId upd = mvcc::update_xid(t);
	if (!TransactionIdIsValid(upd) || TransactionIdIsCurrentTransactionId(upd))
		return TM_Ok;
	if (TransactionIdIsInProgress(upd))
		return TM_Ok; /* a non-conflicting (key share vs. no-key) update */
	if (TransactionIdDidCommit(upd))
		return ItemPointerEquals(&tuple->t_self, &t->t_ctid) ? TM_Deleted : TM_Updated;
	return TM_Ok;
}

/*
 * A key-share lock does not conflict with an update that left the key
 * columns alone, even a committed one: the old version can still be locked.
 */
bool
keyshare_passes_update(HeapTupleHeader t, MultiXactStatus mine)
{
	return mine == MultiXactStatusForKeyShare && !(t->t_infomask & HEAP_XMAX_INVALID) &&
		   !HEAP_XMAX_IS_LOCKED_ONLY(t->t_infomask) && !(t->t_infomask2 & HEAP_KEYS_UPDATED) &&
		   !HeapTupleHeaderIndicatesMovedPartitions(t);
}

/* Infomask lock bits for one member standing alone in xmax. */
static void
bits_for_status(MultiXactStatus s, uint16 *infomask, uint16 *infomask2)
{
	switch (s)
	{
		case MultiXactStatusForKeyShare:
			*infomask |= HEAP_XMAX_LOCK_ONLY | HEAP_XMAX_KEYSHR_LOCK;
			break;
		case MultiXactStatusForShare:
			*infomask |= HEAP_XMAX_LOCK_ONLY | HEAP_XMAX_SHR_LOCK;
			break;
		case MultiXactStatusForNoKeyUpdate:
			*infomask |= HEAP_XMAX_LOCK_ONLY | HEAP_XMAX_EXCL_LOCK;
			break;
		case MultiXactStatusForUpdate:
			*infomask |= HEAP_XMAX_LOCK_ONLY | HEAP_XMAX_EXCL_LOCK;
			*infomask2 |= HEAP_KEYS_UPDATED;
			break;
		case MultiXactStatusNoKeyUpdate:
			break;
		case MultiXactStatusUpdate:
			*infomask2 |= HEAP_KEYS_UPDATED;
			break;
	}
}

/*
 * Compute the xmax that adds (xid, mine) to the tuple's current lockers
 * and updater. Members that have finished are dropped (an updater only if
 * it aborted); our own weaker locks are subsumed. Must run outside a
 * critical section: it may create a multixact.
 */
void
compose_xmax(HeapTupleHeader t, TransactionId xid, MultiXactStatus mine, TransactionId *xmax,
			 uint16 *infomask, uint16 *infomask2)
{
	Assert(CritSectionCount == 0); /* may create a multixact */

	Members *ms = get_members(t);
	int n = 0;

	for (int i = 0; i < ms->n; i++)
	{
		MultiXactMember m = ms->m[i];
		bool keep;
		if (TransactionIdEquals(m.xid, xid))
		{
			/*
			 * Our own earlier lock, same (sub)transaction: the stronger of
			 * the two stays. A parent's or another subtransaction's lock
			 * is kept as its own member below, so rolling back this
			 * subtransaction does not lose it.
			 */
			if (!ISUPDATE_from_mxstatus(m.status) && strength(m.status) > strength(mine))
			{
				/* FOR UPDATE then a no-key UPDATE: the update counts as a key update */
				mine = ISUPDATE_from_mxstatus(mine) ? MultiXactStatusUpdate : m.status;
			}
			keep = false;
		}
		else if (ISUPDATE_from_mxstatus(m.status))
			keep = TransactionIdIsInProgress(m.xid) || TransactionIdDidCommit(m.xid);
		else
			keep = TransactionIdIsInProgress(m.xid);
		if (keep)
			ms->m[n++] = m;
	}
	ms->m[n].xid = xid;
	ms->m[n].status = mine;
	n++;

	*infomask = 0;
	*infomask2 = 0;
	if (n == 1)
	{
		*xmax = xid;
		bits_for_status(mine, infomask, infomask2);
	}
	else
	{
		bool has_update = false;
		int strongest = -1;
		MultiXactStatus strongest_status = MultiXactStatusForKeyShare;
		for (int i = 0; i < n; i++)
		{
			if (ISUPDATE_from_mxstatus(ms->m[i].status))
				has_update = true;
			if (ms->m[i].status == MultiXactStatusUpdate ||
				ms->m[i].status == MultiXactStatusForUpdate)
				*infomask2 |= HEAP_KEYS_UPDATED;
			if (strength(ms->m[i].status) > strongest)
			{
				strongest = strength(ms->m[i].status);
				strongest_status = ms->m[i].status;
			}
		}
		MultiXactIdSetOldestMember();
		*xmax = MultiXactIdCreateFromMembers(n, ms->m);
		*infomask |= HEAP_XMAX_IS_MULTI;
		if (!has_update)
			*infomask |= HEAP_XMAX_LOCK_ONLY;
		switch (strongest_status)
		{
			case MultiXactStatusForKeyShare:
				*infomask |= HEAP_XMAX_KEYSHR_LOCK;
				break;
			case MultiXactStatusForShare:
				*infomask |= HEAP_XMAX_SHR_LOCK;
				break;
			default:
				*infomask |= HEAP_XMAX_EXCL_LOCK;
				break;
		}
	}
	pfree(ms);
}

/* The tuple's transaction fields with a new xmax, for storage::set_tuple_xact. */
storage::TupleXact
with_xmax(HeapTupleHeader t, TransactionId xmax, uint16 infomask, uint16 infomask2)
{
	storage::TupleXact x = storage::tuple_xact(t);
	x.infomask = (x.infomask & ~(HEAP_XMAX_BITS | HEAP_MOVED)) | infomask;
	x.infomask2 = (x.infomask2 & ~HEAP_KEYS_UPDATED) | infomask2;
	x.xmax = xmax;
	return x;
}

/* ========================================================================
 * WAL helpers
 * ========================================================================
 */

void
log_tuple_state(Relation rel, Buffer buffer, uint8 kind, OffsetNumber off, HeapTupleHeader t,
				uint8 flags, const LogicalTrailer *lt)
{
	Assert(CritSectionCount > 0);
	Assert(storage::buffer_is_locked_exclusive(buffer));
	if (!RelationNeedsWAL(rel))
		return;
	wal::XlTupleState xl;
	memset(&xl, 0, sizeof(xl));
	xl.version = wal::kWalFormatVersion;
	xl.flags = flags;
	xl.offnum = off;
	xl.xmin = HeapTupleHeaderGetRawXmin(t);
	xl.xmax = HeapTupleHeaderGetRawXmax(t);
	xl.infomask = t->t_infomask;
	xl.infomask2 = t->t_infomask2;
	xl.ctid = t->t_ctid;
	if (lt != nullptr && lt->logged)
		xl.flags |= wal::kFlagLogical;
	XLogBeginInsert();
	XLogRegisterData((char *) &xl, sizeof(xl));
	if (lt != nullptr)
		register_logical_trailer(*lt);
	XLogRegisterBuffer(0, buffer, REGBUF_STANDARD);
	XLogRecPtr recptr = XLogInsert(RUSTYDB_RMGR_ID, kind);
	PageSetLSN(BufferGetPage(buffer), recptr);
}

/* ========================================================================
 * Shared first half of delete, update and lock
 * ========================================================================
 */

void
fail_data(HeapTuple tuple, TM_Result result, TM_FailureData *tmfd)
{
	HeapTupleHeader t = tuple->t_data;
	tmfd->traversed = false;
	if ((result == TM_Updated || result == TM_SelfModified) && inplace_creator_conflict(t))
	{
		/* the row changed in place: its newer version is at the same TID */
		tmfd->ctid = tuple->t_self;
		tmfd->xmax = HeapTupleHeaderGetRawXmin(t);
		tmfd->cmax = result == TM_SelfModified ? HeapTupleHeaderGetCmin(t) : InvalidCommandId;
		return;
	}
	tmfd->ctid = t->t_ctid;
	tmfd->xmax = mvcc::update_xid(t);
	if (!TransactionIdIsValid(tmfd->xmax))
		tmfd->xmax = HeapTupleHeaderGetRawXmax(t);
	tmfd->cmax = result == TM_SelfModified ? HeapTupleHeaderGetCmax(t) : InvalidCommandId;
}

bool
inplace_creator_conflict(HeapTupleHeader t)
{
	return storage::tuple_has_undo(t) &&
		   ((t->t_infomask & HEAP_XMAX_INVALID) || HEAP_XMAX_IS_LOCKED_ONLY(t->t_infomask));
}

TM_Result
settle_creator(Relation rel, Buffer buffer, HeapTuple tuple, CommandId cid, MultiXactStatus mine,
			   LockWaitPolicy policy, bool wait, XLTW_Oper oper, bool *have_tuplock, bool *passes)
{
	*passes = false;
	Assert(storage::buffer_is_locked_exclusive(buffer));
	ItemPointerData tid = tuple->t_self;
	OffsetNumber off = ItemPointerGetOffsetNumber(&tid);
	for (;;)
	{
		HeapTupleHeader t = tuple->t_data;
		if (!storage::tuple_has_undo(t) || HeapTupleHeaderXminCommitted(t))
			return TM_Ok;
		TransactionId xmin = HeapTupleHeaderGetRawXmin(t);
		if (TransactionIdIsCurrentTransactionId(xmin))
			/* a later command of ours changed it in place: as heap's TM_SelfModified */
			return HeapTupleHeaderGetCmin(t) >= cid ? TM_SelfModified : TM_Ok;
		if (TransactionIdIsInProgress(xmin))
		{
			/*
			 * Its in-place creator is an updater still running. An in-place
			 * update never changes a key column, so a key-share lock passes
			 * it, as heap's passes a no-key update (the lock goes on this
			 * version; a repair keeps it). Others wait as for an updater.
			 */
			if (mine == MultiXactStatusForKeyShare)
			{
				*passes = true;
				return TM_Ok;
			}
			if (!wait)
				return TM_BeingModified;
			/*
			 * Holding a lock on the row already (it went on with the row into
			 * this version), we must not queue for the tuple lock: a waiter
			 * for a stronger lock queued behind us would wait for us while
			 * we wait for it (as wait_for_conflicts).
			 */
			bool hold_some = false;
			if (!(t->t_infomask & HEAP_XMAX_INVALID))
			{
				Members *ms = get_members(t);
				for (int i = 0; i < ms->n && !hold_some; i++)
					hold_some = TransactionIdIsCurrentTransactionId(ms->m[i].xid);
				pfree(ms);
			}
			LockBuffer(buffer, BUFFER_LOCK_UNLOCK);
			if (!hold_some && !acquire_tuplock(rel, &tid, mine, policy, have_tuplock))
			{
				LockBuffer(buffer, BUFFER_LOCK_EXCLUSIVE);
				return TM_WouldBlock;
			}
			bool waited = true;
			switch (policy)
			{
				case LockWaitBlock:
					XactLockTableWait(xmin, rel, &tid, oper);
					break;
				case LockWaitSkip:
					waited = ConditionalXactLockTableWait(xmin);
					break;
				case LockWaitError:
					if (!ConditionalXactLockTableWait(xmin))
						ereport(ERROR, (errcode(ERRCODE_LOCK_NOT_AVAILABLE),
										errmsg("could not obtain lock on row in relation \"%s\"",
											   RelationGetRelationName(rel))));
					break;
			}
			LockBuffer(buffer, BUFFER_LOCK_EXCLUSIVE);
			if (!waited)
				return TM_WouldBlock;
			/* the line pointer may have moved meanwhile */
			if (!storage::tuple_at(rel, buffer, BufferGetPage(buffer), off, tuple))
				elog(ERROR, "rustydb: row (%u,%u) vanished while pinned",
					 ItemPointerGetBlockNumber(&tid), (unsigned) off);
			continue;
		}
		if (TransactionIdDidCommit(xmin))
			return TM_Ok;
		repair_aborted(rel, buffer, tuple); /* re-reads *tuple */
	}
}

bool
changed_under_snapshot(HeapTuple tuple, Snapshot snapshot)
{
	HeapTupleHeader t = tuple->t_data;
	if (snapshot == InvalidSnapshot || !IsMVCCSnapshot(snapshot) || !storage::tuple_has_undo(t))
		return false;
	if (!mvcc::creator_invisible(t, snapshot))
		return false;
	/* our own lock on it (EvalPlanQual locked the newest version): proceed */
	if (!(t->t_infomask & HEAP_XMAX_INVALID))
	{
		Members *ms = get_members(t);
		bool mine = false;
		for (int i = 0; i < ms->n && !mine; i++)
			mine = TransactionIdIsCurrentTransactionId(ms->m[i].xid);
		pfree(ms);
		if (mine)
			return false;
	}
	return true;
}

/* Read and lock the page of tid and point tuple at it; ERROR if not a tuple. */
Buffer
read_target(Relation rel, ItemPointer tid, HeapTuple tuple, const char *what)
{
	BlockNumber blkno = ItemPointerGetBlockNumber(tid);
	Buffer buffer = storage::read_data_block(rel, blkno);
	LockBuffer(buffer, BUFFER_LOCK_EXCLUSIVE);
	Page page = BufferGetPage(buffer);
	page_check(rel, blkno, page);
	OffsetNumber off = ItemPointerGetOffsetNumber(tid);
	if (off < FirstOffsetNumber || off > PageGetMaxOffsetNumber(page) ||
		!tuple_at(rel, buffer, page, off, tuple))
		ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
						errmsg("attempted to %s a row (%u,%u) that does not exist in \"%s\"", what,
							   blkno, (unsigned) off, RelationGetRelationName(rel))));
	return buffer;
}

/*
 * Decide whether this transaction may modify the tuple (buffer locked),
 * waiting for conflicting transactions as needed. On return the buffer is
 * locked and the tuple pointer valid.
 */
TM_Result
acquire_right(Relation rel, Buffer buffer, HeapTuple tuple, CommandId cid, Snapshot snapshot,
			  Snapshot crosscheck, MultiXactStatus mine, LockWaitPolicy policy, bool wait,
			  XLTW_Oper oper, bool *have_tuplock)
{
	Assert(storage::buffer_is_locked_exclusive(buffer));
	OffsetNumber off = ItemPointerGetOffsetNumber(&tuple->t_self);
	for (bool first = true;; first = false)
	{
		/* after a wait the line pointer may have moved (an in-place update) */
		if (!first && !storage::tuple_at(rel, buffer, BufferGetPage(buffer), off, tuple))
			elog(ERROR, "rustydb: row (%u,%u) vanished while pinned",
				 ItemPointerGetBlockNumber(&tuple->t_self), (unsigned) off);
		bool passes;
		TM_Result settled = settle_creator(rel, buffer, tuple, cid, mine, policy, wait, oper,
										   have_tuplock, &passes);
		if (settled != TM_Ok)
			return settled;
		TM_Result result = mvcc::satisfies_update(tuple, cid, buffer, passes);
		/* changed in place since the snapshot: reported at once, as heap reports its old version's updater */
		if ((result == TM_Ok || result == TM_BeingModified) &&
			changed_under_snapshot(tuple, snapshot))
			return TM_Updated;

		if (result == TM_BeingModified)
		{
			if (!wait)
				return result;
			WaitResult w = wait_for_conflicts(rel, buffer, tuple, mine, policy, oper, have_tuplock);
			if (w == WaitResult::kWouldBlock)
				return TM_WouldBlock;
			if (w == WaitResult::kRecheck)
				continue;
			result = result_after_wait(tuple);
		}
		if (result == TM_Ok && crosscheck != InvalidSnapshot &&
			!mvcc::satisfies(tuple, crosscheck, buffer))
			result = TM_Updated;
		return result;
	}
}

} /* namespace rustydb::am */

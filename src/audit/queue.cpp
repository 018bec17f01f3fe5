/*-------------------------------------------------------------------------
 *
 * queue.cpp
 *	  The bounded shared-memory queue between backends and the audit
 *	  worker.
 *
 * rustydb.audit_queue_size fixed-size slots, each big enough for a Record
 * with the longest statement text (rustydb.audit_statement_max). Backends
 * append at head under the queue's LWLock; the worker copies records from
 * tail, writes them to the trail, and only after its transaction committed
 * releases their slots and wakes backends waiting for space. A worker that
 * dies before committing leaves its records in the queue for the next one.
 *
 * When the queue is full rustydb.audit_overflow decides: wait (sleep on a
 * condition variable until the worker frees slots), error (the statement
 * fails with SQLSTATE 53000) or drop (the record is counted as dropped;
 * the worker writes an audit_records_dropped record with the count, so the
 * loss is itself in the trail). During recovery (hot standby) there is no
 * worker: records go to the server log instead and are counted.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/audit/internal.h"
#include "rustydb/common/wait_events.h"

#include "rustydb/common/boundary.h"
#include "rustydb/common/settings.h"
#include "rustydb/common/shmem.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/htup_details.h"
#include "access/xlog.h"
#include "pgstat.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "port/atomics.h"
#include "storage/lwlock.h"
#include "utils/wait_event.h"
RUSTYDB_PG_INCLUDE_END

#include <cstring>

namespace rustydb {
namespace audit {

namespace {

struct QueueShared
{
	uint64 head; /* next slot to fill (monotonic) */
	uint64 tail; /* next slot to write to the trail (monotonic) */
	uint64 capacity;
	Size slot_size;
	uint64 high_water;
	uint64 enqueued;
	uint64 written;
	uint64 dropped;
	uint64 rejected;
	uint64 logged;
	uint64 waits;
	uint64 worker_written; /* the worker's own records (purges, settings) */
	int64 purged_rows;
	int64 trail_bytes;
	int64 trail_rows;
	int64 last_seq;
	Latch *worker_latch;
	int worker_pid;
	uint64 worker_starts; /* writer starts since shared memory was set up */
	bool gap_pending;     /* a loss event is owed to the trail (see worker.cpp) */
	ConditionVariable space;
	/* capacity ready marks follow at kReadyOffset, then the slots */
};

const Size kReadyOffset = MAXALIGN(sizeof(QueueShared));

QueueShared *queue = nullptr;
LWLock *queue_lock = nullptr;
pg_atomic_uint64 *ready = nullptr; /* ready[pos % capacity] = pos + 1: slot pos is filled */
char *slots = nullptr;

Size
ready_size(uint64 capacity)
{
	return MAXALIGN(mul_size(sizeof(pg_atomic_uint64), capacity));
}

char *
slot_at(uint64 pos)
{
	return slots + (pos % queue->capacity) * queue->slot_size;
}

Size
queue_size()
{
	return add_size(add_size(kReadyOffset, ready_size(settings::audit_queue_size)),
					mul_size(record_slot_size(), settings::audit_queue_size));
}

void
queue_init(void *ptr, bool found, LWLockPadded *locks)
{
	queue = static_cast<QueueShared *>(ptr);
	queue_lock = &locks[0].lock;
	ready = reinterpret_cast<pg_atomic_uint64 *>(static_cast<char *>(ptr) + kReadyOffset);
	slots = static_cast<char *>(ptr) + kReadyOffset + ready_size(settings::audit_queue_size);
	if (found)
		return;
	memset(queue, 0, sizeof(QueueShared));
	queue->capacity = settings::audit_queue_size;
	queue->slot_size = record_slot_size();
	ConditionVariableInit(&queue->space);
	for (uint64 i = 0; i < queue->capacity; i++)
		pg_atomic_init_u64(&ready[i], 0);
}

void
queue_usage(const void *ptr, shmem::Usage *out)
{
	const QueueShared *q = static_cast<const QueueShared *>(ptr);

	out->entries = static_cast<int64>(q->head - q->tail);
	out->limit = static_cast<int64>(q->capacity);
	out->high_water = static_cast<int64>(q->high_water);
	out->limit_setting = "rustydb.audit_queue_size";
}

} /* namespace */

/* Where the trail cannot be written, the server log keeps the record. */
void
log_record(const Record *rec)
{
	ereport(LOG, (errmsg("AUDIT: action=%s object=%s user=%s session_user=%s database=%s "
						 "outcome=%s rows=" INT64_FORMAT " statement=%s",
						 rec->action, rec->object, rec->user_name, rec->session_user_name,
						 rec->database_name, rec->outcome, rec->rows, rec->statement),
				  errhidestmt(true)));
}

namespace {} /* namespace */

Size
record_slot_size()
{
	return MAXALIGN(offsetof(Record, statement) + settings::audit_statement_max + 1);
}

void
register_queue()
{
	shmem::register_segment({"rustydb audit queue", queue_size, 1, queue_init, queue_usage});
}

void
enqueue(const Record *rec, EnqueueMode mode)
{
	Size len = offsetof(Record, statement) + rec->statement_len + 1;
	bool counted_wait = false;
	bool sleeping = false;

	if (queue == nullptr)
		return;
	Assert(len <= queue->slot_size);

	if (RecoveryInProgress())
	{
		log_record(rec);
		LWLockAcquire(queue_lock, LW_EXCLUSIVE);
		queue->logged++;
		LWLockRelease(queue_lock);
		return;
	}

	for (;;)
	{
		LWLockAcquire(queue_lock, LW_EXCLUSIVE);
		if (queue->head - queue->tail < queue->capacity)
		{
			Latch *latch = nullptr;
			uint64 pos = queue->head;
			uint64 queued;

			queue->head++;
			queue->enqueued++;
			queued = queue->head - queue->tail;
			if (queued > queue->high_water)
				queue->high_water = queued;
			/*
			 * Wake the worker only when it may be sleeping until woken: the
			 * queue was empty (it has written everything), or it is half
			 * full (it must not wait for its gathering time). Otherwise
			 * it comes back within its gathering time by itself; setting
			 * its latch cost a kill() for each batch it wrote.
			 */
			if (queued == 1 || queued >= queue->capacity / 2)
				latch = queue->worker_latch;
			LWLockRelease(queue_lock);

			/*
			 * The slot is this backend's until it is marked ready: copy
			 * the record without holding the lock (nothing between the
			 * reservation and the mark can fail or be interrupted).
			 */
			memcpy(slot_at(pos), rec, len);
			pg_write_barrier();
			pg_atomic_write_u64(&ready[pos % queue->capacity], pos + 1);
			if (sleeping)
				ConditionVariableCancelSleep();
			if (latch != nullptr)
				SetLatch(latch);
			return;
		}

		int overflow =
			mode == EnqueueMode::NoWait ? settings::kAuditOverflowDrop : settings::audit_overflow;

		if (overflow == settings::kAuditOverflowDrop)
		{
			queue->dropped++;
			LWLockRelease(queue_lock);
			if (sleeping)
				ConditionVariableCancelSleep();
			return;
		}
		if (overflow == settings::kAuditOverflowError)
		{
			queue->rejected++;
			LWLockRelease(queue_lock);
			if (sleeping)
				ConditionVariableCancelSleep();
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_RESOURCES), errmsg("audit queue is full"),
					 errdetail("The statement could not be audited: all %d slots of the audit "
							   "queue are in use.",
							   static_cast<int>(queue->capacity)),
					 errhint("rustydb.audit_overflow is \"error\"; retry, or raise "
							 "rustydb.audit_queue_size.")));
		}
		if (!counted_wait)
		{
			queue->waits++;
			counted_wait = true;
		}
		Latch *latch = queue->worker_latch;

		LWLockRelease(queue_lock);
		if (latch != nullptr)
			SetLatch(latch);
		ConditionVariableSleep(&queue->space, wait::info(wait::Event::AuditQueueFull));
		sleeping = true;
	}
}

/*
 * Only the worker advances tail, and backends never write a slot between
 * tail and head once they marked it ready, so the records are copied
 * after the lock is released: holding it while copying a whole batch made
 * backends queue behind it. A backend reserves its slot (advances head)
 * under the lock and copies its record after releasing it, then marks
 * the slot ready; the batch ends at the first slot not ready yet (its
 * record is taken with the next batch).
 */
int
queue_peek(char *buf, int max)
{
	uint64 tail;
	int n;

	LWLockAcquire(queue_lock, LW_SHARED);
	tail = queue->tail;
	n = static_cast<int>(Min(static_cast<uint64>(max), queue->head - tail));
	LWLockRelease(queue_lock);
	for (int i = 0; i < n; i++)
	{
		uint64 pos = tail + i;

		if (pg_atomic_read_u64(&ready[pos % queue->capacity]) != pos + 1)
		{
			n = i;
			break;
		}
		pg_read_barrier();

		const Record *r = reinterpret_cast<const Record *>(slot_at(pos));

		memcpy(buf + i * queue->slot_size, r, offsetof(Record, statement) + r->statement_len + 1);
	}
	return n;
}

uint64
queue_length()
{
	uint64 v;

	LWLockAcquire(queue_lock, LW_SHARED);
	v = queue->head - queue->tail;
	LWLockRelease(queue_lock);
	return v;
}

void
queue_release(int n, int64 last_seq)
{
	LWLockAcquire(queue_lock, LW_EXCLUSIVE);
	queue->tail += n;
	queue->written += n;
	queue->last_seq = last_seq;
	LWLockRelease(queue_lock);
	ConditionVariableBroadcast(&queue->space);
}

void
queue_add_worker_written(int n, int64 last_seq)
{
	LWLockAcquire(queue_lock, LW_EXCLUSIVE);
	queue->worker_written += n;
	queue->written += n;
	queue->last_seq = last_seq;
	LWLockRelease(queue_lock);
}

void
queue_release_logged(int n)
{
	LWLockAcquire(queue_lock, LW_EXCLUSIVE);
	queue->tail += n;
	queue->logged += n;
	LWLockRelease(queue_lock);
	ConditionVariableBroadcast(&queue->space);
}

bool
queue_set_worker(Latch *latch, int pid)
{
	bool first;

	LWLockAcquire(queue_lock, LW_EXCLUSIVE);
	queue->worker_latch = latch;
	queue->worker_pid = pid;
	first = latch != nullptr && queue->worker_starts++ == 0;
	LWLockRelease(queue_lock);
	return first;
}

bool
queue_gap_pending()
{
	bool v;

	LWLockAcquire(queue_lock, LW_SHARED);
	v = queue->gap_pending;
	LWLockRelease(queue_lock);
	return v;
}

void
queue_set_gap_pending(bool pending)
{
	LWLockAcquire(queue_lock, LW_EXCLUSIVE);
	queue->gap_pending = pending;
	LWLockRelease(queue_lock);
}

void
queue_add_purged(int64 rows, int64 bytes)
{
	LWLockAcquire(queue_lock, LW_EXCLUSIVE);
	queue->purged_rows += rows;
	queue->trail_bytes -= bytes;
	queue->trail_rows -= rows;
	LWLockRelease(queue_lock);
}

void
queue_set_trail_bytes(int64 bytes, int64 rows)
{
	LWLockAcquire(queue_lock, LW_EXCLUSIVE);
	queue->trail_bytes = bytes;
	queue->trail_rows = rows;
	LWLockRelease(queue_lock);
}

void
queue_add_trail_bytes(int64 bytes, int64 rows)
{
	LWLockAcquire(queue_lock, LW_EXCLUSIVE);
	queue->trail_bytes += bytes;
	queue->trail_rows += rows;
	LWLockRelease(queue_lock);
}

int64
queue_trail_bytes()
{
	int64 v;

	LWLockAcquire(queue_lock, LW_SHARED);
	v = queue->trail_bytes;
	LWLockRelease(queue_lock);
	return v;
}

int64
queue_trail_rows()
{
	int64 v;

	LWLockAcquire(queue_lock, LW_SHARED);
	v = queue->trail_rows;
	LWLockRelease(queue_lock);
	return v;
}

int64
queue_last_seq()
{
	int64 v;

	LWLockAcquire(queue_lock, LW_SHARED);
	v = queue->last_seq;
	LWLockRelease(queue_lock);
	return v;
}

uint64
queue_position(bool head)
{
	uint64 v;

	LWLockAcquire(queue_lock, LW_SHARED);
	v = head ? queue->head : queue->tail;
	LWLockRelease(queue_lock);
	return v;
}

/* Dropped records the worker has not yet reported in the trail. */
uint64
queue_dropped()
{
	uint64 v;

	LWLockAcquire(queue_lock, LW_SHARED);
	v = queue->dropped;
	LWLockRelease(queue_lock);
	return v;
}

} /* namespace audit */
} /* namespace rustydb */

/*
 * rustydb._audit_queue_stats(): the queue's counters since server start,
 * for the rustydb.audit_info view.
 */
RUSTYDB_FUNCTION(rustydb_audit_queue_stats)
{
	using rustydb::audit::queue;
	using rustydb::audit::queue_lock;
	TupleDesc tupdesc;
	Datum values[15];
	bool nulls[15];

	if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("function returning record called in context that cannot "
							   "accept type record")));
	tupdesc = BlessTupleDesc(tupdesc);
	memset(nulls, 0, sizeof(nulls));
	if (queue == nullptr)
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("the audit queue is not initialized")));

	LWLockAcquire(queue_lock, LW_SHARED);
	values[0] = Int64GetDatum(static_cast<int64>(queue->capacity));
	values[1] = Int64GetDatum(static_cast<int64>(queue->head - queue->tail));
	values[2] = Int64GetDatum(static_cast<int64>(queue->high_water));
	values[3] = Int64GetDatum(static_cast<int64>(queue->enqueued));
	values[4] = Int64GetDatum(static_cast<int64>(queue->written));
	values[5] = Int64GetDatum(static_cast<int64>(queue->dropped));
	values[6] = Int64GetDatum(static_cast<int64>(queue->rejected));
	values[7] = Int64GetDatum(static_cast<int64>(queue->logged));
	values[8] = Int64GetDatum(static_cast<int64>(queue->waits));
	values[9] = Int64GetDatum(queue->purged_rows);
	values[10] = Int64GetDatum(queue->trail_bytes);
	values[11] = Int64GetDatum(queue->trail_rows);
	values[12] = Int64GetDatum(queue->last_seq);
	values[13] = Int32GetDatum(queue->worker_pid);
	nulls[13] = queue->worker_pid == 0;
	values[14] = Int64GetDatum(static_cast<int64>(queue->worker_written));
	LWLockRelease(queue_lock);

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

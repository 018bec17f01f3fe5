/*-------------------------------------------------------------------------
 *
 * ring.h
 *	  Active Session History: the shared-memory ring and per-backend
 *	  query-id slots.
 *
 * One segment, "rustydb ash", sized at start-up from ash_max_entries and
 * ash_query_text_size, holds:
 *
 *	- a header of counters (samples taken, rows written, missed ticks ...),
 *	- one QuerySlot per PGPROC (indexed by pgprocno), where each backend
 *	  records the query id of its top-level statement when it starts,
 *	- the ring: ash_max_entries fixed-size Entry records, each followed by
 *	  ash_query_text_size bytes of query text.
 *
 * Concurrency: the sampler is the ring's only writer; a QuerySlot's only
 * writer is the backend owning that PGPROC. Both use a per-record change
 * count (a seqlock): odd while being written. Readers copy a record and
 * retry or skip it when the count changed or was odd; they take no lock,
 * so a slow or cancelled reader never delays the sampler, and the sampler
 * never waits for a backend.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_ASH_RING_H
#define RUSTYDB_ASH_RING_H

#include "rustydb/pg.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "datatype/timestamp.h"
#include "port/atomics.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace ash {

constexpr int kMaxBlockers = 8; /* blocking pids kept per row */

/* One sampled session at one sample time. The query text follows it. */
struct Entry
{
	pg_atomic_uint32 changecount;
	int32 interval_ms; /* ash_sampling_interval when sampled */
	uint64 row_no;     /* 1-based number of the row since start-up */
	int64 sample_id;
	TimestampTz sample_time;
	TimestampTz xact_start;
	TimestampTz query_start;
	uint64 query_id;
	int32 pid;
	int32 leader_pid; /* lock group leader (parallel query), 0 if none */
	Oid dbid;
	Oid userid;
	uint32 wait_event_info;
	int16 backend_type;
	int16 state;
	int16 n_blockers; /* blocking pids found (may exceed kMaxBlockers); -1 unknown */
	uint8 addr_family;
	uint8 pad;
	int32 client_port;
	uint8 addr[16];
	int32 blockers[kMaxBlockers];
	char appname[NAMEDATALEN];
	int32 text_len;
};

/* Per-PGPROC slot: the query id of the backend's current statement. */
struct QuerySlot
{
	pg_atomic_uint32 changecount;
	uint32 pad;
	TimestampTz stmt_start; /* GetCurrentStatementStartTimestamp() when set */
	uint64 query_id;
};

struct Shared
{
	/* fixed at start-up */
	int32 max_entries;
	int32 text_size;
	Size entry_stride;
	int32 nslots;
	Size total_size;

	/* the ring: rows_written is the head; row n lives in slot (n-1) % max */
	pg_atomic_uint64 rows_written;
	pg_atomic_uint64 last_sample_id;
	pg_atomic_uint64 samples_taken;
	pg_atomic_uint64 ticks_missed; /* ticks skipped: a sample overran */
	pg_atomic_uint64 rows_skipped; /* sessions not recorded: torn reads */
	pg_atomic_uint64 rows_persisted;
	pg_atomic_uint64 rows_not_persisted; /* due, but evicted before written */
	pg_atomic_uint64 persisted_upto;     /* ring row number persisted up to */
	pg_atomic_uint64 sample_ns_total;    /* time spent sampling */
	pg_atomic_uint64 last_sample_ns;
	pg_atomic_uint64 max_sessions;  /* most sessions in one sample */
	pg_atomic_uint32 last_sessions; /* sessions in the last sample */
	pg_atomic_uint32 worker_pid;
	pg_atomic_uint32 worker_starts;
	pg_atomic_uint64 worker_started_at;  /* TimestampTz */
	pg_atomic_uint64 last_persist_at;    /* TimestampTz */
	pg_atomic_uint32 persist_status;     /* PersistStatus */
	pg_atomic_uint32 worker_interval_ms; /* interval the worker uses now */
	pg_atomic_uint32 worker_enabled;     /* ash_enabled as the worker sees it */
};

/* The attached segment, or nullptr before shared memory exists. */
Shared *shared();

QuerySlot *slot_at(const Shared *sh, int pgprocno);
Entry *entry_at(const Shared *sh, uint64 row_no);
inline char *
entry_text(Entry *e)
{
	return reinterpret_cast<char *>(e) + sizeof(Entry);
}

/* Register the segment; from init(). */
void register_ring();

/*
 * Copy row row_no into *out (entry_stride bytes). False if the row is no
 * longer (or not yet) in the ring or is being rewritten.
 */
bool read_row(const Shared *sh, uint64 row_no, Entry *out);

} /* namespace ash */
} /* namespace rustydb */

#endif /* RUSTYDB_ASH_RING_H */

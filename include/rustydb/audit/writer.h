/*-------------------------------------------------------------------------
 *
 * writer.h
 *	  The audit trail's writer side: shared definitions of the files that
 *	  store records and keep the trail.
 *
 * worker.cpp  the background worker: its loop, its own events, setting
 *             changes, vacuum, the clean-shutdown mark, audit_flush()
 * writer.cpp  one batch: records numbered, chained and inserted in one
 *             transaction; the chain's end loaded when the worker starts
 * trail.cpp   the trail in SQL: its anchor, purges (by size, by age, and
 *             the worker's and purge_audit_trail()'s shared purge)
 * verify.cpp  the walk that verifies the chain, and the SQL functions
 *             verify_audit_trail(), audit_trail_breaks() and
 *             purge_audit_trail()
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_AUDIT_WRITER_H
#define RUSTYDB_AUDIT_WRITER_H

#include "rustydb/audit/internal.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "executor/tuptable.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace audit {

constexpr int kBatch = 256;          /* queued records written per transaction */
constexpr int kNatts = 21;           /* columns of rustydb._audit_records */
constexpr int kMaxWorkerEvents = 64; /* the worker's own records kept for a batch */

/*
 * The audit worker's state: everything worker.cpp, writer.cpp and
 * trail.cpp keep between batches, in one place and reached only through
 * writer(). Used in the worker process only (the SQL functions in
 * trail.cpp and verify.cpp do not touch it); statically initialised.
 */
struct Writer
{
	/* The chain's end: the last record written and its hash. */
	Oid state_relid = InvalidOid; /* the trail table they were loaded from */
	int64 last_seq = 0;
	uint8 last_hash[kHashLen] = {};

	/* The worker's own records (security events), written with its next batch. */
	char *worker_events = nullptr; /* kMaxWorkerEvents slots */
	int nworker_events = 0;
	int64 worker_events_lost = 0;

	/* Records purged since the worker last vacuumed the trail. */
	int64 dead_since_vacuum = 0;

	/* The crash gap (worker.cpp's kCleanMark). */
	bool gap_check_pending = false; /* this batch must look (mirrors queue_gap_pending()) */
	bool gap_in_batch = false;      /* the event is in the batch being written */

	/* A batch's tuples: its first block stays allocated between batches. */
	MemoryContext tuple_ctx = nullptr;

	/*
	 * The batch's tuple slots, made once and reused for every batch (a slot
	 * made per record cost a palloc and a resource-owner entry for pinning
	 * the tuple descriptor, about 7% of the writer's CPU). They use the
	 * worker's own copy of the trail's descriptor (not reference-counted),
	 * made again when the trail table is another one or its descriptor
	 * changed.
	 */
	TupleDesc slots_desc = nullptr;
	TupleTableSlot **batch_slots = nullptr;

	/* session_id text of the last record's session */
	char sid[32] = {};
	int64 sid_start = -1;
	int32 sid_pid = -1;
};

/* The audit worker's state. */
inline Writer &
writer()
{
	static Writer state;

	return state;
}

/* ---- writer.cpp ---- */

/*
 * Worker: write one batch (the n records in buf, after the worker's own
 * events). Returns false when the trail's table does not exist (yet) in
 * the audit database.
 */
bool write_batch(char *buf, int n, bool age_purge_due);

/* ---- trail.cpp ---- */

/* A table of rustydb's schema (InvalidOid: none). */
Oid trail_relid(const char *relname);
/* Raise an error unless connected to rustydb.audit_database. */
void require_audit_database();
/* Copy a stored hash (bytea); false when it is not kHashLen bytes. */
bool copy_hash(Datum d, uint8 *out);
/* SPI connected: the anchor (seq, hash) of the trail. */
void read_anchor(int64 *seq, uint8 *hash);
/*
 * SPI connected, snapshot pushed: delete the records with seq <= upto and
 * move the anchor. Returns the rows deleted; *bytes their record_bytes.
 */
int64 purge_through(int64 upto, int64 *bytes);
/* SPI connected: last seq of the records older than before (purge bound). */
int64 bound_before(TimestampTz before);
/* Worker, SPI connected: make room for incoming bytes under the limit. */
void purge_for_size(int64 incoming);
/* Worker, SPI connected: purge the records older than rustydb.audit_retention. */
void purge_for_age();

} /* namespace audit */
} /* namespace rustydb */

#endif /* RUSTYDB_AUDIT_WRITER_H */

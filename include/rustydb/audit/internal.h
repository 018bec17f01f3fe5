/*-------------------------------------------------------------------------
 *
 * internal.h
 *	  Shared definitions of the audit subsystem's source files.
 *
 * audit.cpp    init(): registration from _PG_init
 * queue.cpp    the bounded shared-memory queue backends hand records to
 * capture.h    the backend side: session state, policies, frames, records
 *              and hooks (session.cpp, policies.cpp, objects.cpp,
 *              frames.cpp, records.cpp, hooks.cpp)
 * writer.h     the writer side: the worker (worker.cpp), its batches
 *              (writer.cpp), the trail's anchor and purges (trail.cpp),
 *              verification and the trail's SQL functions (verify.cpp)
 * chain.cpp    the hash chain shared by the worker and verification
 * head.cpp     the chain's head, kept outside SQL
 * protect.cpp  the trail's guard trigger and changes to its protection
 * events.cpp   other subsystems' security events (VPD listeners)
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_AUDIT_INTERNAL_H
#define RUSTYDB_AUDIT_INTERNAL_H

#include "rustydb/pg.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "catalog/objectaccess.h"
RUSTYDB_PG_INCLUDE_END

RUSTYDB_PG_INCLUDE_BEGIN
#include "datatype/timestamp.h"
RUSTYDB_PG_INCLUDE_END

#include <cstddef>
#include <cstdint>

namespace rustydb {
namespace audit {

constexpr int kActionLen = 24;
constexpr int kObjectLen = 256;
constexpr int kDetailLen = 256;
constexpr int kAddrLen = 64;
constexpr int kHashLen = 32;

/* One audit record as it travels through the queue (fixed-size slot). */
struct Record
{
	TimestampTz event_time;
	int64 rows; /* -1: not applicable */
	uint64 xid; /* full transaction id, 0: none */
	int64 session_start;
	int32 pid;
	uint32 statement_len;
	char outcome[6]; /* "00000" for success, else the SQLSTATE */
	char action[kActionLen];
	char user_name[NAMEDATALEN];
	char session_user_name[NAMEDATALEN];
	char database_name[NAMEDATALEN];
	char client_addr[kAddrLen];
	char application_name[NAMEDATALEN];
	char object[kObjectLen];
	char detail[kDetailLen];
	char statement[FLEXIBLE_ARRAY_MEMBER];
};

/* Bytes of one queue slot (Record plus the longest statement). */
Size record_slot_size();

/* ---- queue.cpp ---- */

enum class EnqueueMode
{
	Setting, /* as rustydb.audit_overflow says */
	NoWait   /* never wait (the worker's own events): drop and count */
};

/* Hand a record to the worker; see rustydb.audit_overflow. */
void enqueue(const Record *rec, EnqueueMode mode = EnqueueMode::Setting);

/* Worker side: copy up to max records from the queue's tail into buf. */
int queue_peek(char *buf, int max);
/* Records in the queue (queued, not yet released). */
uint64 queue_length();
/* Worker side: those n records are durable; release their slots. */
void queue_release(int n, int64 last_seq);
/* Worker side: n records of the worker's own were written. */
void queue_add_worker_written(int n, int64 last_seq);
/* Worker side: n records went to the server log (no trail table). */
void queue_release_logged(int n);
/* Write a record to the server log (LOG level). */
void log_record(const Record *rec);
/* Worker side: announce (or clear) the worker's latch. */
/* Register (or with nullptr, unregister) the writer; true for its first start since shared
 * memory was set up (server start or crash restart). */
bool queue_set_worker(Latch *latch, int pid);
/* Whether a loss event is owed to the trail; kept in shared memory so a writer that fails before
 * committing it still owes it after its restart. */
bool queue_gap_pending();
void queue_set_gap_pending(bool pending);
/* Counters changed outside the queue. */
void queue_add_purged(int64 rows, int64 bytes);
void queue_set_trail_bytes(int64 bytes, int64 rows);
void queue_add_trail_bytes(int64 bytes, int64 rows);
int64 queue_trail_bytes();
int64 queue_trail_rows();
/* Last sequence number written in this server lifetime (0: none). */
int64 queue_last_seq();
/* Queue head (next to fill) or tail (next to write), monotonic. */
uint64 queue_position(bool head);
/* Records dropped since server start. */
uint64 queue_dropped();
void register_queue();

/* ---- session.cpp ---- */

/* Record size accounting done by a user purge, applied at commit. */
void note_purge(int64 rows, int64 bytes);

/* ---- chain.cpp ---- */

/* The values of one stored record, as hashed. nullptr text = SQL NULL. */
struct ChainFields
{
	int64 seq;
	TimestampTz event_time;
	const char *session_id;
	int32 pid;
	const char *user_name;
	const char *session_user_name;
	const char *database_name;
	const char *client_addr;
	const char *application_name;
	const char *action;
	const char *object;
	const char *statement;
	const char *detail;
	const char *outcome;
	bool rows_null;
	int64 rows;
	bool xid_null;
	int64 xid;
	/*
	 * statement and detail as stored sealed (docs/tde.md, "rustydb's own
	 * tables"): then the text above is nullptr and the chain covers the
	 * sealed bytes. nullptr: stored as text.
	 */
	const bytea *statement_sealed = nullptr;
	const bytea *detail_sealed = nullptr;
};

/* Load the key from rustydb.audit_key_file (once per process). */
void chain_load_key();
/* True when records are hashed with a key. */
bool chain_keyed();
/* out = H(prev || fields) */
void chain_hash(const uint8 prev[kHashLen], const ChainFields *f, uint8 out[kHashLen]);
/* out = H("rustydb audit head" || data), keyed like the chain */
void chain_mac(const uint8 *data, size_t len, uint8 out[kHashLen]);

/* ---- protect.cpp: changes to the trail's protection are security events ---- */
void protection_event(ObjectAccessType access, Oid class_id, Oid object_id, int sub_id);

/* ---- head.cpp: the chain's head, kept where SQL does not reach ---- */
enum class HeadState
{
	kAbsent,  /* no head file yet (a new trail, or none written since) */
	kValid,   /* *seq and hash hold the head */
	kDamaged, /* the file exists but is not a head this key wrote */
};
/* Read the head (the newest record the worker wrote: seq and hash). */
HeadState head_read(int64 *seq, uint8 hash[kHashLen]);
/* Store the head now (the records up to seq are committed and flushed). */
void head_write(int64 seq, const uint8 hash[kHashLen]);
/*
 * Worker, after a batch committed at commit_lsn: the new head, stored at
 * most every kHeadIntervalMs while batches follow each other (an fsync and
 * a rename each), and by head_flush() once the worker has been idle for
 * kHeadIntervalMs, or when it exits. The commit is flushed to WAL before
 * the head is written.
 */
constexpr int kHeadIntervalMs = 100;
void head_note(int64 seq, const uint8 hash[kHashLen], uint64 commit_lsn);
bool head_pending();
void head_flush();

/* ---- worker.cpp ---- */
void register_worker();
/* In the worker: keep one of its own records for its next batch (the
 * worker never waits on its own queue). */
void worker_event(const Record *rec);

/* ---- events.cpp ---- */

/* Subscribe to VPD's policy-change and exempt-access events; from init(). */
void install_subsystem_listeners();

} /* namespace audit */
} /* namespace rustydb */

#endif /* RUSTYDB_AUDIT_INTERNAL_H */

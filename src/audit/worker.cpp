/*-------------------------------------------------------------------------
 *
 * worker.cpp
 *	  The audit worker, retention and verification of the trail.
 *
 * One background worker ("rustydb audit writer") connects to
 * rustydb.audit_database and moves records from the shared queue into the
 * append-only table rustydb._audit_records, in batches, one transaction
 * per batch; it numbers them (seq) and chains their hashes. It is the
 * only writer of new records, so the chain is a simple sequence; it keeps
 * the last seq and hash in memory and reloads them from the table when it
 * starts. If it fails it exits and the postmaster starts it again after a
 * second; the queue keeps every record it had not committed.
 *
 * Retention: before a batch would take the trail (the sum of the stored
 * records' sizes) over rustydb.audit_max_size, the oldest records are
 * purged to 90% of it; every ten seconds records older than
 * rustydb.audit_retention are purged. A purge deletes a prefix of the
 * trail and moves the anchor (rustydb._audit_anchor: the seq and hash of
 * the last purged record), from which verify_audit_trail() checks the
 * rest of the chain. Every purge is itself an audit record.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/audit/audit.h"
#include "rustydb/audit/capture.h"
#include "rustydb/common/wait_events.h"

#include "rustydb/common/boundary.h"
#include "rustydb/common/memory.h"
#include "rustydb/common/settings.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/htup_details.h"
#include "access/genam.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "commands/dbcommands.h"
#include "catalog/pg_type.h"
#include "commands/vacuum.h"
#include "nodes/makefuncs.h"
#include "parser/parse_node.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
RUSTYDB_PG_INCLUDE_END

#include <cmath>
#include <cstring>

namespace rustydb {
namespace audit {

namespace {

constexpr int kBatch = 256;
constexpr int kNatts = 19;
constexpr long kAgePurgeIntervalMs = 10000;
constexpr long kGatherMs = 5;

/* worker state */
constexpr int kMaxWorkerEvents = 64;
char *worker_events = nullptr; /* kMaxWorkerEvents slots */
int nworker_events = 0;
int64 worker_events_lost = 0;
int64 dead_since_vacuum = 0;
Oid state_relid = InvalidOid;
int64 last_seq = 0;
uint8 last_hash[kHashLen];
/* a batch's tuples: its first block stays allocated between batches */
MemoryContext tuple_ctx = nullptr;

/*
 * The batch's tuple slots, made once and reused for every batch (a slot
 * made per record cost a palloc and a resource-owner entry for pinning the
 * tuple descriptor, about 7% of the writer's CPU). They use the worker's
 * own copy of the trail's descriptor (not reference-counted), made again
 * when the trail table is another one or its descriptor changed.
 */
TupleDesc slots_desc = nullptr;
TupleTableSlot **batch_slots = nullptr;

TupleTableSlot **
slots_for(TupleDesc desc)
{
	if (slots_desc != nullptr && equalTupleDescs(slots_desc, desc))
		return batch_slots;
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	if (batch_slots != nullptr)
	{
		for (int i = 0; i < kBatch + kMaxWorkerEvents; i++)
			ExecDropSingleTupleTableSlot(batch_slots[i]);
		pfree(batch_slots);
		FreeTupleDesc(slots_desc);
	}
	slots_desc = CreateTupleDescCopyConstr(desc); /* equalTupleDescs compares constraints */
	batch_slots = static_cast<TupleTableSlot **>(
		palloc(sizeof(TupleTableSlot *) * (kBatch + kMaxWorkerEvents)));
	for (int i = 0; i < kBatch + kMaxWorkerEvents; i++)
		batch_slots[i] = MakeSingleTupleTableSlot(slots_desc, &TTSOpsHeapTuple);
	MemoryContextSwitchTo(old);
	/* test/scenarios/audit_writer_slots.sh counts these */
	elog(DEBUG1, "rustydb audit writer: %d tuple slots made for the trail",
		 kBatch + kMaxWorkerEvents);
	return batch_slots;
}
/*
 * Crash gap. The queue lives in shared memory, so records still queued when
 * the whole server stops without a clean shutdown (a crash, kill -9, an
 * immediate shutdown, a backend crash that resets shared memory) are gone.
 * The writer marks a clean exit with an empty queue in a file of the data
 * directory, and its first start since shared memory was set up consumes
 * it: without the mark (and with a trail that has records), the next batch
 * starts with an "audit_records_lost" event naming the last record that
 * was written, so the loss is never silent.
 */
constexpr char kCleanMark[] = "rustydb_audit_clean";
bool gap_check_pending = false; /* this batch must look (mirrors queue_gap_pending()) */
bool gap_in_batch = false;      /* the event is in the batch being written */

void
write_clean_mark()
{
	FILE *f = AllocateFile(kCleanMark, PG_BINARY_W);

	if (f != nullptr)
		FreeFile(f);
}

void
note_gap_if_any()
{
	if (!gap_check_pending)
		return;
	gap_in_batch = true; /* owed until the batch commits */
	if (last_seq <= 0)
		return; /* nothing was ever written: a new trail */
	char detail[kDetailLen];

	snprintf(detail, sizeof(detail),
			 "the server stopped without a clean shutdown after record " INT64_FORMAT
			 "; records still queued in shared memory then (at most %d) were lost",
			 last_seq, settings::audit_queue_size);
	security_event("audit_records_lost", nullptr, detail); /* inside write_batch's transaction */
}

/* session_id text of the last record's session */
char sid[32];
int64 sid_start = -1;
int32 sid_pid = -1;

Oid
trail_relid(const char *relname)
{
	Oid nsp = get_namespace_oid("rustydb", true);

	return OidIsValid(nsp) ? get_relname_relid(relname, nsp) : InvalidOid;
}

bool
in_audit_database()
{
	const char *db = get_database_name(MyDatabaseId);

	return db != nullptr && strcmp(db, settings::audit_database) == 0;
}

void
require_audit_database()
{
	if (!in_audit_database())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the audit trail is stored in database \"%s\"", settings::audit_database),
				 errhint("Connect to that database (rustydb.audit_database).")));
}

bool
copy_hash(Datum d, uint8 *out)
{
	bytea *b = DatumGetByteaPP(d);

	if (VARSIZE_ANY_EXHDR(b) != kHashLen)
		return false;
	memcpy(out, VARDATA_ANY(b), kHashLen);
	return true;
}

/* SPI connected: the anchor (seq, hash) of the trail. */
void
read_anchor(int64 *seq, uint8 *hash)
{
	bool isnull;

	*seq = 0;
	memset(hash, 0, kHashLen);
	if (SPI_execute("SELECT seq, hash FROM rustydb._audit_anchor", true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		if (!isnull)
			*seq = DatumGetInt64(d);
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
		if (!isnull)
			copy_hash(d, hash);
	}
}

/* SPI connected: the last record's seq and hash, the trail's size. */
void
load_state(Oid relid)
{
	bool isnull;
	Relation rel;
	List *indexes;
	ListCell *lc;

	/* The worker maintains the indexes itself: plain column indexes only. */
	rel = table_open(relid, AccessShareLock);
	indexes = RelationGetIndexList(rel);
	foreach (lc, indexes)
	{
		Relation ind = index_open(lfirst_oid(lc), AccessShareLock);

		if (!heap_attisnull(ind->rd_indextuple, Anum_pg_index_indexprs, nullptr) ||
			!heap_attisnull(ind->rd_indextuple, Anum_pg_index_indpred, nullptr))
			ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							errmsg("index \"%s\" on the audit trail is not supported",
								   RelationGetRelationName(ind)),
							errdetail("Only indexes on plain columns can be added to "
									  "rustydb._audit_records.")));
		index_close(ind, AccessShareLock);
	}
	table_close(rel, AccessShareLock);

	read_anchor(&last_seq, last_hash);
	if (SPI_execute("SELECT seq, hash FROM rustydb._audit_records ORDER BY seq DESC LIMIT 1", true,
					1) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		int64 seq =
			DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

		if (seq > last_seq)
		{
			last_seq = seq;
			copy_hash(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull),
					  last_hash);
		}
	}
	/*
	 * The head kept outside SQL (head.cpp): a trail that ends before it lost
	 * its newest records. The chain continues after the head, so their
	 * sequence numbers are never reused and the gap stays visible, and the
	 * loss is recorded.
	 */
	int64 head_seq = 0;
	uint8 head_hash[kHashLen];
	HeadState hs = head_read(&head_seq, head_hash);
	if (hs == HeadState::kValid && head_seq > last_seq)
	{
		char detail[kDetailLen];
		snprintf(detail, sizeof(detail),
				 "records " INT64_FORMAT " to " INT64_FORMAT
				 " were written but are no longer in the trail (its head, kept in "
				 "pg_rustydb/audit_head, is record " INT64_FORMAT "); the chain continues after it",
				 last_seq + 1, head_seq, head_seq);
		last_seq = head_seq;
		memcpy(last_hash, head_hash, kHashLen);
		security_event("audit_records_missing", "rustydb.audit_trail", detail);
	}
	else if (hs == HeadState::kDamaged)
		security_event("audit_head_damaged", "pg_rustydb/audit_head",
					   "the audit trail's head file is not one this server wrote with its audit "
					   "key; it is replaced after the next batch");
	if (SPI_execute("SELECT coalesce(sum(record_bytes), 0)::bigint, count(*) "
					"FROM rustydb._audit_records",
					true, 1) == SPI_OK_SELECT &&
		SPI_processed == 1)
		queue_set_trail_bytes(
			DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)),
			DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)));
	state_relid = relid;
}

/*
 * SPI connected, snapshot pushed: delete the records with seq <= upto and
 * move the anchor. Returns the rows deleted; *bytes their record_bytes.
 */
int64
purge_through(int64 upto, int64 *bytes)
{
	Datum args[1] = {Int64GetDatum(upto)};
	Oid types[1] = {INT8OID};
	volatile int64 rows = 0;
	bool isnull;

	*bytes = 0;
	session().purge_in_progress = true;
	PG_TRY();
	{
		SPI_execute("LOCK TABLE rustydb._audit_anchor IN EXCLUSIVE MODE", false, 0);
		int64 anchor_seq;
		uint8 anchor_hash[kHashLen];
		read_anchor(&anchor_seq, anchor_hash);
		if (SPI_execute_with_args(
				"WITH d AS (DELETE FROM rustydb._audit_records WHERE seq <= $1 "
				"RETURNING seq, hash, record_bytes) "
				"SELECT count(*), coalesce(sum(record_bytes), 0)::bigint, max(seq), "
				"(SELECT hash FROM d ORDER BY seq DESC LIMIT 1) FROM d",
				1, types, args, nullptr, false, 1) == SPI_OK_SELECT &&
			SPI_processed == 1)
		{
			HeapTuple tup = SPI_tuptable->vals[0];
			TupleDesc desc = SPI_tuptable->tupdesc;

			rows = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
			*bytes = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
			if (rows > 0)
			{
				Datum a2[2] = {SPI_getbinval(tup, desc, 3, &isnull),
							   SPI_getbinval(tup, desc, 4, &isnull)};
				Oid t2[2] = {INT8OID, BYTEAOID};

				a2[1] = PointerGetDatum(PG_DETOAST_DATUM_COPY(a2[1]));
				/*
				 * The anchor is the link the first remaining record points
				 * to (so records missing at the purge point are purged,
				 * not reported); with nothing left, the last purged record.
				 */
				if (SPI_execute_with_args("SELECT seq - 1, prev_hash FROM rustydb._audit_records "
										  "WHERE seq > $1 ORDER BY seq LIMIT 1",
										  1, types, args, nullptr, false, 1) == SPI_OK_SELECT &&
					SPI_processed == 1)
				{
					a2[0] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
					a2[1] = PointerGetDatum(PG_DETOAST_DATUM_COPY(
						SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)));
				}
				/*
				 * Records that were already missing in the purged range, or
				 * right after it (the anchor moves over them), are recorded,
				 * never absorbed silently.
				 */
				int64 new_anchor = DatumGetInt64(a2[0]);
				int64 missing = (new_anchor - anchor_seq) - rows;
				if (missing > 0)
				{
					char detail[kDetailLen];
					snprintf(detail, sizeof(detail),
							 "the purge through record " INT64_FORMAT
							 " moved the trail's start from "
							 "record " INT64_FORMAT " to " INT64_FORMAT " and deleted " INT64_FORMAT
							 " records: " INT64_FORMAT " were already missing",
							 upto, anchor_seq + 1, new_anchor + 1, rows, missing);
					security_event("audit_purge_gap", "rustydb.audit_trail", detail);
				}
				SPI_execute_with_args("UPDATE rustydb._audit_anchor SET seq = $1, hash = $2, "
									  "purged_at = now() WHERE seq < $1",
									  2, t2, a2, nullptr, false, 0);
			}
		}
		session().purge_in_progress = false;
	}
	PG_CATCH();
	{
		session().purge_in_progress = false;
		PG_RE_THROW();
	}
	PG_END_TRY();
	return rows;
}

/* SPI connected: last seq of the records older than before (purge bound). */
int64
bound_before(TimestampTz before)
{
	Datum args[1] = {TimestampTzGetDatum(before)};
	Oid types[1] = {TIMESTAMPTZOID};
	bool isnull;
	Datum d;

	if (SPI_execute_with_args("SELECT coalesce((SELECT min(seq) - 1 FROM rustydb._audit_records "
							  "WHERE event_time >= $1), "
							  "(SELECT max(seq) FROM rustydb._audit_records), 0)",
							  1, types, args, nullptr, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		return 0;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetInt64(d);
}

int64
first_seq()
{
	bool isnull;

	if (SPI_execute("SELECT min(seq) FROM rustydb._audit_records", true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		return 0;
	Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

	return isnull ? 0 : DatumGetInt64(d);
}

void
report_purge(const char *why, int64 rows, int64 upto)
{
	char detail[kDetailLen];

	snprintf(detail, sizeof(detail),
			 "%s: " INT64_FORMAT " records purged through seq " INT64_FORMAT, why, rows, upto);
	security_event("purge_audit_trail", "rustydb.audit_trail", detail);
}

/* Worker, SPI connected: make room for incoming bytes under the limit. */
void
purge_for_size(int64 incoming)
{
	int64 max_bytes = static_cast<int64>(settings::audit_max_size) * 1024 * 1024;

	for (int round = 0; round < 8; round++)
	{
		int64 bytes = queue_trail_bytes();
		int64 rows = queue_trail_rows();

		if (bytes + incoming <= max_bytes || rows <= 0)
			return;

		int64 target = static_cast<int64>(max_bytes * 0.9) - incoming;
		int64 avg = Max(bytes / rows, 1);
		int64 n = (bytes - Max(target, 0) + avg - 1) / avg + 1;
		int64 upto = first_seq() + n - 1;
		int64 purged_bytes;
		int64 purged = purge_through(upto, &purged_bytes);

		queue_add_purged(purged, purged_bytes);
		dead_since_vacuum += purged;
		if (purged > 0)
			report_purge("size limit", purged, upto);
	}
}

void
purge_for_age()
{
	if (settings::audit_retention <= 0)
		return;
	TimestampTz before =
		GetCurrentTimestamp() - static_cast<int64>(settings::audit_retention) * 60 * USECS_PER_SEC;
	int64 upto = bound_before(before);
	int64 bytes;

	if (upto <= 0)
		return;
	int64 purged = purge_through(upto, &bytes);

	queue_add_purged(purged, bytes);
	dead_since_vacuum += purged;
	if (purged > 0)
		report_purge("retention", purged, upto);
}

/* More than any stored record takes, apart from its texts. */
constexpr int64 kSizeBoundFixed = 64 + 19 * 8 + 2 * (kHashLen + 4) + 6 * NAMEDATALEN + kAddrLen;

int64
size_bound(const Record *r)
{
	return kSizeBoundFixed + strlen(r->object) + strlen(r->detail) + r->statement_len;
}

Datum
text_or_null(const char *s, bool *isnull)
{
	*isnull = s == nullptr;
	return s != nullptr ? CStringGetTextDatum(s) : (Datum) 0;
}

const char *
nonempty(const char *s)
{
	return s[0] != '\0' ? s : nullptr;
}

/*
 * Worker: write one batch. Returns false when the trail's table does not
 * exist (yet) in the audit database.
 */
bool
write_batch(char *buf, int n, bool age_purge_due)
{
	Size slot = record_slot_size();
	TupleTableSlot **slots = nullptr;
	int64 bytes = 0;
	int64 seq = last_seq;
	uint8 hash[kHashLen];
	uint8 prev[kHashLen];
	bool ok = true;

	int nlocal = 0;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, "writing audit records");

	Oid relid = trail_relid("_audit_records");

	if (!OidIsValid(relid) || !OidIsValid(trail_relid("_audit_anchor")))
	{
		ok = false;
		gap_check_pending = false; /* no trail to mark a gap in */
		queue_set_gap_pending(false);
	}
	else
	{
		if (relid != state_relid)
		{
			load_state(relid);
			seq = last_seq;
		}
		note_gap_if_any();
		memcpy(prev, last_hash, kHashLen);

		Relation rel = table_open(relid, RowExclusiveLock);
		TupleDesc desc = RelationGetDescr(rel);
		MemoryContext spi_ctx = CurrentMemoryContext;

		if (desc->natts != kNatts)
			ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
							errmsg("rustydb._audit_records has %d columns, expected %d",
								   desc->natts, kNatts)));
		slots = slots_for(desc);
		/* make room first: an upper bound of what this batch stores */
		int64 bound = static_cast<int64>(nworker_events + 16) *
					  (kSizeBoundFixed + kObjectLen + kDetailLen + 1024);

		for (int i = 0; i < n; i++)
			bound += size_bound(reinterpret_cast<const Record *>(buf + i * slot));
		purge_for_size(bound);
		if (age_purge_due)
			purge_for_age();
		/* the worker's own events (from the purges above, too) come first */
		nlocal = nworker_events;
		MemoryContextSwitchTo(tuple_ctx);
		for (int i = 0; i < n + nlocal; i++)
		{
			const Record *r = reinterpret_cast<const Record *>(
				i < nlocal ? worker_events + i * slot : buf + (i - nlocal) * slot);
			Datum values[kNatts];
			bool nulls[kNatts];
			ChainFields f;

			if (r->session_start != sid_start || r->pid != sid_pid)
			{
				snprintf(sid, sizeof(sid), "%lx.%x", static_cast<long>(r->session_start), r->pid);
				sid_start = r->session_start;
				sid_pid = r->pid;
			}
			f.seq = ++seq;
			f.event_time = r->event_time;
			f.session_id = sid;
			f.pid = r->pid;
			f.user_name = r->user_name;
			f.session_user_name = r->session_user_name;
			f.database_name = r->database_name;
			f.client_addr = nonempty(r->client_addr);
			f.application_name = nonempty(r->application_name);
			f.action = r->action;
			f.object = nonempty(r->object);
			f.statement = nonempty(r->statement);
			f.detail = nonempty(r->detail);
			f.outcome = strcmp(r->outcome, "00000") == 0 ? "success" : r->outcome;
			f.rows_null = r->rows < 0;
			f.rows = r->rows;
			f.xid_null = r->xid == 0;
			f.xid = static_cast<int64>(r->xid);
			chain_hash(prev, &f, hash);

			memset(nulls, 0, sizeof(nulls));
			values[0] = Int64GetDatum(f.seq);
			values[1] = TimestampTzGetDatum(f.event_time);
			values[2] = CStringGetTextDatum(f.session_id);
			values[3] = Int32GetDatum(f.pid);
			values[4] = CStringGetTextDatum(f.user_name);
			values[5] = CStringGetTextDatum(f.session_user_name);
			values[6] = CStringGetTextDatum(f.database_name);
			values[7] = text_or_null(f.client_addr, &nulls[7]);
			values[8] = text_or_null(f.application_name, &nulls[8]);
			values[9] = CStringGetTextDatum(f.action);
			values[10] = text_or_null(f.object, &nulls[10]);
			values[11] = text_or_null(f.statement, &nulls[11]);
			values[12] = text_or_null(f.detail, &nulls[12]);
			values[13] = CStringGetTextDatum(f.outcome);
			values[14] = Int64GetDatum(f.rows);
			nulls[14] = f.rows_null;
			values[15] = Int64GetDatum(f.xid);
			nulls[15] = f.xid_null;
			values[16] = Int32GetDatum(0);
			bytea *ph = static_cast<bytea *>(palloc(VARHDRSZ + kHashLen));
			bytea *hh = static_cast<bytea *>(palloc(VARHDRSZ + kHashLen));

			SET_VARSIZE(ph, VARHDRSZ + kHashLen);
			memcpy(VARDATA(ph), prev, kHashLen);
			SET_VARSIZE(hh, VARHDRSZ + kHashLen);
			memcpy(VARDATA(hh), hash, kHashLen);
			values[17] = PointerGetDatum(ph);
			values[18] = PointerGetDatum(hh);

			/* the stored size of the record: header plus data */
			Size len = MAXALIGN(SizeofHeapTupleHeader + BITMAPLEN(kNatts)) +
					   heap_compute_data_size(desc, values, nulls);

			values[16] = Int32GetDatum(static_cast<int32>(len));
			/* owned by the slot (no copy when heap_multi_insert materializes it), freed
			 * when the slot is cleared after the insert */
			ExecStoreHeapTuple(heap_form_tuple(desc, values, nulls), slots[i], true);
			bytes += len;
			memcpy(prev, hash, kHashLen);
		}

		/*
		 * One multi-insert: a WAL record and a buffer lock per page rather
		 * than per record; then the index entries.
		 */
		CatalogIndexState ind = CatalogOpenIndexes(rel);

		CatalogTuplesMultiInsertWithInfo(rel, slots, n + nlocal, ind);
		CatalogCloseIndexes(ind);
		for (int i = 0; i < n + nlocal; i++)
			ExecClearTuple(slots[i]);
		table_close(rel, NoLock);
		MemoryContextSwitchTo(spi_ctx);
		MemoryContextReset(tuple_ctx);
	}

	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, nullptr);

	/* the batch is durable (also with synchronous_commit off) before its head is */
	if (ok && n + nlocal > 0)
		head_note(seq, prev, XactLastCommitEnd);

	if (ok && gap_in_batch)
	{
		/* committed: the event is in the trail (or the trail was new) */
		gap_in_batch = false;
		gap_check_pending = false;
		queue_set_gap_pending(false);
	}
	if (ok && n + nlocal > 0)
	{
		last_seq = seq;
		memcpy(last_hash, prev, kHashLen);
		queue_add_trail_bytes(bytes, n + nlocal);
		if (nlocal > 0)
		{
			/* events added while writing stay for the next batch */
			memmove(worker_events, worker_events + nlocal * slot, (nworker_events - nlocal) * slot);
			nworker_events -= nlocal;
			queue_add_worker_written(nlocal, last_seq);
		}
		queue_release(n, last_seq);
	}
	return ok;
}

/*
 * Vacuum the trail once purges left a quarter of it dead, so the space of
 * purged records is reused and the table's size on disk stays near the
 * limit instead of waiting for autovacuum. Runs between batches, outside
 * any transaction, as a top-level VACUUM would.
 */
void
vacuum_trail_if_needed()
{
	int64 live = queue_trail_rows();

	if (dead_since_vacuum == 0 || dead_since_vacuum < Max(live / 4, 1000))
		return;
	dead_since_vacuum = 0;
	pgstat_report_activity(STATE_RUNNING, "vacuuming the audit trail");
	StartTransactionCommand();
	if (OidIsValid(trail_relid("_audit_records")))
	{
		VacuumStmt *vs = makeNode(VacuumStmt);
		ParseState *pstate = make_parsestate(nullptr);

		vs->options = NIL;
		vs->rels = list_make1(makeVacuumRelation(
			makeRangeVar(pstrdup("rustydb"), pstrdup("_audit_records"), -1), InvalidOid, NIL));
		vs->is_vacuumcmd = true;
		ExecVacuum(pstate, vs, true);
	}
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, nullptr);
}

void
worker_security_event(const char *action, const char *object, const char *detail)
{
	StartTransactionCommand();
	security_event(action, object, detail);
	CommitTransactionCommand();
}

struct WatchedSettings
{
	int overflow;
	int max_size;
	int retention;
	bool log_parameters;
	int max_policies;
};

WatchedSettings
watched()
{
	return {settings::audit_overflow, settings::audit_max_size, settings::audit_retention,
			settings::audit_log_parameters, settings::audit_max_policies};
}

void
report_setting_changes(const WatchedSettings &old)
{
	WatchedSettings now = watched();
	char detail[kDetailLen];
	const char *names[] = {"wait", "error", "drop"};

	if (old.overflow != now.overflow)
	{
		snprintf(detail, sizeof(detail), "%s -> %s", names[old.overflow], names[now.overflow]);
		worker_security_event("setting_change", "rustydb.audit_overflow", detail);
	}
	if (old.max_size != now.max_size)
	{
		snprintf(detail, sizeof(detail), "%dMB -> %dMB", old.max_size, now.max_size);
		worker_security_event("setting_change", "rustydb.audit_max_size", detail);
	}
	if (old.retention != now.retention)
	{
		snprintf(detail, sizeof(detail), "%dmin -> %dmin", old.retention, now.retention);
		worker_security_event("setting_change", "rustydb.audit_retention", detail);
	}
	if (old.log_parameters != now.log_parameters)
		worker_security_event("setting_change", "rustydb.audit_log_parameters",
							  now.log_parameters ? "off -> on" : "on -> off");
	if (old.max_policies != now.max_policies)
	{
		snprintf(detail, sizeof(detail), "%d -> %d", old.max_policies, now.max_policies);
		worker_security_event("setting_change", "rustydb.audit_max_policies", detail);
	}
}

void
worker_detach(int code, Datum arg)
{
	queue_set_worker(nullptr, 0);
}

void
worker_main()
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	session().in_audit_worker = true;
	BackgroundWorkerInitializeConnection(settings::audit_database, nullptr, 0);
	pgstat_report_appname("rustydb audit writer");
	chain_load_key();
	bool first_start = queue_set_worker(MyLatch, MyProcPid);
	on_shmem_exit(worker_detach, (Datum) 0);
	/* (the mark is consumed at every start, so a stale one never hides a later crash) */
	bool clean = unlink(kCleanMark) == 0;
	if (first_start && !clean)
		queue_set_gap_pending(true);
	gap_check_pending = queue_gap_pending();

	char *buf =
		static_cast<char *>(MemoryContextAlloc(TopMemoryContext, record_slot_size() * kBatch));
	MemoryContext batch_ctx =
		AllocSetContextCreate(TopMemoryContext, "rustydb audit batch", ALLOCSET_DEFAULT_SIZES);

	/* a full batch of typical records fits in the kept first block */
	tuple_ctx = AllocSetContextCreate(TopMemoryContext, "rustydb audit tuples", 512 * 1024,
									  512 * 1024, ALLOCSET_DEFAULT_MAXSIZE);
	uint64 reported_dropped = 0;
	TimestampTz last_age_purge = 0;
	bool installed = true;
	bool warned = false;
	bool gathered = false; /* records gathered for kGatherMs already */

	for (;;)
	{
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			WatchedSettings old = watched();

			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			report_setting_changes(old);
		}
		uint64 dropped = queue_dropped();

		if (dropped > reported_dropped)
		{
			char detail[kDetailLen];

			snprintf(detail, sizeof(detail), UINT64_FORMAT " records dropped since server start",
					 dropped);
			worker_security_event("audit_records_dropped", nullptr, detail);
			reported_dropped = dropped;
		}

		MemoryContext old = MemoryContextSwitchTo(batch_ctx);
		uint64 queued = queue_length();

		/*
		 * Gather: a transaction per handful of records would cost more than
		 * the records. While the queue is less than half full, let records
		 * accumulate for a few milliseconds (backends only wait when it is
		 * full). The records are copied once, after the wait.
		 */
		if (!gathered && queued > 0 && queued < static_cast<uint64>(kBatch) &&
			!ShutdownRequestPending && queued < static_cast<uint64>(settings::audit_queue_size) / 2)
			(void) WaitLatch(MyLatch, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, kGatherMs,
							 wait::info(wait::Event::AuditGather));
		gathered = false;
		int n = queued > 0 ? queue_peek(buf, kBatch) : 0;
		TimestampTz now = GetCurrentTimestamp();
		bool age_due = settings::audit_retention > 0 &&
					   TimestampDifferenceExceeds(last_age_purge, now, kAgePurgeIntervalMs);

		if (n > 0 || age_due || nworker_events > 0 || gap_check_pending)
		{
			installed = write_batch(buf, n, age_due);
			if (age_due)
				last_age_purge = now;
			if (!installed && n > 0)
			{
				/* no trail in the audit database: keep the records in the server log */
				if (!warned)
					ereport(WARNING,
							(errmsg("rustydb is not installed in the audit database \"%s\"",
									settings::audit_database),
							 errdetail("Audit records go to the server log until it is."),
							 errhint("Run CREATE EXTENSION rustydb in that database, or set "
									 "rustydb.audit_database.")));
				warned = true;
				for (int i = 0; i < n; i++)
					log_record(reinterpret_cast<const Record *>(buf + i * record_slot_size()));
				queue_release_logged(n);
			}
			else if (installed)
				warned = false;
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(batch_ctx);
		if (installed)
			vacuum_trail_if_needed();

		if (ShutdownRequestPending)
		{
			/* write what is queued, then exit; the postmaster restarts us
			 * unless it is shutting down */
			if ((n > 0 || queue_length() > 0) && installed)
				continue;
			head_flush();
			if (queue_length() == 0)
				write_clean_mark();
			proc_exit(1);
		}
		if (n == kBatch && installed)
			continue;
		/*
		 * Records queued while this batch was written (or still being
		 * copied into their slots): backends do not wake the worker for
		 * them (only for a record into an empty queue, or a half-full
		 * one), so gather them for kGatherMs and take them without
		 * another wait.
		 */
		if (installed && queue_length() > 0)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, kGatherMs,
							 wait::info(wait::Event::AuditGather));
			gathered = true;
			continue;
		}
		/*
		 * Idle: once no record has come for kHeadIntervalMs, the head
		 * catches up with the trail (under load head_note writes it at
		 * most every kHeadIntervalMs).
		 */
		if (head_pending())
		{
			int rc = WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							   kHeadIntervalMs, wait::info(wait::Event::AuditWriterMain));
			if (rc & WL_TIMEOUT)
				head_flush();
			continue;
		}
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 1000L,
						 wait::info(wait::Event::AuditWriterMain));
	}
}

} /* namespace */

void
worker_event(const Record *rec)
{
	Size slot = record_slot_size();

	if (worker_events == nullptr)
		worker_events =
			static_cast<char *>(MemoryContextAlloc(TopMemoryContext, slot * kMaxWorkerEvents));
	if (nworker_events >= kMaxWorkerEvents)
	{
		/* cannot happen with the batch sizes used; never silently */
		worker_events_lost++;
		ereport(LOG,
				(errmsg("audit worker event not recorded: too many pending (%s)", rec->action)));
		log_record(rec);
		return;
	}
	memcpy(worker_events + nworker_events * slot, rec,
		   offsetof(Record, statement) + rec->statement_len + 1);
	nworker_events++;
}

void
register_worker()
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 1;
	strlcpy(worker.bgw_library_name, "rustydb", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "rustydb_audit_worker_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "rustydb audit writer", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "rustydb audit writer", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

} /* namespace audit */
} /* namespace rustydb */

extern "C" {

PGDLLEXPORT void rustydb_audit_worker_main(Datum arg) noexcept;

void
rustydb_audit_worker_main(Datum arg) noexcept
{
	rustydb::boundary::run("audit worker", [] { rustydb::audit::worker_main(); });
}

} /* extern "C" */

using namespace rustydb::audit;

namespace {

/*
 * One problem the walk found: the record it concerns and what is wrong.
 * The walk goes on after a break (re-synchronised on the next record), so
 * every break is reported, not only the first.
 */
struct TrailBreak
{
	int64 seq;
	char problem[256];
};

struct TrailWalk
{
	int64 checked;        /* records whose hash verified */
	int64 nbreaks;        /* problems found */
	TrailBreak first;     /* the first problem (when nbreaks > 0) */
	Tuplestorestate *out; /* every problem, when listing them */
	TupleDesc out_desc;
};

void add_break(TrailWalk *w, int64 seq, const char *fmt, ...) pg_attribute_printf(3, 4);

void
add_break(TrailWalk *w, int64 seq, const char *fmt, ...)
{
	TrailBreak b;
	va_list ap;

	b.seq = seq;
	va_start(ap, fmt);
	vsnprintf(b.problem, sizeof(b.problem), fmt, ap);
	va_end(ap);
	if (w->nbreaks == 0)
		w->first = b;
	w->nbreaks++;
	if (w->out != nullptr)
	{
		Datum values[2] = {Int64GetDatum(b.seq), CStringGetTextDatum(b.problem)};
		bool nulls[2] = {false, false};
		tuplestore_putvalues(w->out, w->out_desc, values, nulls);
	}
}

/*
 * Walk the trail from the anchor in seq order, recomputing every hash, and
 * compare its end with the newest record the worker wrote (shared memory)
 * and with the head kept outside SQL (head.cpp). After a break the walk
 * continues from the next record's own stored link, so one deleted or
 * edited record is one break and the records after it are still checked.
 */
void
walk_trail(TrailWalk *w)
{
	int64 expected;
	uint8 prev[kHashLen];
	uint8 hash[kHashLen];
	MemoryContext row_ctx;
	Portal portal;
	int64 head_seq = 0;
	uint8 head_hash[kHashLen];
	bool head_seen = false;

	w->checked = 0;
	w->nbreaks = 0;
	require_audit_database();
	chain_load_key();

	/*
	 * The worker publishes the last seq it wrote, and stores the head, after
	 * its batch committed: read both before taking the snapshot the walk
	 * uses, so every record up to them is visible to it (or purged, which
	 * moves the anchor past it).
	 */
	int64 last = queue_last_seq();
	HeadState hs = head_read(&head_seq, head_hash);
	SPI_connect();
	PushActiveSnapshot(GetLatestSnapshot());
	read_anchor(&expected, prev);
	expected++;
	row_ctx = AllocSetContextCreate(CurrentMemoryContext, "verify row", ALLOCSET_DEFAULT_SIZES);
	portal = SPI_cursor_open_with_args(
		"verify_audit_trail",
		"SELECT seq, event_time, session_id, pid, user_name, session_user_name, database_name, "
		"client_addr, application_name, action, object, statement, detail, outcome, "
		"rows_affected, xid, prev_hash, hash FROM rustydb._audit_records ORDER BY seq",
		0, nullptr, nullptr, nullptr, true, 0);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 1000);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple tup = SPI_tuptable->vals[i];
			TupleDesc desc = SPI_tuptable->tupdesc;
			bool isnull[18];
			Datum d[18];
			ChainFields f;
			uint8 stored_prev[kHashLen];
			uint8 stored[kHashLen];
			MemoryContext old = MemoryContextSwitchTo(row_ctx);

			for (int c = 0; c < 18; c++)
				d[c] = SPI_getbinval(tup, desc, c + 1, &isnull[c]);
			auto txt = [&](int c) -> const char * {
				return isnull[c] ? nullptr : TextDatumGetCString(d[c]);
			};
			f.seq = DatumGetInt64(d[0]);
			f.event_time = DatumGetTimestampTz(d[1]);
			f.session_id = txt(2);
			f.pid = DatumGetInt32(d[3]);
			f.user_name = txt(4);
			f.session_user_name = txt(5);
			f.database_name = txt(6);
			f.client_addr = txt(7);
			f.application_name = txt(8);
			f.action = txt(9);
			f.object = txt(10);
			f.statement = txt(11);
			f.detail = txt(12);
			f.outcome = txt(13);
			f.rows_null = isnull[14];
			f.rows = isnull[14] ? 0 : DatumGetInt64(d[14]);
			f.xid_null = isnull[15];
			f.xid = isnull[15] ? 0 : DatumGetInt64(d[15]);
			bool has_hashes = !isnull[16] && !isnull[17] && copy_hash(d[16], stored_prev) &&
							  copy_hash(d[17], stored);

			if (f.seq < expected)
				add_break(w, f.seq,
						  "record " INT64_FORMAT " is out of place (expected " INT64_FORMAT ")",
						  f.seq, expected);
			else if (!has_hashes)
			{
				add_break(w, f.seq, "record " INT64_FORMAT " has no valid hash", f.seq);
				expected = f.seq + 1;
				memset(prev, 0, kHashLen); /* the next record cannot link: reported too */
			}
			else
			{
				bool linked = true;
				if (f.seq > expected)
				{
					add_break(w, expected,
							  f.seq == expected + 1 ? "record " INT64_FORMAT " is missing"
													: "records " INT64_FORMAT " to " INT64_FORMAT
													  " are missing",
							  expected, f.seq - 1);
					linked = false; /* its predecessor is gone: check it from its own link */
				}
				else if (memcmp(stored_prev, prev, kHashLen) != 0)
				{
					add_break(w, f.seq,
							  "record " INT64_FORMAT " does not link to the record before it",
							  f.seq);
					linked = false;
				}
				chain_hash(linked ? prev : stored_prev, &f, hash);
				if (memcmp(hash, stored, kHashLen) != 0)
					add_break(w, f.seq,
							  "record " INT64_FORMAT " was modified (its hash does not match)",
							  f.seq);
				else
					w->checked++;
				if (hs == HeadState::kValid && f.seq == head_seq)
				{
					head_seen = true;
					if (memcmp(stored, head_hash, kHashLen) != 0)
						add_break(w, f.seq,
								  "record " INT64_FORMAT " is not the one the audit worker wrote "
								  "(its hash differs from the trail's head kept outside SQL)",
								  f.seq);
				}
				memcpy(prev, stored, kHashLen);
				expected = f.seq + 1;
			}
			MemoryContextSwitchTo(old);
			MemoryContextReset(row_ctx);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	PopActiveSnapshot();
	SPI_finish();

	/* the newest records written must still be there */
	int64 newest = last;
	const char *where = "written by the audit worker since start-up";
	if (hs == HeadState::kValid && head_seq > newest)
	{
		newest = head_seq;
		where = "the trail's head, kept outside SQL in pg_rustydb/audit_head, is record";
	}
	if (newest >= expected)
	{
		if (newest == head_seq && hs == HeadState::kValid && !head_seen)
			add_break(w, expected,
					  "records " INT64_FORMAT " to " INT64_FORMAT
					  " are missing from the end of the trail (%s " INT64_FORMAT ")",
					  expected, newest, where, head_seq);
		else
			add_break(w, expected, "records " INT64_FORMAT " to " INT64_FORMAT " are missing (%s)",
					  expected, newest, where);
	}
	if (hs == HeadState::kDamaged)
		add_break(w, expected,
				  "the trail's head file pg_rustydb/audit_head is damaged or was not written "
				  "with this server's audit key");
}

} /* namespace */

/*
 * rustydb.verify_audit_trail(): (valid, records_checked, first_broken_seq,
 * problem, breaks): the first problem, and how many there are
 * (rustydb.audit_trail_breaks() lists them).
 */
RUSTYDB_FUNCTION(rustydb_verify_audit_trail)
{
	TupleDesc tupdesc;
	Datum values[5];
	bool nulls[5] = {false, false, true, true, false};
	TrailWalk w;

	if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("function returning record called in context that cannot "
							   "accept type record")));
	tupdesc = BlessTupleDesc(tupdesc);
	w.out = nullptr;
	w.out_desc = nullptr;
	walk_trail(&w);
	values[0] = BoolGetDatum(w.nbreaks == 0);
	values[1] = Int64GetDatum(w.checked);
	if (w.nbreaks > 0)
	{
		values[2] = Int64GetDatum(w.first.seq);
		nulls[2] = false;
		values[3] = CStringGetTextDatum(w.first.problem);
		nulls[3] = false;
	}
	values[4] = Int64GetDatum(w.nbreaks);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* rustydb.audit_trail_breaks(): every problem verify_audit_trail() counts. */
RUSTYDB_FUNCTION(rustydb_audit_trail_breaks)
{
	TrailWalk w;

	InitMaterializedSRF(fcinfo, 0);
	auto *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);
	w.out = rsinfo->setResult;
	w.out_desc = rsinfo->setDesc;
	walk_trail(&w);
	return (Datum) 0;
}

/*
 * rustydb.purge_audit_trail(before timestamptz): delete the records older
 * than before (the prefix of the trail up to the first record at or after
 * it). Always audited; returns the number of records deleted. Refused while
 * the trail has a break in the range it would delete (or right after it).
 */
RUSTYDB_FUNCTION(rustydb_purge_audit_trail)
{
	TimestampTz before = PG_GETARG_TIMESTAMPTZ(0);
	bool acknowledge = PG_GETARG_BOOL(1);
	char detail[kDetailLen];
	int64 rows;
	int64 bytes;
	int64 upto;

	require_audit_database();
	snprintf(detail, sizeof(detail), "before %s", timestamptz_to_str(before));
	security_event("purge_audit_trail", "rustydb.audit_trail", detail);

	SPI_connect();
	upto = bound_before(before);
	/* a purge never absorbs a gap or a modified record: refuse while the range has one */
	if (upto > 0)
	{
		TrailWalk w;
		w.out = nullptr;
		w.out_desc = nullptr;
		walk_trail(&w);
		if (w.nbreaks > 0 && w.first.seq <= upto + 1 && acknowledge)
		{
			snprintf(detail, sizeof(detail),
					 "purge through record " INT64_FORMAT " acknowledged %lld break(s) of the "
					 "trail; the first: %.120s",
					 upto, static_cast<long long>(w.nbreaks), w.first.problem);
			security_event("audit_purge_breaks", "rustydb.audit_trail", detail);
		}
		else if (w.nbreaks > 0 && w.first.seq <= upto + 1)
			ereport(
				ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("cannot purge the audit trail through record " INT64_FORMAT
						": it is broken at record " INT64_FORMAT,
						upto, w.first.seq),
				 errdetail("%s.", w.first.problem),
				 errhint("rustydb.audit_trail_breaks() lists every break. Investigate them, then "
						 "purge with acknowledge_breaks => true (the breaks are recorded).")));
	}
	rows = upto > 0 ? purge_through(upto, &bytes) : 0;
	SPI_finish();
	if (rows > 0)
		note_purge(rows, bytes);
	PG_RETURN_INT64(rows);
}

/*
 * rustydb.audit_flush(timeout_ms): wait until every record queued before
 * the call has been written to the trail. False on timeout.
 */
RUSTYDB_FUNCTION(rustydb_audit_flush)
{
	int timeout_ms = PG_GETARG_INT32(0);
	uint64 target = queue_position(true);
	TimestampTz start = GetCurrentTimestamp();

	while (queue_position(false) < target)
	{
		if (TimestampDifferenceExceeds(start, GetCurrentTimestamp(), timeout_ms))
			PG_RETURN_BOOL(false);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 10L,
						 rustydb::wait::info(rustydb::wait::Event::AuditFlush));
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	PG_RETURN_BOOL(true);
}

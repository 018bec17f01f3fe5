/*-------------------------------------------------------------------------
 *
 * writer.cpp
 *	  One batch of the audit worker: records numbered, chained and stored.
 *
 * The worker moves records from the shared queue into
 * rustydb._audit_records in batches, one transaction per batch, after
 * its own events (purges, setting changes, losses); it numbers them (seq)
 * and chains their hashes (chain.cpp). It is the only writer of new
 * records, so the chain is a simple sequence; it keeps the chain's end in
 * memory (Writer) and reloads it from the table, its anchor and the head
 * kept outside SQL (head.cpp) when it starts or the trail is another
 * table. Queue slots are released only once their batch committed.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/audit/audit.h"
#include "rustydb/audit/writer.h"

#include "rustydb/common/settings.h"
#include "rustydb/crypto/sealed.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace audit {

namespace {

TupleTableSlot **
slots_for(TupleDesc desc)
{
	Writer &wr = writer();

	if (wr.slots_desc != nullptr && equalTupleDescs(wr.slots_desc, desc))
		return wr.batch_slots;
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
	if (wr.batch_slots != nullptr)
	{
		for (int i = 0; i < kBatch + kMaxWorkerEvents; i++)
			ExecDropSingleTupleTableSlot(wr.batch_slots[i]);
		pfree(wr.batch_slots);
		FreeTupleDesc(wr.slots_desc);
	}
	wr.slots_desc = CreateTupleDescCopyConstr(desc); /* equalTupleDescs compares constraints */
	wr.batch_slots = static_cast<TupleTableSlot **>(
		palloc(sizeof(TupleTableSlot *) * (kBatch + kMaxWorkerEvents)));
	for (int i = 0; i < kBatch + kMaxWorkerEvents; i++)
		wr.batch_slots[i] = MakeSingleTupleTableSlot(wr.slots_desc, &TTSOpsHeapTuple);
	MemoryContextSwitchTo(old);
	/* test/scenarios/audit_writer_slots.sh counts these */
	elog(DEBUG1, "rustydb audit writer: %d tuple slots made for the trail",
		 kBatch + kMaxWorkerEvents);
	return wr.batch_slots;
}

/* The crash gap (worker.cpp): the batch's first record says what was lost. */
void
note_gap_if_any()
{
	Writer &wr = writer();

	if (!wr.gap_check_pending)
		return;
	wr.gap_in_batch = true; /* owed until the batch commits */
	if (wr.last_seq <= 0)
		return; /* nothing was ever written: a new trail */
	char detail[kDetailLen];

	snprintf(detail, sizeof(detail),
			 "the server stopped without a clean shutdown after record " INT64_FORMAT
			 "; records still queued in shared memory then (at most %d) were lost",
			 wr.last_seq, settings::audit_queue_size);
	security_event("audit_records_lost", nullptr, detail); /* inside write_batch's transaction */
}

/* SPI connected: the last record's seq and hash, the trail's size. */
void
load_state(Oid relid)
{
	Writer &wr = writer();
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

	read_anchor(&wr.last_seq, wr.last_hash);
	if (SPI_execute("SELECT seq, hash FROM rustydb._audit_records ORDER BY seq DESC LIMIT 1", true,
					1) == SPI_OK_SELECT &&
		SPI_processed == 1)
	{
		int64 seq =
			DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

		if (seq > wr.last_seq)
		{
			wr.last_seq = seq;
			copy_hash(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull),
					  wr.last_hash);
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
	if (hs == HeadState::kValid && head_seq > wr.last_seq)
	{
		char detail[kDetailLen];
		snprintf(detail, sizeof(detail),
				 "records " INT64_FORMAT " to " INT64_FORMAT
				 " were written but are no longer in the trail (its head, kept in "
				 "pg_rustydb/audit_head, is record " INT64_FORMAT "); the chain continues after it",
				 wr.last_seq + 1, head_seq, head_seq);
		wr.last_seq = head_seq;
		memcpy(wr.last_hash, head_hash, kHashLen);
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
	wr.state_relid = relid;
}

/* More than any stored record takes, apart from its texts. */
constexpr int64 kSizeBoundFixed = 64 + 19 * 8 + 2 * (kHashLen + 4) + 6 * NAMEDATALEN + kAddrLen;

int64
size_bound(const Record *r)
{
	/* a sealed statement and detail take kSealOverhead bytes more each */
	return kSizeBoundFixed + 2 * static_cast<int64>(crypto::kSealOverhead) + strlen(r->object) +
		   strlen(r->detail) + r->statement_len;
}

/* Stored sealed (then the text is stored NULL) when sealing; nullptr for no text. */
const bytea *
sealed_or_null(const crypto::Cipher *cipher, const char *column, int64 seq, const char **text)
{
	if (cipher == nullptr || *text == nullptr)
		return nullptr;
	const bytea *b = crypto::seal_text(cipher, column, seq, *text, strlen(*text));
	*text = nullptr;
	return b;
}

Datum
bytea_or_null(const bytea *b, bool *isnull)
{
	*isnull = b == nullptr;
	return b != nullptr ? PointerGetDatum(b) : (Datum) 0;
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

} /* namespace */

/*
 * Worker: write one batch. Returns false when the trail's table does not
 * exist (yet) in the audit database.
 */
bool
write_batch(char *buf, int n, bool age_purge_due)
{
	Writer &wr = writer();
	Size slot = record_slot_size();
	TupleTableSlot **slots = nullptr;
	int64 bytes = 0;
	int64 seq = wr.last_seq;
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
		wr.gap_check_pending = false; /* no trail to mark a gap in */
		queue_set_gap_pending(false);
	}
	else
	{
		if (relid != wr.state_relid)
		{
			load_state(relid);
			seq = wr.last_seq;
		}
		note_gap_if_any();
		memcpy(prev, wr.last_hash, kHashLen);

		Relation rel = table_open(relid, RowExclusiveLock);
		TupleDesc desc = RelationGetDescr(rel);
		MemoryContext spi_ctx = CurrentMemoryContext;

		if (desc->natts != kNatts)
			ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
							errmsg("rustydb._audit_records has %d columns, expected %d",
								   desc->natts, kNatts)));
		slots = slots_for(desc);
		/*
		 * With a key provider, statements and details are stored sealed
		 * (they can quote literals of statements on encrypted tables); a key
		 * that cannot be had fails the batch, whose records stay queued.
		 */
		const crypto::Cipher *cipher =
			crypto::seal_own_text() ? crypto::own_table_cipher(relid) : nullptr;
		/* make room first: an upper bound of what this batch stores */
		int64 bound = static_cast<int64>(wr.nworker_events + 16) *
					  (kSizeBoundFixed + kObjectLen + kDetailLen + 1024);

		for (int i = 0; i < n; i++)
			bound += size_bound(reinterpret_cast<const Record *>(buf + i * slot));
		purge_for_size(bound);
		if (age_purge_due)
			purge_for_age();
		/* the worker's own events (from the purges above, too) come first */
		nlocal = wr.nworker_events;
		MemoryContextSwitchTo(wr.tuple_ctx);
		for (int i = 0; i < n + nlocal; i++)
		{
			const Record *r = reinterpret_cast<const Record *>(
				i < nlocal ? wr.worker_events + i * slot : buf + (i - nlocal) * slot);
			Datum values[kNatts];
			bool nulls[kNatts];
			ChainFields f;

			if (r->session_start != wr.sid_start || r->pid != wr.sid_pid)
			{
				snprintf(wr.sid, sizeof(wr.sid), "%lx.%x", static_cast<long>(r->session_start),
						 r->pid);
				wr.sid_start = r->session_start;
				wr.sid_pid = r->pid;
			}
			f.seq = ++seq;
			f.event_time = r->event_time;
			f.session_id = wr.sid;
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
			f.statement_sealed = sealed_or_null(cipher, "statement", f.seq, &f.statement);
			f.detail_sealed = sealed_or_null(cipher, "detail", f.seq, &f.detail);
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
			values[19] = bytea_or_null(f.statement_sealed, &nulls[19]);
			values[20] = bytea_or_null(f.detail_sealed, &nulls[20]);

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
		MemoryContextReset(wr.tuple_ctx);
	}

	PopActiveSnapshot();
	SPI_finish();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, nullptr);

	/* the batch is durable (also with synchronous_commit off) before its head is */
	if (ok && n + nlocal > 0)
		head_note(seq, prev, XactLastCommitEnd);

	if (ok && wr.gap_in_batch)
	{
		/* committed: the event is in the trail (or the trail was new) */
		wr.gap_in_batch = false;
		wr.gap_check_pending = false;
		queue_set_gap_pending(false);
	}
	if (ok && n + nlocal > 0)
	{
		wr.last_seq = seq;
		memcpy(wr.last_hash, prev, kHashLen);
		queue_add_trail_bytes(bytes, n + nlocal);
		if (nlocal > 0)
		{
			/* events added while writing stay for the next batch */
			memmove(wr.worker_events, wr.worker_events + nlocal * slot,
					(wr.nworker_events - nlocal) * slot);
			wr.nworker_events -= nlocal;
			queue_add_worker_written(nlocal, wr.last_seq);
		}
		queue_release(n, wr.last_seq);
	}
	return ok;
}

} /* namespace audit */
} /* namespace rustydb */

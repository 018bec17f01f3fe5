/*-------------------------------------------------------------------------
 *
 * verify.cpp
 *	  Verification of the trail's hash chain, and the SQL functions on the
 *	  trail: verify_audit_trail(), audit_trail_breaks(), purge_audit_trail().
 *
 * The walk reads the trail in seq order from its anchor, recomputes every
 * hash and compares its end with the newest record the worker wrote and
 * with the head kept outside SQL (head.cpp). Every break is reported, not
 * only the first; a purge is refused while a break lies in the range it
 * would delete (or right after it) unless the breaks are acknowledged.
 * These run in any backend connected to rustydb.audit_database.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/audit/audit.h"
#include "rustydb/audit/internal.h"
#include "rustydb/audit/writer.h"

#include "rustydb/common/boundary.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/htup_details.h"
#include "executor/spi.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
RUSTYDB_PG_INCLUDE_END

#include <cstdarg>

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
		"rows_affected, xid, prev_hash, hash, statement_sealed, detail_sealed "
		"FROM rustydb._audit_records ORDER BY seq",
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
			bool isnull[20];
			Datum d[20];
			ChainFields f;
			uint8 stored_prev[kHashLen];
			uint8 stored[kHashLen];
			MemoryContext old = MemoryContextSwitchTo(row_ctx);

			for (int c = 0; c < 20; c++)
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
			/* sealed values are hashed as stored: verification needs no key */
			f.statement_sealed = isnull[18] ? nullptr : DatumGetByteaPP(d[18]);
			f.detail_sealed = isnull[19] ? nullptr : DatumGetByteaPP(d[19]);
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

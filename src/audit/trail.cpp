/*-------------------------------------------------------------------------
 *
 * trail.cpp
 *	  The trail in SQL: its anchor and its purges.
 *
 * The trail is the append-only table rustydb._audit_records of
 * rustydb.audit_database; rustydb._audit_anchor holds the seq and hash the
 * first remaining record links to. Retention: before a batch would take
 * the trail (the sum of the stored records' sizes) over
 * rustydb.audit_max_size, the oldest records are purged to 90% of it;
 * every ten seconds records older than rustydb.audit_retention are purged
 * (both by the worker, writer.cpp). A purge deletes a prefix of the trail
 * and moves the anchor, from which verify_audit_trail() checks the rest of
 * the chain. Every purge is itself an audit record. purge_audit_trail()
 * (verify.cpp) uses the same purge.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/audit/audit.h"
#include "rustydb/audit/capture.h"
#include "rustydb/audit/writer.h"

#include "rustydb/common/settings.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace audit {

namespace {

bool
in_audit_database()
{
	const char *db = get_database_name(MyDatabaseId);

	return db != nullptr && strcmp(db, settings::audit_database) == 0;
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

} /* namespace */

Oid
trail_relid(const char *relname)
{
	Oid nsp = get_namespace_oid("rustydb", true);

	return OidIsValid(nsp) ? get_relname_relid(relname, nsp) : InvalidOid;
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

/* Worker, SPI connected: make room for incoming bytes under the limit. */
void
purge_for_size(int64 incoming)
{
	Writer &wr = writer();
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
		wr.dead_since_vacuum += purged;
		if (purged > 0)
			report_purge("size limit", purged, upto);
	}
}

void
purge_for_age()
{
	Writer &wr = writer();

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
	wr.dead_since_vacuum += purged;
	if (purged > 0)
		report_purge("retention", purged, upto);
}

} /* namespace audit */
} /* namespace rustydb */

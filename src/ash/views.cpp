/*-------------------------------------------------------------------------
 *
 * views.cpp
 *	  SQL functions behind the Active Session History views.
 *
 * Readers copy ring rows with the per-row change count and never lock:
 * a row being rewritten by the sampler is skipped (it is the oldest row,
 * about to leave the ring anyway).
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/ash/ash.h"
#include "rustydb/ash/ring.h"
#include "rustydb/ash/sampler.h"
#include "rustydb/common/wait_events.h"

#include "rustydb/common/boundary.h"
#include "rustydb/common/settings.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include <arpa/inet.h>
#include <sys/socket.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/latch.h"
#include "utils/array.h"
#include "utils/backend_status.h"
#include "utils/inet.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"
RUSTYDB_PG_INCLUDE_END

#include <cstring>

using rustydb::ash::Entry;
using rustydb::ash::Shared;

namespace {

Shared *
require_shared()
{
	Shared *sh = rustydb::ash::shared();

	if (sh == nullptr)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("rustydb active session history is not available"),
				 errhint("Add rustydb to shared_preload_libraries and restart the server.")));
	return sh;
}

const char *
state_name(int state)
{
	switch (static_cast<BackendState>(state))
	{
		case STATE_RUNNING:
			return "active";
		case STATE_IDLE:
			return "idle";
		case STATE_IDLEINTRANSACTION:
			return "idle in transaction";
		case STATE_IDLEINTRANSACTION_ABORTED:
			return "idle in transaction (aborted)";
		case STATE_FASTPATH:
			return "fastpath function call";
		case STATE_DISABLED:
			return "disabled";
		case STATE_UNDEFINED:
			break;
	}
	return nullptr;
}

Datum
client_addr_datum(const Entry *e, bool *isnull)
{
	char buf[64];

	*isnull = true;
	if (e->addr_family != AF_INET && e->addr_family != AF_INET6)
		return (Datum) 0;
	if (inet_ntop(e->addr_family, e->addr, buf, sizeof(buf)) == nullptr)
		return (Datum) 0;
	*isnull = false;
	return DirectFunctionCall1(inet_in, CStringGetDatum(buf));
}

constexpr int kRingColumns = 22;

void
ring_row_values(const Entry *e, const char *text, Datum *values, bool *nulls)
{
	const char *wtype;
	const char *wname;
	const char *state = state_name(e->state);

	memset(nulls, 0, sizeof(bool) * kRingColumns);
	rustydb::wait::describe(e->wait_event_info, &wtype, &wname);

	values[0] = Int64GetDatum(static_cast<int64>(e->row_no));
	values[1] = Int64GetDatum(e->sample_id);
	values[2] = TimestampTzGetDatum(e->sample_time);
	values[3] = Int32GetDatum(e->pid);
	values[4] = Int32GetDatum(e->leader_pid);
	nulls[4] = e->leader_pid == 0;
	values[5] = CStringGetTextDatum(GetBackendTypeDesc(static_cast<BackendType>(e->backend_type)));
	values[6] = ObjectIdGetDatum(e->dbid);
	nulls[6] = e->dbid == InvalidOid;
	values[7] = ObjectIdGetDatum(e->userid);
	nulls[7] = e->userid == InvalidOid;
	values[8] = CStringGetTextDatum(e->appname);
	values[9] = client_addr_datum(e, &nulls[9]);
	values[10] = Int32GetDatum(e->client_port);
	nulls[10] = e->addr_family == 0;
	values[11] = state ? CStringGetTextDatum(state) : (Datum) 0;
	nulls[11] = state == nullptr;
	values[12] = CStringGetTextDatum(e->wait_event_info == 0 ? "ON CPU" : "WAITING");
	values[13] = CStringGetTextDatum(wtype);
	values[14] = CStringGetTextDatum(wname);
	values[15] = Int64GetDatum(static_cast<int64>(e->query_id));
	nulls[15] = e->query_id == 0;

	int len = Max(0, Min(e->text_len, rustydb::ash::shared()->text_size - 1));

	len = pg_mbcliplen(text, len, len);
	values[16] = PointerGetDatum(cstring_to_text_with_len(text, len));
	nulls[16] = len == 0;
	values[17] = TimestampTzGetDatum(e->xact_start);
	nulls[17] = e->xact_start == 0;
	values[18] = TimestampTzGetDatum(e->query_start);
	nulls[18] = e->query_start == 0;

	int nb = Max(0, Min(static_cast<int>(e->n_blockers), rustydb::ash::kMaxBlockers));
	Datum pids[rustydb::ash::kMaxBlockers];

	for (int i = 0; i < nb; i++)
		pids[i] = Int32GetDatum(e->blockers[i]);
	values[19] = PointerGetDatum(construct_array(pids, nb, INT4OID, 4, true, TYPALIGN_INT));
	values[20] = Int32GetDatum(e->interval_ms);
	values[21] = Int32GetDatum(e->n_blockers);
	nulls[19] = nulls[21] = e->n_blockers < 0; /* not looked up: limit per sample */
}

} /* namespace */

/*
 * rustydb._ash_ring(after_row, upto_row, every): ring rows with
 * after_row < row_no <= upto_row (NULL: the newest row) whose sample_id is
 * a multiple of every, oldest first.
 */
RUSTYDB_FUNCTION(rustydb_ash_ring)
{
	Shared *sh = require_shared();
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	uint64 head = pg_atomic_read_u64(&sh->rows_written);
	int64 after = PG_ARGISNULL(0) ? 0 : PG_GETARG_INT64(0);
	int64 upto = PG_ARGISNULL(1) ? static_cast<int64>(head) : PG_GETARG_INT64(1);
	int32 every = PG_ARGISNULL(2) ? 1 : PG_GETARG_INT32(2);

	if (every < 1)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("every must be at least 1, not %d", every)));

	InitMaterializedSRF(fcinfo, 0);

	uint64 first = head > static_cast<uint64>(sh->max_entries) ? head - sh->max_entries + 1 : 1;

	if (after >= 0 && static_cast<uint64>(after) + 1 > first)
		first = static_cast<uint64>(after) + 1;

	uint64 last = Min(head, upto < 0 ? 0 : static_cast<uint64>(upto));
	Entry *copy = static_cast<Entry *>(palloc(sh->entry_stride));
	Datum values[kRingColumns];
	bool nulls[kRingColumns];

	for (uint64 row = first; row <= last; row++)
	{
		CHECK_FOR_INTERRUPTS();
		if (!rustydb::ash::read_row(sh, row, copy))
			continue;
		if (copy->sample_id % every != 0)
			continue;
		ring_row_values(copy, rustydb::ash::entry_text(copy), values, nulls);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	pfree(copy);
	return (Datum) 0;
}

/* rustydb._ash_info(): one row of counters behind the ash_info view. */
RUSTYDB_FUNCTION(rustydb_ash_info)
{
	Shared *sh = require_shared();
	TupleDesc tupdesc;
	constexpr int kCols = 23;
	Datum values[kCols];
	bool nulls[kCols];

	if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("function returning record called in context that cannot accept "
							   "type record")));
	tupdesc = BlessTupleDesc(tupdesc);
	memset(nulls, 0, sizeof(nulls));

	uint64 head = pg_atomic_read_u64(&sh->rows_written);
	uint64 held = Min(head, static_cast<uint64>(sh->max_entries));
	uint64 samples = pg_atomic_read_u64(&sh->samples_taken);
	uint64 total_ns = pg_atomic_read_u64(&sh->sample_ns_total);
	Entry *copy = static_cast<Entry *>(palloc(sh->entry_stride));
	TimestampTz oldest = 0, newest = 0;

	for (uint64 row = head - held + 1; row <= head && held > 0; row++)
		if (rustydb::ash::read_row(sh, row, copy))
		{
			oldest = copy->sample_time;
			break;
		}
	for (uint64 row = head; row > head - held && held > 0; row--)
		if (rustydb::ash::read_row(sh, row, copy))
		{
			newest = copy->sample_time;
			break;
		}
	pfree(copy);

	uint32 worker_pid = pg_atomic_read_u32(&sh->worker_pid);
	uint64 started = pg_atomic_read_u64(&sh->worker_started_at);
	uint64 last_persist = pg_atomic_read_u64(&sh->last_persist_at);

	/* as the sampler sees them (NULL before it first ran) */
	values[0] = BoolGetDatum(pg_atomic_read_u32(&sh->worker_enabled) != 0);
	values[1] = Int32GetDatum(static_cast<int32>(pg_atomic_read_u32(&sh->worker_interval_ms)));
	nulls[0] = nulls[1] = pg_atomic_read_u32(&sh->worker_interval_ms) == 0;
	values[2] = Int32GetDatum(sh->max_entries);
	values[3] = Int64GetDatum(static_cast<int64>(held));
	values[4] = Int64GetDatum(static_cast<int64>(head));
	values[5] = Int64GetDatum(static_cast<int64>(head - held));
	values[6] = Int64GetDatum(static_cast<int64>(samples));
	values[7] = Int64GetDatum(static_cast<int64>(pg_atomic_read_u64(&sh->ticks_missed)));
	values[8] = Int64GetDatum(static_cast<int64>(pg_atomic_read_u64(&sh->rows_skipped)));
	values[9] = TimestampTzGetDatum(oldest);
	nulls[9] = oldest == 0;
	values[10] = TimestampTzGetDatum(newest);
	nulls[10] = newest == 0;
	values[11] = Int64GetDatum(static_cast<int64>(pg_atomic_read_u64(&sh->rows_persisted)));
	values[12] = Int64GetDatum(static_cast<int64>(pg_atomic_read_u64(&sh->rows_not_persisted)));
	values[13] = CStringGetTextDatum(
		rustydb::ash::persist_status_name(pg_atomic_read_u32(&sh->persist_status)));
	values[14] = TimestampTzGetDatum(static_cast<TimestampTz>(last_persist));
	nulls[14] = last_persist == 0;
	values[15] = Int64GetDatum(static_cast<int64>(sh->total_size));
	values[16] = Int32GetDatum(sh->text_size);
	values[17] = Float8GetDatum(samples > 0 ? static_cast<double>(total_ns) / samples / 1000.0 : 0);
	values[18] =
		Float8GetDatum(static_cast<double>(pg_atomic_read_u64(&sh->last_sample_ns)) / 1000.0);
	values[19] = Int32GetDatum(static_cast<int32>(pg_atomic_read_u32(&sh->last_sessions)));
	values[20] = Int64GetDatum(static_cast<int64>(pg_atomic_read_u64(&sh->max_sessions)));
	values[21] = Int32GetDatum(static_cast<int32>(worker_pid));
	nulls[21] = worker_pid == 0;
	values[22] = Int32GetDatum(static_cast<int32>(pg_atomic_read_u32(&sh->worker_starts)));
	(void) started;

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* rustydb.wait_events: rustydb's own wait events. */
RUSTYDB_FUNCTION(rustydb_wait_events)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	uint32 info;
	const char *name;
	const char *description;

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; rustydb::wait::registry_at(i, &info, &name, &description); i++)
	{
		Datum values[4];
		bool nulls[4] = {false, false, false, false};

		values[0] = CStringGetTextDatum("rustydb");
		values[1] = CStringGetTextDatum(name);
		values[2] = Int64GetDatum(static_cast<int64>(info));
		values[3] = CStringGetTextDatum(description);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*
 * rustydb.ash_selftest_wait(ms): wait ms milliseconds reporting rustydb's
 * SelfTestWait event, so tests can see rustydb's own wait names in ASH.
 */
RUSTYDB_FUNCTION(rustydb_ash_selftest_wait)
{
	int32 ms = PG_GETARG_INT32(0);

	if (ms < 0 || ms > 600000)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("wait time must be between 0 and 600000 ms, not %d", ms)));

	TimestampTz end = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), ms);

	for (;;)
	{
		TimestampTz now = GetCurrentTimestamp();

		if (now >= end)
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 static_cast<long>((end - now + 999) / 1000),
						 rustydb::wait::info(rustydb::wait::Event::SelfTestWait));
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
	}
	PG_RETURN_VOID();
}

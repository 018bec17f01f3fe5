/*-------------------------------------------------------------------------
 *
 * sampler.cpp
 *	  The Active Session History sampler background worker.
 *
 * Sampling reads two shared arrays PostgreSQL maintains anyway:
 *
 *	- ProcGlobal->allProcs: pid, wait_event_info (a single aligned 32-bit
 *	  word, read without a lock exactly as pg_stat_activity does), the
 *	  lock group leader;
 *	- the backend status array ("Backend Status Array" in ShmemIndex):
 *	  state, database, user, application, client address, transaction and
 *	  statement start, query text and query id, copied with the entry's
 *	  st_changecount protocol (retried a bounded number of times; an
 *	  entry being rewritten that often is skipped and counted).
 *
 * Blocking pids are asked from the lock manager with pg_blocking_pids()
 * only for sessions whose wait event is in the Lock class; that is the
 * only place sampling takes (shared, partition) LWLocks, and only while
 * some session is actually waiting on a heavyweight lock.
 *
 * Whether a session is active: its wait event is not in the Activity class
 * (the idle main loops of background processes), and its state is
 * active/fastpath (client backends; idle in transaction too when
 * ash_idle_in_transaction is on). Background processes without a state
 * (autovacuum, checkpointer, bgworkers...) count when busy. The sampler
 * never samples itself.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/ash/sampler.h"

#include "rustydb/ash/ash.h"
#include "rustydb/ash/ring.h"
#include "rustydb/common/wait_events.h"
#include "rustydb/common/boundary.h"
#include "rustydb/common/settings.h"
#include "rustydb/crypto/sealed.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/backend_status.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
RUSTYDB_PG_INCLUDE_END

#include <cstring>

namespace rustydb {
namespace ash {

const char *
persist_status_name(uint32 status)
{
	switch (status)
	{
		case kPersistActive:
			return "active";
		case kPersistDisabled:
			return "disabled";
		case kPersistNoExtension:
			return "extension not created in ash_database";
		case kPersistRecovery:
			return "standby: not persisting";
		case kPersistError:
			return "error: see the server log";
		default:
			return "not started";
	}
}

namespace {

constexpr int kStatusReadRetries = 16;
/*
 * pg_blocking_pids() share-locks every lock-manager partition; at most this
 * many lookups per sample bound what a pile-up of lock waiters costs the
 * lock manager. Waiters beyond it are recorded with blocking pids unknown.
 */
constexpr int kMaxBlockerLookups = 64;
constexpr int64 kPersistEveryUs = 1000000; /* persist about once a second */

PgBackendStatus *status_array = nullptr;
int status_slots = 0;
MemoryContext sample_context = nullptr;

/* What the sampler copies out of one backend status entry. */
struct StatusCopy
{
	int pid;
	BackendType backend_type;
	BackendState state;
	TimestampTz xact_start;
	TimestampTz activity_start;
	Oid dbid;
	Oid userid;
	SockAddr client;
	uint64 query_id;
	char appname[NAMEDATALEN];
};

/* Find the backend status array PostgreSQL created at start-up. */
void
attach_status_array()
{
	bool found;
	int slots = MaxBackends + NUM_AUXPROCTYPES;

	status_array = static_cast<PgBackendStatus *>(
		ShmemInitStruct("Backend Status Array", mul_size(sizeof(PgBackendStatus), slots), &found));
	if (!found)
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
						errmsg("rustydb ash could not find the backend status array")));
	status_slots = slots;
}

/* Bounded copy of a string in shared memory that may change under us. */
int
copy_text(char *dst, const volatile char *src, int max_len)
{
	int n = 0;

	if (src == nullptr)
	{
		dst[0] = '\0';
		return 0;
	}
	while (n < max_len - 1 && src[n] != '\0')
	{
		dst[n] = src[n];
		n++;
	}
	dst[n] = '\0';
	return n;
}

/*
 * Copy what we need of a backend status entry, under its change count.
 * False when the entry no longer belongs to pid or kept changing.
 */
bool
read_status(volatile PgBackendStatus *be, int pid, StatusCopy *out, char *text, int text_size,
			int *text_len, bool *torn)
{
	int text_max = Min(text_size, pgstat_track_activity_query_size);

	*torn = false;
	for (int attempt = 0; attempt < kStatusReadRetries; attempt++)
	{
		int before, after;

		pgstat_begin_read_activity(be, before);
		out->pid = be->st_procpid;
		out->backend_type = be->st_backendType;
		out->state = be->st_state;
		out->xact_start = be->st_xact_start_timestamp;
		out->activity_start = be->st_activity_start_timestamp;
		out->dbid = be->st_databaseid;
		out->userid = be->st_userid;
		memcpy(&out->client, const_cast<SockAddr *>(&be->st_clientaddr), sizeof(SockAddr));
		out->query_id = be->st_query_id;
		copy_text(out->appname, be->st_appname, NAMEDATALEN);
		*text_len = copy_text(text, be->st_activity_raw, text_max);
		pgstat_end_read_activity(be, after);
		if (pgstat_read_activity_complete(before, after))
			return out->pid == pid;
	}
	*torn = true;
	return false;
}

bool
is_active(const StatusCopy &st, uint32 wait_event_info)
{
	if ((wait_event_info & 0xFF000000) == PG_WAIT_ACTIVITY || wait::is_idle(wait_event_info))
		return false;
	switch (st.state)
	{
		case STATE_RUNNING:
		case STATE_FASTPATH:
			return true;
		case STATE_IDLE:
			return false;
		case STATE_IDLEINTRANSACTION:
		case STATE_IDLEINTRANSACTION_ABORTED:
			return settings::ash_idle_in_transaction;
		case STATE_UNDEFINED:
		case STATE_DISABLED:
			/* a client backend with no state yet or track_activities off */
			if (st.backend_type == B_BACKEND)
				return (wait_event_info & 0xFF000000) != PG_WAIT_CLIENT;
			return true;
	}
	return true;
}

/* The query id from the backend's own slot when it is for this statement. */
uint64
slot_query_id(const Shared *sh, int pgprocno, const StatusCopy &st)
{
	if (pgprocno < 0 || pgprocno >= sh->nslots)
		return st.query_id;

	QuerySlot *slot = slot_at(sh, pgprocno);

	for (int attempt = 0; attempt < kStatusReadRetries; attempt++)
	{
		uint32 before = pg_atomic_read_u32(&slot->changecount);

		pg_read_barrier();
		TimestampTz stamp = slot->stmt_start;
		uint64 id = slot->query_id;

		pg_read_barrier();
		if (!(before & 1) && pg_atomic_read_u32(&slot->changecount) == before)
		{
			if (id != 0 && (stamp == st.activity_start || st.state == STATE_DISABLED))
				return id;
			break;
		}
	}
	return st.query_id;
}

/* Blocking pids from the lock manager, de-duplicated, at most kMaxBlockers. */
int
blocking_pids(int pid, int32 *out)
{
	Datum result = DirectFunctionCall1(pg_blocking_pids, Int32GetDatum(pid));
	ArrayType *arr = DatumGetArrayTypeP(result);
	int n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	const int32 *pids = reinterpret_cast<const int32 *>(ARR_DATA_PTR(arr));
	int kept = 0;
	int distinct = 0;

	for (int i = 0; i < n; i++)
	{
		bool seen = false;

		for (int j = 0; j < i && !seen; j++)
			seen = pids[j] == pids[i];
		if (seen)
			continue;
		distinct++;
		if (kept < kMaxBlockers)
			out[kept++] = pids[i];
	}
	return distinct;
}

void
fill_client(Entry *e, const SockAddr &client)
{
	const struct sockaddr_storage &ss = client.addr;

	e->addr_family = 0;
	e->client_port = 0;
	memset(e->addr, 0, sizeof(e->addr));
	if (client.salen == 0)
		return;
	if (ss.ss_family == AF_INET)
	{
		const struct sockaddr_in *in = reinterpret_cast<const struct sockaddr_in *>(&ss);

		e->addr_family = AF_INET;
		memcpy(e->addr, &in->sin_addr, 4);
		e->client_port = ntohs(in->sin_port);
	}
	else if (ss.ss_family == AF_INET6)
	{
		const struct sockaddr_in6 *in6 = reinterpret_cast<const struct sockaddr_in6 *>(&ss);

		e->addr_family = AF_INET6;
		memcpy(e->addr, &in6->sin6_addr, 16);
		e->client_port = ntohs(in6->sin6_port);
	}
	else if (ss.ss_family == AF_UNIX)
	{
		e->addr_family = AF_UNIX;
		e->client_port = -1;
	}
}

/* Take one sample at time now; returns the number of sessions recorded. */
int
take_sample(Shared *sh, TimestampTz now)
{
	int64 sample_id = static_cast<int64>(pg_atomic_add_fetch_u64(&sh->last_sample_id, 1));
	int nprocs = static_cast<int>(ProcGlobal->allProcCount);
	int sessions = 0;
	int lookups = 0;
	char *text = static_cast<char *>(palloc(sh->text_size));

	for (int i = 0; i < nprocs; i++)
	{
		volatile PGPROC *proc = &ProcGlobal->allProcs[i];
		int pid = proc->pid;
		volatile PgBackendStatus *be = nullptr;
		StatusCopy st;
		int text_len = 0;
		bool torn;

		if (pid == 0 || pid == MyProcPid)
			continue;

		BackendId backend_id = proc->backendId;

		if (backend_id >= 1 && backend_id <= MaxBackends)
			be = &status_array[backend_id - 1];
		else
			for (int j = MaxBackends; j < status_slots && be == nullptr; j++)
				if (status_array[j].st_procpid == pid)
					be = &status_array[j];
		if (be == nullptr)
			continue; /* still starting, or exiting */

		/*
		 * Cheap pre-filter on two racy single-word reads: most sessions are
		 * idle, and an idle one needs no consistent copy. A session that
		 * turns active right after this is simply sampled next time.
		 */
		{
			StatusCopy quick;

			quick.state = be->st_state;
			quick.backend_type = be->st_backendType;
			if (!is_active(quick, proc->wait_event_info))
				continue;
		}

		if (!read_status(be, pid, &st, text, sh->text_size, &text_len, &torn))
		{
			if (torn)
				pg_atomic_fetch_add_u64(&sh->rows_skipped, 1);
			continue;
		}

		uint32 wait_event_info = proc->wait_event_info;

		if (!is_active(st, wait_event_info))
			continue;

		uint64 query_id = slot_query_id(sh, i, st);
		int32 blockers[kMaxBlockers];
		int n_blockers = 0;

		if ((wait_event_info & 0xFF000000) == PG_WAIT_LOCK)
			n_blockers = lookups++ < kMaxBlockerLookups ? blocking_pids(pid, blockers) : -1;

		volatile PGPROC *leader = proc->lockGroupLeader;
		int leader_pid = (leader != nullptr && leader != proc) ? leader->pid : 0;

		/* The process exited (and its PGPROC may be reused) while we read it. */
		if (proc->pid != pid)
			continue;

		uint64 row = pg_atomic_read_u64(&sh->rows_written) + 1;
		Entry *e = entry_at(sh, row);

		pg_atomic_fetch_add_u32(&e->changecount, 1); /* odd: readers skip it */
		e->interval_ms = settings::ash_sampling_interval;
		e->row_no = row;
		e->sample_id = sample_id;
		e->sample_time = now;
		e->xact_start = st.xact_start;
		e->query_start = st.activity_start;
		e->query_id = query_id;
		e->pid = pid;
		e->leader_pid = leader_pid;
		e->dbid = st.dbid;
		e->userid = st.userid;
		e->wait_event_info = wait_event_info;
		e->backend_type = static_cast<int16>(st.backend_type);
		e->state = static_cast<int16>(st.state);
		e->n_blockers = static_cast<int16>(Min(n_blockers, PG_INT16_MAX));
		if (n_blockers > 0)
			memcpy(e->blockers, blockers, sizeof(int32) * Min(n_blockers, kMaxBlockers));
		fill_client(e, st.client);
		memcpy(e->appname, st.appname, NAMEDATALEN);
		e->text_len = text_len;
		memcpy(entry_text(e), text, text_len + 1);
		pg_write_barrier();
		pg_atomic_fetch_add_u32(&e->changecount, 1);
		pg_atomic_write_u64(&sh->rows_written, row);
		sessions++;
	}
	pfree(text);
	return sessions;
}

/*
 * Persist due rows (sample_id % ash_persist_every = 0) written since the
 * last call into rustydb.ash_history_data, then trim the table to
 * ash_retention_rows and ash_retention_age in the same transaction, so no
 * other transaction ever sees it above its limits.
 *
 * A pass runs between two samples, so every tick it outlasts is dropped:
 * its cost must not grow with the table. The row-limit trim therefore
 * deletes a range of ids with both ends known (the ids below trim_from_id
 * are gone already), which the primary key answers whatever the planner's
 * statistics say; an open-ended "id <= bound" was planned as a sequential
 * scan of the whole table while the table had no statistics. The age trim
 * only scans when the oldest row (min() from the sample_time index) is
 * older than the limit. The table's
 * statistics are reported after every pass (a background worker has no
 * idle loop that would do it), so autovacuum sees the inserts and deletes
 * and analyses and vacuums the table.
 */
/*
 * Raise work_mem for the current transaction so that a persistence pass
 * over rows pending ring rows sorts and materialises them in memory (a
 * generous bound per row: its query text, the other columns, and the
 * executor's overhead). Never lowers it.
 */
void
keep_pass_in_memory(uint64 rows)
{
	uint64 kb = rows * (static_cast<uint64>(settings::ash_query_text_size) + 512) * 3 / 1024 + 1024;

	if (kb <= static_cast<uint64>(work_mem))
		return;
	char value[32];
	snprintf(value, sizeof(value), UINT64_FORMAT, Min(kb, static_cast<uint64>(MAX_KILOBYTES)));
	(void) set_config_option("work_mem", value, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_LOCAL, true,
							 0, false);
}

int64 next_history_id = -1; /* last id in the table; -1: read it (and trim_from_id) first */
int64 trim_from_id = 1;     /* the row-limit trim has deleted every id below this */

void
persist_rows(Shared *sh)
{
	uint64 head = pg_atomic_read_u64(&sh->rows_written);
	uint64 from = pg_atomic_read_u64(&sh->persisted_upto);
	uint64 oldest = head > static_cast<uint64>(sh->max_entries) ? head - sh->max_entries : 0;

	if (settings::ash_persist_every == 0 || settings::ash_database == nullptr ||
		settings::ash_database[0] == '\0')
	{
		pg_atomic_write_u32(&sh->persist_status, kPersistDisabled);
		pg_atomic_write_u64(&sh->persisted_upto, head);
		return;
	}
	if (RecoveryInProgress())
	{
		pg_atomic_write_u32(&sh->persist_status, kPersistRecovery);
		pg_atomic_write_u64(&sh->persisted_upto, head);
		return;
	}
	if (head == from)
		return;
	if (from < oldest)
	{
		/* rows evicted from the ring before we got to them */
		pg_atomic_fetch_add_u64(&sh->rows_not_persisted, oldest - from);
		from = oldest;
	}

	MemoryContext caller = CurrentMemoryContext;
	volatile uint64 start_row = from;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PG_TRY();
	{
		if (SPI_connect() != SPI_OK_CONNECT)
			ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("SPI_connect failed")));
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, "rustydb ash: persist samples");

		if (SPI_execute("SELECT to_regclass('rustydb.ash_history_data') IS NOT NULL", true, 1) !=
				SPI_OK_SELECT ||
			SPI_processed != 1)
			ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
							errmsg("rustydb ash could not look up ash_history_data")));

		bool isnull;
		bool installed =
			DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

		if (!installed)
		{
			pg_atomic_write_u32(&sh->persist_status, kPersistNoExtension);
			next_history_id = -1;
		}
		else
		{
			if (next_history_id < 0)
			{
				if (SPI_execute("SELECT coalesce(max(id), 0), coalesce(min(id), 1) "
								"FROM rustydb.ash_history_data",
								true, 1) != SPI_OK_SELECT)
					ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
									errmsg("rustydb ash could not read ash_history_data")));
				next_history_id = DatumGetInt64(
					SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
				trim_from_id = DatumGetInt64(
					SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
			}

			/*
			 * With a key provider, the query text (which can quote literals of
			 * statements on encrypted tables) is stored sealed (docs/tde.md,
			 * "rustydb's own tables"); the pass's tuplestore and sorts hold it
			 * in plaintext, so they get the memory to stay out of temporary
			 * files: at most the rows pending in the ring.
			 */
			if (crypto::seal_own_text())
				keep_pass_in_memory(head - start_row);
			Oid types[6] = {INT8OID, INT8OID, INT8OID, INT4OID, INT8OID, BOOLOID};
			Datum args[6] = {Int64GetDatum(next_history_id),
							 Int64GetDatum(start_row),
							 Int64GetDatum(head),
							 Int32GetDatum(settings::ash_persist_every),
							 Int64GetDatum(settings::ash_retention_rows),
							 BoolGetDatum(crypto::seal_own_text())};

			if (SPI_execute_with_args(
					"INSERT INTO rustydb.ash_history_data (id, sample_id, sample_time, pid, "
					"leader_pid, backend_type, datid, datname, usesysid, usename, "
					"application_name, client_addr, client_port, state, session_state, "
					"wait_event_type, wait_event, query_id, query, xact_start, query_start, "
					"blocking_pids, sample_interval_ms, persist_every, query_sealed) "
					"SELECT s.id, s.sample_id, s.sample_time, s.pid, s.leader_pid, "
					"s.backend_type, s.datid, s.datname, s.usesysid, s.rolname, "
					"s.application_name, s.client_addr, s.client_port, s.state, "
					"s.session_state, s.wait_event_type, s.wait_event, s.query_id, "
					"CASE WHEN $6 THEN NULL ELSE s.query END, s.xact_start, s.query_start, "
					"s.blocking_pids, s.sample_interval_ms, $4, "
					"CASE WHEN $6 THEN rustydb._seal_text('rustydb.ash_history_data', 'query', "
					"s.id, s.query) END "
					"FROM (SELECT $1 + row_number() OVER (ORDER BY r.row_no) AS id, r.*, "
					"      d.datname, a.rolname "
					"      FROM (SELECT * FROM rustydb._ash_ring($2, $3, $4) "
					"            ORDER BY row_no DESC LIMIT $5) r "
					"      LEFT JOIN pg_catalog.pg_database d ON d.oid = r.datid "
					"      LEFT JOIN pg_catalog.pg_authid a ON a.oid = r.usesysid) s",
					6, types, args, nullptr, false, 0) != SPI_OK_INSERT)
				ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
								errmsg("rustydb ash could not insert into ash_history_data")));

			uint64 inserted = SPI_processed;

			next_history_id += static_cast<int64>(inserted);

			int64 trim_to_id = next_history_id - settings::ash_retention_rows;
			Oid trim_types[3] = {INT8OID, INT8OID, INT4OID};
			Datum trim_args[3] = {Int64GetDatum(trim_from_id), Int64GetDatum(trim_to_id),
								  Int32GetDatum(settings::ash_retention_age)};
			bool trimmed = true;

			if (trim_to_id >= trim_from_id)
			{
				trimmed = SPI_execute_with_args("DELETE FROM rustydb.ash_history_data "
												"WHERE id >= $1 AND id <= $2",
												2, trim_types, trim_args, nullptr, false,
												0) == SPI_OK_DELETE;
				trim_from_id = trim_to_id + 1;
			}
			if (!trimmed ||
				SPI_execute_with_args("DELETE FROM rustydb.ash_history_data "
									  "WHERE sample_time < now() - make_interval(mins => $1) "
									  "AND (SELECT min(sample_time) FROM rustydb.ash_history_data) "
									  "< now() - make_interval(mins => $1)",
									  1, trim_types + 2, trim_args + 2, nullptr, false,
									  0) != SPI_OK_DELETE)
				ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
								errmsg("rustydb ash could not trim ash_history_data")));

			pg_atomic_fetch_add_u64(&sh->rows_persisted, inserted);
			pg_atomic_write_u32(&sh->persist_status, kPersistActive);
			pg_atomic_write_u64(&sh->last_persist_at, static_cast<uint64>(GetCurrentTimestamp()));
		}

		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
		pg_atomic_write_u64(&sh->persisted_upto, head);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(caller);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		next_history_id = -1;
		pg_atomic_write_u32(&sh->persist_status, kPersistError);
		pg_atomic_write_u64(&sh->persisted_upto, head);
	}
	PG_END_TRY();
	MemoryContextSwitchTo(caller);
	pgstat_report_activity(STATE_IDLE, nullptr);
	/* let autovacuum see what this pass inserted and deleted */
	pgstat_report_stat(true);
}

void
worker_exit(int, Datum)
{
	Shared *sh = shared();

	if (sh != nullptr && pg_atomic_read_u32(&sh->worker_pid) == static_cast<uint32>(MyProcPid))
		pg_atomic_write_u32(&sh->worker_pid, 0);
}

void
worker_main()
{
	Shared *sh = shared();

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	if (sh == nullptr)
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
						errmsg("rustydb ash shared memory is not initialized")));

	bool connected = settings::ash_database != nullptr && settings::ash_database[0] != '\0';

	if (connected)
		BackgroundWorkerInitializeConnection(settings::ash_database, nullptr, 0);
	pgstat_report_appname("rustydb ash sampler");

	attach_status_array();
	sample_context =
		AllocSetContextCreate(TopMemoryContext, "rustydb ash sample", ALLOCSET_DEFAULT_SIZES);
	pg_atomic_write_u32(&sh->worker_pid, static_cast<uint32>(MyProcPid));
	pg_atomic_fetch_add_u32(&sh->worker_starts, 1);
	pg_atomic_write_u64(&sh->worker_started_at, static_cast<uint64>(GetCurrentTimestamp()));
	on_shmem_exit(worker_exit, 0);
	ereport(LOG, (errmsg("rustydb ash sampler started"),
				  errdetail("Sampling every %d ms into a ring of %d rows.",
							settings::ash_sampling_interval, sh->max_entries)));

	TimestampTz next_sample = 0;
	TimestampTz next_persist = 0;

	for (;;)
	{
		long timeout_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			next_sample = 0; /* the interval may have changed */
		}

		TimestampTz now = GetCurrentTimestamp();

		pg_atomic_write_u32(&sh->worker_interval_ms,
							static_cast<uint32>(settings::ash_sampling_interval));
		pg_atomic_write_u32(&sh->worker_enabled, settings::ash_enabled ? 1 : 0);
		if (!settings::ash_enabled)
		{
			next_sample = 0;
			timeout_ms = 1000;
		}
		else
		{
			int64 interval_us = static_cast<int64>(settings::ash_sampling_interval) * 1000;

			if (next_sample == 0)
				next_sample = now;
			if (now >= next_sample)
			{
				MemoryContext old = MemoryContextSwitchTo(sample_context);
				instr_time start, duration;

				INSTR_TIME_SET_CURRENT(start);
				int sessions = take_sample(sh, now);
				INSTR_TIME_SET_CURRENT(duration);
				INSTR_TIME_SUBTRACT(duration, start);
				MemoryContextSwitchTo(old);
				MemoryContextReset(sample_context);

				uint64 ns = static_cast<uint64>(INSTR_TIME_GET_DOUBLE(duration) * 1e9);

				pg_atomic_fetch_add_u64(&sh->samples_taken, 1);
				pg_atomic_fetch_add_u64(&sh->sample_ns_total, ns);
				pg_atomic_write_u64(&sh->last_sample_ns, ns);
				pg_atomic_write_u32(&sh->last_sessions, static_cast<uint32>(sessions));
				if (static_cast<uint64>(sessions) > pg_atomic_read_u64(&sh->max_sessions))
					pg_atomic_write_u64(&sh->max_sessions, static_cast<uint64>(sessions));

				next_sample += interval_us;
				now = GetCurrentTimestamp();
				if (next_sample <= now)
				{
					/* overran: skip the ticks we missed rather than bunching samples */
					int64 behind = (now - next_sample) / interval_us + 1;

					pg_atomic_fetch_add_u64(&sh->ticks_missed, static_cast<uint64>(behind));
					next_sample += behind * interval_us;
				}
			}
			timeout_ms = static_cast<long>((next_sample - now + 999) / 1000);
		}
		/* also while disabled: rows sampled before are still written out */
		if (connected && now >= next_persist)
		{
			wait::start(wait::Event::AshPersist);
			persist_rows(sh);
			wait::end();
			now = GetCurrentTimestamp();
			next_persist = now + kPersistEveryUs;
			if (next_sample != 0)
				timeout_ms = static_cast<long>((next_sample - now + 999) / 1000);
		}
		if (timeout_ms < 0)
			timeout_ms = 0;

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, timeout_ms,
						 wait::info(wait::Event::AshSamplerMain));
		ResetLatch(MyLatch);
	}
}

} /* namespace */

void
register_worker()
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_ConsistentState;
	worker.bgw_restart_time = kWorkerRestartSeconds;
	strlcpy(worker.bgw_library_name, "rustydb", BGW_MAXLEN);
	strlcpy(worker.bgw_function_name, "rustydb_ash_worker_main", BGW_MAXLEN);
	strlcpy(worker.bgw_name, "rustydb ash sampler", BGW_MAXLEN);
	strlcpy(worker.bgw_type, "rustydb ash sampler", BGW_MAXLEN);
	RegisterBackgroundWorker(&worker);
}

} /* namespace ash */
} /* namespace rustydb */

extern "C" {

PGDLLEXPORT void rustydb_ash_worker_main(Datum arg) noexcept;

void
rustydb_ash_worker_main(Datum) noexcept
{
	rustydb::boundary::run("rustydb ash sampler", [] { rustydb::ash::worker_main(); });
}

} /* extern "C" */

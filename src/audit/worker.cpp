/*-------------------------------------------------------------------------
 *
 * worker.cpp
 *	  The audit worker: its loop, its own events, and its registration.
 *
 * One background worker ("rustydb audit writer") connects to
 * rustydb.audit_database and moves records from the shared queue into the
 * trail, a batch per transaction (writer.cpp), gathering records for a
 * few milliseconds while the queue is less than half full. It records its
 * own security events (setting changes, records dropped, purges) with its
 * next batch, vacuums the trail after purges, and purges by age every ten
 * seconds (trail.cpp). If it fails it exits and the postmaster starts it
 * again after a second; the queue keeps every record it had not
 * committed. While rustydb is not installed in the audit database the
 * records go to the server log.
 *
 * rustydb.audit_flush() (a backend waiting for the worker) is here too.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/audit/audit.h"
#include "rustydb/audit/capture.h"
#include "rustydb/audit/writer.h"

#include "rustydb/common/boundary.h"
#include "rustydb/common/settings.h"
#include "rustydb/common/wait_events.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/xact.h"
#include "commands/vacuum.h"
#include "nodes/makefuncs.h"
#include "parser/parse_node.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/timestamp.h"
#include "utils/wait_event.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace audit {

namespace {

constexpr long kAgePurgeIntervalMs = 10000;
constexpr long kGatherMs = 5;

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

void
write_clean_mark()
{
	FILE *f = AllocateFile(kCleanMark, PG_BINARY_W);

	if (f != nullptr)
		FreeFile(f);
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
	Writer &wr = writer();
	int64 live = queue_trail_rows();

	if (wr.dead_since_vacuum == 0 || wr.dead_since_vacuum < Max(live / 4, 1000))
		return;
	wr.dead_since_vacuum = 0;
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
	Writer &wr = writer();

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
	wr.gap_check_pending = queue_gap_pending();

	char *buf =
		static_cast<char *>(MemoryContextAlloc(TopMemoryContext, record_slot_size() * kBatch));
	MemoryContext batch_ctx =
		AllocSetContextCreate(TopMemoryContext, "rustydb audit batch", ALLOCSET_DEFAULT_SIZES);

	/* a full batch of typical records fits in the kept first block */
	wr.tuple_ctx = AllocSetContextCreate(TopMemoryContext, "rustydb audit tuples", 512 * 1024,
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

		if (n > 0 || age_due || wr.nworker_events > 0 || wr.gap_check_pending)
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
	Writer &wr = writer();
	Size slot = record_slot_size();

	if (wr.worker_events == nullptr)
		wr.worker_events =
			static_cast<char *>(MemoryContextAlloc(TopMemoryContext, slot * kMaxWorkerEvents));
	if (wr.nworker_events >= kMaxWorkerEvents)
	{
		/* cannot happen with the batch sizes used; never silently */
		wr.worker_events_lost++;
		ereport(LOG,
				(errmsg("audit worker event not recorded: too many pending (%s)", rec->action)));
		log_record(rec);
		return;
	}
	memcpy(wr.worker_events + wr.nworker_events * slot, rec,
		   offsetof(Record, statement) + rec->statement_len + 1);
	wr.nworker_events++;
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

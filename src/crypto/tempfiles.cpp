/*-------------------------------------------------------------------------
 *
 * tempfiles.cpp
 *	  Saying so when a statement over an encrypted table writes temporary
 *	  files.
 *
 * Sorts, hash joins, hash aggregates and materialisation write rows to
 * temporary files (base/pgsql_tmp or temp_tablespaces) once they exceed
 * work_mem, unencrypted: PostgreSQL 15 offers an extension no way to
 * encrypt them or to see them being written. What it does offer is the
 * count of temporary files a backend has closed, kept for the cumulative
 * statistics (pg_stat_database.temp_files; counted when a file is
 * deleted, whatever log_temp_files says). So ExecutorStart notes that
 * count and the number of times this backend has used an encrypted
 * relation's payloads (decryptions); ExecutorEnd, after PostgreSQL has
 * closed the query's sorts and hash tables, compares: temporary files
 * written by a query that read or wrote an encrypted relation are
 * reported once per statement, naming the encrypted relations of the
 * query (rustydb.plaintext_temp_file_action: warning, error or log).
 *
 * Temporary files of parallel workers are counted (and reported) by the
 * worker that closes them. With track_counts off there is no count and
 * nothing is reported.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/common/settings.h"
#include "rustydb/crypto/crypto_internal.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/xact.h"
#include "executor/executor.h"
#include "lib/stringinfo.h"
#include "parser/parsetree.h"
#include "pgstat.h"
#include "utils/lsyscache.h"
#include "utils/pgstat_internal.h"
#include "utils/timestamp.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace crypto {

namespace {

/* Queries between ExecutorStart and ExecutorEnd, innermost last. */
struct Running
{
	QueryDesc *query;
	uint64 decryptions;
	PgStat_Counter temp_files;
	PgStat_Counter temp_bytes;
};
constexpr int kMaxRunning = 64;
Running running[kMaxRunning];
int n_running = 0;

/* the statement (its start time) last reported, so that it is reported once */
TimestampTz reported_statement = 0;

/* Temporary files (and bytes) this backend has closed and not yet flushed to pgstat. */
void
temp_counts(PgStat_Counter *files, PgStat_Counter *bytes)
{
	PgStat_EntryRef *ref =
		pgstat_fetch_pending_entry(PGSTAT_KIND_DATABASE, MyDatabaseId, InvalidOid);

	*files = *bytes = 0;
	if (ref != nullptr && ref->pending != nullptr)
	{
		auto *db = static_cast<PgStat_StatDBEntry *>(ref->pending);
		*files = db->n_temp_files;
		*bytes = db->n_temp_bytes;
	}
}

/* Names of the encrypted relations in the query's range table, or the last one used. */
const char *
encrypted_relations(QueryDesc *query)
{
	StringInfoData names;
	int n = 0;
	ListCell *lc;

	initStringInfo(&names);
	if (query->plannedstmt != nullptr && OidIsValid(keys_catalog_oid()))
		foreach (lc, query->plannedstmt->rtable)
		{
			auto *rte = lfirst_node(RangeTblEntry, lc);
			if (rte->rtekind != RTE_RELATION || !relation_has_keys(rte->relid))
				continue;
			const char *name = get_rel_name(rte->relid);
			if (name == nullptr)
				continue;
			if (n++ > 0)
				appendStringInfoString(&names, ", ");
			appendStringInfo(&names, "\"%s\"", name);
		}
	if (n == 0)
	{
		const char *name = get_rel_name(last_decrypted);
		appendStringInfo(&names, "\"%s\"", name != nullptr ? name : "?");
		n = 1;
	}
	return names.data;
}

void
report(QueryDesc *query, PgStat_Counter files, PgStat_Counter bytes)
{
	TimestampTz statement = GetCurrentStatementStartTimestamp();

	if (statement == reported_statement)
		return;
	reported_statement = statement;
	int level = settings::plaintext_temp_file_action == 1   ? ERROR
				: settings::plaintext_temp_file_action == 2 ? LOG
															: WARNING;
	ereport(level,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("statement wrote %lld temporary file(s) (%lld kB) while reading or writing "
					"encrypted table(s) %s",
					static_cast<long long>(files), static_cast<long long>((bytes + 1023) / 1024),
					encrypted_relations(query)),
			 errdetail("Sorts, hashes and materialisation that exceed work_mem write their rows "
					   "to temporary files unencrypted."),
			 errhint("Raise work_mem so the statement runs in memory, or point temp_tablespaces "
					 "at a tablespace on an encrypted file system. "
					 "rustydb.plaintext_temp_file_action = error forbids such statements.")));
}

} /* namespace */

void
hook_executor_start(hooks::StartCall &call)
{
	call.proceed();
	if (n_running >= kMaxRunning)
		return;
	Running &r = running[n_running++];
	r.query = call.query_desc;
	r.decryptions = decryptions;
	temp_counts(&r.temp_files, &r.temp_bytes);
}

void
hook_executor_end(hooks::EndCall &call)
{
	int i = n_running - 1;
	while (i >= 0 && running[i].query != call.query_desc)
		i--;
	if (i < 0)
	{
		call.proceed();
		return;
	}
	Running r = running[i];
	n_running = i; /* queries started after it and never ended are gone too */

	call.proceed(); /* closes the query's sorts and hash tables: their files are counted */
	if (decryptions == r.decryptions)
		return;
	PgStat_Counter files, bytes;
	temp_counts(&files, &bytes);
	if (files > r.temp_files)
		report(r.query, files - r.temp_files, bytes - r.temp_bytes);
}

void
tempfiles_xact_end()
{
	n_running = 0;
}

} /* namespace crypto */
} /* namespace rustydb */

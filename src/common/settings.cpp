/*-------------------------------------------------------------------------
 *
 * settings.cpp
 *	  The rustydb.* settings registry and the rustydb.settings view.
 *
 * To add a setting: declare its variable in include/rustydb/common/
 * settings.h, define it below, add one row to kRegistry with make_bool/
 * make_int/make_real/make_string/make_enum, and document it in
 * docs/settings.md (test/checks/settings_doc.sh fails otherwise).
 * Integer and real settings always have bounds; string settings that name
 * files or commands get a check hook.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/common/settings.h"

#include "rustydb/common/boundary.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/htup_details.h"
#include "access/parallel.h"
#include "miscadmin.h"
#include "utils/guc_tables.h"
#include "utils/tuplestore.h"
RUSTYDB_PG_INCLUDE_END

#include <climits>
#include <cstdlib>
#include <cstring>
#include <string>

namespace rustydb {
namespace settings {

/* ---- setting variables ---- */

/* vpd */
int vpd_cache_entries = 1024;
int vpd_context_max_attributes = 1000;
/* ---- am: table access method ---- */
int undo_max_size = 64;
bool update_in_place = true;
bool inplace_previous_on_page = true;
int inplace_reserve = 512;
bool inplace_pointer_reserve = true;
int undo_stats_tables = 1000;
/* ---- crypto: transparent data encryption ---- */
char *keyring_file = nullptr;
char *key_command = nullptr;
bool encrypt_new_tables = false;
int plaintext_index_action = 0;
int cipher_cache_size = 256;
int seal_group_rows = 4;
int tde_cache_size = -1;
int tde_cache_min_read = 1024;
void (*provider_removed_hook)() = nullptr;
int redact_server_log = kRedactAuto;
int tde_statistics = kTdeStatisticsValueFree;
int plaintext_derived_action = 0;
int plaintext_temp_file_action = 0;

/* ---- ash: active session history ---- */
bool ash_enabled = true;
int ash_sampling_interval = 1000;
int ash_max_entries = 50000;
int ash_query_text_size = 256;
int ash_persist_every = 10;
int ash_retention_age = 10080;
int ash_retention_rows = 1000000;
bool ash_idle_in_transaction = false;
char *ash_database = nullptr;
/* audit and limits */
char *audit_database = nullptr;
int audit_queue_size = 1024;
int audit_statement_max = 2048;
int audit_overflow = kAuditOverflowWait;
bool audit_log_parameters = false;
int audit_max_size = 1024;
int audit_retention = 0;
char *audit_key_file = nullptr;
int audit_max_policies = 64;
int transaction_timeout = 0;

/* ---- constructors for registry rows ---- */

namespace {

Definition
base(const char *name, Type type, GucContext context, int flags, const char *description,
	 const char *long_description)
{
	Definition d;

	memset(&d, 0, sizeof(d));
	d.name = name;
	d.type = type;
	d.context = context;
	d.flags = flags;
	d.description = description;
	d.long_description = long_description;
	return d;
}

[[maybe_unused]] Definition
make_bool(const char *name, bool *var, bool boot, GucContext context, const char *description,
		  const char *long_description = nullptr, GucBoolCheckHook check = nullptr,
		  GucBoolAssignHook assign = nullptr)
{
	Definition d = base(name, Type::Bool, context, 0, description, long_description);

	d.bool_var = var;
	d.bool_boot = boot;
	d.bool_check = check;
	d.bool_assign = assign;
	return d;
}

[[maybe_unused]] Definition
make_int(const char *name, int *var, int boot, int min, int max, int unit, GucContext context,
		 const char *description, const char *long_description = nullptr,
		 GucIntCheckHook check = nullptr, GucIntAssignHook assign = nullptr)
{
	Definition d = base(name, Type::Int, context, unit, description, long_description);

	d.int_var = var;
	d.int_boot = boot;
	d.int_min = min;
	d.int_max = max;
	d.int_check = check;
	d.int_assign = assign;
	return d;
}

[[maybe_unused]] Definition
make_real(const char *name, double *var, double boot, double min, double max, int unit,
		  GucContext context, const char *description, const char *long_description = nullptr,
		  GucRealCheckHook check = nullptr, GucRealAssignHook assign = nullptr)
{
	Definition d = base(name, Type::Real, context, unit, description, long_description);

	d.real_var = var;
	d.real_boot = boot;
	d.real_min = min;
	d.real_max = max;
	d.real_check = check;
	d.real_assign = assign;
	return d;
}

[[maybe_unused]] Definition
make_string(const char *name, char **var, const char *boot, GucContext context, int flags,
			const char *description, const char *long_description = nullptr,
			GucStringCheckHook check = nullptr, GucStringAssignHook assign = nullptr)
{
	Definition d = base(name, Type::String, context, flags, description, long_description);

	d.string_var = var;
	d.string_boot = boot;
	d.string_check = check;
	d.string_assign = assign;
	return d;
}

[[maybe_unused]] Definition
make_enum(const char *name, int *var, int boot, const struct config_enum_entry *options,
		  GucContext context, const char *description, const char *long_description = nullptr,
		  GucEnumCheckHook check = nullptr, GucEnumAssignHook assign = nullptr)
{
	Definition d = base(name, Type::Enum, context, 0, description, long_description);

	d.enum_var = var;
	d.enum_boot = boot;
	d.enum_options = options;
	d.enum_check = check;
	d.enum_assign = assign;
	return d;
}

/* ---- crypto: check hooks and enum values ---- */

const struct config_enum_entry plaintext_index_action_options[] = {
	{"warning", 0, false},
	{"error", 1, false},
	{"log", 2, false},
	{nullptr, 0, false},
};

const struct config_enum_entry redact_server_log_options[] = {
	{"auto", kRedactAuto, false},
	{"on", kRedactOn, false},
	{"off", kRedactOff, false},
	{nullptr, 0, false},
};

const struct config_enum_entry tde_statistics_options[] = {
	{"none", kTdeStatisticsNone, false},
	{"value_free", kTdeStatisticsValueFree, false},
	{"full", kTdeStatisticsFull, false},
	{nullptr, 0, false},
};

/*
 * path with its symbolic links resolved; for a file that does not exist
 * (yet), its directory's resolved path and its name. Empty if neither
 * resolves.
 */
std::string
resolved_path(const char *path)
{
	char buf[PATH_MAX]; /* realpath() requires PATH_MAX */

	if (realpath(path, buf) != nullptr)
		return buf;
	const char *slash = strrchr(path, '/');
	if (slash == nullptr)
		return {};
	std::string dir(path, slash == path ? 1 : static_cast<size_t>(slash - path));
	if (realpath(dir.c_str(), buf) == nullptr)
		return {};
	std::string out(buf);
	if (out.empty() || out.back() != '/')
		out += '/';
	return out + (slash + 1);
}

/*
 * rustydb.keyring_file: empty, or an absolute path outside the data
 * directory (a keyring there would travel with every base backup and copy
 * of the data directory). The file's owner and mode are checked when it is
 * read (keys.cpp), since they can change after the setting is made.
 */
/*
 * rustydb.keyring_file and rustydb.key_command: when a backend's reload
 * leaves neither set, provider_removed_hook runs (the opened-payload cache
 * is emptied). Not in the postmaster, which touches no shared structure.
 */
static bool
nonempty(const char *v)
{
	return v != nullptr && v[0] != '\0';
}

static void
provider_assign(const char *newval, const char *oldval, const char *other)
{
	/*
	 * A parallel worker resets every setting to its boot value before it
	 * takes the leader's (RestoreGUCState): not a removal.
	 */
	if (IsUnderPostmaster && !IsParallelWorker() && !InitializingParallelWorker &&
		provider_removed_hook != nullptr && (nonempty(oldval) || nonempty(other)) &&
		!nonempty(newval) && !nonempty(other))
		provider_removed_hook();
}

static void
assign_keyring_file(const char *newval, void *)
{
	provider_assign(newval, keyring_file, key_command);
}

static void
assign_key_command(const char *newval, void *)
{
	provider_assign(newval, key_command, keyring_file);
}

/* rustydb.tde_cache_size: -1 (auto), 0 (off) or at least 1MB. */
bool
check_tde_cache_size(int *newval, void **extra, GucSource source)
{
	if (*newval > 0 && *newval < 1024)
	{
		GUC_check_errdetail("rustydb.tde_cache_size must be -1, 0 or at least 1MB.");
		return false;
	}
	return true;
}

bool
check_keyring_file(char **newval, void **extra, GucSource source)
{
	if (*newval == nullptr || (*newval)[0] == '\0')
		return true;
	if ((*newval)[0] != '/')
	{
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		GUC_check_errdetail("rustydb.keyring_file must be an absolute path.");
		return false;
	}
	if (DataDir == nullptr)
		return true;
	std::string file = resolved_path(*newval);
	std::string data = resolved_path(DataDir);
	if (file.empty() || data.empty())
		return true;
	if (file == data || file.compare(0, data.size() + 1, data + "/") == 0)
	{
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		GUC_check_errmsg("keyring file \"%s\" is inside the data directory", *newval);
		GUC_check_errdetail("A keyring stored with the data would travel with every base backup "
							"and copy of the data directory.");
		GUC_check_errhint("Move the keyring file outside the data directory.");
		return false;
	}
	return true;
}

const struct config_enum_entry kAuditOverflowOptions[] = {
	{"wait", kAuditOverflowWait, false},
	{"error", kAuditOverflowError, false},
	{"drop", kAuditOverflowDrop, false},
	{nullptr, 0, false},
};

/* rustydb.audit_key_file: empty, or an absolute path. */
bool
check_audit_key_file(char **newval, void **extra, GucSource source)
{
	if (*newval == nullptr || (*newval)[0] == '\0')
		return true;
	if ((*newval)[0] != '/')
	{
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		GUC_check_errdetail("The audit key file must be given as an absolute path.");
		return false;
	}
	return true;
}

/* rustydb.audit_database: a non-empty name. */
bool
check_audit_database(char **newval, void **extra, GucSource source)
{
	if (*newval == nullptr || (*newval)[0] == '\0' || strlen(*newval) >= NAMEDATALEN)
	{
		GUC_check_errcode(ERRCODE_INVALID_PARAMETER_VALUE);
		GUC_check_errdetail("The audit database must be a database name.");
		return false;
	}
	return true;
}

/*
 * ---- the registry ----
 * One section per subsystem, in the order of docs/settings.md.
 */
const Definition kRegistry[] = {
	/* ---- common ---- */

	/* ---- am: table access method ---- */
	make_int("rustydb.undo_max_size", &undo_max_size, 64, 0, 1048576, GUC_UNIT_MB, PGC_SUSET,
			 "ring size of an undo store initialised from now on",
			 "Each rustydb table's undo store is a ring of at most this size, fixed when the "
			 "store writes its metapage. 0: stores are not started."),
	make_bool("rustydb.update_in_place", &update_in_place, true, PGC_USERSET,
			  "updates rows in place, keeping the previous version in the table's undo store",
			  "Off: this session's updates write new versions elsewhere, as heap does. Both "
			  "forms are always readable, so sessions may differ."),
	make_bool("rustydb.inplace_previous_on_page", &inplace_previous_on_page, true, PGC_USERSET,
			  "keeps the version an in-place update replaces on the page until compaction",
			  "On: a plain table's previous version stays where it was and pruning moves it to "
			  "undo only if a snapshot may still need it when the page is compacted. Off: it is "
			  "copied to undo at once. Encrypted tables always copy it at once."),
	make_int("rustydb.inplace_reserve", &inplace_reserve, 512, 0, BLCKSZ / 4, GUC_UNIT_BYTE,
			 PGC_USERSET, "room a page keeps free at insert for one in-place version of its rows",
			 "An insert leaves a page with room for one more version of the row it adds (its "
			 "length plus the undo pointer) when that is at most this many bytes and more than "
			 "fillfactor leaves: the page's first in-place update then needs no move. 0: "
			 "fillfactor alone (and the pointer reserve)."),
	make_bool("rustydb.inplace_pointer_reserve", &inplace_pointer_reserve, true, PGC_USERSET,
			  "keeps room at insert for the undo pointer every row of the page may gain",
			  "A row's first in-place update lengthens it by an 8-byte undo pointer, which "
			  "pruning takes back only once no snapshot predates the update. On: an insert "
			  "into a plain table leaves its page 8 bytes for each row without one (the new "
			  "row included), beside fillfactor and rustydb.inplace_reserve, so rows keep "
			  "updating in place while a snapshot is held. Tables are larger at load (8 bytes "
			  "a row: about 6% for 140-byte rows)."),
	make_int("rustydb.undo_stats_tables", &undo_stats_tables, 1000, 1, 100000, 0, PGC_POSTMASTER,
			 "most tables whose in-place update and undo counters rustydb.undo_stats keeps",
			 "Shared memory of about 200 bytes per table. When every entry is taken, the events "
			 "of further tables are added to one overflow entry (relid NULL in the view)."),

	/* ---- crypto: transparent data encryption ---- */
	make_string("rustydb.keyring_file", &keyring_file, "", PGC_SIGHUP, 0,
				"keyring file holding the master key(s) for encrypted tables",
				"Absolute path outside the data directory; the file must be owned by the "
				"server user and have mode 0600. Create one with rustydb-keyring create.",
				check_keyring_file, assign_keyring_file),
	make_string("rustydb.key_command", &key_command, "", PGC_SIGHUP, 0,
				"command that prints the master key as 64 hexadecimal digits",
				"%i in the command is replaced by the id of the key wanted, or by current.",
				nullptr, assign_key_command),
	make_bool("rustydb.encrypt_new_tables", &encrypt_new_tables, false, PGC_SUSET,
			  "encrypts every new rustydb table that does not set the encrypted option"),
	make_enum("rustydb.plaintext_index_action", &plaintext_index_action, 0,
			  plaintext_index_action_options, PGC_SUSET,
			  "what creating an index on an encrypted table does: warning, error or log",
			  "Indexes built by PostgreSQL's index access methods store their keys in "
			  "plaintext."),
	make_int("rustydb.cipher_cache_size", &cipher_cache_size, 256, 16, 65536, 0, PGC_SUSET,
			 "most encrypted tables whose keys one backend keeps unwrapped"),
	make_int("rustydb.seal_group_rows", &seal_group_rows, 4, 1, 16, 0, PGC_USERSET,
			 "most rows of one page COPY seals together with one AEAD in an encrypted table",
			 "1 seals every row on its own. Larger groups make COPY and scans faster and "
			 "index lookups slower (a lookup opens its row's whole group); pruning re-seals "
			 "a group's surviving rows when some of them are removed."),
	make_int("rustydb.tde_cache_size", &tde_cache_size, -1, -1, 64 * 1024 * 1024, GUC_UNIT_KB,
			 PGC_POSTMASTER,
			 "shared memory for the cache of opened payloads of encrypted tables; 0 turns it off",
			 "-1 (the default): a quarter of shared_buffers when a key provider is configured "
			 "at start-up, else 0. Other values below 1MB are refused. It speeds warm scans "
			 "up; the scan that fills it costs more than one without it (docs/benchmarks.md).",
			 check_tde_cache_size),
	make_int("rustydb.tde_cache_min_read", &tde_cache_min_read, 1024, 0, BLCKSZ, GUC_UNIT_BYTE,
			 PGC_USERSET,
			 "fewest plaintext bytes a read of one page must open to use the cache of opened "
			 "payloads",
			 "An index fetch opens its row's group, a bitmap scan the rows it reads of a page: "
			 "below this they are opened without looking at the cache, which costs them more "
			 "than it saves (docs/benchmarks.md). Scans reading whole pages are above it."),
	make_enum("rustydb.redact_server_log", &redact_server_log, kRedactAuto,
			  redact_server_log_options, PGC_SUSET,
			  "redacts data values and SQL literals in messages written to the server log: auto, "
			  "on or off",
			  "auto: on while a key provider is configured. The client still receives the full "
			  "message."),
	make_enum("rustydb.tde_statistics", &tde_statistics, kTdeStatisticsValueFree,
			  tde_statistics_options, PGC_SUSET,
			  "what ANALYZE stores in pg_statistic for encrypted tables: none, value_free or full",
			  "value_free: null fractions, widths, distinct counts and correlations, no value; "
			  "none: row counts only; full: everything, values in plaintext in pg_statistic."),
	make_enum("rustydb.plaintext_derived_action", &plaintext_derived_action, 0,
			  plaintext_index_action_options, PGC_SUSET,
			  "what a table created unencrypted from a query that reads an encrypted table "
			  "does: warning, error or log"),
	make_enum("rustydb.plaintext_temp_file_action", &plaintext_temp_file_action, 0,
			  plaintext_index_action_options, PGC_SUSET,
			  "what a statement that wrote temporary files while reading an encrypted table "
			  "does: warning, error or log",
			  "Sorts, hashes and materialisation write decrypted rows to temporary files."),

	/* ---- vpd: row policies ---- */
	make_int("rustydb.vpd_cache_entries", &vpd_cache_entries, 1024, 16, 1048576, 0, PGC_SUSET,
			 "Maximum number of tables and of cached predicates in each session's VPD cache.",
			 "When either cache is full it is emptied and refilled on demand: cached "
			 "predicates of static and context-sensitive policies are then evaluated again."),
	make_int("rustydb.vpd_context_max_attributes", &vpd_context_max_attributes, 1000, 1, 100000, 0,
			 PGC_SUSET, "Maximum number of application context attributes a session may hold.",
			 "set_context fails with program_limit_exceeded when a new attribute would exceed it."),

	/* ---- ash: active session history ---- */
	make_bool("rustydb.ash_enabled", &ash_enabled, true, PGC_SIGHUP,
			  "Samples active sessions into Active Session History.",
			  "When off, the sampler worker sleeps; the ring and ash_history keep what they hold."),
	make_int("rustydb.ash_sampling_interval", &ash_sampling_interval, 1000, 10, 60000, GUC_UNIT_MS,
			 PGC_SIGHUP, "Time between two Active Session History samples."),
	make_int("rustydb.ash_max_entries", &ash_max_entries, 50000, 100, 1000000, 0, PGC_POSTMASTER,
			 "Rows kept in the Active Session History ring in shared memory.",
			 "One row per sampled session per sample; when full, the oldest row is overwritten."),
	make_int("rustydb.ash_query_text_size", &ash_query_text_size, 256, 32, 4096, GUC_UNIT_BYTE,
			 PGC_POSTMASTER, "Bytes of query text kept per Active Session History row."),
	make_int("rustydb.ash_persist_every", &ash_persist_every, 10, 0, 10000, 0, PGC_SIGHUP,
			 "Writes one Active Session History sample in this many into ash_history.",
			 "0 persists nothing."),
	make_int("rustydb.ash_retention_age", &ash_retention_age, 10080, 1, 525600, GUC_UNIT_MIN,
			 PGC_SIGHUP, "Age after which rows are deleted from ash_history."),
	make_int("rustydb.ash_retention_rows", &ash_retention_rows, 1000000, 100, 100000000, 0,
			 PGC_SIGHUP, "Most rows ash_history holds; the oldest are deleted first."),
	make_bool("rustydb.ash_idle_in_transaction", &ash_idle_in_transaction, false, PGC_SIGHUP,
			  "Samples sessions that are idle in a transaction as active."),
	make_string("rustydb.ash_database", &ash_database, "postgres", PGC_POSTMASTER, 0,
				"Database the Active Session History worker connects to and persists into.",
				"Samples are written to rustydb.ash_history of this database once the rustydb "
				"extension is created there."),

	/* ---- audit and limits ---- */
	make_string("rustydb.audit_database", &audit_database, "postgres", PGC_POSTMASTER, 0,
				"Database where the audit worker stores the audit trail.",
				"rustydb must be installed there; records from every database go to its trail.",
				check_audit_database),
	make_int("rustydb.audit_queue_size", &audit_queue_size, 1024, 16, 1048576, 0, PGC_POSTMASTER,
			 "Records the shared audit queue holds before it is full."),
	make_int("rustydb.audit_statement_max", &audit_statement_max, 2048, 64, 65536, GUC_UNIT_BYTE,
			 PGC_POSTMASTER, "Longest statement text (with parameters) kept in an audit record."),
	make_enum("rustydb.audit_overflow", &audit_overflow, kAuditOverflowWait, kAuditOverflowOptions,
			  PGC_SIGHUP,
			  "What a statement does when the audit queue is full: wait, error or drop."),
	make_bool("rustydb.audit_log_parameters", &audit_log_parameters, false, PGC_SIGHUP,
			  "Adds bind parameter values to the statement text of audit records."),
	make_int("rustydb.audit_max_size", &audit_max_size, 1024, 1, 1048576, GUC_UNIT_MB, PGC_SIGHUP,
			 "Largest size of the audit trail; the oldest records are purged beyond it."),
	make_int("rustydb.audit_retention", &audit_retention, 0, 0, 5256000, GUC_UNIT_MIN, PGC_SIGHUP,
			 "Age after which audit records are purged automatically (0: no age limit)."),
	make_string("rustydb.audit_key_file", &audit_key_file, "", PGC_POSTMASTER, 0,
				"File holding the key of the audit trail's hash chain (empty: unkeyed hashes).",
				"32 bytes, raw or as 64 hexadecimal digits.", check_audit_key_file),
	make_int("rustydb.audit_max_policies", &audit_max_policies, 64, 1, 4096, 0, PGC_SIGHUP,
			 "Most audit policies a database may have."),
	make_int("rustydb.transaction_timeout", &transaction_timeout, 0, 0, INT_MAX, GUC_UNIT_MS,
			 PGC_USERSET,
			 "Ends the session of a transaction open longer than this, idle or not (0: off)."),

	/* end of registry: a row with no name */
	Definition{},
};

constexpr size_t kRegistrySize = sizeof(kRegistry) / sizeof(kRegistry[0]) - 1;

} /* namespace */

const Definition *
registry(size_t *count)
{
	*count = kRegistrySize;
	return kRegistry;
}

const char *
unit_label(int flags)
{
	switch (flags & GUC_UNIT)
	{
		case GUC_UNIT_KB:
			return "kB";
		case GUC_UNIT_BLOCKS:
			return "8kB";
		case GUC_UNIT_XBLOCKS:
			return "8kB";
		case GUC_UNIT_MB:
			return "MB";
		case GUC_UNIT_BYTE:
			return "B";
		case GUC_UNIT_MS:
			return "ms";
		case GUC_UNIT_S:
			return "s";
		case GUC_UNIT_MIN:
			return "min";
		default:
			return nullptr;
	}
}

const char *
type_name(Type type)
{
	switch (type)
	{
		case Type::Bool:
			return "bool";
		case Type::Int:
			return "integer";
		case Type::Real:
			return "real";
		case Type::String:
			return "string";
		case Type::Enum:
			return "enum";
	}
	return "unknown";
}

void
define_all()
{
	for (size_t i = 0; i < kRegistrySize; i++)
	{
		const Definition &d = kRegistry[i];

		switch (d.type)
		{
			case Type::Bool:
				DefineCustomBoolVariable(d.name, d.description, d.long_description, d.bool_var,
										 d.bool_boot, d.context, d.flags, d.bool_check,
										 d.bool_assign, nullptr);
				break;
			case Type::Int:
				DefineCustomIntVariable(d.name, d.description, d.long_description, d.int_var,
										d.int_boot, d.int_min, d.int_max, d.context, d.flags,
										d.int_check, d.int_assign, nullptr);
				break;
			case Type::Real:
				DefineCustomRealVariable(d.name, d.description, d.long_description, d.real_var,
										 d.real_boot, d.real_min, d.real_max, d.context, d.flags,
										 d.real_check, d.real_assign, nullptr);
				break;
			case Type::String:
				DefineCustomStringVariable(d.name, d.description, d.long_description, d.string_var,
										   d.string_boot, d.context, d.flags, d.string_check,
										   d.string_assign, nullptr);
				break;
			case Type::Enum:
				DefineCustomEnumVariable(d.name, d.description, d.long_description, d.enum_var,
										 d.enum_boot, d.enum_options, d.context, d.flags,
										 d.enum_check, d.enum_assign, nullptr);
				break;
		}
	}
	MarkGUCPrefixReserved("rustydb");
}

} /* namespace settings */
} /* namespace rustydb */

using rustydb::settings::Definition;
using rustydb::settings::Type;

namespace {

/* Text of an enum's allowed values, "{a,b,c}", palloc'd. */
char *
enum_values_text(const struct config_enum_entry *options)
{
	StringInfoData buf;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (const struct config_enum_entry *e = options; e && e->name; e++)
	{
		if (e->hidden)
			continue;
		if (buf.len > 1)
			appendStringInfoChar(&buf, ',');
		appendStringInfoString(&buf, e->name);
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

const char *
enum_name(const struct config_enum_entry *options, int value)
{
	for (const struct config_enum_entry *e = options; e && e->name; e++)
		if (e->val == value && !e->hidden)
			return e->name;
	return "";
}

} /* namespace */

/*
 * rustydb._settings_registry(): one row per registry entry, with the value
 * currently in effect. Backs the rustydb.settings view.
 */
RUSTYDB_FUNCTION(rustydb_settings_registry)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	size_t count;
	const Definition *defs = rustydb::settings::registry(&count);

	InitMaterializedSRF(fcinfo, 0);

	for (size_t i = 0; i < count; i++)
	{
		const Definition &d = defs[i];
		Datum values[11];
		bool nulls[11];
		const char *unit = rustydb::settings::unit_label(d.flags);
		char *boot = nullptr;
		char *min = nullptr;
		char *max = nullptr;
		char *allowed = nullptr;

		memset(nulls, 0, sizeof(nulls));
		switch (d.type)
		{
			case Type::Bool:
				boot = pstrdup(d.bool_boot ? "on" : "off");
				break;
			case Type::Int:
				boot = psprintf("%d", d.int_boot);
				min = psprintf("%d", d.int_min);
				max = psprintf("%d", d.int_max);
				break;
			case Type::Real:
				boot = psprintf("%g", d.real_boot);
				min = psprintf("%g", d.real_min);
				max = psprintf("%g", d.real_max);
				break;
			case Type::String:
				boot = d.string_boot ? pstrdup(d.string_boot) : nullptr;
				break;
			case Type::Enum:
				boot = pstrdup(enum_name(d.enum_options, d.enum_boot));
				allowed = enum_values_text(d.enum_options);
				break;
		}

		values[0] = CStringGetTextDatum(d.name);
		values[1] = CStringGetTextDatum(GetConfigOptionByName(d.name, nullptr, false));
		values[2] = unit ? CStringGetTextDatum(unit) : (Datum) 0;
		nulls[2] = unit == nullptr;
		values[3] = CStringGetTextDatum(rustydb::settings::type_name(d.type));
		values[4] = min ? CStringGetTextDatum(min) : (Datum) 0;
		nulls[4] = min == nullptr;
		values[5] = max ? CStringGetTextDatum(max) : (Datum) 0;
		nulls[5] = max == nullptr;
		values[6] = allowed ? CStringGetTextDatum(allowed) : (Datum) 0;
		nulls[6] = allowed == nullptr;
		values[7] = boot ? CStringGetTextDatum(boot) : (Datum) 0;
		nulls[7] = boot == nullptr;
		values[8] = BoolGetDatum(d.context == PGC_POSTMASTER);
		values[9] = CStringGetTextDatum(GucContext_Names[d.context]);
		values[10] = CStringGetTextDatum(d.description);

		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/*-------------------------------------------------------------------------
 *
 * settings.h
 *	  The registry of every rustydb.* setting: bounds, units, check hooks
 *	  (documented in docs/settings.md).
 *
 * Every setting is one row of the table in src/common/settings.cpp: its
 * name, type, bounds, unit, context, check and assign hooks, and
 * description. _PG_init defines them all with PostgreSQL's custom GUC API;
 * the view rustydb.settings reads the same table, and a test compares it
 * with docs/settings.md. Nothing else in rustydb calls DefineCustom*.
 *
 * The variables themselves are declared here, grouped by subsystem, so a
 * setting has one definition and one name everywhere.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_COMMON_SETTINGS_H
#define RUSTYDB_COMMON_SETTINGS_H

#include "rustydb/pg.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "utils/guc.h"
RUSTYDB_PG_INCLUDE_END

#include <cstddef>

namespace rustydb {
namespace settings {

enum class Type
{
	Bool,
	Int,
	Real,
	String,
	Enum
};

struct Definition
{
	const char *name; /* full name, "rustydb.<name>" */
	Type type;
	GucContext context;           /* PGC_POSTMASTER means restart needed */
	int flags;                    /* GUC_UNIT_* and other GUC_* flags */
	const char *description;      /* one line, PostgreSQL style */
	const char *long_description; /* or nullptr */

	/* storage, by type */
	bool *bool_var;
	int *int_var;
	double *real_var;
	char **string_var;
	int *enum_var;

	/* boot value and bounds, by type */
	bool bool_boot;
	int int_boot, int_min, int_max;
	double real_boot, real_min, real_max;
	const char *string_boot;
	const struct config_enum_entry *enum_options;
	int enum_boot;

	/* hooks, by type (nullptr when none) */
	GucBoolCheckHook bool_check;
	GucIntCheckHook int_check;
	GucRealCheckHook real_check;
	GucStringCheckHook string_check;
	GucEnumCheckHook enum_check;
	GucBoolAssignHook bool_assign;
	GucIntAssignHook int_assign;
	GucRealAssignHook real_assign;
	GucStringAssignHook string_assign;
	GucEnumAssignHook enum_assign;
};

/* Define every setting with PostgreSQL; called once from _PG_init. */
void define_all();

/* The registry, for the rustydb.settings view and tests. */
const Definition *registry(size_t *count);

/* Unit label of a GUC_UNIT_* flag set ("ms", "kB", ...), or nullptr. */
const char *unit_label(int flags);

/* Type name as SQL shows it: bool, integer, real, string, enum. */
const char *type_name(Type type);

/*
 * ---- setting variables, one group per subsystem ----
 * (declared here, defined in src/common/settings.cpp)
 */

/* ---- vpd: row policies ---- */
extern int vpd_cache_entries;          /* rustydb.vpd_cache_entries */
extern int vpd_context_max_attributes; /* rustydb.vpd_context_max_attributes */
/* ---- am: table access method ---- */
extern int undo_max_size;             /* rustydb.undo_max_size: MB per table's undo store */
extern bool update_in_place;          /* rustydb.update_in_place */
extern bool inplace_previous_on_page; /* rustydb.inplace_previous_on_page */
extern int inplace_reserve; /* rustydb.inplace_reserve: bytes kept for an in-place version */
extern bool inplace_pointer_reserve; /* rustydb.inplace_pointer_reserve */
extern int undo_stats_tables;        /* rustydb.undo_stats_tables: entries of rustydb.undo_stats */
/* ---- crypto: transparent data encryption ---- */
extern char *keyring_file;         /* rustydb.keyring_file */
extern char *key_command;          /* rustydb.key_command */
extern bool encrypt_new_tables;    /* rustydb.encrypt_new_tables */
extern int plaintext_index_action; /* rustydb.plaintext_index_action: 0 warning, 1 error, 2 log */
extern int cipher_cache_size;      /* rustydb.cipher_cache_size */
extern int seal_group_rows;        /* rustydb.seal_group_rows */
extern int tde_cache_min_read;     /* rustydb.tde_cache_min_read, bytes */
extern int tde_cache_size;         /* rustydb.tde_cache_size, kB; 0 off (default), -1 auto */
/* run in a backend whose reload left no key provider (crypto sets it) */
extern void (*provider_removed_hook)();
/* rustydb.redact_server_log */
enum RedactServerLog
{
	kRedactAuto = 0, /* on while a key provider is configured */
	kRedactOn = 1,
	kRedactOff = 2
};
extern int redact_server_log;
/* rustydb.tde_statistics */
enum TdeStatistics
{
	kTdeStatisticsNone = 0, /* no sample rows of encrypted tables reach ANALYZE */
	kTdeStatisticsFull = 1,
	kTdeStatisticsValueFree = 2 /* null fractions, widths, distinct counts, correlations */
};
extern int tde_statistics;
/* actions, as rustydb.plaintext_index_action: 0 warning, 1 error, 2 log */
extern int plaintext_derived_action;   /* rustydb.plaintext_derived_action */
extern int plaintext_temp_file_action; /* rustydb.plaintext_temp_file_action */

/* ---- ash: active session history ---- */
extern bool ash_enabled;
extern int ash_sampling_interval; /* ms */
extern int ash_max_entries;       /* ring rows */
extern int ash_query_text_size;   /* bytes of query text per row */
extern int ash_persist_every;     /* 1 sample in N goes to ash_history; 0 = none */
extern int ash_retention_age;     /* minutes */
extern int ash_retention_rows;    /* rows in ash_history */
extern bool ash_idle_in_transaction;
extern char *ash_database;
/* ---- audit and limits ---- */
enum AuditOverflow
{
	kAuditOverflowWait,
	kAuditOverflowError,
	kAuditOverflowDrop
};
extern char *audit_database;
extern int audit_queue_size;
extern int audit_statement_max;
extern int audit_overflow; /* AuditOverflow */
extern bool audit_log_parameters;
extern int audit_max_size;  /* MB */
extern int audit_retention; /* minutes, 0 = no age limit */
extern char *audit_key_file;
extern int audit_max_policies;
extern int transaction_timeout; /* ms, 0 = off */

} /* namespace settings */
} /* namespace rustydb */

#endif /* RUSTYDB_COMMON_SETTINGS_H */

/*-------------------------------------------------------------------------
 *
 * tools.h
 *	  What rustydb knows about external tools that rebuild tables behind
 *	  the access method's back (docs/am.md, "PostgreSQL's tools").
 *
 * pg_repack copies a table into repack.table_<oid> (CREATE TABLE AS under
 * the session's default access method), records concurrent changes in
 * repack.log_<oid>, and swaps the copy's relation files into the original
 * by editing pg_class (relfilenode, tablespace, TOAST table), never its
 * access method. rustydb makes the copy a rustydb table with the original's
 * keys, so the swap exchanges rustydb files (crypto/hooks.cpp).
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_COMMON_TOOLS_H
#define RUSTYDB_COMMON_TOOLS_H

#include "rustydb/common/hooks.h"
#include "rustydb/pg.h"

namespace rustydb::tools {

enum class RepackRole
{
	kNone,
	kCopy, /* repack.table_<oid>: swapped into the original */
	kLog,  /* repack.log_<oid>: rows changed during the repack */
};

/* Does relation relid use the rustydb access method? */
bool uses_rustydb(Oid relid);

/*
 * Is (namespace nspid, relname) pg_repack's copy or log table of an
 * existing rustydb table? Returns the role and sets *original to that
 * table's OID. Only the schema "repack" of the pg_repack extension counts.
 */
RepackRole pg_repack_role(Oid nspid, const char *relname, Oid *original);

/* The same, for a statement's target (schema name as written, may be null). */
RepackRole pg_repack_role(const char *nspname, const char *relname, Oid *original);

/*
 * Install the heap-only function guard (from _PG_init): calls of functions
 * that read a table's pages by TID block number as file block number
 * (pg_visibility's page checks) get their table argument wrapped in
 * rustydb._heap_pages_only(), which refuses a rustydb table with a clear
 * error instead of letting the function read the metapage as data block 0.
 */
void init();

/* Step of post_parse_analyze (the pg_visibility guard), run by src/common/hooks.cpp. */
void hook_post_parse(hooks::PostParseCall &call);

} /* namespace rustydb::tools */

#endif /* RUSTYDB_COMMON_TOOLS_H */

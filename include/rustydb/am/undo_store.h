/*-------------------------------------------------------------------------
 *
 * undo_store.h
 *	  The undo store's companion relation (docs/storage.md, "Where the
 *	  undo store lives").
 *
 * Every rustydb table (RELKIND_RELATION) gets, when it is created, a
 * companion relation pg_toast.rustydb_undo_<table oid> (pg_toast_temp_N
 * for a temporary table) of access method rustydb_undo, relkind 't' (so
 * no row type, and database-wide VACUUM, ANALYZE and relkind = 'r'
 * listings pass it by), with an internal dependency on the table: it is
 * dropped with the table and survives TRUNCATE and rewrites. Its pages
 * are the undo store (storage/undo.h). Status: the relation and its
 * lifetime; nothing writes its pages yet.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_AM_UNDO_STORE_H
#define RUSTYDB_AM_UNDO_STORE_H

#include "rustydb/am/pgincludes.h"
#include "rustydb/common/hooks.h"

namespace rustydb::am {

/* The companion of table relid (persistence of the table), or InvalidOid if it has none. */
Oid undo_relation_of(Oid relid, char persistence);

/*
 * Create the companion of rustydb table relid (locked by the caller) if it
 * has none; returns its OID. The caller has made the table's pg_class row
 * visible (CommandCounterIncrement).
 */
Oid create_undo_relation(Oid relid);

/* object_access step: a new rustydb table gets its companion. */
void hook_object_access(hooks::ObjectAccessCall &call);

/* The rustydb_undo access method's routine (undo_am.cpp). */
const TableAmRoutine *undo_am_routine();

} /* namespace rustydb::am */

#endif /* RUSTYDB_AM_UNDO_STORE_H */

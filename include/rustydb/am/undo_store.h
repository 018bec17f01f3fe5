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
 * listings pass it by), no catalog dependency (like a TOAST table's) and
 * the bootstrap superuser as owner: rustydb's object-access hook drops it
 * with the table (an internal deletion, which event triggers do not
 * report); it survives TRUNCATE and rewrites. Its pages
 * are the undo store (storage/undo.h). Status: the relation, its
 * lifetime, its metapage and ring (pages started and recycled); no undo
 * record is written yet.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_AM_UNDO_STORE_H
#define RUSTYDB_AM_UNDO_STORE_H

#include "rustydb/am/pgincludes.h"
#include "rustydb/common/hooks.h"
#include "rustydb/storage/undo.h"

namespace rustydb::am {

/* The companion of table relid (persistence of the table), or InvalidOid if it has none. */
Oid undo_relation_of(Oid relid, char persistence);

/*
 * Create the companion of rustydb table relid (locked by the caller) if it
 * has none; returns its OID. The caller has made the table's pg_class row
 * visible (CommandCounterIncrement).
 */
Oid create_undo_relation(Oid relid);

/* The store of table, opened with mode; nullptr when the table has none. */
Relation undo_open(Relation table, LOCKMODE mode);

/*
 * Give the store its metapage if it has none (capacity from
 * rustydb.undo_max_size, which must not be 0: the caller checks).
 */
void undo_ensure_meta(Relation table, Relation undo);

/*
 * Start the store's next insert page (UNDO NEW_PAGE): false, doing
 * nothing, when the ring is full or rustydb.undo_max_size is 0. The
 * in-place path calls it when its record does not fit the insert page.
 */
constexpr storage::UndoPtr kAnyInsertPage = ~(storage::UndoPtr) 0;
bool undo_add_page(Relation table, Relation undo, storage::UndoPtr seen = kAnyInsertPage);

/*
 * An undo record's place, reserved by undo_reserve: the store's metapage
 * share-locked (so the page cannot be recycled before the record is on
 * it) and the insert page exclusively locked; position is where the
 * record goes.
 */
struct UndoInsert
{
	Buffer meta;
	Buffer page;
	storage::UndoPtr position;
};

/*
 * Reserve room for a record of need bytes (header and image) on the
 * store's insert page, starting the next page when it is full (seen:
 * only if no other backend did meanwhile). False, holding nothing, when
 * the ring is full or the record would not fit an empty page. Lock order:
 * data page (held by the caller), store metapage, undo page.
 */
bool undo_reserve(Relation table, Relation undo, Size need, UndoInsert *ins);

/* Release what undo_reserve locked (after the record is appended and logged). */
void undo_release(UndoInsert *ins);

/* Is the ring full or one page from it? The in-place path then discards first, before any data page lock. */
bool undo_nearly_full(Relation undo);

/*
 * Recycle the store's oldest pages, in order, while every record on them
 * has a writer that committed and is visible to every snapshot (UNDO
 * DISCARD, with the newest such writer as the standby conflict horizon).
 * Stops at a writer in progress, not yet visible to all, or aborted (its
 * row's repair comes with the in-place path), and never recycles the
 * insert page. Returns the pages recycled.
 */
uint64 undo_discard(Relation table, Relation undo);

/* Largest store size in MB (rustydb.undo_max_size's and rustydb.set_undo_size's bound). */
constexpr int32 kMaxUndoSizeMb = 1048576;

/*
 * Give an empty store (metapage locked by nobody, store locked against
 * in-place updates by the caller) the ring capacity of mb megabytes: its
 * ring restarts at block 1 (UNDO DISCARD of what the insert page holds,
 * then UNDO META). ERROR 55000 when undo is in use. Writes the metapage
 * with that capacity if the store has none yet.
 */
void undo_set_size(Relation table, Relation undo, int32 mb);

/*
 * VACUUM's part (the table's and the store's own relation_vacuum):
 * undo_discard, then, when truncate is set and the store is empty with a
 * file longer than its metapage, the ring restarted at block 1 and the
 * file truncated to the metapage (only if an exclusive lock on the store
 * is free right now). Returns the pages recycled.
 */
uint64 undo_vacuum(Relation table, bool truncate);
/* The same for a store being vacuumed itself (skipped while its table is locked). */
uint64 undo_vacuum_store(Relation undo, bool truncate);

/*
 * The oldest transaction id and multixact the table's undo still holds
 * (records not recycled: their writers, and their images' xmin and xmax),
 * each lowered into *xid and *multi (Invalid: none seen yet). VACUUM keeps
 * relfrozenxid and relminmxid at or before them: the commit log and the
 * multixact files must not be truncated under a version a snapshot may
 * still read from undo, or that discard still judges.
 */
void undo_oldest_ids(Relation table, TransactionId *xid, MultiXactId *multi);

/* object_access step: a new rustydb table gets its companion; a dropped table's goes. */
void hook_object_access(hooks::ObjectAccessCall &call);

/* The rustydb_undo access method's routine (undo_am.cpp). */
const TableAmRoutine *undo_am_routine();

} /* namespace rustydb::am */

#endif /* RUSTYDB_AM_UNDO_STORE_H */

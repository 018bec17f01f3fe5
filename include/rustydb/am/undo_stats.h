/*-------------------------------------------------------------------------
 *
 * undo_stats.h
 *	  Per-table counters of the in-place update path and its undo store,
 *	  shown by the view rustydb.undo_stats (docs/storage.md, "The bound").
 *
 * The counters live in shared memory, one entry per table, reset at
 * server start. The number of entries is bounded by a setting; when the
 * table is full, a new table's events are added to one shared overflow
 * entry (relid InvalidOid, shown as NULL), so nothing is lost and no
 * caller ever waits or fails.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_AM_UNDO_STATS_H
#define RUSTYDB_AM_UNDO_STATS_H

#include "rustydb/am/pgincludes.h"

namespace rustydb::am {

enum class UndoEvent : int
{
	Inplace = 0,         /* an UPDATE written in place */
	FallbackUndoFull,    /* out of place: the ring was full after trying to discard */
	FallbackIndexed,     /* out of place: an indexed column changed */
	FallbackToast,       /* out of place: either version needs TOAST work */
	FallbackTooLarge,    /* out of place: the undo record would not fit an undo page */
	FallbackShrinks,     /* out of place: the new version is shorter than the old */
	FallbackNoSpace,     /* out of place: the new version does not fit the page */
	FallbackNoStore,     /* out of place: the table has no undo store */
	FallbackDisabled,    /* out of place: rustydb.update_in_place off or undo_max_size 0 */
	FallbackNewFile,     /* out of place: relfilenode created in this transaction */
	Repair,              /* an aborted in-place version repaired from undo */
	PagesDiscarded,      /* undo pages recycled */
	FallbackHeapOnly,    /* out of place: the old version is a heap-only version */
	FallbackGroupMember, /* out of place: the old version is a member of a sealed group (TDE) */
	Count_
};

/* Add n to relid's counter ev. Never errors, never waits on a heavyweight lock. */
void undo_count(Oid relid, UndoEvent ev, uint64 n = 1);

/* Free relid's entry (this database), if it has one: the table is dropped. */
void undo_stats_forget(Oid relid);
/* Free every entry of database dbid: it is dropped. */
void undo_stats_forget_database(Oid dbid);

/* Register the counters' shared memory ("rustydb undo stats"); from _PG_init. */
void register_undo_stats();

} /* namespace rustydb::am */

#endif /* RUSTYDB_AM_UNDO_STATS_H */

/*-------------------------------------------------------------------------
 *
 * pgincludes.h
 *	  The PostgreSQL headers the rustydb table access method needs.
 *
 * One list for src/am, src/storage, src/mvcc and src/wal, so every file of
 * the access method sees the same declarations.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_AM_PGINCLUDES_H
#define RUSTYDB_AM_PGINCLUDES_H

#include "rustydb/pg.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/bufmask.h"
#include "access/genam.h"
#include "access/heapam.h"
#include "access/heaptoast.h"
#include "access/hio.h"
#include "access/htup_details.h"
#include "access/multixact.h"
#include "access/relscan.h"
#include "access/subtrans.h"
#include "access/syncscan.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/tsmapi.h"
#include "access/visibilitymap.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xloginsert.h"
#include "access/xlogreader.h"
#include "access/xlogutils.h"
#include "access/xlog_internal.h"
#include "catalog/index.h"
#include "catalog/pg_am_d.h"
#include "catalog/storage.h"
#include "catalog/storage_xlog.h"
#include "commands/progress.h"
#include "commands/vacuum.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "lib/stringinfo.h"
#include "nodes/execnodes.h"
#include "optimizer/plancat.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "storage/bufpage.h"
#include "storage/freespace.h"
#include "storage/lmgr.h"
#include "storage/predicate.h"
#include "storage/procarray.h"
#include "storage/smgr.h"
#include "storage/standby.h"
#include "utils/builtins.h"
#include "utils/combocid.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplesort.h"
RUSTYDB_PG_INCLUDE_END

#endif /* RUSTYDB_AM_PGINCLUDES_H */

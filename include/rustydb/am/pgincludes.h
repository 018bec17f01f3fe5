/*-------------------------------------------------------------------------
 *
 * pgincludes.h
 *	  The PostgreSQL headers the rustydb table access method needs.
 *
 * One list for src/am: the storage core's (common/pgstorage.h, shared
 * with src/storage, src/mvcc and src/wal, which never include this
 * header) and what only the access method uses on top of them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_AM_PGINCLUDES_H
#define RUSTYDB_AM_PGINCLUDES_H

#include "rustydb/common/pgstorage.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/genam.h"
#include "access/heaptoast.h"
#include "access/relscan.h"
#include "access/syncscan.h"
#include "access/tsmapi.h"
#include "catalog/catalog.h"
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
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/tuplesort.h"
RUSTYDB_PG_INCLUDE_END

#endif /* RUSTYDB_AM_PGINCLUDES_H */

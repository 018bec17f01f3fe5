/*-------------------------------------------------------------------------
 *
 * pgstorage.h
 *	  The PostgreSQL headers of rustydb's storage core.
 *
 * One list for the layers under the table access method: src/storage
 * (pages, buffers, the free space and visibility maps), src/mvcc
 * (transaction status, snapshots, multixacts) and src/wal (WAL records,
 * redo, masking). They include this header, never the access method's
 * am/pgincludes.h, which builds on it with what only the access method
 * needs (executor, catalog, VACUUM, TOAST, scans).
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_COMMON_PGSTORAGE_H
#define RUSTYDB_COMMON_PGSTORAGE_H

#include "rustydb/pg.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/bufmask.h"
#include "access/heapam.h"
#include "access/hio.h"
#include "access/htup_details.h"
#include "access/multixact.h"
#include "access/subtrans.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/visibilitymap.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "access/xloginsert.h"
#include "access/xlogreader.h"
#include "access/xlogutils.h"
#include "access/xlog_internal.h"
#include "storage/buf_internals.h"
#include "storage/bufmgr.h"
#include "storage/bufpage.h"
#include "storage/freespace.h"
#include "storage/lmgr.h"
#include "storage/predicate.h"
#include "storage/procarray.h"
#include "storage/smgr.h"
#include "storage/standby.h"
#include "utils/combocid.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
RUSTYDB_PG_INCLUDE_END

#endif /* RUSTYDB_COMMON_PGSTORAGE_H */

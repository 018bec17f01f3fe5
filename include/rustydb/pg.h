/*-------------------------------------------------------------------------
 *
 * pg.h
 *	  The one place rustydb includes PostgreSQL's core headers.
 *
 * PostgreSQL's headers are C. They are included inside extern "C" so
 * every declaration keeps C linkage, and a few C-isms that C++17 rejects
 * are neutralised here instead of in every source file. Subsystem headers
 * include "rustydb/pg.h" first and add the PostgreSQL headers they need
 * through RUSTYDB_PG_INCLUDE_BEGIN/END.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_PG_H
#define RUSTYDB_PG_H

/* clang-format off */
#define RUSTYDB_PG_INCLUDE_BEGIN \
	_Pragma("GCC diagnostic push") \
	_Pragma("GCC diagnostic ignored \"-Wregister\"") \
	_Pragma("GCC diagnostic ignored \"-Wmissing-field-initializers\"") \
	_Pragma("GCC diagnostic ignored \"-Wunused-parameter\"") \
	_Pragma("GCC diagnostic ignored \"-Wsign-compare\"") \
	extern "C" {
#define RUSTYDB_PG_INCLUDE_END \
	} \
	_Pragma("GCC diagnostic pop")
/* clang-format on */

/*
 * rustydb.so is built with -fvisibility=hidden: only what PostgreSQL calls
 * by name (PG_MODULE_MAGIC, _PG_init, SQL functions) is exported.
 */
#define PGDLLEXPORT __attribute__((visibility("default")))

RUSTYDB_PG_INCLUDE_BEGIN
#include "postgres.h"

#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/memutils.h"
RUSTYDB_PG_INCLUDE_END

#if PG_VERSION_NUM < 150000 || PG_VERSION_NUM >= 160000
#error "rustydb is built for PostgreSQL 15"
#endif

#endif /* RUSTYDB_PG_H */

/*-------------------------------------------------------------------------
 *
 * timeout.h
 *	  rustydb.transaction_timeout: PostgreSQL 17's transaction_timeout for
 *	  PostgreSQL 15 (docs/audit.md, "rustydb.transaction_timeout").
 *
 * The module owns the timer, its transaction callback and the rewriting
 * of the termination message; it installs no executor or log hook of its
 * own. Audit's ExecutorStart and ProcessUtility hooks call check_armed()
 * at every statement, and its emit_log hook calls rewrite_error()
 * (src/audit/hooks.cpp). The setting itself is in the registry
 * (src/common/settings.cpp).
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_TIMEOUT_TIMEOUT_H
#define RUSTYDB_TIMEOUT_TIMEOUT_H

#include "rustydb/pg.h"

namespace rustydb {
namespace timeout {

/*
 * From _PG_init, after audit::init(): register the transaction callback
 * that disarms the timer at commit and prepare and re-arms it after an
 * abort.
 */
void init();

/*
 * At the start of every statement: arm the timer for the current
 * transaction (once), re-arm it when the setting changed, disarm it when
 * the setting is 0.
 */
void check_armed();

/*
 * From the emit_log hook: turn the FATAL of a fired timer ("terminating
 * connection due to administrator command") into SQLSTATE 25P04 with the
 * transaction timeout's message; any other error is left alone.
 */
void rewrite_error(ErrorData *edata);

} /* namespace timeout */
} /* namespace rustydb */

#endif /* RUSTYDB_TIMEOUT_TIMEOUT_H */

/*-------------------------------------------------------------------------
 *
 * sampler.h
 *	  The Active Session History sampler background worker.
 *
 * One worker ("rustydb ash sampler"), registered from _PG_init, started
 * once the server is consistent and restarted bgw_restart_time after it
 * exits. Every ash_sampling_interval it walks the PGPROC array and the
 * backend status array in shared memory (no SPI, no pg_stat_activity, no
 * lock on either) and appends one ring row per active session. About
 * once a second it copies 1 sample in ash_persist_every from the ring
 * into rustydb.ash_history of ash_database and trims that table to its
 * row and age limits in the same transaction.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_ASH_SAMPLER_H
#define RUSTYDB_ASH_SAMPLER_H

#include "rustydb/pg.h"

namespace rustydb {
namespace ash {

constexpr int kWorkerRestartSeconds = 5;

/* Persistence status shown by ash_info. */
enum PersistStatus : uint32
{
	kPersistUnknown = 0,
	kPersistActive = 1,
	kPersistDisabled = 2,    /* ash_persist_every = 0 or no ash_database */
	kPersistNoExtension = 3, /* rustydb not created in ash_database */
	kPersistRecovery = 4,    /* server is a standby */
	kPersistError = 5        /* last attempt failed; see the server log */
};

const char *persist_status_name(uint32 status);

} /* namespace ash */
} /* namespace rustydb */

#endif /* RUSTYDB_ASH_SAMPLER_H */

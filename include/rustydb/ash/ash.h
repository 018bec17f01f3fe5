/*-------------------------------------------------------------------------
 *
 * ash.h
 *	  Active Session History: entry points used outside src/ash.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_ASH_ASH_H
#define RUSTYDB_ASH_ASH_H

namespace rustydb {
namespace ash {

/*
 * From _PG_init: register the shared-memory ring, the query-id hooks and
 * the sampler background worker.
 */
void init();

/* Install the statement hooks that fill the per-backend query-id slots. */
void install_hooks();

/* Register the sampler background worker. */
void register_worker();

} /* namespace ash */
} /* namespace rustydb */

#endif /* RUSTYDB_ASH_ASH_H */

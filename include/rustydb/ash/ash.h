/*-------------------------------------------------------------------------
 *
 * ash.h
 *	  Active Session History: entry points used outside src/ash.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_ASH_ASH_H
#define RUSTYDB_ASH_ASH_H

#include "rustydb/common/hooks.h"

namespace rustydb {
namespace ash {

/*
 * From _PG_init: register the shared-memory ring and the sampler
 * background worker.
 */
void init();

/*
 * Steps of the statement hooks (src/common/hooks.cpp runs them) that fill
 * the per-backend query-id slots.
 */
void hook_post_parse(hooks::PostParseCall &call);
void hook_planner(hooks::PlannerCall &call);
void hook_executor_start(hooks::StartCall &call);
void hook_executor_run(hooks::RunCall &call);
void hook_executor_finish(hooks::FinishCall &call);
void hook_process_utility(hooks::UtilityCall &call);

/* Register the sampler background worker. */
void register_worker();

} /* namespace ash */
} /* namespace rustydb */

#endif /* RUSTYDB_ASH_ASH_H */

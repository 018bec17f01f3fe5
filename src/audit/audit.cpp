/*-------------------------------------------------------------------------
 *
 * audit.cpp
 *	  The audit trail: registration from _PG_init.
 *
 * The shared queue, the writer (a background worker), the backend hooks
 * and callbacks that capture statements, the listeners for other
 * subsystems' security events, and the per-backend structures the
 * rustydb.memory view shows. internal.h lists the subsystem's files.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/audit/audit.h"
#include "rustydb/audit/capture.h"

#include "rustydb/common/memory.h"

namespace rustydb {
namespace audit {

void
init()
{
	register_queue();
	register_worker();
	ensure_contexts();
	register_session_callbacks();
	install_subsystem_listeners();
	memory::register_backend_structure({"rustydb audit policy cache", policy_cache_usage});
	memory::register_backend_structure({"rustydb audit statement frames", frame_usage});
}

} /* namespace audit */
} /* namespace rustydb */

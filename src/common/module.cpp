/*-------------------------------------------------------------------------
 *
 * module.cpp
 *	  rustydb's one _PG_init.
 *
 * rustydb registers a WAL resource manager, shared memory and background
 * workers, all of which PostgreSQL allows only while the postmaster
 * processes shared_preload_libraries. Loaded any other way (LOAD, or a
 * CREATE EXTENSION that loads the library on a server without the
 * preload) it refuses with an error naming the setting.
 *
 * Each subsystem exposes one init function; they are called here in
 * dependency order: settings first, shared memory hooks last.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/common/module.h"
#include "rustydb/common/tools.h"

#include "rustydb/am/am.h"
#include "rustydb/ash/ash.h"
#include "rustydb/audit/audit.h"
#include "rustydb/common/boundary.h"
#include "rustydb/common/hooks.h"
#include "rustydb/common/settings.h"
#include "rustydb/common/shmem.h"
#include "rustydb/timeout/timeout.h"
#include "rustydb/vpd/vpd.h"
#include "rustydb/crypto/crypto.h"

#include <sodium.h>

RUSTYDB_PG_INCLUDE_BEGIN
PG_MODULE_MAGIC;
RUSTYDB_PG_INCLUDE_END

namespace {
bool loaded = false;
}

bool
rustydb::module_loaded()
{
	return loaded;
}

extern "C" {

PGDLLEXPORT void _PG_init(void) noexcept;

void
_PG_init(void) noexcept
{
	rustydb::boundary::run("_PG_init", [] {
		if (!process_shared_preload_libraries_in_progress)
			throw rustydb::Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
								 "rustydb must be loaded via shared_preload_libraries",
								 "rustydb registers a WAL resource manager, shared memory and "
								 "background workers, which is only possible at server start.",
								 "Add rustydb to shared_preload_libraries in postgresql.conf "
								 "and restart the server.");

		if (sodium_init() < 0)
			throw rustydb::Error(ERRCODE_SYSTEM_ERROR, "could not initialize libsodium");

		rustydb::settings::define_all();

		/* subsystems, in dependency order */
		rustydb::am::init();
		rustydb::tools::init();
		rustydb::crypto::init();
		rustydb::ash::init();
		rustydb::vpd::init();
		rustydb::audit::init();
		/* after audit, whose hooks arm its timer: PostgreSQL calls transaction
		 * callbacks newest first, so the timer's runs before audit's */
		rustydb::timeout::init();

		/* the query-processing hooks, calling the subsystems in hooks.cpp's order */
		rustydb::hooks::install();
		rustydb::shmem::install_hooks();
		loaded = true;
	});
}

} /* extern "C" */

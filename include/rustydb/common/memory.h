/*-------------------------------------------------------------------------
 *
 * memory.h
 *	  The rustydb.memory view: every bounded structure rustydb keeps.
 *
 * Shared structures are listed from the shared-memory registry
 * (shmem.h: each Segment's size and optional usage callback), so a
 * segment registered there appears in the view without more work.
 * Per-backend structures that can grow are registered here, from the
 * subsystem's init function, with a callback reporting this backend's
 * figures.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_COMMON_MEMORY_H
#define RUSTYDB_COMMON_MEMORY_H

#include "rustydb/pg.h"

namespace rustydb {
namespace memory {

constexpr int kMaxBackendStructures = 16;

struct BackendUsage
{
	int64 bytes;
	int64 entries;
	int64 limit; /* -1: bounded otherwise (see limit_setting) */
	int64 high_water;
	const char *limit_setting; /* "rustydb.xxx", or nullptr */
};

struct BackendStructure
{
	const char *name; /* "rustydb <subsystem> <structure>" */
	void (*usage)(BackendUsage *out);
};

/* Register a per-backend structure; from _PG_init (subsystem init). */
void register_backend_structure(const BackendStructure &s);

} /* namespace memory */
} /* namespace rustydb */

#endif /* RUSTYDB_COMMON_MEMORY_H */

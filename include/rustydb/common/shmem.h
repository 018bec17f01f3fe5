/*-------------------------------------------------------------------------
 *
 * shmem.h
 *	  Registry of rustydb's shared-memory segments.
 *
 * A subsystem that needs shared memory registers one Segment from its
 * init function (called by _PG_init, so only while shared_preload_libraries
 * is being processed). The registry requests the space and the LWLocks in
 * shmem_request_hook and creates or attaches every segment in
 * shmem_startup_hook. At most kMaxSegments segments exist; registering
 * more is a programming error reported at start-up.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_COMMON_SHMEM_H
#define RUSTYDB_COMMON_SHMEM_H

#include "rustydb/pg.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "storage/lwlock.h"
RUSTYDB_PG_INCLUDE_END

#include <cstddef>

namespace rustydb {
namespace shmem {

constexpr int kMaxSegments = 16;

/*
 * What a segment reports about itself for the rustydb.memory view: how
 * many entries it holds, its limit (in entries, set by a setting), and the
 * most it has held since start-up. -1 where a figure does not apply.
 */
struct Usage
{
	int64 entries;
	int64 limit;
	int64 high_water;
	const char *limit_setting; /* "rustydb.xxx" that sets the limit, or nullptr */
};

struct Segment
{
	const char *name; /* ShmemIndex name, "rustydb <subsystem>" */
	Size (*size)();   /* bytes needed; read settings, no allocation */
	int lwlocks;      /* LWLocks in the segment's named tranche */
	/* Initialise (found == false) or attach (found == true). */
	void (*init)(void *ptr, bool found, LWLockPadded *locks);
	/* Optional: fill *out from the attached segment (reads may be racy). */
	void (*usage)(const void *ptr, Usage *out);
};

/* Register a segment; only from _PG_init. */
void register_segment(const Segment &segment);

/* Install the request and startup hooks; called once from _PG_init. */
void install_hooks();

/* Introspection for views: registered segments and their sizes. */
int segment_count();
const Segment *segment_at(int i);
Size segment_size(int i);
/* Address of segment i in this process, or nullptr before startup. */
void *segment_ptr(int i);

} /* namespace shmem */
} /* namespace rustydb */

#endif /* RUSTYDB_COMMON_SHMEM_H */

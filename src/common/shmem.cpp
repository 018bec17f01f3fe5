/*-------------------------------------------------------------------------
 *
 * shmem.cpp
 *	  Requesting and attaching rustydb's shared-memory segments.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/common/shmem.h"

#include "rustydb/common/boundary.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "storage/ipc.h"
#include "storage/shmem.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace shmem {

namespace {

Segment segments[kMaxSegments];
Size sizes[kMaxSegments];
void *ptrs[kMaxSegments];
int nsegments = 0;

shmem_request_hook_type prev_shmem_request_hook = nullptr;
shmem_startup_hook_type prev_shmem_startup_hook = nullptr;

} /* namespace */

extern "C" {
static void rustydb_shmem_request(void) noexcept;
static void rustydb_shmem_startup(void) noexcept;
}

void
register_segment(const Segment &segment)
{
	if (!process_shared_preload_libraries_in_progress)
		throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
					"rustydb shared memory can only be registered while "
					"shared_preload_libraries is processed");
	if (nsegments >= kMaxSegments)
		throw Error(ERRCODE_PROGRAM_LIMIT_EXCEEDED,
					std::string("too many rustydb shared memory segments registering \"") +
						segment.name + "\"",
					"At most " + std::to_string(kMaxSegments) + " segments are supported.");
	segments[nsegments++] = segment;
}

void
install_hooks()
{
	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = rustydb_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = rustydb_shmem_startup;
}

int
segment_count()
{
	return nsegments;
}

const Segment *
segment_at(int i)
{
	return (i >= 0 && i < nsegments) ? &segments[i] : nullptr;
}

Size
segment_size(int i)
{
	return (i >= 0 && i < nsegments) ? sizes[i] : 0;
}

void *
segment_ptr(int i)
{
	return (i >= 0 && i < nsegments) ? ptrs[i] : nullptr;
}

extern "C" {

static void
rustydb_shmem_request(void) noexcept
{
	rustydb::boundary::run("shmem_request", [] {
		if (prev_shmem_request_hook)
			prev_shmem_request_hook();
		for (int i = 0; i < nsegments; i++)
		{
			sizes[i] = MAXALIGN(segments[i].size());
			RequestAddinShmemSpace(sizes[i]);
			if (segments[i].lwlocks > 0)
				RequestNamedLWLockTranche(segments[i].name, segments[i].lwlocks);
		}
	});
}

static void
rustydb_shmem_startup(void) noexcept
{
	rustydb::boundary::run("shmem_startup", [] {
		if (prev_shmem_startup_hook)
			prev_shmem_startup_hook();

		LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
		for (int i = 0; i < nsegments; i++)
		{
			bool found;

			if (sizes[i] == 0)
				sizes[i] = MAXALIGN(segments[i].size());

			void *ptr = ShmemInitStruct(segments[i].name, sizes[i], &found);
			LWLockPadded *locks =
				segments[i].lwlocks > 0 ? GetNamedLWLockTranche(segments[i].name) : nullptr;

			ptrs[i] = ptr;
			segments[i].init(ptr, found, locks);
		}
		LWLockRelease(AddinShmemInitLock);
	});
}

} /* extern "C" */

} /* namespace shmem */
} /* namespace rustydb */

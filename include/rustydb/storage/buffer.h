/*-------------------------------------------------------------------------
 *
 * buffer.h
 *	  Preconditions on buffers and page changes, for Assert().
 *
 * The conditions rustydb's storage code states as contracts ("buffer
 * locked exclusively", "in a critical section") as tests an Assert() can
 * make, the way PostgreSQL's bufmgr.c checks its callers: a buffer's
 * content lock is an LWLock the backend's lock table knows about. Local
 * buffers (temporary tables) have no content lock (LockBuffer does nothing
 * for them), so every lock test holds for them.
 *
 * Only meaningful in an assert-enabled server (USE_ASSERT_CHECKING): the
 * production build compiles every Assert() out, these with it.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_STORAGE_BUFFER_H
#define RUSTYDB_STORAGE_BUFFER_H

#include "rustydb/common/pgstorage.h"

namespace rustydb::storage {

/* Does this backend hold buf's content lock in any mode? */
static inline bool
buffer_is_locked(Buffer buf)
{
	if (BufferIsLocal(buf))
		return true;
	return LWLockHeldByMe(BufferDescriptorGetContentLock(GetBufferDescriptor(buf - 1)));
}

/* Does this backend hold buf's content lock exclusively? */
static inline bool
buffer_is_locked_exclusive(Buffer buf)
{
	if (BufferIsLocal(buf))
		return true;
	return LWLockHeldByMeInMode(BufferDescriptorGetContentLock(GetBufferDescriptor(buf - 1)),
								LW_EXCLUSIVE);
}

/* Is buf's content lock free of this backend (pinned only)? */
static inline bool
buffer_is_unlocked(Buffer buf)
{
	if (BufferIsLocal(buf))
		return true;
	return !LWLockHeldByMe(BufferDescriptorGetContentLock(GetBufferDescriptor(buf - 1)));
}

/*
 * May a page be changed now? A WAL-logged page change happens in a
 * critical section; its redo runs in the startup process (InRecovery),
 * outside one.
 */
static inline bool
in_page_change()
{
	return CritSectionCount > 0 || InRecovery;
}

} /* namespace rustydb::storage */

#endif /* RUSTYDB_STORAGE_BUFFER_H */

/*-------------------------------------------------------------------------
 *
 * head.cpp
 *	  The audit chain's head, kept where SQL does not reach.
 *
 * The trail's records live in a table a superuser can edit once the guard
 * is out of the way; the hash chain shows a deleted or changed record in
 * the middle, but a deleted tail leaves a valid (shorter) chain. So after
 * its batches commit (and the commit is flushed to WAL) the audit worker
 * stores the newest record's seq and hash in $PGDATA/pg_rustydb/audit_head
 * (at most every kHeadIntervalMs while busy, and once the worker has been
 * idle for kHeadIntervalMs or when it exits)
 * (written to a temporary file, fsynced and renamed), with a MAC under the
 * audit key when rustydb.audit_key_file names one. At start-up the worker
 * continues the chain after the head, so sequence numbers are never reused
 * and the gap stays visible; verify_audit_trail() reports records missing
 * between the trail's end and the head, and a head record whose hash
 * differs. A superuser who can also rewrite files of the data directory
 * can forge the head unless the audit key (kept outside the data
 * directory) is set: docs/audit.md says what each level protects.
 *
 * File format (version 1, 88 bytes): "RDBAUDHD", uint32 version, uint32
 * flags (1: MAC keyed), int64 seq, 32-byte hash, 32-byte MAC of everything
 * before it.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/audit/internal.h"

#include <cstring>
#include <sodium.h>

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/xlog.h"
#include "common/file_perm.h"
#include "storage/fd.h"
#include "utils/timestamp.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace audit {

namespace {

constexpr const char *kDir = "pg_rustydb";
constexpr const char *kPath = "pg_rustydb/audit_head";
constexpr const char *kTmpPath = "pg_rustydb/audit_head.tmp";
constexpr char kMagic[8] = {'R', 'D', 'B', 'A', 'U', 'D', 'H', 'D'};
constexpr uint32 kVersion = 1;
constexpr uint32 kFlagKeyed = 1;

struct HeadFile
{
	char magic[8];
	uint32 version;
	uint32 flags;
	int64 seq;
	uint8 hash[kHashLen];
	uint8 mac[kHashLen];
};
static_assert(sizeof(HeadFile) == 88, "audit head file layout");

void
seal(HeadFile *h)
{
	chain_mac(reinterpret_cast<const uint8 *>(h), offsetof(HeadFile, mac), h->mac);
}

} /* namespace */

HeadState
head_read(int64 *seq, uint8 hash[kHashLen])
{
	HeadFile h;

	chain_load_key();
	int fd = OpenTransientFile(kPath, O_RDONLY | PG_BINARY);
	if (fd < 0)
	{
		if (errno == ENOENT)
			return HeadState::kAbsent;
		ereport(ERROR, (errcode_for_file_access(),
						errmsg("could not open audit head file \"%s\": %m", kPath)));
	}
	ssize_t n = read(fd, &h, sizeof(h));
	CloseTransientFile(fd);
	if (n != static_cast<ssize_t>(sizeof(h)) || memcmp(h.magic, kMagic, sizeof(kMagic)) != 0 ||
		h.version != kVersion || ((h.flags & kFlagKeyed) != 0) != chain_keyed())
		return HeadState::kDamaged;
	uint8 mac[kHashLen];
	chain_mac(reinterpret_cast<const uint8 *>(&h), offsetof(HeadFile, mac), mac);
	if (sodium_memcmp(mac, h.mac, kHashLen) != 0 || h.seq < 0)
		return HeadState::kDamaged;
	*seq = h.seq;
	memcpy(hash, h.hash, kHashLen);
	return HeadState::kValid;
}

void
head_write(int64 seq, const uint8 hash[kHashLen])
{
	HeadFile h;

	chain_load_key();
	memset(&h, 0, sizeof(h));
	memcpy(h.magic, kMagic, sizeof(kMagic));
	h.version = kVersion;
	h.flags = chain_keyed() ? kFlagKeyed : 0;
	h.seq = seq;
	memcpy(h.hash, hash, kHashLen);
	seal(&h);

	if (MakePGDirectory(kDir) < 0 && errno != EEXIST)
		ereport(ERROR,
				(errcode_for_file_access(), errmsg("could not create directory \"%s\": %m", kDir)));
	int fd = OpenTransientFile(kTmpPath, O_WRONLY | O_CREAT | O_TRUNC | PG_BINARY);
	if (fd < 0)
		ereport(ERROR, (errcode_for_file_access(),
						errmsg("could not create audit head file \"%s\": %m", kTmpPath)));
	errno = 0;
	if (write(fd, &h, sizeof(h)) != static_cast<ssize_t>(sizeof(h)))
	{
		int save = errno != 0 ? errno : ENOSPC;
		CloseTransientFile(fd);
		errno = save;
		ereport(ERROR, (errcode_for_file_access(),
						errmsg("could not write audit head file \"%s\": %m", kTmpPath)));
	}
	if (pg_fsync(fd) != 0)
	{
		int save = errno;
		CloseTransientFile(fd);
		errno = save;
		ereport(ERROR, (errcode_for_file_access(),
						errmsg("could not fsync audit head file \"%s\": %m", kTmpPath)));
	}
	CloseTransientFile(fd);
	/* renamed atomically, the directory fsynced: a crash leaves the old or the new head */
	durable_rename(kTmpPath, kPath, ERROR);
}

namespace {

bool pending = false;
int64 pending_seq = 0;
uint8 pending_hash[kHashLen];
XLogRecPtr pending_lsn = InvalidXLogRecPtr;
TimestampTz last_written = 0;

} /* namespace */

bool
head_pending()
{
	return pending;
}

void
head_flush()
{
	if (!pending)
		return;
	XLogFlush(pending_lsn);
	head_write(pending_seq, pending_hash);
	pending = false;
	last_written = GetCurrentTimestamp();
}

void
head_note(int64 seq, const uint8 hash[kHashLen], uint64 commit_lsn)
{
	pending = true;
	pending_seq = seq;
	memcpy(pending_hash, hash, kHashLen);
	pending_lsn = static_cast<XLogRecPtr>(commit_lsn);
	if (TimestampDifferenceExceeds(last_written, GetCurrentTimestamp(), kHeadIntervalMs))
		head_flush();
}

} /* namespace audit */
} /* namespace rustydb */

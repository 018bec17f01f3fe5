/*-------------------------------------------------------------------------
 *
 * ring.cpp
 *	  The Active Session History shared-memory segment.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/ash/ring.h"

#include "rustydb/common/settings.h"
#include "rustydb/common/shmem.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/twophase.h"
#include "storage/proc.h"
#include "utils/timestamp.h"
RUSTYDB_PG_INCLUDE_END

#include <cstring>

namespace rustydb {
namespace ash {

namespace {

Shared *the_shared = nullptr;

int
slot_count()
{
	return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts;
}

Size
stride_for(int text_size)
{
	return MAXALIGN(sizeof(Entry) + text_size);
}

Size
slots_offset()
{
	return MAXALIGN(sizeof(Shared));
}

Size
ring_offset(int nslots)
{
	return slots_offset() + MAXALIGN(mul_size(sizeof(QuerySlot), nslots));
}

Size
segment_size()
{
	Size size = ring_offset(slot_count());

	size = add_size(size, mul_size(stride_for(settings::ash_query_text_size),
								   static_cast<Size>(settings::ash_max_entries)));
	return size;
}

void
segment_init(void *ptr, bool found, LWLockPadded *)
{
	Shared *sh = static_cast<Shared *>(ptr);

	the_shared = sh;
	if (found)
		return;

	memset(sh, 0, ring_offset(slot_count()));
	sh->max_entries = settings::ash_max_entries;
	sh->text_size = settings::ash_query_text_size;
	sh->entry_stride = stride_for(sh->text_size);
	sh->nslots = slot_count();
	sh->total_size = segment_size();
	pg_atomic_init_u64(&sh->rows_written, 0);
	pg_atomic_init_u64(&sh->last_sample_id, 0);
	pg_atomic_init_u64(&sh->samples_taken, 0);
	pg_atomic_init_u64(&sh->ticks_missed, 0);
	pg_atomic_init_u64(&sh->rows_skipped, 0);
	pg_atomic_init_u64(&sh->rows_persisted, 0);
	pg_atomic_init_u64(&sh->rows_not_persisted, 0);
	pg_atomic_init_u64(&sh->persisted_upto, 0);
	pg_atomic_init_u64(&sh->sample_ns_total, 0);
	pg_atomic_init_u64(&sh->last_sample_ns, 0);
	pg_atomic_init_u64(&sh->max_sessions, 0);
	pg_atomic_init_u32(&sh->last_sessions, 0);
	pg_atomic_init_u32(&sh->worker_pid, 0);
	pg_atomic_init_u32(&sh->worker_starts, 0);
	pg_atomic_init_u64(&sh->worker_started_at, 0);
	pg_atomic_init_u64(&sh->last_persist_at, 0);
	pg_atomic_init_u32(&sh->persist_status, 0);
	pg_atomic_init_u32(&sh->worker_interval_ms, 0);
	pg_atomic_init_u32(&sh->worker_enabled, 0);

	for (int i = 0; i < sh->nslots; i++)
		pg_atomic_init_u32(&slot_at(sh, i)->changecount, 0);

	/* The ring's pages are touched here, once: its memory is fixed from now on. */
	char *ring = reinterpret_cast<char *>(sh) + ring_offset(sh->nslots);
	memset(ring, 0, mul_size(sh->entry_stride, static_cast<Size>(sh->max_entries)));
	for (int i = 0; i < sh->max_entries; i++)
	{
		Entry *e = reinterpret_cast<Entry *>(ring + sh->entry_stride * i);
		pg_atomic_init_u32(&e->changecount, 0);
	}
}

void
segment_usage(const void *ptr, shmem::Usage *out)
{
	const Shared *sh = static_cast<const Shared *>(ptr);
	uint64 written = pg_atomic_read_u64(const_cast<pg_atomic_uint64 *>(&sh->rows_written));
	int64 held = static_cast<int64>(Min(written, static_cast<uint64>(sh->max_entries)));

	out->entries = held;
	out->limit = sh->max_entries;
	/* The ring never shrinks: the most it has held is what it holds. */
	out->high_water = held;
	out->limit_setting = "rustydb.ash_max_entries";
}

} /* namespace */

Shared *
shared()
{
	return the_shared;
}

QuerySlot *
slot_at(const Shared *sh, int pgprocno)
{
	char *base = reinterpret_cast<char *>(const_cast<Shared *>(sh)) + slots_offset();

	return reinterpret_cast<QuerySlot *>(base) + pgprocno;
}

Entry *
entry_at(const Shared *sh, uint64 row_no)
{
	char *ring = reinterpret_cast<char *>(const_cast<Shared *>(sh)) + ring_offset(sh->nslots);
	uint64 index = (row_no - 1) % static_cast<uint64>(sh->max_entries);

	return reinterpret_cast<Entry *>(ring + sh->entry_stride * index);
}

void
register_ring()
{
	shmem::register_segment({"rustydb ash", segment_size, 0, segment_init, segment_usage});
}

bool
read_row(const Shared *sh, uint64 row_no, Entry *out)
{
	Entry *e = entry_at(sh, row_no);

	for (int attempt = 0; attempt < 3; attempt++)
	{
		uint32 before = pg_atomic_read_u32(&e->changecount);

		pg_read_barrier();
		if (before & 1)
			continue;
		memcpy(static_cast<void *>(out), e, sh->entry_stride);
		pg_read_barrier();
		if (pg_atomic_read_u32(&e->changecount) == before)
			return out->row_no == row_no;
	}
	return false;
}

} /* namespace ash */
} /* namespace rustydb */

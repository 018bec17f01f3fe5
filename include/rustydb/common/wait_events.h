/*-------------------------------------------------------------------------
 *
 * wait_events.h
 *	  rustydb's own wait events, named in Active Session History.
 *
 * PostgreSQL 15 gives extensions one wait event, Extension/"Extension".
 * rustydb reports its waits in that class with an event id that carries
 * a marker byte (0x52, 'R') and a number from the list below; ASH decodes
 * them into wait_event_type 'rustydb' and the name listed here, so a
 * session waiting inside rustydb shows what it waits for. pg_stat_activity
 * still shows them as Extension/Extension.
 *
 * To add a wait event (any subsystem): add one RUSTYDB_WAIT_EVENT line to
 * RUSTYDB_WAIT_EVENT_LIST with the next free number (1..255, never reuse a
 * number), then report it with
 *
 *	rustydb::wait::start(rustydb::wait::Event::MyEvent);
 *	... the wait ...
 *	rustydb::wait::end();
 *
 * or pass rustydb::wait::info(Event::MyEvent) to WaitLatch/ConditionVariable
 * calls. rustydb.wait_events lists them all.
 *
 * rustydb's LWLocks use named tranches ("rustydb <subsystem>"), which
 * PostgreSQL itself reports as LWLock/"rustydb <subsystem>".
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_COMMON_WAIT_EVENTS_H
#define RUSTYDB_COMMON_WAIT_EVENTS_H

#include "rustydb/pg.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "utils/wait_event.h"
RUSTYDB_PG_INCLUDE_END

/* number, name, description */
#define RUSTYDB_WAIT_EVENT_LIST(X)                                                                 \
	X(1, AshSamplerMain, true, "ASH sampler waiting for its next sample")                          \
	X(2, AshPersist, false, "ASH sampler writing samples into ash_history")                        \
	X(3, SelfTestWait, false, "diagnostic wait of rustydb.ash_selftest_wait()")                    \
	X(4, AuditWriterMain, true, "audit writer waiting for records to write")                       \
	X(5, AuditGather, false, "audit writer gathering a batch of records")                          \
	X(6, AuditQueueFull, false, "session waiting for room in the full audit queue")                \
	X(7, AuditFlush, false, "session waiting in audit_flush() for the trail to catch up")

namespace rustydb {
namespace wait {

enum class Event : uint32
{
#define RUSTYDB_WAIT_EVENT_ENUM(num, name, idle, desc) name = num,
	RUSTYDB_WAIT_EVENT_LIST(RUSTYDB_WAIT_EVENT_ENUM)
#undef RUSTYDB_WAIT_EVENT_ENUM
};

/* Marker in bits 8..15 of the event id: 'R'. */
constexpr uint32 kMarker = 0x5200;

/* The wait_event_info that reports ev. */
constexpr uint32
info(Event ev)
{
	return PG_WAIT_EXTENSION | kMarker | static_cast<uint32>(ev);
}

inline void
start(Event ev)
{
	pgstat_report_wait_start(info(ev));
}

inline void
end()
{
	pgstat_report_wait_end();
}

/*
 * Name a wait_event_info: PostgreSQL's names, ours for rustydb's events,
 * "CPU"/"CPU" for none. Never returns nullptr.
 */
void describe(uint32 wait_event_info, const char **type, const char **name);

/*
 * True for the rustydb events that mean "idle" (a worker's main loop waiting
 * for work), which Active Session History does not count as activity, as it
 * does not count PostgreSQL's Activity class.
 */
bool is_idle(uint32 wait_event_info);

/* For the rustydb.wait_events view: entry i (0-based), false past the end. */
bool registry_at(int i, uint32 *info_out, const char **name, const char **description);

} /* namespace wait */
} /* namespace rustydb */

#endif /* RUSTYDB_COMMON_WAIT_EVENTS_H */

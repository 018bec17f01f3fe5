/*-------------------------------------------------------------------------
 *
 * wait_events.cpp
 *	  Names of wait events, PostgreSQL's and rustydb's own.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/common/wait_events.h"

namespace rustydb {
namespace wait {

namespace {

struct Named
{
	uint32 number;
	const char *name;
	bool idle;
	const char *description;
};

const Named kEvents[] = {
#define RUSTYDB_WAIT_EVENT_ROW(num, name, idle, desc) {num, #name, idle, desc},
	RUSTYDB_WAIT_EVENT_LIST(RUSTYDB_WAIT_EVENT_ROW)
#undef RUSTYDB_WAIT_EVENT_ROW
};

constexpr int kCount = sizeof(kEvents) / sizeof(kEvents[0]);

} /* namespace */

void
describe(uint32 wait_event_info, const char **type, const char **name)
{
	if (wait_event_info == 0)
	{
		*type = "CPU";
		*name = "CPU";
		return;
	}
	if ((wait_event_info & 0xFF000000) == PG_WAIT_EXTENSION &&
		(wait_event_info & 0x0000FF00) == kMarker)
	{
		uint32 number = wait_event_info & 0xFF;

		for (int i = 0; i < kCount; i++)
			if (kEvents[i].number == number)
			{
				*type = "rustydb";
				*name = kEvents[i].name;
				return;
			}
	}
	*type = pgstat_get_wait_event_type(wait_event_info);
	*name = pgstat_get_wait_event(wait_event_info);
	if (*type == nullptr)
		*type = "unknown";
	if (*name == nullptr)
		*name = "unknown";
}

bool
is_idle(uint32 wait_event_info)
{
	if ((wait_event_info & 0xFF000000) != PG_WAIT_EXTENSION ||
		(wait_event_info & 0x0000FF00) != kMarker)
		return false;
	for (int i = 0; i < kCount; i++)
		if (kEvents[i].number == (wait_event_info & 0xFF))
			return kEvents[i].idle;
	return false;
}

bool
registry_at(int i, uint32 *info_out, const char **name, const char **description)
{
	if (i < 0 || i >= kCount)
		return false;
	*info_out = PG_WAIT_EXTENSION | kMarker | kEvents[i].number;
	*name = kEvents[i].name;
	*description = kEvents[i].description;
	return true;
}

} /* namespace wait */
} /* namespace rustydb */

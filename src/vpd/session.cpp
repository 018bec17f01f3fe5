/*-------------------------------------------------------------------------
 *
 * session.cpp
 *	  VPD: the backend's one Session (include/rustydb/vpd/session.h), its
 *	  memory contexts and what a transaction abort resets in it.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/vpd/session.h"

namespace rustydb {
namespace vpd {

namespace {

Session the_session;

} /* namespace */

Session &
session()
{
	return the_session;
}

void
session_init()
{
	Session &s = session();

	s.mcxt = AllocSetContextCreate(TopMemoryContext, "rustydb vpd", ALLOCSET_DEFAULT_SIZES);
	s.pred.mcxt =
		AllocSetContextCreate(TopMemoryContext, "rustydb vpd predicates", ALLOCSET_SMALL_SIZES);
	s.contexts.mcxt =
		AllocSetContextCreate(TopMemoryContext, "rustydb vpd contexts", ALLOCSET_SMALL_SIZES);
}

void
session_abort()
{
	Session &s = session();

	/* no trusted function is running, none is being loaded */
	s.contexts.active_depth = 0;
	s.contexts.loading_trusted = false;
	/* no policy function is running, no hook uses the table cache, no plan is being built */
	s.pred.eval_depth = 0;
	s.cache.pin_depth = 0;
	s.stmt.collected_dynamic = NIL;
	s.contexts.invoker = InvalidOid;
	s.markers.firing = false;
	/* no EXPLAIN is running */
	s.explain.depth = 0;
}

} /* namespace vpd */
} /* namespace rustydb */

/*-------------------------------------------------------------------------
 *
 * ash.cpp
 *	  Active Session History: registration from _PG_init.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/ash/ash.h"

#include "rustydb/ash/ring.h"
#include "rustydb/pg.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "utils/queryjumble.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace ash {

void
init()
{
	/* query ids for every statement (compute_query_id = auto turns them on) */
	EnableQueryId();
	register_ring();
	register_worker();
}

} /* namespace ash */
} /* namespace rustydb */

/*-------------------------------------------------------------------------
 *
 * session.cpp
 *	  VPD: the backend's one Session (include/rustydb/vpd/session.h).
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

} /* namespace vpd */
} /* namespace rustydb */

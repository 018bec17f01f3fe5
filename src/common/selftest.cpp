/*-------------------------------------------------------------------------
 *
 * selftest.cpp
 *	  rustydb.selftest_boundary(): exercises the C++/PostgreSQL boundary.
 *
 * Superuser-only diagnostic (EXECUTE is revoked from PUBLIC by the
 * extension script). Each case fails in a different way from inside C++
 * code that owns objects with destructors; the regression test checks the
 * SQLSTATE that reaches the client, that every destructor ran (the
 * 'destructors' case reports the count), and that the backend keeps
 * working.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/common/boundary.h"

#include <new>
#include <stdexcept>
#include <string>
#include <vector>

RUSTYDB_PG_INCLUDE_BEGIN
#include "utils/fmgrprotos.h"
RUSTYDB_PG_INCLUDE_END

namespace {

/* Counts constructions and destructions of Sentinel objects. */
long sentinels_built = 0;
long sentinels_destroyed = 0;

struct Sentinel
{
	std::string payload;

	Sentinel() : payload(64, 'x') { sentinels_built++; }
	~Sentinel() { sentinels_destroyed++; }
};

int32
divide(int32 a, int32 b)
{
	return DatumGetInt32(DirectFunctionCall2(int4div, Int32GetDatum(a), Int32GetDatum(b)));
}

} /* namespace */

RUSTYDB_FUNCTION(rustydb_selftest_boundary)
{
	std::string kind(text_to_cstring(PG_GETARG_TEXT_PP(0)));

	if (kind == "destructors")
	{
		/* built - destroyed: objects still alive; 0 after any failure */
		PG_RETURN_INT64(sentinels_built - sentinels_destroyed);
	}
	if (kind == "ok")
	{
		Sentinel s;
		int32 q = rustydb::pg::call(divide, 84, 2);

		PG_RETURN_INT64(q);
	}

	Sentinel outer;
	std::vector<Sentinel> inner(3);

	if (kind == "pg_error")
	{
		/* division by zero raised by PostgreSQL beneath C++ frames */
		int32 q = rustydb::pg::call(divide, 1, 0);

		PG_RETURN_INT64(q);
	}
	if (kind == "rustydb_error")
		throw rustydb::Error(ERRCODE_INVALID_PARAMETER_VALUE, "rustydb self-test error",
							 "Raised by C++ code inside rustydb.",
							 "This is expected in the boundary test.");
	if (kind == "std_exception")
		throw std::runtime_error("self-test std::runtime_error");
	if (kind == "bad_alloc")
		throw std::bad_alloc();
	if (kind == "unknown")
		throw 42;

	throw rustydb::Error(ERRCODE_INVALID_PARAMETER_VALUE, "unrecognized self-test \"" + kind + "\"",
						 {},
						 "Valid tests are ok, destructors, pg_error, rustydb_error, "
						 "std_exception, bad_alloc and unknown.");
}

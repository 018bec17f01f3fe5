/*-------------------------------------------------------------------------
 *
 * info.cpp
 *	  rustydb.version() and rustydb.build_info().
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/common/boundary.h"
#include "rustydb/common/module.h"

#include <sodium.h>

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/htup_details.h"
RUSTYDB_PG_INCLUDE_END

#define RUSTYDB_STRINGIFY2(x) #x
#define RUSTYDB_STRINGIFY(x)  RUSTYDB_STRINGIFY2(x)

RUSTYDB_FUNCTION(rustydb_version)
{
	PG_RETURN_TEXT_P(cstring_to_text(RUSTYDB_VERSION));
}

/*
 * build_info(): one row describing this build. The libsodium version is
 * the library loaded at run time; the header version it was compiled
 * against is checked to be the same major version.
 */
RUSTYDB_FUNCTION(rustydb_build_info)
{
	TupleDesc tupdesc;
	Datum values[6];
	bool nulls[6] = {false, false, false, false, false, false};

	if (get_call_result_type(fcinfo, nullptr, &tupdesc) != TYPEFUNC_COMPOSITE)
		ereport(
			ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("function returning record called in context that cannot accept type record")));
	tupdesc = BlessTupleDesc(tupdesc);

	values[0] = CStringGetTextDatum(RUSTYDB_VERSION);
	values[1] = CStringGetTextDatum(PG_VERSION);
	values[2] = CStringGetTextDatum(sodium_version_string());
	values[3] = CStringGetTextDatum("g++ " __VERSION__);
	values[4] = CStringGetTextDatum("C++" RUSTYDB_STRINGIFY(__cplusplus));
#ifdef USE_ASSERT_CHECKING
	values[5] = CStringGetTextDatum("assert");
#else
	values[5] = CStringGetTextDatum("release");
#endif

	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

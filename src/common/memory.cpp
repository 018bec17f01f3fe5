/*-------------------------------------------------------------------------
 *
 * memory.cpp
 *	  rustydb._memory(): the rows of the rustydb.memory view.
 *
 * One row per registered shared-memory segment (kind 'shared': its bytes,
 * and entries/limit/high-water from its usage callback when it has one)
 * and one per registered per-backend structure (kind 'backend', figures
 * of the calling backend).
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/common/memory.h"

#include "rustydb/common/boundary.h"
#include "rustydb/common/shmem.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "utils/tuplestore.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace memory {

namespace {
BackendStructure structures[kMaxBackendStructures];
int nstructures = 0;
} /* namespace */

void
register_backend_structure(const BackendStructure &s)
{
	if (nstructures >= kMaxBackendStructures)
		throw Error(ERRCODE_PROGRAM_LIMIT_EXCEEDED,
					std::string("too many rustydb per-backend structures registering \"") + s.name +
						"\"");
	structures[nstructures++] = s;
}

} /* namespace memory */
} /* namespace rustydb */

namespace {

Datum
int_or_null(int64 v, bool *isnull)
{
	*isnull = v < 0;
	return Int64GetDatum(v);
}

} /* namespace */

RUSTYDB_FUNCTION(rustydb_memory)
{
	using namespace rustydb;
	ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);

	InitMaterializedSRF(fcinfo, 0);
	for (int i = 0; i < shmem::segment_count(); i++)
	{
		const shmem::Segment *seg = shmem::segment_at(i);
		void *ptr = shmem::segment_ptr(i);
		shmem::Usage u = {-1, -1, -1, nullptr};
		Datum values[7];
		bool nulls[7] = {false, false, false, false, false, false, false};

		if (seg->usage != nullptr && ptr != nullptr)
			seg->usage(ptr, &u);
		values[0] = CStringGetTextDatum(seg->name);
		values[1] = CStringGetTextDatum("shared");
		values[2] = Int64GetDatum(static_cast<int64>(shmem::segment_size(i)));
		values[3] = int_or_null(u.entries, &nulls[3]);
		values[4] = int_or_null(u.limit, &nulls[4]);
		values[5] = int_or_null(u.high_water, &nulls[5]);
		values[6] = u.limit_setting ? CStringGetTextDatum(u.limit_setting) : (Datum) 0;
		nulls[6] = u.limit_setting == nullptr;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	for (int i = 0; i < memory::nstructures; i++)
	{
		memory::BackendUsage u = {0, -1, -1, -1, nullptr};
		Datum values[7];
		bool nulls[7] = {false, false, false, false, false, false, false};

		memory::structures[i].usage(&u);
		values[0] = CStringGetTextDatum(memory::structures[i].name);
		values[1] = CStringGetTextDatum("backend");
		values[2] = Int64GetDatum(u.bytes);
		values[3] = int_or_null(u.entries, &nulls[3]);
		values[4] = int_or_null(u.limit, &nulls[4]);
		values[5] = int_or_null(u.high_water, &nulls[5]);
		values[6] = u.limit_setting ? CStringGetTextDatum(u.limit_setting) : (Datum) 0;
		nulls[6] = u.limit_setting == nullptr;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

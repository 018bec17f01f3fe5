/*-------------------------------------------------------------------------
 *
 * statistics.cpp
 *	  What ANALYZE may learn from an encrypted table.
 *
 * ANALYZE stores most-common values, histogram bounds and extended
 * statistics (MCV lists) in pg_statistic and pg_statistic_ext_data,
 * plaintext catalogs, from the sample rows the table access method
 * returns. With rustydb.tde_statistics = none (the default) the access
 * method counts the live and dead rows of an encrypted table's sampled
 * pages (so pg_class.reltuples stays right) but returns no sample row:
 * ANALYZE and autovacuum then store no column statistics, and no key is
 * needed to analyze. The statistics stored before (under
 * tde_statistics = full) are deleted by the first such ANALYZE.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/common/settings.h"
#include "rustydb/crypto/crypto_internal.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "catalog/heap.h"
#include "commands/defrem.h"
#include "nodes/pg_list.h"
#include "storage/proc.h"
#include "utils/relcache.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace crypto {

namespace {

/* the last relation asked about, in which transaction, and the answer */
Oid memo_relid = InvalidOid;
LocalTransactionId memo_lxid = InvalidLocalTransactionId;
bool memo_withhold = false;

/* Delete rel's column statistics, its indexes' and its extended statistics' data. */
void
remove_statistics(Relation rel)
{
	RemoveStatistics(RelationGetRelid(rel), 0);

	List *indexes = RelationGetIndexList(rel);
	ListCell *lc;
	foreach (lc, indexes)
		RemoveStatistics(lfirst_oid(lc), 0);
	list_free(indexes);

	List *ext = RelationGetStatExtList(rel);
	foreach (lc, ext)
	{
		RemoveStatisticsDataById(lfirst_oid(lc), false);
		RemoveStatisticsDataById(lfirst_oid(lc), true);
	}
	list_free(ext);
}

} /* namespace */

bool
analyze_withholds_rows(Relation rel)
{
	Oid relid = RelationGetRelid(rel);

	if (relid == memo_relid && MyProc->lxid == memo_lxid)
		return memo_withhold;
	bool withhold = settings::tde_statistics == settings::kTdeStatisticsNone &&
					OidIsValid(keys_catalog_oid()) && relation_has_keys(relid);
	memo_relid = relid;
	memo_lxid = MyProc->lxid;
	memo_withhold = withhold;
	if (withhold)
		remove_statistics(rel);
	return withhold;
}

} /* namespace crypto */
} /* namespace rustydb */

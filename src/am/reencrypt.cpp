/*-------------------------------------------------------------------------
 *
 * reencrypt.cpp
 *	  The re-encrypter the access method registers with the encryption
 *	  subsystem: rustydb.rotate_table_key(regclass) calls it after it has
 *	  made a new data key version current.
 *
 * Re-encryption is a rewrite of the table, the one PostgreSQL runs for
 * VACUUM FULL (cluster_rel without an index): a transient relation gets
 * copies of the table's keys with the new version current (crypto's
 * relation_created hook), every live and recently dead row is read through
 * this access method (payloads and sealed large values opened), written
 * into the transient relation by relation_copy_for_cluster (sealed again,
 * large values sealed and toasted again, all under the new version),
 * the indexes are rebuilt and the storage is swapped in. Nothing is
 * rewritten in place, so an error or a crash before commit leaves the old
 * storage and the old key versions as they were, and a committed rotation
 * leaves no payload under an older version: the caller then deletes them.
 * Progress is reported by PostgreSQL in pg_stat_progress_cluster (command
 * "VACUUM FULL"), with rustydb's scan and write counters.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/am/am.h"
#include "rustydb/crypto/crypto.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "commands/cluster.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb::am {

namespace {

/*
 * Called with the table locked AccessExclusive by the caller and no
 * reference of the caller's open (cluster_rel refuses a table in use).
 */
void
reencrypt(Oid relid)
{
	ClusterParams params = {0};

	cluster_rel(relid, InvalidOid, &params);
}

} /* namespace */

void
register_reencrypter()
{
	crypto::set_reencrypter(reencrypt);
}

} /* namespace rustydb::am */

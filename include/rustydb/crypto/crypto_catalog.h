/*-------------------------------------------------------------------------
 *
 * catalog.h
 *	  Access to rustydb.table_keys (src/crypto only).
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_CRYPTO_CATALOG_H
#define RUSTYDB_CRYPTO_CATALOG_H

#include "rustydb/crypto/crypto_internal.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "storage/itemptr.h"
#include "utils/snapshot.h"
#include "utils/timestamp.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace crypto {

constexpr int kKeyColumns = 9;

/* One row of rustydb.table_keys, as plain data. */
struct KeyRow
{
	Oid relid;
	ItemPointerData tid;
	int version;
	bool current;
	Algorithm alg;
	KeyId key_id;
	KeyId master_key_id;
	unsigned char wrapped[kWrappedBytes];
	TimestampTz created;
	TimestampTz last_rotated;
};

/*
 * Rows of one relation, in key_version order; snapshot nullptr means a
 * fresh catalog snapshot. ERROR on damaged rows or more than max_rows.
 */
int read_key_rows(Oid relid, Snapshot snapshot, KeyRow *rows, int max_rows);

/* Every row (SnapshotSelf; caller holds a lock excluding writers); palloc'd. */
int read_all_key_rows(KeyRow **rows);

/*
 * Unwrap a row's data key into out (kKeyBytes). Throws rustydb::Error
 * naming the relation when the master key is unavailable or the wrapped
 * key does not authenticate.
 */
void unwrap_row(const KeyRow &row, unsigned char *out);

/*
 * sodium_malloc'd memory freed (and wiped) when the current memory context
 * is reset or deleted, so an error cannot leak it.
 */
unsigned char *secure_alloc(size_t n);

/* Insert a new row: wraps data_key with mk. cat is open RowExclusive. */
void insert_key_row(Relation cat, Oid relid, int version, bool current, Algorithm alg,
					const unsigned char *data_key, const MasterKey &mk, TimestampTz created);

/*
 * Update a row's is_current and last_rotated; when mk is given, re-wrap
 * data_key with it.
 */
void update_key_row(Relation cat, const KeyRow &row, const MasterKey *mk,
					const unsigned char *data_key, bool current);

/* Delete every row of a relation (it is being dropped). */
void delete_key_rows(Oid relid);

} /* namespace crypto */
} /* namespace rustydb */

#endif /* RUSTYDB_CRYPTO_CATALOG_H */

/*-------------------------------------------------------------------------
 *
 * sealed.h
 *	  Sealed columns: the statement text rustydb's own tables keep.
 *
 * rustydb's own tables are heap tables, and some of their columns hold
 * SQL text that can carry literals of statements on encrypted tables: the
 * audit trail's statement and detail (rustydb._audit_records) and the
 * query of the ASH history (rustydb.ash_history_data). While a key
 * provider is configured, the writers store those values sealed, in a
 * bytea column beside the text column (statement_sealed, detail_sealed,
 * query_sealed), and leave the text column NULL. The seal is the one of
 * encrypted tables (crypto.h: header with format, algorithm, role and key
 * version, nonce, ciphertext, tag) under a data key of the table itself,
 * wrapped in rustydb.table_keys like a table's (created on first use),
 * with the role "sealed column value" and associated data binding the
 * value to its column and row. The views (rustydb.audit_trail,
 * rustydb.ash_history) open them with rustydb._open_text(). Without a key
 * provider the text is stored as before. See docs/tde.md, "rustydb's own
 * tables".
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_CRYPTO_SEALED_H
#define RUSTYDB_CRYPTO_SEALED_H

#include "rustydb/pg.h"

#include "rustydb/crypto/crypto.h"

namespace rustydb {
namespace crypto {

/* Whether new statement text is stored sealed: a key provider is configured. */
bool seal_own_text();

/*
 * The cipher of one of rustydb's own tables with sealed columns, its data
 * key created (and recorded as a key management event) on first use. An
 * ERROR when the key cannot be had. Inside a transaction.
 */
const Cipher *own_table_cipher(Oid relid);

/* Seal len bytes of text for (relid's) column and row: a palloc'd bytea. */
bytea *seal_text(const Cipher *cipher, const char *column, int64 row, const char *text, size_t len);

} /* namespace crypto */
} /* namespace rustydb */

#endif /* RUSTYDB_CRYPTO_SEALED_H */

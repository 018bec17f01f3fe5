/*-------------------------------------------------------------------------
 *
 * internal.h
 *	  Shared between the files of src/crypto; not for other subsystems.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_CRYPTO_INTERNAL_H
#define RUSTYDB_CRYPTO_INTERNAL_H

#include "rustydb/crypto/crypto.h"
#include "rustydb/crypto/crypto_keys.h"

#include <sodium.h>

namespace rustydb {
namespace crypto {

/* Most data key versions a table may have at once (rotate_table_key). */
constexpr int kMaxKeyVersions = 8;
/* Per-cipher cache of AES-GCM session subkeys used for opening. */
constexpr int kSubkeySlots = 8;

/*
 * Role of the relation a cipher seals for, kept in header byte 1 (and so
 * authenticated): a table's payloads and its TOAST table's chunks share
 * the data keys but cannot be swapped for one another. Column: a value of
 * a sealed column of one of rustydb's own heap tables (sealed.cpp).
 */
enum class Role : uint8_t
{
	Table = 0,
	Toast = 1,
	Column = 2
};

/* Key material of one Cipher, in one sodium_malloc'd block. */
struct Secrets
{
	crypto_aead_aes256gcm_state enc_state; /* subkey of the sealing session */
	crypto_aead_aes256gcm_state dec_state[kSubkeySlots];
	unsigned char keys[kMaxKeyVersions][kKeyBytes];
};

/* sodium_malloc aligns the end of the block: keep the AES states 16-aligned */
static_assert(sizeof(Secrets) % 16 == 0, "Secrets must be a multiple of 16 bytes");

struct Cipher
{
	Oid relid;
	Role role;
	int nversions;
	uint16_t versions[kMaxKeyVersions];
	Algorithm algs[kMaxKeyVersions];
	int current; /* index into versions[] of the key new payloads use */

	/* sealing session: fresh random id per process and cipher, counter */
	bool session_ready;
	unsigned char session[kSessionBytes];
	uint32_t counter;

	/* AES-GCM subkeys for opening, by (version, session) */
	struct
	{
		bool valid;
		uint16_t version;
		unsigned char session[kSessionBytes];
	} slots[kSubkeySlots];
	int next_slot;

	Secrets *secrets;
	Cipher *next_retired;
};

/* One data key version, as loaded from the catalog and unwrapped. */
struct DataKeyVersion
{
	uint16_t version;
	Algorithm alg;
	bool current;
	const unsigned char *key; /* kKeyBytes */
};

/*
 * How many payloads, groups and large values this backend has opened
 * (open_core: every decryption goes through it), and the last encrypted
 * table (not TOAST table) they belonged to. A statement that leaves
 * decryptions unchanged has produced no plaintext of an encrypted table.
 */
extern uint64 decryptions;
extern Oid last_decrypted;

/* Build a Cipher (not cached) from unwrapped keys; free with free_cipher. */
Cipher *make_cipher(Oid relid, Role role, const DataKeyVersion *keys, int n);
void free_cipher(Cipher *c);

/* Put a freshly built cipher into the backend cache (replacing any entry). */
void cache_put(Oid relid, Cipher *c);
/*
 * Same, for a relation created by this transaction: the entry is dropped
 * again if the transaction (or subtransaction) aborts, so a reused OID can
 * never find it.
 */
void cache_put_created(Oid relid, Cipher *c);
/* Drop a relation's cache entry (or all when relid is InvalidOid). */
void cache_forget(Oid relid);
void cache_init();

/*
 * A new random data key (version 1) for relid, wrapped with the current
 * master key into rustydb.table_keys, and its cipher cached until the
 * transaction ends (rolled back with it). Returns the algorithm.
 */
Algorithm create_data_key(Oid relid, Role role);

/*
 * What a relation's keys seal: chunks of a TOAST table, sealed column
 * values of one of rustydb's own heap tables (sealed.cpp; no other heap
 * table gets keys), else table payloads.
 */
Role role_of(Oid relid);

/* Load a relation's keys from rustydb.table_keys; nullptr if none. */
Cipher *load_cipher(Oid relid);

/*
 * relation_cipher_oid(), except that a key that cannot be had (no key
 * provider, a master key the provider does not offer, a wrapped key that
 * does not authenticate) returns nullptr with the reason in why instead
 * of raising an error; nothing is cached then.
 */
const Cipher *relation_cipher_try(Oid relid, char *why, size_t whylen);

/* OID of rustydb.table_keys in this database, or InvalidOid. */
Oid keys_catalog_oid();

/*
 * Record a key management operation in the audit trail (a security event:
 * always audited, independent of the transaction). object: "schema.table"
 * (relation_label) or "master key".
 */
void audit_key_event(const char *object, const char *fmt, ...) pg_attribute_printf(2, 3);
/* "schema.table" of rel, palloc'd. */
const char *relation_label(Relation rel);
void hooks_xact_end();
void tempfiles_xact_end();

/*
 * ---- tables derived from queries (derived.cpp) ----
 * What derived_table_request learnt before a CREATE ... AS or REFRESH
 * runs, for derived_table_check after it.
 */
struct DerivedCheck
{
	enum Kind
	{
		kNone,
		kCreate, /* CREATE TABLE AS, SELECT INTO, CREATE MATERIALIZED VIEW */
		kRefresh /* REFRESH MATERIALIZED VIEW of an unencrypted one */
	} kind = kNone;
	Oid target = InvalidOid; /* kRefresh: the materialized view */
	uint64 decryptions = 0;  /* decryptions before the statement */
	bool reported = false;   /* already reported before it ran */
};
/*
 * Before the statement: the encrypted request (-1 none, 0, 1) it should
 * run with; *pstmt may be replaced by a copy that names the rustydb
 * access method. Reports plaintext results per
 * rustydb.plaintext_derived_action.
 */
int derived_table_request(PlannedStmt **pstmt, int request, DerivedCheck *check);
/* After it: created is the table the statement created (or InvalidOid). */
void derived_table_check(const DerivedCheck &check, Oid created);

/* ---- "encrypted=true" in pg_class.reloptions (dump.cpp) ---- */
bool has_encrypted_option(Oid relid);
void store_encrypted_option(Oid relid);
/*
 * ALTER TABLE SET/RESET of storage options: alter_begin takes the option
 * out of the relation's stored options (returns it, or InvalidOid when
 * there is nothing to do), alter_end puts it back after the statement.
 */
Oid alter_begin(AlterTableStmt *stmt);
void alter_end(Oid relid);

/*
 * Warn about master keys that rustydb.table_keys names but the key
 * provider does not offer, with the number of tables that need each.
 * new_relid invalid: the backend's first use of table keys (checked once
 * per backend); else an encrypted table just created (new_name), checked
 * every time.
 */
void check_master_keys(Oid new_relid = InvalidOid, const char *new_name = nullptr);

/* Whether libsodium offers AES-256-GCM on this CPU. */
bool aes_available();

} /* namespace crypto */
} /* namespace rustydb */

#endif /* RUSTYDB_CRYPTO_INTERNAL_H */

/*-------------------------------------------------------------------------
 *
 * keys.h
 *	  Master keys (key providers), key wrapping and key ids.
 *
 * The master key comes from exactly one provider, chosen by settings:
 *	rustydb.keyring_file  a file outside the data directory, mode 0600,
 *	                      owned by the server user, holding one or more
 *	                      keys (the last one is current);
 *	rustydb.key_command   a command printing one key as 64 hex digits;
 *	                      %i in it is replaced by the id of the key wanted
 *	                      or by "current".
 * A master key is known by its id: 16 hex digits derived from it with
 * crypto_kdf (the id reveals nothing about the key).
 *
 * Key material lives in sodium_malloc'd memory (locked, guard pages,
 * wiped on free). Failures are thrown as rustydb::Error.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_CRYPTO_KEYS_H
#define RUSTYDB_CRYPTO_KEYS_H

#include "rustydb/pg.h"

#include <cstddef>
#include <cstdint>

namespace rustydb {
namespace crypto {

constexpr size_t kKeyBytes = 32;
constexpr size_t kKeyIdChars = 16; /* hex digits, without terminator */
/* wrapped data key: nonce(24) | ciphertext(32) | tag(16) */
constexpr size_t kWrappedBytes = 24 + kKeyBytes + 16;
/* Most keys a keyring file may hold. */
constexpr int kMaxKeyringKeys = 64;

struct KeyId
{
	char hex[kKeyIdChars + 1];
};

/* A master key held by this backend: its id and a pointer to locked memory. */
struct MasterKey
{
	KeyId id;
	const unsigned char *key; /* kKeyBytes, sodium_malloc'd, read-only */
};

/* Which provider the settings select; nullptr if none. */
const char *provider_description();

/* The current master key (re-reads the provider). */
MasterKey current_master_key();

/* The master key with this id (cached in the backend, else from the provider). */
MasterKey master_key_by_id(const char *id_hex);

/*
 * Keyring file only: generate a new master key, append it to the keyring
 * atomically (temporary file, fsync, rename, fsync directory) and return it.
 */
MasterKey keyring_add_new_key();

/* Whether the configured provider is a keyring file. */
bool provider_is_keyring_file();

/* Id of a key (master key id or data key fingerprint), by derivation context. */
KeyId key_id(const unsigned char *key, const char ctx[8]);

/*
 * Wrap and unwrap a data key with a master key. The associated data binds
 * the wrapped key to its relation, key version and algorithm. unwrap
 * returns false when authentication fails (wrong master key, damage).
 */
void wrap_data_key(const MasterKey &mk, Oid relid, int version, int algorithm,
				   const unsigned char *data_key, unsigned char *wrapped /* kWrappedBytes */);
bool unwrap_data_key(const MasterKey &mk, Oid relid, int version, int algorithm,
					 const unsigned char *wrapped, unsigned char *data_key /* kKeyBytes */);

/* Forget cached master keys (settings changed). */
void forget_master_keys();

} /* namespace crypto */
} /* namespace rustydb */

#endif /* RUSTYDB_CRYPTO_KEYS_H */

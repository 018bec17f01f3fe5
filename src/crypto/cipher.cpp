/*-------------------------------------------------------------------------
 *
 * cipher.cpp
 *	  Sealing and opening tuple payloads; the per-backend cipher cache.
 *
 * Sealed payload:
 *	header(4)   format (high nibble, 1) | algorithm (low nibble), 0,
 *	            key version (uint16, little endian)
 *	session(12) random, drawn by this process for this cipher
 *	counter(4)  incremented for every payload the session seals
 *	ciphertext, tag(16)
 *
 * Nonces. A session is drawn with randombytes_buf the first time a
 * process seals with a cipher and again whenever its counter would wrap;
 * sessions live only in process memory, so no crash, restart, standby
 * promotion, base backup or fork can resume one. (session, counter) is
 * therefore unique per data key except with the probability that two of
 * the 96-bit random sessions collide (docs/tde.md gives the bound).
 *	AES-256-GCM: each session seals with its own subkey, derived from the
 *	  data key and the session with crypto_kdf (two steps of 64 and 32
 *	  bits); the 96-bit GCM nonce is the counter. A subkey is derived once
 *	  per session (sealing) or per (session, key) seen (opening, cached in
 *	  kSubkeySlots slots).
 *	XChaCha20-Poly1305: the data key itself, with the 192-bit nonce
 *	  session | counter | 0.
 * Associated data: the 4-byte header followed by the caller's bytes.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/crypto/crypto_internal.h"
#include "rustydb/crypto/pagecache.h"
#include "rustydb/crypto/crypto_catalog.h"

#include "rustydb/common/boundary.h"
#include "rustydb/common/settings.h"

#include <cstring>

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/xact.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace crypto {

uint64 decryptions = 0;
Oid last_decrypted = InvalidOid;

namespace {

constexpr unsigned kFormat = 1;

struct CacheEntry
{
	Oid relid;      /* hash key */
	Cipher *cipher; /* nullptr: relation is not encrypted */
};

HTAB *cache = nullptr;
/* relations whose entries this transaction created (see cache_put_created) */
constexpr int kMaxCreated = 64;
Oid created[kMaxCreated];
int n_created = 0;
bool created_overflow = false;

/* Drop the entries; at transaction end also forget the list. */
void
forget_created(bool end_of_xact)
{
	if (created_overflow)
		cache_forget(InvalidOid);
	else
		for (int i = 0; i < n_created; i++)
			cache_forget(created[i]);
	if (end_of_xact)
	{
		n_created = 0;
		created_overflow = false;
	}
}
Cipher *retired = nullptr;
/* one-entry memo in front of the hash table */
Oid memo_relid = InvalidOid;
Cipher *memo_cipher = nullptr;

void
retire(Cipher *c)
{
	if (c == nullptr)
		return;
	c->next_retired = retired;
	retired = c;
}

void
free_retired()
{
	while (retired != nullptr)
	{
		Cipher *c = retired;
		retired = c->next_retired;
		free_cipher(c);
	}
}

void
derive_session_subkey(const unsigned char *data_key, const unsigned char *session,
					  unsigned char *subkey)
{
	unsigned char step[kKeyBytes];
	uint64_t id1;
	uint32_t id2;

	memcpy(&id1, session, 8);
	memcpy(&id2, session + 8, 4);
	crypto_kdf_derive_from_key(step, sizeof(step), id1, "rdbses1_", data_key);
	crypto_kdf_derive_from_key(subkey, kKeyBytes, id2, "rdbses2_", step);
	sodium_memzero(step, sizeof(step));
}

void
new_session(Cipher *c)
{
	randombytes_buf(c->session, kSessionBytes);
	c->counter = 0;
	if (c->algs[c->current] == Algorithm::Aes256Gcm)
	{
		unsigned char subkey[kKeyBytes];

		derive_session_subkey(c->secrets->keys[c->current], c->session, subkey);
		crypto_aead_aes256gcm_beforenm(&c->secrets->enc_state, subkey);
		sodium_memzero(subkey, sizeof(subkey));
	}
	c->session_ready = true;
}

int
version_index(const Cipher *c, uint16_t version)
{
	for (int i = 0; i < c->nversions; i++)
		if (c->versions[i] == version)
			return i;
	return -1;
}

/* Associated data: header then caller's bytes, into buf. */
size_t
build_ad(unsigned char *buf, const unsigned char *header, const void *aad, size_t aadlen)
{
	memcpy(buf, header, kHeaderBytes);
	if (aadlen > 0)
		memcpy(buf + kHeaderBytes, aad, aadlen);
	return kHeaderBytes + aadlen;
}

/* Bytes before the ciphertext: header, session, counter. */
constexpr size_t kPrefixBytes = kHeaderBytes + kSessionBytes + kCounterBytes;

/*
 * Open ctlen bytes of ciphertext ct with the prefix (header, session,
 * counter: kPrefixBytes) and tag that sealed them; on failure returns
 * false and sets *reason (out wiped). Never raises.
 */
bool
open_core(const Cipher *cc, const unsigned char *in, const unsigned char *ct, size_t ctlen,
		  const unsigned char *tag, const void *aad, size_t aadlen, void *out, const char **reason)
{
	Cipher *c = const_cast<Cipher *>(cc);
	unsigned char ad[kHeaderBytes + kMaxGroupAadBytes];

	decryptions++;
	if (c->role != Role::Toast)
		last_decrypted = c->relid;

	if (aadlen > kMaxGroupAadBytes)
	{
		*reason = "associated data too long";
		return false;
	}
	unsigned fmt = in[0] >> 4;
	unsigned alg = in[0] & 0x0f;
	uint16_t version = static_cast<uint16_t>(in[2] | (in[3] << 8));
	if (fmt != kFormat || in[1] > static_cast<unsigned>(Role::Column))
	{
		*reason = "unknown sealed payload format";
		return false;
	}
	if (in[1] != static_cast<unsigned>(c->role))
	{
		/* [what is stored][what the cipher seals] */
		static const char *const kSwapped[3][3] = {
			{nullptr, "a table payload in a TOAST table",
			 "a table payload in place of a sealed column value"},
			{"a TOAST chunk in place of a table payload", nullptr,
			 "a TOAST chunk in place of a sealed column value"},
			{"a sealed column value in place of a table payload",
			 "a sealed column value in a TOAST table", nullptr}};
		*reason = kSwapped[in[1]][static_cast<unsigned>(c->role)];
		return false;
	}
	int vi = version_index(c, version);
	if (vi < 0)
	{
		*reason = "sealed with a key version this table does not have";
		return false;
	}
	if (alg != static_cast<unsigned>(c->algs[vi]))
	{
		*reason = "sealed payload names another algorithm than its key version";
		return false;
	}
	const unsigned char *session = in + kHeaderBytes;
	const unsigned char *ctr = session + kSessionBytes;
	size_t adlen = build_ad(ad, in, aad, aadlen);
	int rc;

	if (c->algs[vi] == Algorithm::Aes256Gcm)
	{
		if (!aes_available())
		{
			*reason = "AES-256-GCM is not available on this CPU";
			return false;
		}
		int slot = -1;
		for (int i = 0; i < kSubkeySlots; i++)
			if (c->slots[i].valid && c->slots[i].version == version &&
				memcmp(c->slots[i].session, session, kSessionBytes) == 0)
			{
				slot = i;
				break;
			}
		if (slot < 0)
		{
			unsigned char subkey[kKeyBytes];

			slot = c->next_slot;
			c->next_slot = (c->next_slot + 1) % kSubkeySlots;
			derive_session_subkey(c->secrets->keys[vi], session, subkey);
			crypto_aead_aes256gcm_beforenm(&c->secrets->dec_state[slot], subkey);
			sodium_memzero(subkey, sizeof(subkey));
			c->slots[slot].valid = true;
			c->slots[slot].version = version;
			memcpy(c->slots[slot].session, session, kSessionBytes);
		}
		unsigned char nonce[crypto_aead_aes256gcm_NPUBBYTES] = {0};
		memcpy(nonce, ctr, kCounterBytes);
		rc = crypto_aead_aes256gcm_decrypt_detached_afternm(static_cast<unsigned char *>(out),
															nullptr, ct, ctlen, tag, ad, adlen,
															nonce, &c->secrets->dec_state[slot]);
	}
	else
	{
		unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES] = {0};
		memcpy(nonce, session, kSessionBytes);
		memcpy(nonce + kSessionBytes, ctr, kCounterBytes);
		rc = crypto_aead_xchacha20poly1305_ietf_decrypt_detached(static_cast<unsigned char *>(out),
																 nullptr, ct, ctlen, tag, ad, adlen,
																 nonce, c->secrets->keys[vi]);
	}
	if (rc != 0)
	{
		sodium_memzero(out, ctlen);
		*reason = "authentication failed: the sealed bytes or their context were altered";
		return false;
	}
	return true;
}

/* Open a sealed payload (prefix, ciphertext, tag in one range). */
bool
open_internal(const Cipher *c, const void *sealed, size_t sealed_len, const void *aad,
			  size_t aadlen, void *out, const char **reason)
{
	const unsigned char *in = static_cast<const unsigned char *>(sealed);

	if (sealed_len < kSealOverhead)
	{
		*reason = "sealed payload shorter than its header and tag";
		return false;
	}
	if (aadlen > kMaxAadBytes)
	{
		*reason = "associated data too long";
		return false;
	}
	size_t ctlen = sealed_len - kSealOverhead;
	return open_core(c, in, in + kPrefixBytes, ctlen, in + kPrefixBytes + ctlen, aad, aadlen, out,
					 reason);
}

/*
 * Seal len bytes of payload with the current key: the prefix goes to
 * prefix (kPrefixBytes), the ciphertext (len bytes) to ct, the tag to tag.
 */
void
seal_core(const Cipher *cc, const void *payload, size_t len, const void *aad, size_t aadlen,
		  unsigned char *prefix, unsigned char *ct, unsigned char *tag)
{
	Cipher *c = const_cast<Cipher *>(cc);
	unsigned char ad[kHeaderBytes + kMaxGroupAadBytes];

	if (aadlen > kMaxGroupAadBytes)
		elog(ERROR, "rustydb: associated data of %zu bytes exceeds %zu", aadlen, kMaxGroupAadBytes);
	if (!c->session_ready || c->counter == UINT32_MAX)
		new_session(c);

	int vi = c->current;
	uint16_t version = c->versions[vi];
	uint32_t ctr = c->counter++;

	prefix[0] = static_cast<unsigned char>((kFormat << 4) | static_cast<unsigned>(c->algs[vi]));
	prefix[1] = static_cast<unsigned char>(c->role);
	prefix[2] = static_cast<unsigned char>(version & 0xff);
	prefix[3] = static_cast<unsigned char>(version >> 8);
	memcpy(prefix + kHeaderBytes, c->session, kSessionBytes);
	memcpy(prefix + kHeaderBytes + kSessionBytes, &ctr, kCounterBytes);
	size_t adlen = build_ad(ad, prefix, aad, aadlen);

	if (c->algs[vi] == Algorithm::Aes256Gcm)
	{
		unsigned char nonce[crypto_aead_aes256gcm_NPUBBYTES] = {0};

		if (!aes_available())
			ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
							errmsg("cannot encrypt data of relation \"%s\"",
								   get_rel_name(c->relid) ? get_rel_name(c->relid) : "?"),
							errdetail("The table's key uses AES-256-GCM, which this CPU lacks.")));
		memcpy(nonce, &ctr, kCounterBytes);
		crypto_aead_aes256gcm_encrypt_detached_afternm(
			ct, tag, nullptr, static_cast<const unsigned char *>(payload), len, ad, adlen, nullptr,
			nonce, &c->secrets->enc_state);
	}
	else
	{
		unsigned char nonce[crypto_aead_xchacha20poly1305_ietf_NPUBBYTES] = {0};

		memcpy(nonce, c->session, kSessionBytes);
		memcpy(nonce + kSessionBytes, &ctr, kCounterBytes);
		crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
			ct, tag, nullptr, static_cast<const unsigned char *>(payload), len, ad, adlen, nullptr,
			nonce, c->secrets->keys[vi]);
	}
}

[[noreturn]] void
open_failed(const Cipher *cipher, BlockNumber blkno, const char *reason)
{
	const char *name = get_rel_name(cipher->relid);
	if (BlockNumberIsValid(blkno))
		ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
						errmsg("could not decrypt data in block %u of relation \"%s\"", blkno,
							   name ? name : "?"),
						errdetail("%s.", reason),
						errhint("The data on disk was damaged or tampered with; restore the "
								"table from a backup.")));
	ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
					errmsg("could not decrypt data of relation \"%s\"", name ? name : "?"),
					errdetail("%s.", reason)));
}

} /* namespace */

bool
aes_available()
{
	static int available = -1;

	if (available < 0)
		available = crypto_aead_aes256gcm_is_available() ? 1 : 0;
	return available == 1;
}

Algorithm
preferred_algorithm()
{
	return aes_available() ? Algorithm::Aes256Gcm : Algorithm::XChaCha20Poly1305;
}

const char *
algorithm_name(Algorithm alg)
{
	switch (alg)
	{
		case Algorithm::Aes256Gcm:
			return "aes-256-gcm";
		case Algorithm::XChaCha20Poly1305:
			return "xchacha20-poly1305";
	}
	return "unknown";
}

Cipher *
make_cipher(Oid relid, Role role, const DataKeyVersion *keys, int n)
{
	if (n < 1 || n > kMaxKeyVersions)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("relation \"%s\" has %d data key versions, at most %d are allowed",
						get_rel_name(relid) ? get_rel_name(relid) : "?", n, kMaxKeyVersions)));

	Cipher *c = static_cast<Cipher *>(MemoryContextAllocZero(TopMemoryContext, sizeof(Cipher)));
	c->secrets = static_cast<Secrets *>(sodium_malloc(sizeof(Secrets)));
	if (c->secrets == nullptr)
	{
		pfree(c);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
						errmsg("could not allocate locked memory for the keys of relation \"%s\"",
							   get_rel_name(relid) ? get_rel_name(relid) : "?"),
						errhint("Check the memlock limit (ulimit -l) of the server.")));
	}
	c->relid = relid;
	c->role = role;
	c->nversions = n;
	c->current = -1;
	for (int i = 0; i < n; i++)
	{
		c->versions[i] = keys[i].version;
		c->algs[i] = keys[i].alg;
		memcpy(c->secrets->keys[i], keys[i].key, kKeyBytes);
		if (keys[i].current)
			c->current = i;
	}
	if (c->current < 0)
		c->current = n - 1;
	return c;
}

void
free_cipher(Cipher *c)
{
	sodium_free(c->secrets); /* wipes */
	sodium_memzero(c, sizeof(*c));
	pfree(c);
}

void
cache_init()
{
	HASHCTL ctl;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(CacheEntry);
	ctl.hcxt = TopMemoryContext;
	cache = hash_create("rustydb cipher cache", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

void
cache_forget(Oid relid)
{
	memo_relid = InvalidOid;
	memo_cipher = nullptr;
	if (cache == nullptr)
		return;
	if (!OidIsValid(relid))
	{
		HASH_SEQ_STATUS seq;
		CacheEntry *e;

		hash_seq_init(&seq, cache);
		while ((e = static_cast<CacheEntry *>(hash_seq_search(&seq))) != nullptr)
		{
			retire(e->cipher);
			hash_search(cache, &e->relid, HASH_REMOVE, nullptr);
		}
		return;
	}
	bool found = false;
	CacheEntry *e = static_cast<CacheEntry *>(hash_search(cache, &relid, HASH_FIND, &found));
	if (e != nullptr)
	{
		retire(e->cipher);
		hash_search(cache, &relid, HASH_REMOVE, nullptr);
	}
}

void
cache_put(Oid relid, Cipher *c)
{
	if (cache == nullptr)
		cache_init();
	cache_forget(relid);
	while (hash_get_num_entries(cache) >= settings::cipher_cache_size)
	{
		/* full (or the limit was lowered): evict; the cipher stays valid to the transaction end */
		HASH_SEQ_STATUS seq;
		CacheEntry *victim;

		hash_seq_init(&seq, cache);
		victim = static_cast<CacheEntry *>(hash_seq_search(&seq));
		if (victim != nullptr)
		{
			Oid vid = victim->relid;

			hash_seq_term(&seq);
			retire(victim->cipher);
			hash_search(cache, &vid, HASH_REMOVE, nullptr);
		}
		else
			break;
	}
	bool found = false;
	CacheEntry *e = static_cast<CacheEntry *>(hash_search(cache, &relid, HASH_ENTER, &found));
	e->cipher = c;
	memo_relid = relid;
	memo_cipher = c;
}

void
cache_put_created(Oid relid, Cipher *c)
{
	cache_put(relid, c);
	if (n_created < kMaxCreated)
		created[n_created++] = relid;
	else
		created_overflow = true;
}

const Cipher *
relation_cipher_oid(Oid relid)
{
	if (relid == memo_relid && OidIsValid(relid))
		return memo_cipher;
	if (!IsTransactionState())
		elog(ERROR, "rustydb: relation_cipher called outside a transaction");
	if (cache == nullptr)
		cache_init();

	bool found = false;
	CacheEntry *e = static_cast<CacheEntry *>(hash_search(cache, &relid, HASH_FIND, &found));
	if (e != nullptr)
	{
		memo_relid = relid;
		memo_cipher = e->cipher;
		return e->cipher;
	}
	/* errors (no key provider, wrong master key ...) become ereport(ERROR) */
	Cipher *c = boundary::run("relation_cipher", [relid] { return load_cipher(relid); });
	cache_put(relid, c);
	return c;
}

const Cipher *
relation_cipher_try(Oid relid, char *why, size_t whylen)
{
	why[0] = '\0';
	if (relid == memo_relid && OidIsValid(relid))
		return memo_cipher;
	if (cache == nullptr)
		cache_init();
	auto *e = static_cast<CacheEntry *>(hash_search(cache, &relid, HASH_FIND, nullptr));
	if (e != nullptr)
		return e->cipher;

	Cipher *c = nullptr;
	try
	{
		c = load_cipher(relid);
	}
	catch (const Error &err)
	{
		strlcpy(why, err.what(), whylen);
		return nullptr;
	}
	cache_put(relid, c);
	return c;
}

const Cipher *
relation_cipher(Relation rel)
{
	return relation_cipher_oid(RelationGetRelid(rel));
}

bool
relation_encrypted(Relation rel)
{
	Oid relid = RelationGetRelid(rel);

	if (relid == memo_relid && OidIsValid(relid))
		return memo_cipher != nullptr;
	if (cache != nullptr)
	{
		auto *e = static_cast<CacheEntry *>(hash_search(cache, &relid, HASH_FIND, nullptr));
		if (e != nullptr)
			return e->cipher != nullptr;
	}
	KeyRow rows[kMaxKeyVersions];
	if (read_key_rows(relid, nullptr, rows, kMaxKeyVersions) > 0)
		return true;
	cache_put(relid, nullptr); /* what relation_cipher() would have cached */
	return false;
}

size_t
opened_size(const Cipher *cipher, size_t sealed_len, BlockNumber blkno)
{
	if (sealed_len < kSealOverhead)
	{
		const char *name = get_rel_name(cipher->relid);

		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("could not decrypt data in block %u of relation \"%s\"", blkno,
						name ? name : "?"),
				 errdetail("The sealed payload is %zu bytes, shorter than its %zu-byte overhead.",
						   sealed_len, kSealOverhead)));
	}
	return sealed_len - kSealOverhead;
}

void
seal(const Cipher *c, const void *payload, size_t len, const void *aad, size_t aadlen, void *outp)
{
	unsigned char *out = static_cast<unsigned char *>(outp);

	if (aadlen > kMaxAadBytes)
		elog(ERROR, "rustydb: associated data of %zu bytes exceeds %zu", aadlen, kMaxAadBytes);
	seal_core(c, payload, len, aad, aadlen, out, out + kPrefixBytes, out + kPrefixBytes + len);
}

void
seal_detached(const Cipher *c, const void *payload, size_t len, const void *aad, size_t aadlen,
			  void *ct, unsigned char *seal_out)
{
	seal_core(c, payload, len, aad, aadlen, seal_out, static_cast<unsigned char *>(ct),
			  seal_out + kPrefixBytes);
}

bool
try_open_detached(const Cipher *c, const unsigned char *seal_in, const void *ct, size_t len,
				  const void *aad, size_t aadlen, void *out, const char **reason)
{
	return open_core(c, seal_in, static_cast<const unsigned char *>(ct), len,
					 seal_in + kPrefixBytes, aad, aadlen, out, reason);
}

void
open_detached(const Cipher *c, const unsigned char *seal_in, const void *ct, size_t len,
			  const void *aad, size_t aadlen, void *out, BlockNumber blkno)
{
	const char *reason = nullptr;

	if (!try_open_detached(c, seal_in, ct, len, aad, aadlen, out, &reason))
		open_failed(c, blkno, reason);
}

bool
sealed_version(const void *sealed, size_t sealed_len, uint16_t *version)
{
	const unsigned char *in = static_cast<const unsigned char *>(sealed);

	if (sealed_len < kSealOverhead)
		return false;
	*version = static_cast<uint16_t>(in[2] | (in[3] << 8));
	return true;
}

bool
try_open(const Cipher *cipher, const void *sealed, size_t sealed_len, const void *aad,
		 size_t aadlen, void *out)
{
	const char *reason = nullptr;

	return open_internal(cipher, sealed, sealed_len, aad, aadlen, out, &reason);
}

void
open(const Cipher *cipher, const void *sealed, size_t sealed_len, const void *aad, size_t aadlen,
	 void *out, BlockNumber blkno)
{
	const char *reason = nullptr;

	if (!open_internal(cipher, sealed, sealed_len, aad, aadlen, out, &reason))
		open_failed(cipher, blkno, reason);
}

Oid
cipher_relid(const Cipher *cipher)
{
	return cipher->relid;
}

uint16_t
cipher_current_version(const Cipher *cipher)
{
	return cipher->versions[cipher->current];
}

Algorithm
cipher_algorithm(const Cipher *cipher)
{
	return cipher->algs[cipher->current];
}

} /* namespace crypto */
} /* namespace rustydb */

/* ---- PostgreSQL callbacks ---- */

extern "C" {

static void
crypto_relcache_callback(Datum arg, Oid relid) noexcept
{
	rustydb::boundary::run("crypto_relcache_callback",
						   [&] { rustydb::crypto::cache_forget(relid); });
}

static void
crypto_xact_callback(XactEvent event, void *arg) noexcept
{
	rustydb::boundary::run("crypto_xact_callback", [&] {
		if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
			rustydb::crypto::forget_created(true);
		else if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
				 event == XACT_EVENT_PREPARE)
			rustydb::crypto::n_created = 0;
		switch (event)
		{
			case XACT_EVENT_COMMIT:
			case XACT_EVENT_ABORT:
			case XACT_EVENT_PARALLEL_COMMIT:
			case XACT_EVENT_PARALLEL_ABORT:
			case XACT_EVENT_PREPARE:
				rustydb::crypto::free_retired();
				rustydb::crypto::hooks_xact_end();
				rustydb::crypto::tempfiles_xact_end();
				break;
			default:
				break;
		}
	});
}

static void
crypto_subxact_callback(SubXactEvent event, SubTransactionId my_subid,
						SubTransactionId parent_subid, void *arg) noexcept
{
	rustydb::boundary::run("crypto_subxact_callback", [&] {
		/* coarse but safe: entries created since the transaction began */
		if (event == SUBXACT_EVENT_ABORT_SUB)
			rustydb::crypto::forget_created(false);
	});
}

} /* extern "C" */

namespace rustydb {
namespace crypto {

void
count_cached_opens(const Cipher *c, int n)
{
	/* what open_core counts: the plaintext reached this backend all the same */
	decryptions += n;
	if (c->role == Role::Table)
		last_decrypted = c->relid;
}

void
init()
{
	CacheRegisterRelcacheCallback(crypto_relcache_callback, (Datum) 0);
	pagecache::register_segment();
	settings::provider_removed_hook = pagecache::forget_all;
	RegisterXactCallback(crypto_xact_callback, nullptr);
	RegisterSubXactCallback(crypto_subxact_callback, nullptr);
}

} /* namespace crypto */
} /* namespace rustydb */

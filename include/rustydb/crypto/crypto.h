/*-------------------------------------------------------------------------
 *
 * crypto.h
 *	  Transparent data encryption: the API the table access method uses.
 *
 * An encrypted rustydb table has a data key (256 bits, per table, wrapped
 * by the master key in rustydb.table_keys). Each tuple version's attribute
 * payload is sealed on its own with an AEAD (AES-256-GCM where the CPU has
 * it, XChaCha20-Poly1305 otherwise):
 *
 *	sealed = header(4) | session(12) | counter(4) | ciphertext(len) | tag(16)
 *
 * so sealed_size(len) == len + kSealOverhead. The header names the format,
 * the cipher, the role (a table's payload or a TOAST chunk: a TOAST table
 * of an encrypted table shares its data keys) and the data key version;
 * session and counter make the nonce
 * (see docs/tde.md for why it is never reused). The header and the caller's
 * associated data are authenticated.
 *
 * The table access method calls these from one place, src/am/tuple.cpp
 * (sealing a tuple for a page, opening one read from a page; see
 * docs/tde.md), and from its sealed groups and verifiers (src/am/groups.cpp,
 * src/am/verify_payloads.cpp). Byte-level use:
 *
 *	const rustydb::crypto::Cipher *c = rustydb::crypto::relation_cipher(rel);
 *	if (c != nullptr)
 *	{
 *		size_t n = rustydb::crypto::sealed_size(len);
 *		rustydb::crypto::seal(c, payload, len, aad, aadlen, dest);   // dest has n bytes
 *		...
 *		rustydb::crypto::open(c, sealed, n, aad, aadlen, out, blkno); // out has len bytes
 *	}
 *
 * The pointer returned by relation_cipher() stays valid until the end of
 * the current transaction (a key rotation or relcache invalidation makes
 * the next call return a new one). These functions are plain C++ without
 * destructors on the hot path; seal() and open() report failures with
 * ereport(ERROR), naming the relation (and for open() the block).
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_CRYPTO_CRYPTO_H
#define RUSTYDB_CRYPTO_CRYPTO_H

#include "rustydb/common/hooks.h"
#include "rustydb/pg.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/htup.h"
#include "access/htup_details.h"
#include "executor/tuptable.h"
#include "storage/block.h"
#include "utils/rel.h"
RUSTYDB_PG_INCLUDE_END

#include <cstddef>
#include <cstdint>

namespace rustydb {
namespace crypto {

/* Bytes a sealed payload adds to the plaintext: header, nonce parts, tag. */
constexpr size_t kHeaderBytes = 4;
constexpr size_t kSessionBytes = 12;
constexpr size_t kCounterBytes = 4;
constexpr size_t kTagBytes = 16;
constexpr size_t kSealOverhead = kHeaderBytes + kSessionBytes + kCounterBytes + kTagBytes;

/* Largest associated data seal()/open() accept from the caller. */
constexpr size_t kMaxAadBytes = 1024;

/* Largest associated data of a detached seal (sealed groups). */
constexpr size_t kMaxGroupAadBytes = 8192;

/* Cipher ids, as stored in the header and in rustydb.table_keys.cipher. */
enum class Algorithm : uint8_t
{
	Aes256Gcm = 1,
	XChaCha20Poly1305 = 2
};

/* An encrypted relation's keys in this backend (opaque). */
struct Cipher;

/* Subsystem init, called once from _PG_init. */
void init();

/*
 * Steps of ProcessUtility (CREATE TABLE's encrypted option, steering tool
 * tables) and object_access (a new encrypted table's keys, a dropped
 * table's key rows), run by src/common/hooks.cpp.
 */
void hook_process_utility(hooks::UtilityCall &call);
void hook_object_access(hooks::ObjectAccessCall &call);
/*
 * Steps of ExecutorStart and ExecutorEnd: temporary files written by a
 * query over an encrypted table are reported (tempfiles.cpp).
 */
void hook_executor_start(hooks::StartCall &call);
void hook_executor_end(hooks::EndCall &call);
/*
 * Step of emit_log_hook: with rustydb.redact_server_log, data values and
 * SQL literals are redacted from what goes to the server log while the
 * client receives the message unchanged (redact.cpp).
 */
void hook_emit_log(hooks::EmitLogCall &call);

/*
 * The cipher of a relation: nullptr when the relation is not encrypted.
 * Cached per backend; an ERROR (naming the relation) when the relation is
 * encrypted but its key cannot be unwrapped (no key provider, wrong master
 * key, damaged wrapped key).
 */
const Cipher *relation_cipher(Relation rel);
const Cipher *relation_cipher_oid(Oid relid);

/*
 * Whether the relation is encrypted: it has rows in rustydb.table_keys
 * (SnapshotSelf). No key is unwrapped, so no key provider is needed.
 */
bool relation_has_keys(Oid relid);

/*
 * Whether rel is encrypted, without unwrapping its key: the cached answer
 * when relation_cipher() has loaded it, else rustydb.table_keys read as
 * relation_cipher() reads it (an unencrypted answer is cached the same
 * way). For decisions taken before any row is read, such as the slot type
 * the access method gives the executor: EXPLAIN needs no key provider.
 */
bool relation_encrypted(Relation rel);

inline size_t
sealed_size(size_t payload_len)
{
	return payload_len + kSealOverhead;
}

/*
 * n payloads of c's relation were read from the cache of opened payloads
 * instead of opened: counted as decryptions (the temporary-file and
 * derived-table reports look at them).
 */
void count_cached_opens(const Cipher *c, int n);

/* Plaintext length of a sealed payload; ERROR if shorter than the overhead. */
size_t opened_size(const Cipher *cipher, size_t sealed_len, BlockNumber blkno);

/*
 * Seal len bytes of payload into out (sealed_size(len) bytes, may not
 * overlap payload) with the relation's current data key. aad (up to
 * kMaxAadBytes, may be null when aadlen is 0) is authenticated, not stored:
 * open() must be given the same bytes.
 */
void seal(const Cipher *cipher, const void *payload, size_t len, const void *aad, size_t aadlen,
		  void *out);

/*
 * Open a sealed payload into out (opened_size() bytes). Any failure
 * (tampered bytes, wrong aad, unknown key version) is an ERROR with
 * SQLSTATE XX001 naming the relation and blkno; out is then wiped.
 */
void open(const Cipher *cipher, const void *sealed, size_t sealed_len, const void *aad,
		  size_t aadlen, void *out, BlockNumber blkno);

/* Same, returning false instead of raising an error (for verification). */
bool try_open(const Cipher *cipher, const void *sealed, size_t sealed_len, const void *aad,
			  size_t aadlen, void *out);

/*
 * Detached seals, for payloads sealed together (sealed groups, see
 * storage/page.h): the same AEAD, with the kSealOverhead bytes of header,
 * session, counter and tag kept apart from the ciphertext, which is
 * exactly as long as the plaintext. aadlen up to kMaxGroupAadBytes.
 * open_detached raises the same ERROR as open(); try_open_detached
 * returns false with a reason instead.
 */
void seal_detached(const Cipher *cipher, const void *payload, size_t len, const void *aad,
				   size_t aadlen, void *ct, unsigned char *seal_out);
void open_detached(const Cipher *cipher, const unsigned char *seal_in, const void *ct, size_t len,
				   const void *aad, size_t aadlen, void *out, BlockNumber blkno);
bool try_open_detached(const Cipher *cipher, const unsigned char *seal_in, const void *ct,
					   size_t len, const void *aad, size_t aadlen, void *out, const char **reason);

/* The data key version a sealed payload names; false if it is too short to have one. */
bool sealed_version(const void *sealed, size_t sealed_len, uint16_t *version);

/*
 * ---- tuple-level helpers ----
 * For tuples in PostgreSQL's heap tuple layout (rustydb's tuple header is
 * byte-compatible with it): the payload is bytes [t_hoff, t_len). The
 * associated data is the attribute count, the HASNULL/HASVARWIDTH/
 * HASEXTERNAL bits, t_hoff and the null bitmap, so changing any of them
 * on disk is detected. Header fields that change after insertion (xmin,
 * xmax, cid, ctid, hint and lock bits) are not authenticated.
 */

/*
 * The tuple's associated data (the header fields above) into ad, which
 * has kMaxTupleAd bytes; returns its length.
 */
constexpr size_t kMaxTupleAd = 5 + BITMAPLEN(HEAP_NATTS_MASK);
size_t tuple_ad(HeapTupleHeader h, unsigned char *ad);

/* A palloc'd copy of plain (header as is) with its payload sealed: t_len + kSealOverhead. */
HeapTuple seal_tuple(const Cipher *cipher, HeapTuple plain);

/* Length of the opened tuple of a stored (sealed) one; ERROR if too short. */
uint32 opened_tuple_len(const Cipher *cipher, HeapTuple stored, BlockNumber blkno);

/*
 * Open stored into dest: dest->t_data must point to opened_tuple_len()
 * bytes (MAXALIGNed). Sets dest's t_len, t_self and t_tableOid. ERROR
 * (naming relation and block) if the payload does not authenticate.
 */
void open_tuple(const Cipher *cipher, HeapTuple stored, HeapTuple dest, BlockNumber blkno);

/* Same, returning false instead of raising an error (verifiers). */
bool try_open_tuple(const Cipher *cipher, HeapTuple stored, HeapTuple dest);

/* Same as open_tuple, into one palloc'd HeapTuple (HEAPTUPLESIZE + length). */
HeapTuple open_tuple_copy(const Cipher *cipher, HeapTuple stored, BlockNumber blkno);

/*
 * ---- large values ----
 * PostgreSQL 15's toaster writes out-of-line values with heap_insert into
 * a heap TOAST table, outside the access method. So before a tuple of an
 * encrypted table goes to the toaster, seal_values() replaces each of its
 * varlena values longer than kSealedValueMin bytes by a sealed copy (an
 * uncompressed varlena: header, sealed bytes) and marks the tuple with
 * kValuesSealed in t_infomask2 (a bit PostgreSQL leaves free; it is
 * authenticated with the tuple). The toaster then only ever stores
 * ciphertext. open_values() reverses it on a tuple read back: it fetches
 * out-of-line values and opens them, returning a tuple with every value
 * inline. Values of at most kSealedValueMin bytes are never moved out of
 * line by the toaster (it only moves values longer than a TOAST pointer).
 */
constexpr uint16 kValuesSealed = 0x0800;
constexpr size_t kSealedValueMin = 24;

/* Whether a tuple this big, or with these external values, goes to the toaster. */
bool needs_value_sealing(HeapTuple tup);
/* tup itself when it has no value to seal, else a new tuple (header copied). */
HeapTuple seal_values(const Cipher *cipher, TupleDesc desc, HeapTuple tup);
/*
 * tup itself unless marked kValuesSealed, else a new tuple with values
 * opened. keep_external: out-of-line values stay as they are, unopened
 * (logical decoding: a value an UPDATE left unchanged, which the output
 * plugin does not read).
 */
HeapTuple open_values(const Cipher *cipher, TupleDesc desc, HeapTuple tup, BlockNumber blkno,
					  bool keep_external = false);
/*
 * Whether one value of a tuple marked kValuesSealed (fetched from TOAST if
 * it was out of line) opens; values of at most kSealedValueMin bytes are
 * not sealed and pass. For verifiers: never an ERROR.
 */
bool try_open_value(const Cipher *cipher, const struct varlena *value);

/* The relation (OID) a cipher belongs to, and its current key version. */
Oid cipher_relid(const Cipher *cipher);
uint16_t cipher_current_version(const Cipher *cipher);
Algorithm cipher_algorithm(const Cipher *cipher);

/*
 * Entry points the table access method registers (from its init):
 *	Reencrypter:    rewrite every payload of the relation under its current
 *	                key version, without changing any page in place (an
 *	                abort must leave the old payloads readable with the old
 *	                key rows); called with the relation locked
 *	                AccessExclusive and not open in the caller.
 *	                rotate_table_key calls it, then deletes the older key
 *	                versions;
 *	PayloadVerifier: open every payload of rel and every sealed large value
 *	                it references, filling *result; never an ERROR for a
 *	                payload that does not open (verify_encryption calls it).
 * Without them rotate_table_key only adds a key version for new payloads,
 * and verify_encryption checks the keys but not the stored payloads.
 */
struct PayloadCheck
{
	int64 payloads;          /* tuple payloads opened or tried */
	int64 values;            /* sealed large values opened or tried */
	int64 values_skipped;    /* large values of dead versions, not fetched */
	int64 failed;            /* payloads, values or items that did not open */
	int64 older_versions;    /* payloads and values sealed under a non-current key version */
	char first_failure[256]; /* "" or where and what the first failure was */
};
using Reencrypter = void (*)(Oid relid);
using PayloadVerifier = void (*)(Relation rel, PayloadCheck *result);
void set_reencrypter(Reencrypter fn);
void set_payload_verifier(PayloadVerifier fn);

/*
 * What ANALYZE's sample of rel (scan_analyze_next_tuple) gives ANALYZE,
 * by rustydb.tde_statistics (statistics.cpp, docs/tde.md "Statistics"):
 * Rows for a plain relation or under full; for an encrypted relation
 * Counts under none (the rows of the sampled pages are counted, none is
 * returned or opened) and ValueFree under value_free (none is returned
 * either: the access method keeps its own sample and stores the columns'
 * null fractions, widths, distinct counts and correlations itself). The
 * first call for a relation in a transaction that is not Rows deletes
 * the statistics stored for it earlier. Cheap when asked repeatedly about
 * one relation.
 */
enum class AnalyzeSample : uint8_t
{
	Rows,
	Counts,
	ValueFree
};
AnalyzeSample analyze_sample(Relation rel);

/*
 * The value-free sample of one ANALYZE scan: begun at scan start, told of
 * each sampled block and each live row (the opened row in slot), ended
 * at scan end, which computes and stores the statistics and wipes the
 * sample's rows.
 */
struct ValueFreeSample;
ValueFreeSample *value_free_begin(Relation rel);
void value_free_block(ValueFreeSample *vf);
void value_free_row(ValueFreeSample *vf, TupleTableSlot *slot);
void value_free_end(ValueFreeSample *vf);

/* The algorithm new tables get on this machine. */
Algorithm preferred_algorithm();
const char *algorithm_name(Algorithm alg);

} /* namespace crypto */
} /* namespace rustydb */

#endif /* RUSTYDB_CRYPTO_CRYPTO_H */

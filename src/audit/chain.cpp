/*-------------------------------------------------------------------------
 *
 * chain.cpp
 *	  The hash chain of the audit trail.
 *
 * Record n stores hash_n = BLAKE2b-256(key; hash_{n-1} || fields_n) with
 * libsodium's crypto_generichash, keyed when rustydb.audit_key_file names
 * a key, and also stores hash_{n-1} as prev_hash. fields_n is a canonical
 * binary encoding of every stored field but the hashes themselves: fixed
 * width big-endian integers, and each text as a 4-byte length and its
 * bytes (0xFFFFFFFF for NULL), so no two different records encode alike.
 * The worker computes it when it writes a record; verify_audit_trail()
 * recomputes it from the table's values.
 *
 * A statement or detail stored sealed (statement_sealed, detail_sealed:
 * while a key provider is configured) is encoded as the tag 0xFFFFFFFE
 * (never a text's length) followed by the sealed bytes' length and the
 * bytes themselves. The chain thus covers what is stored, and verification
 * needs no key: the seal authenticates its plaintext under the table's
 * data key, so the sealed bytes fix the statement as firmly as its text
 * would (docs/audit.md, "Sealed statement text").
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/audit/internal.h"

#include "rustydb/common/boundary.h"
#include "rustydb/common/settings.h"

#include <sodium.h>

RUSTYDB_PG_INCLUDE_BEGIN
#include "storage/fd.h"
RUSTYDB_PG_INCLUDE_END

#include <cctype>
#include <cerrno>
#include <cstring>

namespace rustydb {
namespace audit {

namespace {

bool key_loaded = false;
bool have_key = false;
uint8 key[crypto_generichash_KEYBYTES];

/*
 * The canonical encoding of a record's fields is built in one buffer and
 * hashed with a single crypto_generichash call: the same bytes as feeding
 * them piece by piece, without the per-call overhead of ~40 small updates.
 */
uint8 *
put_u32(uint8 *p, uint32 v)
{
	p[0] = static_cast<uint8>(v >> 24);
	p[1] = static_cast<uint8>(v >> 16);
	p[2] = static_cast<uint8>(v >> 8);
	p[3] = static_cast<uint8>(v);
	return p + 4;
}

uint8 *
put_i64(uint8 *p, int64 v)
{
	uint64 u = static_cast<uint64>(v);

	p = put_u32(p, static_cast<uint32>(u >> 32));
	return put_u32(p, static_cast<uint32>(u));
}

uint8 *
put_text(uint8 *p, const char *s, size_t len)
{
	if (s == nullptr)
		return put_u32(p, 0xFFFFFFFFu);
	p = put_u32(p, static_cast<uint32>(len));
	memcpy(p, s, len);
	return p + len;
}

constexpr int kChainTexts = 10;
constexpr uint32 kSealedTag = 0xFFFFFFFEu;
constexpr size_t kChainStackBuf = 4096;

int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

} /* namespace */

void
chain_load_key()
{
	uint8 buf[130];
	ssize_t n;
	int fd;
	const char *path = settings::audit_key_file;

	if (key_loaded)
		return;
	if (path == nullptr || path[0] == '\0')
	{
		key_loaded = true;
		have_key = false;
		return;
	}
	fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
	if (fd < 0)
		ereport(ERROR, (errcode_for_file_access(),
						errmsg("could not open audit key file \"%s\": %m", path),
						errhint("Check rustydb.audit_key_file.")));
	n = read(fd, buf, sizeof(buf));
	CloseTransientFile(fd);
	if (n < 0)
		ereport(ERROR, (errcode_for_file_access(),
						errmsg("could not read audit key file \"%s\": %m", path)));
	/* strip a trailing newline of a hex key */
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		n--;
	if (n == 2 * crypto_generichash_KEYBYTES)
	{
		for (unsigned i = 0; i < crypto_generichash_KEYBYTES; i++)
		{
			int hi = hexval(buf[2 * i]);
			int lo = hexval(buf[2 * i + 1]);

			if (hi < 0 || lo < 0)
				ereport(ERROR, (errcode(ERRCODE_CONFIG_FILE_ERROR),
								errmsg("invalid audit key file \"%s\"", path),
								errdetail("A 64-character key must be hexadecimal.")));
			key[i] = static_cast<uint8>(hi << 4 | lo);
		}
	}
	else if (n == crypto_generichash_KEYBYTES)
		memcpy(key, buf, crypto_generichash_KEYBYTES);
	else
		ereport(ERROR,
				(errcode(ERRCODE_CONFIG_FILE_ERROR), errmsg("invalid audit key file \"%s\"", path),
				 errdetail("The file holds %d bytes; a key is 32 raw bytes or 64 "
						   "hexadecimal digits.",
						   static_cast<int>(n))));
	sodium_memzero(buf, sizeof(buf));
	have_key = true;
	key_loaded = true;
}

bool
chain_keyed()
{
	return have_key;
}

void
chain_hash(const uint8 prev[kHashLen], const ChainFields *f, uint8 out[kHashLen])
{
	const char *texts[kChainTexts] = {f->session_id,    f->user_name,   f->session_user_name,
									  f->database_name, f->client_addr, f->application_name,
									  f->action,        f->object,      f->statement,
									  f->detail};
	const bytea *sealed[kChainTexts] = {};
	const char *beside[kChainTexts] = {}; /* a text stored beside its sealed value */
	size_t lens[kChainTexts];
	/* prev, seq, event_time, pid, rows (flag + value), xid (flag + value),
	 * outcome's length and every text's length */
	size_t need = kHashLen + 8 + 8 + 4 + 12 + 12 + 4 * (kChainTexts + 1);
	size_t outcome_len = f->outcome != nullptr ? strlen(f->outcome) : 0;
	uint8 stack_buf[kChainStackBuf];

	sealed[8] = f->statement_sealed;
	sealed[9] = f->detail_sealed;
	for (int i = 0; i < kChainTexts; i++)
	{
		if (sealed[i] != nullptr)
		{
			/* the worker stores none; one found there was added later, and breaks the hash */
			beside[i] = texts[i];
			if (beside[i] != nullptr)
				need += 4 + strlen(beside[i]);
			texts[i] = VARDATA_ANY(sealed[i]);
			lens[i] = VARSIZE_ANY_EXHDR(sealed[i]);
			need += 4; /* the tag */
		}
		else
			lens[i] = texts[i] != nullptr ? strlen(texts[i]) : 0;
		need += lens[i];
	}
	need += outcome_len;

	uint8 *buf = need <= sizeof(stack_buf) ? stack_buf : static_cast<uint8 *>(palloc(need));
	uint8 *p = buf;

	memcpy(p, prev, kHashLen);
	p += kHashLen;
	p = put_i64(p, f->seq);
	p = put_i64(p, f->event_time);
	p = put_text(p, texts[0], lens[0]); /* session_id */
	p = put_u32(p, static_cast<uint32>(f->pid));
	for (int i = 1; i < kChainTexts; i++) /* user_name ... detail */
	{
		if (sealed[i] != nullptr)
			p = put_u32(p, kSealedTag);
		p = put_text(p, texts[i], lens[i]);
		if (beside[i] != nullptr)
			p = put_text(p, beside[i], strlen(beside[i]));
	}
	p = put_text(p, f->outcome, outcome_len);
	p = put_u32(p, f->rows_null ? 1 : 0);
	p = put_i64(p, f->rows_null ? 0 : f->rows);
	p = put_u32(p, f->xid_null ? 1 : 0);
	p = put_i64(p, f->xid_null ? 0 : f->xid);
	Assert(static_cast<size_t>(p - buf) <= need);
	crypto_generichash(out, kHashLen, buf, static_cast<unsigned long long>(p - buf),
					   have_key ? key : nullptr, have_key ? sizeof(key) : 0);
	if (buf != stack_buf)
		pfree(buf);
}

void
chain_mac(const uint8 *data, size_t len, uint8 out[kHashLen])
{
	static const char domain[] = "rustydb audit head";
	crypto_generichash_state st;

	crypto_generichash_init(&st, have_key ? key : nullptr, have_key ? sizeof(key) : 0, kHashLen);
	crypto_generichash_update(&st, reinterpret_cast<const unsigned char *>(domain),
							  sizeof(domain) - 1);
	crypto_generichash_update(&st, data, len);
	crypto_generichash_final(&st, out, kHashLen);
}

} /* namespace audit */
} /* namespace rustydb */

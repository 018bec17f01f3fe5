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

void
put_u32(crypto_generichash_state *st, uint32 v)
{
	uint8 b[4] = {static_cast<uint8>(v >> 24), static_cast<uint8>(v >> 16),
				  static_cast<uint8>(v >> 8), static_cast<uint8>(v)};

	crypto_generichash_update(st, b, sizeof(b));
}

void
put_i64(crypto_generichash_state *st, int64 v)
{
	uint64 u = static_cast<uint64>(v);

	put_u32(st, static_cast<uint32>(u >> 32));
	put_u32(st, static_cast<uint32>(u));
}

void
put_text(crypto_generichash_state *st, const char *s)
{
	if (s == nullptr)
	{
		put_u32(st, 0xFFFFFFFFu);
		return;
	}
	size_t len = strlen(s);

	put_u32(st, static_cast<uint32>(len));
	crypto_generichash_update(st, reinterpret_cast<const uint8 *>(s), len);
}

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
	crypto_generichash_state st;

	crypto_generichash_init(&st, have_key ? key : nullptr, have_key ? sizeof(key) : 0, kHashLen);
	crypto_generichash_update(&st, prev, kHashLen);
	put_i64(&st, f->seq);
	put_i64(&st, f->event_time);
	put_text(&st, f->session_id);
	put_u32(&st, static_cast<uint32>(f->pid));
	put_text(&st, f->user_name);
	put_text(&st, f->session_user_name);
	put_text(&st, f->database_name);
	put_text(&st, f->client_addr);
	put_text(&st, f->application_name);
	put_text(&st, f->action);
	put_text(&st, f->object);
	put_text(&st, f->statement);
	put_text(&st, f->detail);
	put_text(&st, f->outcome);
	put_u32(&st, f->rows_null ? 1 : 0);
	put_i64(&st, f->rows_null ? 0 : f->rows);
	put_u32(&st, f->xid_null ? 1 : 0);
	put_i64(&st, f->xid_null ? 0 : f->xid);
	crypto_generichash_final(&st, out, kHashLen);
}

} /* namespace audit */
} /* namespace rustydb */

/*-------------------------------------------------------------------------
 *
 * keys.cpp
 *	  Key providers (keyring file, key command), master key cache, key
 *	  ids and data key wrapping. See include/rustydb/crypto/crypto_keys.h.
 *
 * Nothing here holds key material outside sodium_malloc'd memory except
 * for the short time a provider's text is parsed; those buffers are
 * wiped with sodium_memzero before they go out of scope.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/crypto/crypto_keys.h"

#include "rustydb/common/boundary.h"
#include "rustydb/common/settings.h"

#include <sodium.h>

#include <cerrno>
#include <climits>
#include <cstdio>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

RUSTYDB_PG_INCLUDE_BEGIN
#include "common/file_utils.h"
#include "port.h"
#include "storage/fd.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace crypto {

namespace {

constexpr char kKeyringHeader[] = "rustydb-keyring-v1";
constexpr size_t kMaxKeyringBytes = 64 * 1024;
constexpr size_t kMaxCommandOutput = 256;

/* Master keys this backend has seen, by id. Bounded; oldest replaced. */
constexpr int kMaxCachedMasterKeys = 16;
struct CachedMaster
{
	KeyId id;
	unsigned char *key; /* sodium_malloc'd */
};
CachedMaster cached[kMaxCachedMasterKeys];
int n_cached = 0;
int next_victim = 0;

/* Secret scratch buffer, wiped on every exit path. */
struct SecretBuffer
{
	unsigned char *p;
	size_t n;
	explicit SecretBuffer(size_t size)
		: p(static_cast<unsigned char *>(sodium_malloc(size))), n(size)
	{
		if (p == nullptr)
			throw Error(ERRCODE_OUT_OF_MEMORY, "could not allocate locked memory for key material",
						"sodium_malloc failed.",
						"Check the memlock limit (ulimit -l) of the server.");
	}
	~SecretBuffer() { sodium_free(p); }
	SecretBuffer(const SecretBuffer &) = delete;
	SecretBuffer &operator=(const SecretBuffer &) = delete;
};

bool
is_set(const char *s)
{
	return s != nullptr && s[0] != '\0';
}

/* Keep a key in the backend cache (copying it into locked memory). */
MasterKey
remember(const KeyId &id, const unsigned char *key)
{
	for (int i = 0; i < n_cached; i++)
		if (sodium_memcmp(cached[i].id.hex, id.hex, kKeyIdChars) == 0)
			return MasterKey{cached[i].id, cached[i].key};

	unsigned char *copy = static_cast<unsigned char *>(sodium_malloc(kKeyBytes));
	if (copy == nullptr)
		throw Error(ERRCODE_OUT_OF_MEMORY, "could not allocate locked memory for key material");
	memcpy(copy, key, kKeyBytes);
	sodium_mprotect_readonly(copy);

	int slot;
	if (n_cached < kMaxCachedMasterKeys)
		slot = n_cached++;
	else
	{
		slot = next_victim;
		next_victim = (next_victim + 1) % kMaxCachedMasterKeys;
		sodium_free(cached[slot].key);
	}
	cached[slot].id = id;
	cached[slot].key = copy;
	return MasterKey{id, copy};
}

/* Decode 64 hex digits (surrounding white space allowed) into key. */
bool
parse_hex_key(const char *text, size_t len, unsigned char *key)
{
	size_t start = 0, end = len;
	size_t bin_len = 0;
	const char *hex_end = nullptr;

	while (start < end && isspace(static_cast<unsigned char>(text[start])))
		start++;
	while (end > start && isspace(static_cast<unsigned char>(text[end - 1])))
		end--;
	if (end - start != 2 * kKeyBytes)
		return false;
	if (sodium_hex2bin(key, kKeyBytes, text + start, end - start, nullptr, &bin_len, &hex_end) !=
			0 ||
		bin_len != kKeyBytes)
		return false;
	return true;
}

std::string
real_path(const char *path)
{
	char buf[PATH_MAX]; /* realpath() requires PATH_MAX */

	if (realpath(path, buf) == nullptr)
		return std::string(path);
	return std::string(buf);
}

/*
 * Check the keyring file's location, type, owner and mode; open it.
 * Returns an open descriptor (caller closes).
 */
int
open_keyring(const char *path)
{
	if (!is_absolute_path(path))
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
					"rustydb.keyring_file must be an absolute path",
					std::string("The setting is \"") + path + "\".");

	std::string file = real_path(path);
	std::string data = real_path(DataDir);
	if (file == data || file.compare(0, data.size() + 1, data + "/") == 0)
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
					"keyring file \"" + std::string(path) + "\" is inside the data directory",
					"A keyring stored with the data would travel with every base backup and "
					"copy of the data directory.",
					"Move the keyring file outside the data directory.");

	/* owner first: a file of another user may not even be readable */
	struct stat pre;
	if (lstat(path, &pre) == 0 && pre.st_uid != geteuid())
		throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE,
					"keyring file \"" + std::string(path) +
						"\" is not owned by the database server user",
					{}, "The keyring file must be owned by the user running the server.");

	int fd = ::open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
	{
		int err = errno;
		throw Error(err == ENOENT ? ERRCODE_UNDEFINED_FILE : ERRCODE_IO_ERROR,
					"could not open keyring file \"" + std::string(path) + "\": " + strerror(err),
					{}, "Create one with: rustydb-keyring create PATH");
	}

	struct stat st;
	if (fstat(fd, &st) != 0)
	{
		int err = errno;
		::close(fd);
		throw Error(ERRCODE_IO_ERROR,
					"could not stat keyring file \"" + std::string(path) + "\": " + strerror(err));
	}
	if (!S_ISREG(st.st_mode))
	{
		::close(fd);
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE,
					"keyring file \"" + std::string(path) + "\" is not a regular file");
	}
	if (st.st_uid != geteuid())
	{
		::close(fd);
		throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE,
					"keyring file \"" + std::string(path) +
						"\" is not owned by the database server user",
					{}, "The keyring file must be owned by the user running the server.");
	}
	if ((st.st_mode & 07777) != 0600)
	{
		char mode[8];
		snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
		::close(fd);
		throw Error(ERRCODE_INSUFFICIENT_PRIVILEGE,
					"keyring file \"" + std::string(path) + "\" has mode " + mode +
						", must be 0600",
					{}, "Run: chmod 0600 " + std::string(path));
	}
	return fd;
}

/*
 * Read the keyring: calls fn(key) for every key, in file order. Returns the
 * number of keys. The file text is held in locked memory and wiped.
 */
template <typename Fn>
int
read_keyring(const char *path, Fn &&fn)
{
	int fd = open_keyring(path);
	SecretBuffer text(kMaxKeyringBytes + 1);
	size_t len = 0;

	for (;;)
	{
		ssize_t n = ::read(fd, text.p + len, kMaxKeyringBytes + 1 - len);
		if (n < 0)
		{
			int err = errno;
			if (err == EINTR)
				continue;
			::close(fd);
			throw Error(ERRCODE_IO_ERROR, "could not read keyring file \"" + std::string(path) +
											  "\": " + strerror(err));
		}
		if (n == 0)
			break;
		len += static_cast<size_t>(n);
		if (len > kMaxKeyringBytes)
		{
			::close(fd);
			throw Error(ERRCODE_CONFIG_FILE_ERROR,
						"keyring file \"" + std::string(path) + "\" is too large");
		}
	}
	::close(fd);

	const char *s = reinterpret_cast<const char *>(text.p);
	size_t pos = 0;
	int line_no = 0, keys = 0;
	bool header_seen = false;
	SecretBuffer key(kKeyBytes);

	while (pos < len)
	{
		size_t eol = pos;
		while (eol < len && s[eol] != '\n')
			eol++;
		line_no++;
		size_t b = pos, e = eol;
		while (b < e && isspace(static_cast<unsigned char>(s[b])))
			b++;
		while (e > b && isspace(static_cast<unsigned char>(s[e - 1])))
			e--;
		pos = eol + 1;
		if (b == e || s[b] == '#')
			continue;
		if (!header_seen)
		{
			if (e - b != strlen(kKeyringHeader) || memcmp(s + b, kKeyringHeader, e - b) != 0)
				throw Error(ERRCODE_CONFIG_FILE_ERROR,
							"keyring file \"" + std::string(path) + "\" is not a rustydb keyring",
							std::string("The first line must be \"") + kKeyringHeader + "\".");
			header_seen = true;
			continue;
		}
		if (!parse_hex_key(s + b, e - b, key.p))
			throw Error(ERRCODE_CONFIG_FILE_ERROR,
						"invalid key on line " + std::to_string(line_no) + " of keyring file \"" +
							path + "\"",
						"Each key line must hold 64 hexadecimal digits.");
		if (++keys > kMaxKeyringKeys)
			throw Error(ERRCODE_CONFIG_FILE_ERROR, "keyring file \"" + std::string(path) +
													   "\" holds more than " +
													   std::to_string(kMaxKeyringKeys) + " keys");
		fn(key.p);
	}
	if (keys == 0)
		throw Error(ERRCODE_CONFIG_FILE_ERROR,
					"keyring file \"" + std::string(path) + "\" holds no key");
	return keys;
}

/* Run the key command for "current" or an id; key receives the 32 bytes. */
void
run_key_command(const char *command, const char *wanted, unsigned char *key)
{
	std::string cmd;

	for (const char *p = command; *p; p++)
	{
		if (p[0] == '%' && p[1] == 'i')
		{
			cmd += wanted;
			p++;
		}
		else if (p[0] == '%' && p[1] == '%')
		{
			cmd += '%';
			p++;
		}
		else
			cmd += *p;
	}

	fflush(nullptr);
	FILE *fh = rustydb::pg::call(OpenPipeStream, cmd.c_str(), "r");
	if (fh == nullptr)
	{
		int err = errno;
		throw Error(ERRCODE_SYSTEM_ERROR,
					"could not execute rustydb.key_command: " + std::string(strerror(err)));
	}
	SecretBuffer out(kMaxCommandOutput + 1);
	size_t len = fread(out.p, 1, kMaxCommandOutput + 1, fh);
	int rc = rustydb::pg::call(ClosePipeStream, fh);
	if (rc != 0)
	{
		char *reason = wait_result_to_str(rc);
		std::string why(reason);
		pfree(reason);
		throw Error(ERRCODE_SYSTEM_ERROR, "rustydb.key_command failed: " + why, {},
					"The command must print the master key as 64 hexadecimal digits and exit "
					"with status 0.");
	}
	if (len > kMaxCommandOutput || !parse_hex_key(reinterpret_cast<const char *>(out.p), len, key))
		throw Error(ERRCODE_SYSTEM_ERROR, "rustydb.key_command printed no valid master key",
					"The command must print exactly 64 hexadecimal digits (one 256-bit key).");
}

void
require_provider()
{
	if (!is_set(settings::keyring_file) && !is_set(settings::key_command))
		throw Error(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
					"no master key provider is configured",
					"Neither rustydb.keyring_file nor rustydb.key_command is set.",
					"Set one of them in postgresql.conf and reload the server.");
	if (is_set(settings::keyring_file) && is_set(settings::key_command))
		throw Error(ERRCODE_INVALID_PARAMETER_VALUE, "two master key providers are configured",
					"Both rustydb.keyring_file and rustydb.key_command are set.",
					"Set only one of them.");
}

void
fsync_or_throw(int fd, const std::string &what)
{
	if (pg_fsync(fd) != 0)
	{
		int err = errno;
		throw Error(ERRCODE_IO_ERROR, "could not fsync " + what + ": " + strerror(err));
	}
}

} /* namespace */

const char *
provider_description()
{
	if (is_set(settings::keyring_file))
		return "keyring_file";
	if (is_set(settings::key_command))
		return "key_command";
	return nullptr;
}

bool
provider_is_keyring_file()
{
	return is_set(settings::keyring_file) && !is_set(settings::key_command);
}

KeyId
key_id(const unsigned char *key, const char ctx[8])
{
	unsigned char sub[crypto_kdf_BYTES_MIN];
	KeyId id;

	crypto_kdf_derive_from_key(sub, sizeof(sub), 1, ctx, key);
	sodium_bin2hex(id.hex, sizeof(id.hex), sub, kKeyIdChars / 2);
	sodium_memzero(sub, sizeof(sub));
	return id;
}

MasterKey
current_master_key()
{
	require_provider();
	SecretBuffer key(kKeyBytes);

	if (is_set(settings::keyring_file))
	{
		read_keyring(settings::keyring_file,
					 [&](const unsigned char *k) { memcpy(key.p, k, kKeyBytes); });
	}
	else
		run_key_command(settings::key_command, "current", key.p);
	return remember(key_id(key.p, "rdbmkid_"), key.p);
}

MasterKey
master_key_by_id(const char *id_hex)
{
	for (int i = 0; i < n_cached; i++)
		if (strlen(id_hex) == kKeyIdChars &&
			sodium_memcmp(cached[i].id.hex, id_hex, kKeyIdChars) == 0)
			return MasterKey{cached[i].id, cached[i].key};

	require_provider();
	SecretBuffer key(kKeyBytes);
	bool found = false;
	std::string seen;

	if (is_set(settings::keyring_file))
	{
		read_keyring(settings::keyring_file, [&](const unsigned char *k) {
			KeyId id = key_id(k, "rdbmkid_");
			if (sodium_memcmp(id.hex, id_hex, kKeyIdChars) == 0)
			{
				memcpy(key.p, k, kKeyBytes);
				found = true;
			}
			if (!seen.empty())
				seen += ", ";
			seen += id.hex;
		});
	}
	else
	{
		run_key_command(settings::key_command, id_hex, key.p);
		KeyId id = key_id(key.p, "rdbmkid_");
		found = sodium_memcmp(id.hex, id_hex, kKeyIdChars) == 0;
		seen = id.hex;
	}
	if (!found)
		throw Error(ERRCODE_INVALID_PASSWORD,
					std::string("master key ") + id_hex + " is not available from " +
						provider_description(),
					"The key provider offers master key(s) " + seen + ".",
					"Configure the key provider that holds the master key these tables were "
					"encrypted with.");
	return remember(key_id(key.p, "rdbmkid_"), key.p);
}

MasterKey
keyring_add_new_key()
{
	if (!provider_is_keyring_file())
		throw Error(ERRCODE_FEATURE_NOT_SUPPORTED,
					"only a keyring file provider can generate a new master key");

	const char *path = settings::keyring_file;
	/* Validates location, owner and mode, and that the current file parses. */
	int count = read_keyring(path, [](const unsigned char *) {});
	if (count >= kMaxKeyringKeys)
		throw Error(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
					"keyring file \"" + std::string(path) + "\" is full",
					"It holds " + std::to_string(count) + " keys.",
					"Remove master keys no table uses any more (see rustydb.encryption_status).");

	/* old contents + the new key line, assembled in locked memory */
	SecretBuffer text(kMaxKeyringBytes + 2 * kKeyBytes + 4);
	size_t len = 0;
	{
		int fd = open_keyring(path);
		for (;;)
		{
			ssize_t n = ::read(fd, text.p + len, kMaxKeyringBytes - len);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			len += static_cast<size_t>(n);
		}
		::close(fd);
	}
	if (len > 0 && text.p[len - 1] != '\n')
		text.p[len++] = '\n';

	SecretBuffer key(kKeyBytes);
	randombytes_buf(key.p, kKeyBytes);
	sodium_bin2hex(reinterpret_cast<char *>(text.p + len), 2 * kKeyBytes + 1, key.p, kKeyBytes);
	len += 2 * kKeyBytes;
	text.p[len++] = '\n';

	std::string tmp = std::string(path) + ".new";
	int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
	{
		int err = errno;
		throw Error(ERRCODE_IO_ERROR, "could not create \"" + tmp + "\": " + strerror(err), {},
					"The directory of the keyring file must be writable by the server user.");
	}
	size_t off = 0;
	while (off < len)
	{
		ssize_t n = ::write(fd, text.p + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
		{
			int err = errno;
			::close(fd);
			unlink(tmp.c_str());
			throw Error(ERRCODE_IO_ERROR, "could not write \"" + tmp + "\": " + strerror(err));
		}
		off += static_cast<size_t>(n);
	}
	try
	{
		fchmod(fd, 0600);
		fsync_or_throw(fd, "\"" + tmp + "\"");
	}
	catch (...)
	{
		::close(fd);
		unlink(tmp.c_str());
		throw;
	}
	::close(fd);
	if (rename(tmp.c_str(), path) != 0)
	{
		int err = errno;
		unlink(tmp.c_str());
		throw Error(ERRCODE_IO_ERROR,
					"could not rename \"" + tmp + "\" to \"" + path + "\": " + strerror(err));
	}
	/* make the rename durable */
	std::string dir(path);
	dir = dir.substr(0, dir.rfind('/'));
	if (dir.empty())
		dir = "/";
	int dfd = ::open(dir.c_str(), O_RDONLY | O_CLOEXEC);
	if (dfd >= 0)
	{
		(void) pg_fsync(dfd);
		::close(dfd);
	}
	return remember(key_id(key.p, "rdbmkid_"), key.p);
}

namespace {

/*
 * What wrapping and unwrapping a data key share: the key-encryption key
 * derived from the master key, and the associated data the wrapped key is
 * bound to (a label, the relation, the key version and the algorithm, so a
 * wrapped key copied to another relation, version or algorithm does not
 * unwrap; the byte layout is part of the catalog format). The destructor
 * wipes the key-encryption key; nothing in between calls PostgreSQL.
 */
struct WrapContext
{
	static constexpr char kLabel[] = "rustydb-dk1";
	static constexpr size_t kAdMax = sizeof(kLabel) - 1 + sizeof(Oid) + sizeof(int32) + 1;

	unsigned char kek[kKeyBytes];
	unsigned char ad[kAdMax];
	size_t adlen = 0;

	WrapContext(const MasterKey &mk, Oid relid, int version, int algorithm)
	{
		int32 v = version;

		crypto_kdf_derive_from_key(kek, sizeof(kek), 1, "rdbwrap_", mk.key);
		memcpy(ad, kLabel, sizeof(kLabel) - 1);
		adlen = sizeof(kLabel) - 1;
		memcpy(ad + adlen, &relid, sizeof(relid));
		adlen += sizeof(relid);
		memcpy(ad + adlen, &v, sizeof(v));
		adlen += sizeof(v);
		ad[adlen++] = static_cast<unsigned char>(algorithm);
	}
	~WrapContext() { sodium_memzero(kek, sizeof(kek)); }
	WrapContext(const WrapContext &) = delete;
	WrapContext &operator=(const WrapContext &) = delete;
};

} /* namespace */

void
wrap_data_key(const MasterKey &mk, Oid relid, int version, int algorithm,
			  const unsigned char *data_key, unsigned char *wrapped)
{
	WrapContext w(mk, relid, version, algorithm);
	unsigned char *nonce = wrapped;
	unsigned long long clen = 0;

	randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
	crypto_aead_xchacha20poly1305_ietf_encrypt(
		wrapped + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &clen, data_key, kKeyBytes, w.ad,
		w.adlen, nullptr, nonce, w.kek);
}

bool
unwrap_data_key(const MasterKey &mk, Oid relid, int version, int algorithm,
				const unsigned char *wrapped, unsigned char *data_key)
{
	WrapContext w(mk, relid, version, algorithm);
	unsigned long long mlen = 0;
	int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(
		data_key, &mlen, nullptr, wrapped + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
		kWrappedBytes - crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, w.ad, w.adlen, wrapped,
		w.kek);

	if (rc != 0 || mlen != kKeyBytes)
	{
		sodium_memzero(data_key, kKeyBytes);
		return false;
	}
	return true;
}

void
forget_master_keys()
{
	for (int i = 0; i < n_cached; i++)
		sodium_free(cached[i].key);
	n_cached = 0;
	next_victim = 0;
}

} /* namespace crypto */
} /* namespace rustydb */

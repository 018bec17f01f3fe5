/*-------------------------------------------------------------------------
 *
 * sealed.cpp
 *	  Sealed columns of rustydb's own tables (see rustydb/crypto/sealed.h):
 *	  the statement text of the audit trail and of the ASH history.
 *
 * A sealed value is sealed exactly like a table payload (cipher.cpp), with
 * the cipher of its table (role Column, so a value cannot pass for a table
 * payload or a TOAST chunk, nor the reverse) and the associated data
 *	"rustydb sealed column" | 0 | column name | 0 | row (int64, big endian)
 * where row is the record's seq (audit) or the sample's id (ASH): a value
 * copied to another column or row does not open.
 *
 * Opening (rustydb._open_text, called by the views for sealed values
 * only) needs SELECT on the table or on its view. A value whose key
 * cannot be had (no key provider, the master key is not offered) reads
 * as NULL with one WARNING per statement, so the records' other columns
 * stay readable; a value that does not authenticate is an ERROR (XX001),
 * as for an encrypted table.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/crypto/sealed.h"

#include "rustydb/common/boundary.h"
#include "rustydb/crypto/crypto_catalog.h"
#include "rustydb/crypto/crypto_internal.h"

#include <cstring>

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/xact.h"
#include "catalog/namespace.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace crypto {

namespace {

/* Every sealed column: its table and column, and the view users read it through. */
struct SealedColumn
{
	const char *table;
	const char *column;
	const char *view;
};
constexpr SealedColumn kSealedColumns[] = {
	{"_audit_records", "statement", "audit_trail"},
	{"_audit_records", "detail", "audit_trail"},
	{"ash_history_data", "query", "ash_history"},
};

constexpr char kAadLabel[] = "rustydb sealed column";
constexpr size_t kMaxAad = sizeof(kAadLabel) + NAMEDATALEN + 1 + 8;

const SealedColumn *
find_column(Oid relid, const char *column)
{
	Oid ns = get_namespace_oid("rustydb", true);

	if (!OidIsValid(ns) || get_rel_namespace(relid) != ns)
		return nullptr;
	const char *name = get_rel_name(relid);
	for (const SealedColumn &c : kSealedColumns)
		if (name != nullptr && strcmp(c.table, name) == 0 && strcmp(c.column, column) == 0)
			return &c;
	return nullptr;
}

size_t
build_aad(unsigned char *buf, const char *column, int64 row)
{
	size_t n = 0, clen = strnlen(column, NAMEDATALEN);
	uint64 r = static_cast<uint64>(row);

	memcpy(buf, kAadLabel, sizeof(kAadLabel)); /* with its terminator */
	n += sizeof(kAadLabel);
	memcpy(buf + n, column, clen);
	n += clen;
	buf[n++] = 0;
	for (int i = 7; i >= 0; i--)
		buf[n++] = static_cast<unsigned char>(r >> (8 * i));
	return n;
}

[[noreturn]] void
not_sealed_column(Oid relid, const char *column)
{
	const char *name = get_rel_name(relid);

	ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					errmsg("%s.%s is not a sealed column of rustydb", name ? name : "?", column)));
}

/* What rustydb._open_text keeps between the rows of one call site. */
struct OpenState
{
	Oid relid;
	char column[NAMEDATALEN];
	const SealedColumn *sealed;
};

/* The call site's column, looked up and its privilege checked once. */
const SealedColumn *
checked_column(FunctionCallInfo fcinfo, Oid relid, const char *column)
{
	auto *st = static_cast<OpenState *>(fcinfo->flinfo->fn_extra);

	if (st != nullptr && st->relid == relid && strcmp(st->column, column) == 0)
		return st->sealed;
	const SealedColumn *sc = find_column(relid, column);
	if (sc == nullptr)
		not_sealed_column(relid, column);
	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
	{
		Oid view = get_relname_relid(sc->view, get_rel_namespace(relid));

		if (!OidIsValid(view) || pg_class_aclcheck(view, GetUserId(), ACL_SELECT) != ACLCHECK_OK)
			ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
							errmsg("permission denied to open sealed values of rustydb.%s.%s",
								   sc->table, sc->column),
							errhint("Reading them needs SELECT on rustydb.%s.", sc->view)));
	}
	if (st == nullptr)
	{
		st = static_cast<OpenState *>(
			MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(OpenState)));
		fcinfo->flinfo->fn_extra = st;
	}
	st->relid = relid;
	strlcpy(st->column, column, sizeof(st->column));
	st->sealed = sc;
	return sc;
}

/*
 * A table whose key this statement could not have: its values read as
 * NULL without asking the key provider again for every row (a key command
 * runs per attempt), and the WARNING is given once.
 */
struct Unopened
{
	Oid relid = InvalidOid;
	TimestampTz stmt = 0;
	LocalTransactionId lxid = InvalidLocalTransactionId;
};
Unopened unopened;

bool
known_unopened(Oid relid)
{
	return unopened.relid == relid && unopened.stmt == GetCurrentStatementStartTimestamp() &&
		   unopened.lxid == MyProc->lxid;
}

void
warn_unopened(Oid relid, const SealedColumn *sc, const char *why)
{
	unopened.relid = relid;
	unopened.stmt = GetCurrentStatementStartTimestamp();
	unopened.lxid = MyProc->lxid;
	ereport(WARNING,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("sealed values of rustydb.%s.%s cannot be opened: they read as NULL", sc->table,
					sc->column),
			 errdetail("%s", why),
			 errhint("rustydb stores statement text sealed while a key provider is configured; "
					 "configure the key provider that holds the master key of its data key "
					 "(rustydb.encryption_status).")));
}

} /* namespace */

bool
seal_own_text()
{
	return provider_description() != nullptr;
}

const Cipher *
own_table_cipher(Oid relid)
{
	const Cipher *c = relation_cipher_oid(relid);

	if (c != nullptr)
		return c;
	/* the first value to seal: one creator at a time makes the table's key */
	LockRelationOid(relid, ShareUpdateExclusiveLock);
	cache_forget(relid);
	if (!relation_has_keys(relid))
	{
		Algorithm alg = create_data_key(relid, Role::Column);
		/* other backends may have cached "no key" */
		CacheInvalidateRelcacheByRelid(relid);
		const char *name = get_rel_name(relid);
		audit_key_event(psprintf("rustydb.%s", name ? name : "?"),
						"create_table_key: data key version 1 (%s) for its sealed columns",
						algorithm_name(alg));
	}
	c = relation_cipher_oid(relid);
	if (c == nullptr)
		elog(ERROR, "rustydb: no data key for relation %u after creating it", relid);
	return c;
}

bytea *
seal_text(const Cipher *cipher, const char *column, int64 row, const char *text, size_t len)
{
	unsigned char aad[kMaxAad];
	size_t aadlen = build_aad(aad, column, row);
	bytea *out = static_cast<bytea *>(palloc(VARHDRSZ + sealed_size(len)));

	SET_VARSIZE(out, VARHDRSZ + sealed_size(len));
	seal(cipher, text, len, aad, aadlen, VARDATA(out));
	return out;
}

} /* namespace crypto */
} /* namespace rustydb */

using namespace rustydb::crypto;

/*
 * rustydb._seal_text(tab regclass, col text, rowkey bigint, val text)
 * returns bytea: val sealed for that sealed column and row; NULL when no
 * key provider is configured (the text is then stored as it is). For the
 * ASH worker's inserts; superuser.
 */
RUSTYDB_FUNCTION(rustydb_seal_text)
{
	Oid relid = PG_GETARG_OID(0);
	char *column = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int64 row = PG_GETARG_INT64(2);
	text *val = PG_GETARG_TEXT_PP(3);

	if (!superuser())
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						errmsg("must be superuser to call rustydb._seal_text()")));
	if (find_column(relid, column) == nullptr)
		not_sealed_column(relid, column);
	if (!seal_own_text())
		PG_RETURN_NULL();
	PG_RETURN_BYTEA_P(
		seal_text(own_table_cipher(relid), column, row, VARDATA_ANY(val), VARSIZE_ANY_EXHDR(val)));
}

/*
 * rustydb._open_text(tab regclass, col text, rowkey bigint, sealed bytea)
 * returns text: the views' opener of sealed values. Needs SELECT on the
 * table or its view; NULL with a WARNING (once per statement) when the key
 * cannot be had; an ERROR when the value does not authenticate.
 */
RUSTYDB_FUNCTION(rustydb_open_text)
{
	Oid relid = PG_GETARG_OID(0);
	char *column = text_to_cstring(PG_GETARG_TEXT_PP(1));
	int64 row = PG_GETARG_INT64(2);
	bytea *sealed = PG_GETARG_BYTEA_PP(3);
	const SealedColumn *sc = checked_column(fcinfo, relid, column);
	char why[512];

	if (known_unopened(relid))
		PG_RETURN_NULL();
	const Cipher *c = relation_cipher_try(relid, why, sizeof(why));
	if (c == nullptr)
	{
		if (why[0] == '\0')
			strlcpy(why, "rustydb.table_keys holds no data key for the table.", sizeof(why));
		warn_unopened(relid, sc, why);
		PG_RETURN_NULL();
	}
	size_t len = VARSIZE_ANY_EXHDR(sealed);
	size_t plen = len > kSealOverhead ? len - kSealOverhead : 0; /* open() checks the length */
	unsigned char aad[kMaxAad];
	size_t aadlen = build_aad(aad, sc->column, row);
	text *out = static_cast<text *>(palloc(VARHDRSZ + plen));

	SET_VARSIZE(out, VARHDRSZ + plen);
	open(c, VARDATA_ANY(sealed), len, aad, aadlen, VARDATA(out), InvalidBlockNumber);
	PG_RETURN_TEXT_P(out);
}

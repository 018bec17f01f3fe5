/*-------------------------------------------------------------------------
 *
 * catalog.cpp
 *	  rustydb.table_keys: per-table data keys, wrapped by the master key.
 *
 * One row per (relation, key version). The table is an ordinary heap
 * table of the extension, so PostgreSQL WAL-logs every change: crash
 * recovery, base backups and standbys have the wrapped keys. Rows are
 * written here with heap_form_tuple + CatalogTupleInsert/Update/Delete
 * (so creating an encrypted table needs no privilege on the catalog) and
 * read through its primary key index.
 *
 *	relid         the table (pg_class.oid)
 *	key_version   1 at creation, +1 per rotate_table_key
 *	is_current    the version new payloads are sealed with
 *	cipher        'aes-256-gcm' or 'xchacha20-poly1305'
 *	key_id        fingerprint of the data key (crypto_kdf; reveals nothing)
 *	master_key_id the master key that wraps it
 *	wrapped_key   XChaCha20-Poly1305(kek, data key), 72 bytes
 *	created, last_rotated
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/crypto/crypto_catalog.h"

#include "rustydb/common/boundary.h"
#include "rustydb/crypto/crypto_internal.h"

#include <cstring>
#include <string>

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/genam.h"
#include "access/heapam.h"
#include "storage/bufmgr.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_class.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
RUSTYDB_PG_INCLUDE_END

extern "C" {
static void
secure_free_callback(void *arg) noexcept
{
	rustydb::boundary::run("secure_free_callback", [&] { sodium_free(arg); });
}
}

namespace rustydb {
namespace crypto {

namespace {

Oid
catalog_index_oid()
{
	Oid ns = get_namespace_oid("rustydb", true);

	if (!OidIsValid(ns))
		return InvalidOid;
	return get_relname_relid("table_keys_pkey", ns);
}

text *
text_of(const char *s)
{
	return cstring_to_text(s);
}

bytea *
bytea_of(const unsigned char *p, size_t n)
{
	bytea *b = static_cast<bytea *>(palloc(VARHDRSZ + n));

	SET_VARSIZE(b, VARHDRSZ + n);
	memcpy(VARDATA(b), p, n);
	return b;
}

Algorithm
algorithm_of(const char *name)
{
	if (strcmp(name, "aes-256-gcm") == 0)
		return Algorithm::Aes256Gcm;
	if (strcmp(name, "xchacha20-poly1305") == 0)
		return Algorithm::XChaCha20Poly1305;
	return static_cast<Algorithm>(0);
}

/* Decode one row of rustydb.table_keys; ERROR when damaged. */
void
parse_row(HeapTuple tup, TupleDesc desc, KeyRow *out)
{
	Datum values[kKeyColumns];
	bool nulls[kKeyColumns];

	heap_deform_tuple(tup, desc, values, nulls);
	for (int i = 0; i < kKeyColumns; i++)
		if (nulls[i])
			ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
							errmsg("rustydb.table_keys has a null column")));
	Oid relid = DatumGetObjectId(values[0]);
	KeyRow &r = *out;
	memset(&r, 0, sizeof(r));
	r.relid = relid;
	r.tid = tup->t_self;
	r.version = DatumGetInt32(values[1]);
	r.current = DatumGetBool(values[2]);
	char *cipher = TextDatumGetCString(values[3]);
	r.alg = algorithm_of(cipher);
	char *key_id_text = TextDatumGetCString(values[4]);
	strlcpy(r.key_id.hex, key_id_text, sizeof(r.key_id.hex));
	char *mk = TextDatumGetCString(values[5]);
	strlcpy(r.master_key_id.hex, mk, sizeof(r.master_key_id.hex));
	bytea *w = DatumGetByteaPP(values[6]);
	if (VARSIZE_ANY_EXHDR(w) != kWrappedBytes || static_cast<int>(r.alg) == 0 || r.version < 1 ||
		r.version > 65535)
		ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
						errmsg("damaged data key entry for relation \"%s\" (key version %d)",
							   get_rel_name(relid) ? get_rel_name(relid) : "?", r.version),
						errdetail("rustydb.table_keys holds an invalid cipher, version or wrapped "
								  "key length.")));
	memcpy(r.wrapped, VARDATA_ANY(w), kWrappedBytes);
	r.created = DatumGetTimestampTz(values[7]);
	r.last_rotated = DatumGetTimestampTz(values[8]);
}

} /* namespace */

Role
role_of(Oid relid)
{
	HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));

	if (!HeapTupleIsValid(tup))
		return Role::Table;
	auto *form = reinterpret_cast<Form_pg_class>(GETSTRUCT(tup));
	Role role = form->relkind == RELKIND_TOASTVALUE ? Role::Toast
				: form->relkind == RELKIND_RELATION && form->relam == HEAP_TABLE_AM_OID
					? Role::Column
					: Role::Table;
	ReleaseSysCache(tup);
	return role;
}

Oid
keys_catalog_oid()
{
	Oid ns = get_namespace_oid("rustydb", true);

	if (!OidIsValid(ns))
		return InvalidOid;
	return get_relname_relid("table_keys", ns);
}

int
read_key_rows(Oid relid, Snapshot snapshot, KeyRow *rows, int max_rows)
{
	Oid cat = keys_catalog_oid();
	Oid idx = catalog_index_oid();
	int n = 0;

	if (!OidIsValid(cat) || !OidIsValid(idx))
		return 0;

	Relation rel = table_open(cat, AccessShareLock);
	bool own_snapshot = snapshot == nullptr;
	if (own_snapshot)
		snapshot = RegisterSnapshot(GetCatalogSnapshot(cat));

	ScanKeyData key;
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	SysScanDesc scan = systable_beginscan(rel, idx, true, snapshot, 1, &key);
	HeapTuple tup;
	TupleDesc desc = RelationGetDescr(rel);

	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		if (n >= max_rows)
			ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED),
							errmsg("relation \"%s\" has more than %d data key versions",
								   get_rel_name(relid) ? get_rel_name(relid) : "?", max_rows)));
		parse_row(tup, desc, &rows[n++]);
	}
	systable_endscan(scan);
	if (own_snapshot)
		UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	return n;
}

int
read_all_key_rows(KeyRow **rows)
{
	Oid cat = keys_catalog_oid();
	int n = 0, cap = 16;

	*rows = nullptr;
	if (!OidIsValid(cat))
		return 0;
	*rows = static_cast<KeyRow *>(palloc(sizeof(KeyRow) * cap));
	Relation rel = table_open(cat, AccessShareLock);
	SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, SnapshotSelf, 0, nullptr);
	HeapTuple tup;

	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		if (n == cap)
		{
			cap *= 2;
			*rows = static_cast<KeyRow *>(repalloc(*rows, sizeof(KeyRow) * cap));
		}
		parse_row(tup, RelationGetDescr(rel), &(*rows)[n++]);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return n;
}

bool
relation_has_keys(Oid relid)
{
	KeyRow rows[kMaxKeyVersions];

	return read_key_rows(relid, SnapshotSelf, rows, kMaxKeyVersions) > 0;
}

void
insert_key_row(Relation cat, Oid relid, int version, bool current, Algorithm alg,
			   const unsigned char *data_key, const MasterKey &mk, TimestampTz created)
{
	unsigned char wrapped[kWrappedBytes];
	Datum values[kKeyColumns];
	bool nulls[kKeyColumns];
	KeyId fp = key_id(data_key, "rdbdkfp_");

	wrap_data_key(mk, relid, version, static_cast<int>(alg), data_key, wrapped);
	memset(nulls, 0, sizeof(nulls));
	values[0] = ObjectIdGetDatum(relid);
	values[1] = Int32GetDatum(version);
	values[2] = BoolGetDatum(current);
	values[3] = PointerGetDatum(text_of(algorithm_name(alg)));
	values[4] = PointerGetDatum(text_of(fp.hex));
	values[5] = PointerGetDatum(text_of(mk.id.hex));
	values[6] = PointerGetDatum(bytea_of(wrapped, kWrappedBytes));
	values[7] = TimestampTzGetDatum(created);
	values[8] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());

	HeapTuple tup = heap_form_tuple(RelationGetDescr(cat), values, nulls);
	CatalogTupleInsert(cat, tup);
	heap_freetuple(tup);
}

void
update_key_row(Relation cat, const KeyRow &row, const MasterKey *mk, const unsigned char *data_key,
			   bool current)
{
	Datum values[kKeyColumns];
	bool nulls[kKeyColumns];
	bool replace[kKeyColumns];

	memset(nulls, 0, sizeof(nulls));
	memset(replace, 0, sizeof(replace));
	replace[2] = true;
	values[2] = BoolGetDatum(current);
	if (mk != nullptr)
	{
		unsigned char wrapped[kWrappedBytes];

		wrap_data_key(*mk, row.relid, row.version, static_cast<int>(row.alg), data_key, wrapped);
		replace[5] = replace[6] = true;
		values[5] = PointerGetDatum(text_of(mk->id.hex));
		values[6] = PointerGetDatum(bytea_of(wrapped, kWrappedBytes));
	}
	replace[8] = true;
	values[8] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());

	/* fetch the current version of the row and modify it */
	HeapTupleData old;
	Buffer buf;
	old.t_self = row.tid;
	if (!heap_fetch(cat, SnapshotSelf, &old, &buf, false))
		elog(ERROR, "rustydb: key row of relation %u vanished", row.relid);
	HeapTuple newtup = heap_modify_tuple(&old, RelationGetDescr(cat), values, nulls, replace);
	ReleaseBuffer(buf);
	CatalogTupleUpdate(cat, &newtup->t_self, newtup);
	heap_freetuple(newtup);
}

void
delete_key_rows(Oid relid)
{
	Oid cat = keys_catalog_oid();
	Oid idx = catalog_index_oid();

	if (!OidIsValid(cat) || !OidIsValid(idx) || relid == cat || relid == idx)
		return;
	Relation rel = table_open(cat, RowExclusiveLock);
	ScanKeyData key;
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	SysScanDesc scan = systable_beginscan(rel, idx, true, SnapshotSelf, 1, &key);
	HeapTuple tup;

	while (HeapTupleIsValid(tup = systable_getnext(scan)))
		CatalogTupleDelete(rel, &tup->t_self);
	systable_endscan(scan);
	table_close(rel, RowExclusiveLock);
}

unsigned char *
secure_alloc(size_t n)
{
	MemoryContextCallback *cb =
		static_cast<MemoryContextCallback *>(palloc(sizeof(MemoryContextCallback)));
	unsigned char *p = static_cast<unsigned char *>(sodium_malloc(n));

	if (p == nullptr)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
						errmsg("could not allocate locked memory for key material"),
						errhint("Check the memlock limit (ulimit -l) of the server.")));
	cb->func = secure_free_callback;
	cb->arg = p;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, cb);
	return p;
}

void
unwrap_row(const KeyRow &row, unsigned char *out)
{
	const char *relname = get_rel_name(row.relid);
	std::string name = relname ? relname : std::to_string(row.relid);
	MasterKey mk;

	try
	{
		mk = master_key_by_id(row.master_key_id.hex);
	}
	catch (const Error &e)
	{
		throw Error(e.sqlstate(), "cannot access encrypted relation \"" + name + "\": " + e.what(),
					e.detail(), e.hint());
	}
	if (!unwrap_data_key(mk, row.relid, row.version, static_cast<int>(row.alg), row.wrapped, out))
		throw Error(ERRCODE_DATA_CORRUPTED,
					"could not unwrap the data key of relation \"" + name + "\"",
					"Key version " + std::to_string(row.version) +
						" does not authenticate under master key " + mk.id.hex +
						": its entry in rustydb.table_keys was altered or belongs to another "
						"relation.",
					"Restore rustydb.table_keys from a backup.");
}

Cipher *
load_cipher(Oid relid)
{
	KeyRow rows[kMaxKeyVersions];
	int n = read_key_rows(relid, nullptr, rows, kMaxKeyVersions);

	if (n == 0)
		return nullptr;
	check_master_keys(); /* once per backend */

	unsigned char *keys = secure_alloc(kKeyBytes * n);
	DataKeyVersion versions[kMaxKeyVersions];

	for (int i = 0; i < n; i++)
	{
		unwrap_row(rows[i], keys + i * kKeyBytes);
		versions[i].version = static_cast<uint16_t>(rows[i].version);
		versions[i].alg = rows[i].alg;
		versions[i].current = rows[i].current;
		versions[i].key = keys + i * kKeyBytes;
	}
	Cipher *c = make_cipher(relid, role_of(relid), versions, n);
	sodium_memzero(keys, kKeyBytes * n);
	return c;
}

} /* namespace crypto */
} /* namespace rustydb */

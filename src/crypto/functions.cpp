/*-------------------------------------------------------------------------
 *
 * functions.cpp
 *	  SQL functions of the encryption subsystem: key rotation,
 *	  verification, and superuser self-test and benchmark functions.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/audit/audit.h"
#include "rustydb/common/boundary.h"
#include "rustydb/crypto/crypto_catalog.h"
#include "rustydb/crypto/crypto_internal.h"

#include <chrono>
#include <cstring>
#include <string>

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/heapam.h"
#include "storage/bufmgr.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"
#include "access/htup_details.h"
#include "executor/tuptable.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace crypto {

namespace {

Reencrypter reencrypter = nullptr;
PayloadVerifier payload_verifier = nullptr;

void
require_superuser(const char *fn)
{
	if (!superuser())
		ereport(ERROR, (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
						errmsg("must be superuser to call %s", fn)));
}

void
require_owner(Oid relid)
{
	char kind = get_rel_relkind(relid);

	if (kind == '\0')
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
						errmsg("relation with OID %u does not exist", relid)));
	if (!pg_class_ownercheck(relid, GetUserId()))
		aclcheck_error(ACLCHECK_NOT_OWNER, get_relkind_objtype(kind), get_rel_name(relid));
}

Oid
require_catalog()
{
	Oid cat = keys_catalog_oid();

	if (!OidIsValid(cat))
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("extension rustydb is not installed in this database")));
	return cat;
}

const Cipher *
require_cipher(Oid relid)
{
	const Cipher *c = relation_cipher_oid(relid);

	if (c == nullptr)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
						errmsg("relation \"%s\" is not encrypted",
							   get_rel_name(relid) ? get_rel_name(relid) : "?")));
	return c;
}

bytea *
new_bytea(size_t n)
{
	bytea *b = static_cast<bytea *>(palloc(VARHDRSZ + n));

	SET_VARSIZE(b, VARHDRSZ + n);
	return b;
}

void
put_check(ReturnSetInfo *rsinfo, const char *check, int ok /* -1 null */, const char *detail)
{
	Datum values[3];
	bool nulls[3] = {false, ok < 0, detail == nullptr};

	values[0] = CStringGetTextDatum(check);
	values[1] = BoolGetDatum(ok > 0);
	values[2] = detail ? CStringGetTextDatum(detail) : (Datum) 0;
	tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
}

} /* namespace */

void
set_reencrypter(Reencrypter fn)
{
	reencrypter = fn;
}

void
set_payload_verifier(PayloadVerifier fn)
{
	payload_verifier = fn;
}

} /* namespace crypto */
} /* namespace rustydb */

using namespace rustydb::crypto;

/*
 * rustydb.rotate_master_key() returns integer: re-wraps every data key
 * under a new master key, in this one transaction. With a keyring file the
 * new key is generated and appended to the keyring first (older keys stay
 * in it); with a key command, the command's current key is the new one.
 * Every wrapped key is unwrapped before anything is changed, so a missing
 * old master key aborts the rotation cleanly. Returns how many data keys
 * were re-wrapped.
 */
RUSTYDB_FUNCTION(rustydb_rotate_master_key)
{
	require_superuser("rustydb.rotate_master_key()");
	Oid cat = require_catalog();
	/* excludes concurrent rotations and key creation until commit */
	Relation rel = table_open(cat, ShareRowExclusiveLock);
	KeyRow *rows = nullptr;
	int n = read_all_key_rows(&rows);
	unsigned char *keys = secure_alloc(kKeyBytes * (n > 0 ? n : 1));

	for (int i = 0; i < n; i++)
		unwrap_row(rows[i], keys + i * kKeyBytes);

	MasterKey mk = provider_is_keyring_file() ? keyring_add_new_key() : current_master_key();
	int rewrapped = 0;

	for (int i = 0; i < n; i++)
	{
		if (sodium_memcmp(rows[i].master_key_id.hex, mk.id.hex, kKeyIdChars) == 0)
			continue;
		update_key_row(rel, rows[i], &mk, keys + i * kKeyBytes, rows[i].current);
		rewrapped++;
	}
	sodium_memzero(keys, kKeyBytes * (n > 0 ? n : 1));
	table_close(rel, NoLock);
	audit_key_event("master key", "rotate_master_key: new master key %.*s, %d data keys re-wrapped",
					static_cast<int>(kKeyIdChars), mk.id.hex, rewrapped);
	PG_RETURN_INT32(rewrapped);
}

/*
 * rustydb.rotate_table_key(regclass) returns integer: a new data key
 * version for the table; new payloads are sealed with it. When the table
 * access method has registered a re-encrypter (it has: a rewrite of the
 * table, see src/am/reencrypt.cpp), every stored payload is rewritten under
 * the new key and the older versions are deleted, all in this transaction.
 */
RUSTYDB_FUNCTION(rustydb_rotate_table_key)
{
	Oid relid = PG_GETARG_OID(0);

	require_owner(relid);
	Oid cat = require_catalog();
	Relation target = table_open(relid, AccessExclusiveLock);
	Relation rel = table_open(cat, RowExclusiveLock);
	KeyRow rows[kMaxKeyVersions];
	int n = read_key_rows(relid, SnapshotSelf, rows, kMaxKeyVersions);
	const char *name = RelationGetRelationName(target);

	if (n == 0)
		ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
						errmsg("relation \"%s\" is not encrypted", name)));
	if (role_of(relid) == Role::Column)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot rotate the data key of rustydb's own table \"%s\"", name),
				 errdetail("Its sealed statement text is kept under its data key until it ages "
						   "out of the table."),
				 errhint("rustydb.rotate_master_key() re-wraps this key with the others.")));
	if (n >= kMaxKeyVersions)
		ereport(ERROR,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("relation \"%s\" already has %d data key versions", name, n),
				 errdetail("At most %d versions can be in use at once.", kMaxKeyVersions),
				 errhint("Rewrite the table (VACUUM FULL) so that older versions are no longer "
						 "used.")));

	int newest = 0;
	for (int i = 0; i < n; i++)
		newest = Max(newest, rows[i].version);
	if (newest >= 65535)
		ereport(ERROR, (errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
						errmsg("relation \"%s\" has used every data key version", name)));

	MasterKey mk = current_master_key();
	unsigned char *key = secure_alloc(kKeyBytes);

	randombytes_buf(key, kKeyBytes);
	for (int i = 0; i < n; i++)
		if (rows[i].current)
			update_key_row(rel, rows[i], nullptr, nullptr, false);
	insert_key_row(rel, relid, newest + 1, true, preferred_algorithm(), key, mk,
				   GetCurrentTransactionStartTimestamp());

	/* the TOAST table shares the table's keys: same new version for it */
	Oid toast = target->rd_rel->reltoastrelid;
	if (OidIsValid(toast))
	{
		KeyRow trows[kMaxKeyVersions];
		int tn = read_key_rows(toast, SnapshotSelf, trows, kMaxKeyVersions);

		if (tn > 0)
		{
			for (int i = 0; i < tn; i++)
				if (trows[i].current)
					update_key_row(rel, trows[i], nullptr, nullptr, false);
			insert_key_row(rel, toast, newest + 1, true, preferred_algorithm(), key, mk,
						   GetCurrentTransactionStartTimestamp());
			CacheInvalidateRelcacheByRelid(toast);
		}
	}
	sodium_memzero(key, kKeyBytes);
	CacheInvalidateRelcacheByRelid(relid);
	CommandCounterIncrement();
	cache_forget(relid);
	if (OidIsValid(toast))
		cache_forget(toast);

	const char *label = relation_label(target);
	name = pstrdup(name);
	Oid old_filenode = target->rd_rel->relfilenode;
	bool populated = target->rd_rel->relkind != RELKIND_MATVIEW || RelationIsPopulated(target);
	/* the re-encrypter's rewrite refuses a table this session has open; the lock stays */
	table_close(target, NoLock);
	if (reencrypter != nullptr)
	{
		reencrypter(relid);
		CommandCounterIncrement();
		/* the rewrite may have given the table a new TOAST table (with copied keys) */
		Relation rewritten = table_open(relid, NoLock);
		toast = rewritten->rd_rel->reltoastrelid;
		bool new_storage = rewritten->rd_rel->relfilenode != old_filenode;
		table_close(rewritten, NoLock);
		/*
		 * The older versions may go only if the rewrite replaced the storage
		 * (an unpopulated materialized view has nothing stored to rewrite).
		 */
		if (!new_storage && populated)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("relation \"%s\" was not rewritten under its new data key", name),
					 errdetail("The older key versions are kept; nothing was changed.")));
		/* every payload is under the new version now: drop the older ones */
		Oid owners[2] = {relid, toast};
		for (Oid owner : owners)
		{
			if (!OidIsValid(owner))
				continue;
			KeyRow old[kMaxKeyVersions];
			int on = read_key_rows(owner, SnapshotSelf, old, kMaxKeyVersions);
			for (int i = 0; i < on; i++)
				if (old[i].version != newest + 1)
					CatalogTupleDelete(rel, &old[i].tid);
			CacheInvalidateRelcacheByRelid(owner);
		}
		CommandCounterIncrement();
		cache_forget(relid);
		if (OidIsValid(toast))
			cache_forget(toast);
	}
	else
	{
		ereport(
			NOTICE,
			(errmsg("new data of relation \"%s\" is sealed with key version %d", name, newest + 1),
			 errdetail("Payloads already stored stay sealed under their key version until "
					   "they are rewritten; the table access method registers no "
					   "re-encrypter.")));
	}
	table_close(rel, RowExclusiveLock);
	audit_key_event(label, "rotate_table_key: data key version %d", newest + 1);
	PG_RETURN_INT32(newest + 1);
}

/*
 * rustydb.verify_encryption(regclass) returns table (check, ok, detail):
 * every key version unwraps, seal/open round trip, tamper detection, and
 * the stored payloads when the table access method provides a verifier.
 */
RUSTYDB_FUNCTION(rustydb_verify_encryption)
{
	Oid relid = PG_GETARG_OID(0);
	ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);

	require_owner(relid);
	InitMaterializedSRF(fcinfo, 0);

	KeyRow rows[kMaxKeyVersions];
	int n = read_key_rows(relid, nullptr, rows, kMaxKeyVersions);
	const char *name = get_rel_name(relid);

	if (n == 0)
	{
		put_check(rsinfo, "encrypted", 0, psprintf("relation \"%s\" is not encrypted", name));
		return (Datum) 0;
	}
	int current = 0;
	for (int i = 0; i < n; i++)
		if (rows[i].current)
			current = rows[i].version;
	put_check(rsinfo, "encrypted", 1,
			  psprintf("%d key version(s), current version %d (%s)", n, current,
					   algorithm_name(rows[n - 1].alg)));

	bool all_unwrap = true;
	unsigned char *key = secure_alloc(kKeyBytes);
	for (int i = 0; i < n; i++)
	{
		char check[64];
		snprintf(check, sizeof(check), "key version %d unwraps", rows[i].version);
		try
		{
			unwrap_row(rows[i], key);
			KeyId fp = key_id(key, "rdbdkfp_");
			bool same = sodium_memcmp(fp.hex, rows[i].key_id.hex, kKeyIdChars) == 0;
			put_check(rsinfo, check, same ? 1 : 0,
					  same ? psprintf("master key %s", rows[i].master_key_id.hex)
						   : pstrdup("the unwrapped key does not match its recorded key id"));
			all_unwrap = all_unwrap && same;
		}
		catch (const rustydb::Error &e)
		{
			put_check(rsinfo, check, 0, pstrdup(e.what()));
			all_unwrap = false;
		}
	}
	sodium_memzero(key, kKeyBytes);

	if (!all_unwrap)
		return (Datum) 0;

	const Cipher *c = require_cipher(relid);
	unsigned char plain[200], sealed[sizeof(plain) + kSealOverhead], back[sizeof(plain)];
	const char aad[] = "verify";
	randombytes_buf(plain, sizeof(plain));
	seal(c, plain, sizeof(plain), aad, sizeof(aad), sealed);
	bool round = try_open(c, sealed, sizeof(sealed), aad, sizeof(aad), back) &&
				 sodium_memcmp(plain, back, sizeof(plain)) == 0;
	put_check(rsinfo, "seal and open", round ? 1 : 0, nullptr);

	bool tamper = true;
	for (size_t pos : {size_t(0), size_t(5), size_t(30), sizeof(sealed) - 1})
	{
		sealed[pos] ^= 0x01;
		if (try_open(c, sealed, sizeof(sealed), aad, sizeof(aad), back))
			tamper = false;
		sealed[pos] ^= 0x01;
	}
	if (try_open(c, sealed, sizeof(sealed), "other", 5, back))
		tamper = false;
	put_check(rsinfo, "tampering detected", tamper ? 1 : 0, nullptr);

	if (role_of(relid) == Role::Column)
		put_check(rsinfo, "stored payloads open", -1,
				  "not checked: the sealed statement text of rustydb's own tables is opened by "
				  "their views");
	else if (payload_verifier != nullptr)
	{
		Relation target = table_open(relid, AccessShareLock);
		PayloadCheck res{};
		payload_verifier(target, &res);
		table_close(target, AccessShareLock);
		char *detail = psprintf(INT64_FORMAT " payloads and " INT64_FORMAT
											 " large values checked, " INT64_FORMAT " failed",
								res.payloads, res.values, res.failed);
		if (res.values_skipped > 0)
			detail = psprintf("%s; " INT64_FORMAT " large values of dead versions not fetched",
							  detail, res.values_skipped);
		if (res.older_versions > 0)
			detail = psprintf("%s; " INT64_FORMAT " sealed under an older key version", detail,
							  res.older_versions);
		if (res.failed > 0)
			detail = psprintf("%s; first failure: %s", detail, res.first_failure);
		put_check(rsinfo, "stored payloads open", res.failed == 0 ? 1 : 0, detail);
	}
	else
		put_check(rsinfo, "stored payloads open", -1,
				  "not checked: the table access method registers no payload verifier");
	return (Datum) 0;
}

/* rustydb.tde_seal(regclass, payload bytea, aad bytea): superuser self-test. */
RUSTYDB_FUNCTION(rustydb_tde_seal)
{
	require_superuser("rustydb.tde_seal()");
	Oid relid = PG_GETARG_OID(0);
	bytea *payload = PG_GETARG_BYTEA_PP(1);
	bytea *aad = PG_GETARG_BYTEA_PP(2);
	const Cipher *c = require_cipher(relid);
	size_t len = VARSIZE_ANY_EXHDR(payload);
	size_t aadlen = VARSIZE_ANY_EXHDR(aad);

	if (aadlen > kMaxAadBytes)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("associated data is limited to %zu bytes", kMaxAadBytes)));
	bytea *out = new_bytea(sealed_size(len));
	seal(c, VARDATA_ANY(payload), len, VARDATA_ANY(aad), aadlen, VARDATA(out));
	PG_RETURN_BYTEA_P(out);
}

/* rustydb.tde_open(regclass, sealed bytea, aad bytea, blkno int): superuser self-test. */
RUSTYDB_FUNCTION(rustydb_tde_open)
{
	require_superuser("rustydb.tde_open()");
	Oid relid = PG_GETARG_OID(0);
	bytea *sealed = PG_GETARG_BYTEA_PP(1);
	bytea *aad = PG_GETARG_BYTEA_PP(2);
	int32 blk = PG_GETARG_INT32(3);
	const Cipher *c = require_cipher(relid);
	size_t len = VARSIZE_ANY_EXHDR(sealed);
	size_t aadlen = VARSIZE_ANY_EXHDR(aad);
	BlockNumber blkno = blk < 0 ? InvalidBlockNumber : static_cast<BlockNumber>(blk);

	if (aadlen > kMaxAadBytes)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("associated data is limited to %zu bytes", kMaxAadBytes)));
	size_t plen = opened_size(c, len, blkno);
	bytea *out = new_bytea(plen);
	open(c, VARDATA_ANY(sealed), len, VARDATA_ANY(aad), aadlen, VARDATA(out), blkno);
	PG_RETURN_BYTEA_P(out);
}

/* rustydb.master_key_info(): provider and current master key id (superuser). */
RUSTYDB_FUNCTION(rustydb_master_key_info)
{
	require_superuser("rustydb.master_key_info()");
	TupleDesc desc;
	if (get_call_result_type(fcinfo, nullptr, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	desc = BlessTupleDesc(desc);
	MasterKey mk = current_master_key();
	Datum values[2];
	bool nulls[2] = {false, false};

	values[0] = CStringGetTextDatum(provider_description());
	values[1] = CStringGetTextDatum(mk.id.hex);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}

/*
 * rustydb.tde_cipher_bench(payload_bytes, iterations): the sealing and
 * opening paths of this file (same code as the table access method uses),
 * with a throwaway key, for every algorithm this CPU offers. Superuser.
 */
RUSTYDB_FUNCTION(rustydb_tde_cipher_bench)
{
	require_superuser("rustydb.tde_cipher_bench()");
	int32 bytes = PG_GETARG_INT32(0);
	int32 iterations = PG_GETARG_INT32(1);
	ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);

	if (bytes < 1 || bytes > 1024 * 1024 || iterations < 1 || iterations > 10000000)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("payload_bytes must be 1..1048576 and iterations 1..10000000")));
	InitMaterializedSRF(fcinfo, 0);

	unsigned char *plain = static_cast<unsigned char *>(palloc(bytes));
	unsigned char *sealed = static_cast<unsigned char *>(palloc(sealed_size(bytes)));
	unsigned char *back = static_cast<unsigned char *>(palloc(bytes));
	unsigned char *key = secure_alloc(kKeyBytes);
	randombytes_buf(plain, bytes);
	randombytes_buf(key, kKeyBytes);

	Algorithm algs[2];
	int nalg = 0;
	if (aes_available())
		algs[nalg++] = Algorithm::Aes256Gcm;
	algs[nalg++] = Algorithm::XChaCha20Poly1305;

	for (int a = 0; a < nalg; a++)
	{
		DataKeyVersion v{1, algs[a], true, key};
		Cipher *c = make_cipher(InvalidOid, Role::Table, &v, 1);

		for (int op = 0; op < 2; op++)
		{
			auto t0 = std::chrono::steady_clock::now();
			bool ok = true;
			if (op == 0)
				for (int i = 0; i < iterations; i++)
					seal(c, plain, bytes, nullptr, 0, sealed);
			else
				for (int i = 0; i < iterations; i++)
					ok = try_open(c, sealed, sealed_size(bytes), nullptr, 0, back) && ok;
			auto t1 = std::chrono::steady_clock::now();
			double ns = std::chrono::duration<double, std::nano>(t1 - t0).count() / iterations;
			if (!ok)
			{
				free_cipher(c);
				ereport(ERROR,
						(errcode(ERRCODE_INTERNAL_ERROR), errmsg("benchmark round trip failed")));
			}
			Datum values[5];
			bool nulls[5] = {false, false, false, false, false};
			values[0] = CStringGetTextDatum(algorithm_name(algs[a]));
			values[1] = CStringGetTextDatum(op == 0 ? "seal" : "open");
			values[2] = Int32GetDatum(bytes);
			values[3] = Float8GetDatum(ns);
			values[4] = Float8GetDatum(bytes / ns * 1e9 / 1e6);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
		free_cipher(c);
	}
	PG_RETURN_NULL();
}

/*
 * rustydb.tde_tuple_selftest(rel regclass, row record): the tuple-level
 * helpers the table access method uses, on the heap-layout tuple of row:
 * seal, open (copy and into a heap-tuple slot), and tampering with
 * each authenticated header field. Superuser.
 */
RUSTYDB_FUNCTION(rustydb_tde_tuple_selftest)
{
	require_superuser("rustydb.tde_tuple_selftest()");
	Oid relid = PG_GETARG_OID(0);
	HeapTupleHeader th = PG_GETARG_HEAPTUPLEHEADER(1);
	const Cipher *c = require_cipher(relid);
	TupleDesc result_desc;

	if (get_call_result_type(fcinfo, nullptr, &result_desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	result_desc = BlessTupleDesc(result_desc);

	HeapTupleData plain;
	plain.t_len = HeapTupleHeaderGetDatumLength(th);
	plain.t_data = th;
	ItemPointerSet(&plain.t_self, 7, 3);
	plain.t_tableOid = relid;

	HeapTuple sealed = seal_tuple(c, &plain);
	HeapTuple opened = open_tuple_copy(c, sealed, 7);
	bool round_trip = opened->t_len == plain.t_len &&
					  memcmp(opened->t_data, plain.t_data, plain.t_len) == 0 &&
					  ItemPointerEquals(&opened->t_self, &plain.t_self);

	/*
	 * into a slot as the access method hands rows of encrypted tables to the
	 * executor (a heap-tuple slot owning the opened copy), then read every
	 * attribute back
	 */
	TupleDesc rowdesc =
		lookup_rowtype_tupdesc_copy(HeapTupleHeaderGetTypeId(th), HeapTupleHeaderGetTypMod(th));
	TupleTableSlot *slot = MakeSingleTupleTableSlot(rowdesc, &TTSOpsHeapTuple);
	ExecStoreHeapTuple(open_tuple_copy(c, sealed, 7), slot, true);
	slot_getallattrs(slot);
	HeapTuple reformed = heap_form_tuple(rowdesc, slot->tts_values, slot->tts_isnull);
	uint32 plain_hoff = plain.t_data->t_hoff;
	bool slot_round_trip = reformed->t_len == plain.t_len &&
						   memcmp(reinterpret_cast<char *>(reformed->t_data) + plain_hoff,
								  reinterpret_cast<char *>(plain.t_data) + plain_hoff,
								  plain.t_len - plain_hoff) == 0 &&
						   ItemPointerEquals(&slot->tts_tid, &plain.t_self) &&
						   slot->tts_tableOid == relid;
	ExecDropSingleTupleTableSlot(slot);

	/* tampering: each must fail to open, except fields outside the AD */
	HeapTuple scratch = static_cast<HeapTuple>(palloc(HEAPTUPLESIZE + sealed->t_len));
	scratch->t_data =
		reinterpret_cast<HeapTupleHeader>(reinterpret_cast<char *>(scratch) + HEAPTUPLESIZE);
	HeapTuple t = heap_copytuple(sealed);
	int bitmap = -1;
	if (t->t_data->t_infomask & HEAP_HASNULL)
	{
		t->t_data->t_bits[0] ^= 0x01;
		bitmap = try_open_tuple(c, t, scratch) ? 0 : 1;
		t->t_data->t_bits[0] ^= 0x01;
	}
	uint16 natts = HeapTupleHeaderGetNatts(t->t_data);
	HeapTupleHeaderSetNatts(t->t_data, natts - 1);
	bool natts_detected = !try_open_tuple(c, t, scratch);
	HeapTupleHeaderSetNatts(t->t_data, natts);
	t->t_data->t_infomask ^= HEAP_HASVARWIDTH;
	bool flags_detected = !try_open_tuple(c, t, scratch);
	t->t_data->t_infomask ^= HEAP_HASVARWIDTH;
	char *last = reinterpret_cast<char *>(t->t_data) + t->t_len - 1;
	*last ^= 0x40;
	bool payload_detected = !try_open_tuple(c, t, scratch);
	*last ^= 0x40;
	t->t_data->t_infomask |= HEAP_XMIN_COMMITTED | HEAP_XMAX_INVALID;
	HeapTupleHeaderSetXmax(t->t_data, 12345);
	bool hints_ignored = try_open_tuple(c, t, scratch);

	Datum values[9];
	bool nulls[9] = {false, false, false, false, false, bitmap < 0, false, false, false};
	bytea *sealed_bytes = static_cast<bytea *>(palloc(VARHDRSZ + sealed->t_len));
	SET_VARSIZE(sealed_bytes, VARHDRSZ + sealed->t_len);
	memcpy(VARDATA(sealed_bytes), sealed->t_data, sealed->t_len);
	values[0] = Int32GetDatum(static_cast<int32>(plain.t_len));
	values[1] = Int32GetDatum(static_cast<int32>(sealed->t_len));
	values[2] = BoolGetDatum(round_trip);
	values[3] = BoolGetDatum(slot_round_trip);
	values[4] = PointerGetDatum(sealed_bytes);
	values[5] = BoolGetDatum(bitmap == 1);
	values[6] = BoolGetDatum(natts_detected && flags_detected);
	values[7] = BoolGetDatum(payload_detected);
	values[8] = BoolGetDatum(hints_ignored);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(result_desc, values, nulls)));
}

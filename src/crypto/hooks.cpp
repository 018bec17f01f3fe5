/*-------------------------------------------------------------------------
 *
 * hooks.cpp
 *	  Which tables are encrypted: the `encrypted` table option,
 *	  rustydb.encrypt_new_tables, key creation and removal, the
 *	  plaintext-index warning.
 *
 * PostgreSQL 15 validates a table's WITH (...) options with heap's fixed
 * parser whatever the table's access method, and a custom option added
 * to RELOPT_KIND_HEAP makes that parser fail for every table. So the
 * utility hook takes `encrypted` out of CREATE TABLE and CREATE TABLE AS
 * (after checking the table uses the rustydb access method) and the
 * object access hook, which runs when the relation's pg_class row exists,
 * creates the table's data key. The option is therefore not kept in
 * pg_class.reloptions: rustydb.table_keys is the record of which tables
 * are encrypted.
 *
 * Relation rewrites (ALTER TABLE, CLUSTER, VACUUM FULL) fill a transient
 * relation "pg_temp_<oid>" and swap its storage into the original; the
 * transient relation of an encrypted table gets copies of the original's
 * data keys (same key material, same versions) so that what is written
 * into it is sealed and remains readable after the swap.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/audit/audit.h"
#include "rustydb/common/boundary.h"
#include "rustydb/common/settings.h"
#include "rustydb/common/tools.h"
#include "rustydb/crypto/crypto_catalog.h"
#include "rustydb/crypto/crypto_internal.h"
#include "rustydb/crypto/pagecache.h"

#include <cstring>

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_class.h"
#include "catalog/pg_index.h"
#include "commands/defrem.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace crypto {

void
audit_key_event(const char *object, const char *fmt, ...)
{
	char detail[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	audit::security_event("key_management", object, detail);
}

const char *
relation_label(Relation rel)
{
	return quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
									  RelationGetRelationName(rel));
}

namespace {

/* -1: no explicit option (rustydb.encrypt_new_tables decides); 0/1: explicit. */
int pending_encrypted = -1;

/*
 * Tables and materialized views created (not internally) since the
 * outermost utility statement began, and whether each got a data key;
 * each utility step handles those its statement created and forgets them.
 */
struct Created
{
	Oid relid;
	bool encrypted;
};
constexpr int kMaxCreated = 256;
Created created[kMaxCreated];
int n_created = 0;

void
note_created(Oid relid, bool encrypted)
{
	if (n_created < kMaxCreated)
		created[n_created++] = Created{relid, encrypted};
	else
		elog(LOG,
			 "rustydb: more than %d tables created by one statement; table %u's "
			 "\"encrypted\" option is not stored",
			 kMaxCreated, relid);
}

constexpr const char *kOption = "encrypted";

bool
is_option(const DefElem *d)
{
	return d->defnamespace == nullptr && strcmp(d->defname, kOption) == 0;
}

DefElem *
find_option(List *options)
{
	ListCell *lc;

	foreach (lc, options)
	{
		DefElem *d = lfirst_node(DefElem, lc);

		if (is_option(d))
			return d;
	}
	return nullptr;
}

List *
remove_option(List *options)
{
	List *out = NIL;
	ListCell *lc;

	foreach (lc, options)
	{
		DefElem *d = lfirst_node(DefElem, lc);

		if (!is_option(d))
			out = lappend(out, d);
	}
	return out;
}

/*
 * Look at a utility statement: returns the explicit encrypted request
 * (-1 none, 0, 1) and, when the option is present, replaces *pstmt by a
 * copy without it.
 */
int
inspect(PlannedStmt **pstmt)
{
	Node *node = (*pstmt)->utilityStmt;
	List *options = NIL;
	const char *am = nullptr;
	bool partitioned = false;

	if (IsA(node, CreateStmt))
	{
		CreateStmt *cs = castNode(CreateStmt, node);

		options = cs->options;
		am = cs->accessMethod;
		partitioned = cs->partspec != nullptr;
	}
	else if (IsA(node, CreateTableAsStmt))
	{
		CreateTableAsStmt *ctas = castNode(CreateTableAsStmt, node);

		if (ctas->into == nullptr)
			return -1;
		options = ctas->into->options;
		am = ctas->into->accessMethod;
	}
	else if (IsA(node, AlterTableStmt))
	{
		AlterTableStmt *at = castNode(AlterTableStmt, node);
		ListCell *lc;

		foreach (lc, at->cmds)
		{
			AlterTableCmd *cmd = lfirst_node(AlterTableCmd, lc);

			if ((cmd->subtype == AT_SetRelOptions || cmd->subtype == AT_ResetRelOptions ||
				 cmd->subtype == AT_ReplaceRelOptions) &&
				cmd->def != nullptr && IsA(cmd->def, List) &&
				find_option(castNode(List, cmd->def)) != nullptr)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot change option \"encrypted\" of an existing table"),
						 errhint("Create a new table with CREATE TABLE ... USING rustydb WITH "
								 "(encrypted = true) AS SELECT ... and swap the names.")));
		}
		return -1;
	}
	else
		return -1;

	DefElem *def = find_option(options);
	if (def == nullptr)
		return -1;

	bool value = defGetBoolean(def);
	if (am == nullptr)
		am = default_table_access_method;
	if (partitioned)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("option \"encrypted\" cannot be set on a partitioned table"),
						errhint("Set it on each partition, or set rustydb.encrypt_new_tables.")));
	if (am == nullptr || strcmp(am, "rustydb") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("option \"encrypted\" is only valid for tables using the rustydb access "
						"method"),
				 errdetail("The table would use access method \"%s\".", am ? am : ""),
				 errhint("Add USING rustydb to the statement.")));

	/* a private copy without the option (the tree may be cached) */
	PlannedStmt *copy = static_cast<PlannedStmt *>(copyObjectImpl(*pstmt));
	node = copy->utilityStmt;
	if (IsA(node, CreateStmt))
		castNode(CreateStmt, node)->options = remove_option(castNode(CreateStmt, node)->options);
	else
	{
		IntoClause *into = castNode(CreateTableAsStmt, node)->into;

		into->options = remove_option(into->options);
	}
	*pstmt = copy;
	return value ? 1 : 0;
}

/*
 * pg_repack's copy of a rustydb table (and, for an encrypted table, its
 * change log) is created as a rustydb table whatever the session's
 * default access method, so that pg_repack's file swap exchanges rustydb
 * files (tools.h). Returns the statement to run (a private copy when
 * changed).
 */
PlannedStmt *
steer_tool_tables(PlannedStmt *pstmt)
{
	Node *node = pstmt->utilityStmt;
	RangeVar *target = nullptr;
	if (IsA(node, CreateTableAsStmt))
	{
		auto *ctas = castNode(CreateTableAsStmt, node);
		if (ctas->into != nullptr && ctas->objtype == OBJECT_TABLE)
			target = ctas->into->rel;
	}
	else if (IsA(node, CreateStmt))
		target = castNode(CreateStmt, node)->relation;
	if (target == nullptr || target->schemaname == nullptr)
		return pstmt;

	Oid orig;
	tools::RepackRole role = tools::pg_repack_role(target->schemaname, target->relname, &orig);
	if (role == tools::RepackRole::kNone ||
		(role == tools::RepackRole::kLog &&
		 !(OidIsValid(keys_catalog_oid()) && relation_has_keys(orig))))
		return pstmt;

	auto *copy = static_cast<PlannedStmt *>(copyObjectImpl(pstmt));
	if (IsA(copy->utilityStmt, CreateTableAsStmt))
		castNode(CreateTableAsStmt, copy->utilityStmt)->into->accessMethod = pstrdup("rustydb");
	else
		castNode(CreateStmt, copy->utilityStmt)->accessMethod = pstrdup("rustydb");
	elog(DEBUG1, "rustydb: pg_repack's %s of table %u is created as a rustydb table",
		 role == tools::RepackRole::kCopy ? "copy" : "change log", orig);
	return copy;
}

/* The pg_class row of a relation created in this command (SnapshotSelf). */
bool
class_row(Oid relid, char *relkind, Oid *relam, NameData *relname, Oid *relnamespace = nullptr)
{
	Relation rel = table_open(RelationRelationId, AccessShareLock);
	ScanKeyData key;
	bool found = false;

	ScanKeyInit(&key, Anum_pg_class_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	SysScanDesc scan = systable_beginscan(rel, ClassOidIndexId, true, SnapshotSelf, 1, &key);
	HeapTuple tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		Form_pg_class form = reinterpret_cast<Form_pg_class>(GETSTRUCT(tup));

		*relkind = form->relkind;
		*relam = form->relam;
		*relname = form->relname;
		if (relnamespace != nullptr)
			*relnamespace = form->relnamespace;
		found = true;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

Oid
index_table(Oid indexid)
{
	Relation rel = table_open(IndexRelationId, AccessShareLock);
	ScanKeyData key;
	Oid table = InvalidOid;

	ScanKeyInit(&key, Anum_pg_index_indexrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(indexid));
	SysScanDesc scan = systable_beginscan(rel, IndexRelidIndexId, true, SnapshotSelf, 1, &key);
	HeapTuple tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		table = reinterpret_cast<Form_pg_index>(GETSTRUCT(tup))->indrelid;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return table;
}

Oid
require_catalog()
{
	Oid cat = keys_catalog_oid();

	if (!OidIsValid(cat))
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("cannot create an encrypted table: extension rustydb is not "
							   "installed in this database"),
						errhint("Run CREATE EXTENSION rustydb.")));
	return cat;
}

/* A new data key (version 1) for a new table. */
void
create_table_key(Oid relid)
{
	Algorithm alg = create_data_key(relid, Role::Table);
	/* the new pg_class row is not in the syscache yet */
	char kind;
	Oid am, nsp = InvalidOid;
	NameData name;
	bool known = class_row(relid, &kind, &am, &name, &nsp);
	audit_key_event(known ? quote_qualified_identifier(get_namespace_name(nsp), NameStr(name))
						  : psprintf("relation %u", relid),
					"create_table_key: data key version 1 (%s)",
					alg == Algorithm::XChaCha20Poly1305 ? "xchacha20-poly1305" : "aes-256-gcm");
	check_master_keys(relid, known ? NameStr(name) : nullptr);
}

/*
 * The transient relation of a rewrite, or the TOAST table of an encrypted
 * table, gets copies of the original's keys (re-wrapped for its OID).
 */
void
clone_keys(Oid new_relid, Oid orig, Role role)
{
	const Cipher *c = relation_cipher_oid(orig);

	if (c == nullptr)
		return;
	Oid cat = require_catalog();
	MasterKey mk = current_master_key();
	Relation rel = table_open(cat, RowExclusiveLock);
	DataKeyVersion v[kMaxKeyVersions];

	for (int i = 0; i < c->nversions; i++)
	{
		insert_key_row(rel, new_relid, c->versions[i], i == c->current, c->algs[i],
					   c->secrets->keys[i], mk, GetCurrentTransactionStartTimestamp());
		v[i] = DataKeyVersion{c->versions[i], c->algs[i], i == c->current, c->secrets->keys[i]};
	}
	table_close(rel, RowExclusiveLock);
	cache_put_created(new_relid, make_cipher(new_relid, role, v, c->nversions));
	elog(DEBUG1, "rustydb: relation %u shares the data keys of encrypted relation %u", new_relid,
		 orig);
}

void
relation_created(Oid relid, bool is_internal)
{
	char relkind = 0;
	Oid relam = InvalidOid, relnsp = InvalidOid;
	NameData relname;

	if (!class_row(relid, &relkind, &relam, &relname, &relnsp))
		return;

	if (relkind == RELKIND_INDEX || relkind == RELKIND_PARTITIONED_INDEX)
	{
		Oid table = index_table(relid);

		char tkind = 0;
		Oid tam;
		NameData tname;

		/*
		 * A TOAST table's own index holds chunk ids, not data; pg_repack's
		 * copy gets the original's indexes again and its log an index of
		 * row numbers; rustydb's own tables with sealed columns keep their
		 * sealed values as bytes (sealed.cpp): no new plaintext, no warning.
		 */
		Oid tnsp = InvalidOid, orig;
		if (!OidIsValid(table) || !class_row(table, &tkind, &tam, &tname, &tnsp))
			return;
		if (tkind != RELKIND_TOASTVALUE && OidIsValid(keys_catalog_oid()) &&
			tools::pg_repack_role(tnsp, NameStr(tname), &orig) == tools::RepackRole::kNone &&
			relation_has_keys(table) && role_of(table) != Role::Column)
		{
			ereport(settings::plaintext_index_action == 1   ? ERROR
					: settings::plaintext_index_action == 2 ? LOG
															: WARNING,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("index \"%s\" on encrypted table \"%s\" stores its keys in plaintext",
							NameStr(relname), NameStr(tname)),
					 errdetail("PostgreSQL's index access methods write index keys to disk and "
							   "to WAL unencrypted."),
					 errhint("Do not index sensitive columns of encrypted tables. "
							 "rustydb.plaintext_index_action = error forbids such indexes.")));
		}
		return;
	}
	if (relkind != RELKIND_RELATION && relkind != RELKIND_MATVIEW && relkind != RELKIND_TOASTVALUE)
		return;
	Oid am = get_am_oid("rustydb", true);
	if (!OidIsValid(am) || relam != am)
	{
		if (!is_internal && relkind != RELKIND_TOASTVALUE)
			note_created(relid, false);
		return;
	}

	if (relkind == RELKIND_TOASTVALUE)
	{
		/* create_toast_table() names it pg_toast_<table oid> */
		unsigned int owner = 0;
		char tail;

		if (sscanf(NameStr(relname), "pg_toast_%u%c", &owner, &tail) == 1 && owner != 0 &&
			OidIsValid(keys_catalog_oid()) && relation_has_keys(static_cast<Oid>(owner)))
			clone_keys(relid, static_cast<Oid>(owner), Role::Toast);
		return;
	}

	if (is_internal)
	{
		/* make_new_heap() names the transient relation pg_temp_<original oid> */
		unsigned int orig = 0;
		char tail;

		if (sscanf(NameStr(relname), "pg_temp_%u%c", &orig, &tail) == 1 && orig != 0 &&
			OidIsValid(keys_catalog_oid()) && relation_has_keys(static_cast<Oid>(orig)))
			clone_keys(relid, static_cast<Oid>(orig), Role::Table);
		return;
	}

	/*
	 * pg_repack's copy has exactly the original's keys (none for a plain
	 * table, whatever rustydb.encrypt_new_tables says): the swap gives its
	 * files to the original, whose keys must open them. Its change log of
	 * an encrypted table is sealed with them too.
	 */
	Oid orig;
	tools::RepackRole role = tools::pg_repack_role(relnsp, NameStr(relname), &orig);
	if (role != tools::RepackRole::kNone)
	{
		bool has_keys = OidIsValid(keys_catalog_oid()) && relation_has_keys(orig);
		if (has_keys || role == tools::RepackRole::kCopy)
		{
			pending_encrypted = -1;
			if (has_keys)
				clone_keys(relid, orig, Role::Table);
			return;
		}
	}

	bool encrypt = pending_encrypted >= 0 ? pending_encrypted == 1 : settings::encrypt_new_tables;
	pending_encrypted = -1;
	if (encrypt)
		create_table_key(relid);
	note_created(relid, encrypt);
}

} /* namespace */

Algorithm
create_data_key(Oid relid, Role role)
{
	Oid cat = require_catalog();
	MasterKey mk = current_master_key(); /* throws without a provider */
	Algorithm alg = preferred_algorithm();
	unsigned char *key = static_cast<unsigned char *>(sodium_malloc(kKeyBytes));

	if (key == nullptr)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
						errmsg("could not allocate locked memory for key material")));
	randombytes_buf(key, kKeyBytes);

	Relation rel = table_open(cat, RowExclusiveLock);
	insert_key_row(rel, relid, 1, true, alg, key, mk, GetCurrentTransactionStartTimestamp());
	table_close(rel, RowExclusiveLock);

	DataKeyVersion v{1, alg, true, key};
	Cipher *c = make_cipher(relid, role, &v, 1);
	sodium_free(key);
	cache_put_created(relid, c);
	return alg;
}

void
hooks_xact_end()
{
	pending_encrypted = -1;
	n_created = 0;
}

} /* namespace crypto */
} /* namespace rustydb */

namespace rustydb {
namespace crypto {

void
hook_process_utility(hooks::UtilityCall &call)
{
	PlannedStmt *stmt = steer_tool_tables(call.pstmt);
	int request = inspect(&stmt);
	DerivedCheck derived;
	request = derived_table_request(&stmt, request, &derived);
	Oid altered = IsA(stmt->utilityStmt, AlterTableStmt)
					  ? alter_begin(castNode(AlterTableStmt, stmt->utilityStmt))
					  : InvalidOid;
	int saved = pending_encrypted;
	int first_created = n_created;

	if (stmt != call.pstmt)
	{
		call.pstmt = stmt;
		call.read_only_tree = false;
	}
	pending_encrypted = request;
	call.proceed();
	pending_encrypted = saved;

	/* what this statement created: encrypted ones keep the option, for pg_dump (dump.cpp) */
	Oid made = InvalidOid;
	for (int i = first_created; i < n_created && i < kMaxCreated; i++)
	{
		if (!OidIsValid(made))
			made = created[i].relid;
		if (created[i].encrypted)
			store_encrypted_option(created[i].relid);
	}
	n_created = Min(first_created, n_created);
	alter_end(altered);
	derived_table_check(derived, made);
}

/* A dropped relation's (or a rewrite's old file's) opened payloads leave the shared cache. */
static void
forget_cached_payloads(Oid relid)
{
	if (!pagecache::enabled())
		return;
	Relation rel = RelationIdGetRelation(relid);
	if (rel == nullptr)
		return;
	if (RELKIND_HAS_STORAGE(rel->rd_rel->relkind) && !RelationUsesLocalBuffers(rel))
		pagecache::forget_node(rel->rd_node);
	RelationClose(rel);
}

void
hook_object_access(hooks::ObjectAccessCall &call)
{
	call.proceed();
	if (call.class_id != RelationRelationId || call.sub_id != 0)
		return;
	if (call.access == OAT_POST_CREATE)
	{
		auto *pc = static_cast<ObjectAccessPostCreate *>(call.arg);

		relation_created(call.object_id, pc != nullptr && pc->is_internal);
	}
	else if (call.access == OAT_DROP)
	{
		delete_key_rows(call.object_id);
		cache_forget(call.object_id);
		forget_cached_payloads(call.object_id);
	}
}

} /* namespace crypto */
} /* namespace rustydb */

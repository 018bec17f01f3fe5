/*-------------------------------------------------------------------------
 *
 * dump.cpp
 *	  "encrypted=true" in pg_class.reloptions, so that pg_dump carries it.
 *
 * pg_dump writes a table's pg_class.reloptions into its CREATE TABLE
 * (WITH (...)) and the table's access method before it (SET
 * default_table_access_method). An encrypted table therefore keeps
 * "encrypted=true" there: a restore runs CREATE TABLE ... WITH
 * (encrypted='true'), which rustydb's utility step takes out of the
 * statement as it does for any CREATE TABLE, and the new table is
 * encrypted before any row reaches it. A server without rustydb refuses
 * the unknown option, and one without a key provider refuses to create
 * the table, so neither writes the rows in plaintext.
 *
 * PostgreSQL 15 validates the options a statement sets with heap's fixed
 * parser, which knows no "encrypted" (see hooks.cpp), but reads stored
 * options without validation, ignoring unknown ones. So the option is
 * written into pg_class after the table is created, and ALTER TABLE
 * SET/RESET (which validates the stored options together with the new
 * ones) runs with it taken out and put back afterwards, in its
 * transaction.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/crypto/crypto_internal.h"

#include <cstring>

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/htup_details.h"
#include "access/reloptions.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/pg_class.h"
#include "commands/tablecmds.h"
#include "nodes/makefuncs.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/syscache.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace crypto {

namespace {

constexpr const char *kOptionName = "encrypted";

/* Write reloptions (null when (Datum) 0) into relid's pg_class row. */
void
write_reloptions(Relation pgclass, HeapTuple tup, Datum reloptions)
{
	Datum values[Natts_pg_class];
	bool nulls[Natts_pg_class];
	bool repl[Natts_pg_class];

	memset(values, 0, sizeof(values));
	memset(nulls, 0, sizeof(nulls));
	memset(repl, 0, sizeof(repl));
	values[Anum_pg_class_reloptions - 1] = reloptions;
	nulls[Anum_pg_class_reloptions - 1] = reloptions == (Datum) 0;
	repl[Anum_pg_class_reloptions - 1] = true;
	HeapTuple newtup = heap_modify_tuple(tup, RelationGetDescr(pgclass), values, nulls, repl);
	CatalogTupleUpdate(pgclass, &newtup->t_self, newtup);
	heap_freetuple(newtup);
}

/* Add (on) or remove the option; false when the relation is gone. */
bool
set_option(Oid relid, bool on)
{
	CommandCounterIncrement(); /* see the relation's latest pg_class row */
	Relation pgclass = table_open(RelationRelationId, RowExclusiveLock);
	HeapTuple tup = SearchSysCacheCopy1(RELOID, ObjectIdGetDatum(relid));
	if (!HeapTupleIsValid(tup))
	{
		table_close(pgclass, RowExclusiveLock);
		return false;
	}
	bool isnull;
	Datum old = SysCacheGetAttr(RELOID, tup, Anum_pg_class_reloptions, &isnull);
	List *defs = list_make1(
		makeDefElem(pstrdup(kOptionName), on ? (Node *) makeString(pstrdup("true")) : nullptr, -1));
	Datum opts = transformRelOptions(isnull ? (Datum) 0 : old, defs, nullptr, nullptr, false, !on);
	write_reloptions(pgclass, tup, opts);
	heap_freetuple(tup);
	table_close(pgclass, RowExclusiveLock);
	CommandCounterIncrement();
	return true;
}

} /* namespace */

bool
has_encrypted_option(Oid relid)
{
	HeapTuple tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	bool found = false;

	if (!HeapTupleIsValid(tup))
		return false;
	bool isnull;
	Datum opts = SysCacheGetAttr(RELOID, tup, Anum_pg_class_reloptions, &isnull);
	if (!isnull)
	{
		Datum *elems;
		int n;
		deconstruct_array(DatumGetArrayTypeP(opts), TEXTOID, -1, false, TYPALIGN_INT, &elems,
						  nullptr, &n);
		size_t len = strlen(kOptionName);
		for (int i = 0; i < n && !found; i++)
		{
			text *t = DatumGetTextPP(elems[i]);
			found = static_cast<size_t>(VARSIZE_ANY_EXHDR(t)) > len &&
					memcmp(VARDATA_ANY(t), kOptionName, len) == 0 && VARDATA_ANY(t)[len] == '=';
		}
	}
	ReleaseSysCache(tup);
	return found;
}

void
store_encrypted_option(Oid relid)
{
	(void) set_option(relid, true);
}

Oid
alter_begin(AlterTableStmt *stmt)
{
	ListCell *lc;
	bool sets = false;

	foreach (lc, stmt->cmds)
	{
		auto *cmd = lfirst_node(AlterTableCmd, lc);
		sets = sets || cmd->subtype == AT_SetRelOptions || cmd->subtype == AT_ResetRelOptions ||
			   cmd->subtype == AT_ReplaceRelOptions;
	}
	if (!sets || (stmt->objtype != OBJECT_TABLE && stmt->objtype != OBJECT_MATVIEW))
		return InvalidOid;
	/* ALTER TABLE's own lookup: the same lock, ownership checked */
	Oid relid = AlterTableLookupRelation(stmt, AlterTableGetLockLevel(stmt->cmds));
	if (!OidIsValid(relid) || !has_encrypted_option(relid))
		return InvalidOid;
	set_option(relid, false);
	return relid;
}

void
alter_end(Oid relid)
{
	if (OidIsValid(relid))
		(void) set_option(relid, true);
}

} /* namespace crypto */
} /* namespace rustydb */

/*-------------------------------------------------------------------------
 *
 * publication.cpp
 *	  The DDL rules logical decoding needs of rustydb (docs/am.md,
 *	  "Logical replication"): a rustydb table is never a user catalog table
 *	  (decoding would read it through a historic snapshot, which rustydb
 *	  tables do not support), and no publication names rustydb's own
 *	  tables (schema rustydb: the audit trail, the VPD catalogs, the data
 *	  keys), alone or by their schema. Both are checked after the statement,
 *	  on what it made, so every syntax that reaches the same catalog state
 *	  (CREATE TABLE ... WITH, ALTER TABLE ... SET, SET ACCESS METHOD, CREATE
 *	  TABLE AS; FOR TABLE, TABLES IN SCHEMA, ADD and SET) is refused the same
 *	  way, and the error rolls the statement back. Only statements that
 *	  can set the option are looked at.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/am/am.h"
#include "rustydb/common/hooks.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "catalog/namespace.h"
#include "catalog/pg_publication.h"
#include "commands/defrem.h"
#include "nodes/parsenodes.h"
#include "utils/syscache.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb::am {

/* ERROR if relid is a rustydb table marked user_catalog_table. */
static void
check_user_catalog(Oid relid)
{
	if (!OidIsValid(relid))
		return;
	Oid am = get_am_oid("rustydb", true);
	Relation rel = try_relation_open(relid, AccessShareLock);
	if (rel == nullptr)
		return;
	bool refuse =
		OidIsValid(am) && rel->rd_rel->relam == am &&
		(rel->rd_rel->relkind == RELKIND_RELATION || rel->rd_rel->relkind == RELKIND_MATVIEW) &&
		RelationIsUsedAsCatalogTable(rel);
	char *name = pstrdup(RelationGetRelationName(rel));
	relation_close(rel, AccessShareLock);
	if (refuse)
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("rustydb table \"%s\" cannot be a user catalog table", name),
						errdetail("Logical decoding reads user catalog tables through a historic "
								  "snapshot, which rustydb tables do not support."),
						errhint("Use a heap table for data an output plugin reads, or set "
								"user_catalog_table = false.")));
}

/* ERROR if the publication includes a table of schema rustydb or the schema itself. */
static void
check_publication(const char *pubname)
{
	Oid nsp = get_namespace_oid("rustydb", true);
	if (!OidIsValid(nsp))
		return;
	Publication *pub = GetPublicationByName(pubname, true);
	if (pub == nullptr || pub->alltables)
		return; /* FOR ALL TABLES: subscribers skip rustydb's tables (docs/am.md) */
	List *schemas = GetPublicationSchemas(pub->oid);
	if (list_member_oid(schemas, nsp))
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("publication \"%s\" cannot include schema \"rustydb\"", pubname),
						errdetail("rustydb's own tables (audit trail, row policies, data keys) "
								  "are never replicated to another server.")));
	List *rels = GetPublicationRelations(pub->oid, PUBLICATION_PART_ROOT);
	ListCell *lc;
	foreach (lc, rels)
	{
		Oid relid = lfirst_oid(lc);
		if (get_rel_namespace(relid) == nsp)
			ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							errmsg("publication \"%s\" cannot include table \"rustydb.%s\"",
								   pubname, get_rel_name(relid)),
							errdetail("rustydb's own tables (audit trail, row policies, data keys) "
									  "are never replicated to another server.")));
	}
}

/* Whether a reloption list names user_catalog_table. */
static bool
names_user_catalog(List *options)
{
	ListCell *lc;
	foreach (lc, options)
	{
		auto *def = (DefElem *) lfirst(lc);
		if (def->defname != nullptr && strcmp(def->defname, "user_catalog_table") == 0)
			return true;
	}
	return false;
}

/* Whether an ALTER TABLE may leave a rustydb table marked user_catalog_table. */
static bool
may_mark_user_catalog(AlterTableStmt *stmt)
{
	ListCell *lc;
	foreach (lc, stmt->cmds)
	{
		auto *cmd = (AlterTableCmd *) lfirst(lc);
		if (cmd->subtype == AT_SetAccessMethod ||
			(cmd->subtype == AT_SetRelOptions && names_user_catalog((List *) cmd->def)))
			return true;
	}
	return false;
}

void
hook_process_utility(hooks::UtilityCall &call)
{
	Node *stmt = call.pstmt->utilityStmt;
	call.proceed();

	Oid relid = InvalidOid;
	const char *pubname = nullptr;
	switch (nodeTag(stmt))
	{
		case T_CreateStmt:
			if (!names_user_catalog(castNode(CreateStmt, stmt)->options))
				return;
			relid = RangeVarGetRelid(castNode(CreateStmt, stmt)->relation, NoLock, true);
			break;
		case T_CreateTableAsStmt:
		{
			IntoClause *into = castNode(CreateTableAsStmt, stmt)->into;
			if (into == nullptr || !names_user_catalog(into->options))
				return;
			relid = RangeVarGetRelid(into->rel, NoLock, true);
			break;
		}
		case T_AlterTableStmt:
			if (!may_mark_user_catalog(castNode(AlterTableStmt, stmt)))
				return;
			relid = RangeVarGetRelid(castNode(AlterTableStmt, stmt)->relation, NoLock, true);
			break;
		case T_CreatePublicationStmt:
			pubname = castNode(CreatePublicationStmt, stmt)->pubname;
			break;
		case T_AlterPublicationStmt:
			pubname = castNode(AlterPublicationStmt, stmt)->pubname;
			break;
		default:
			return;
	}
	/* see what the statement did */
	CommandCounterIncrement();
	if (pubname != nullptr)
		check_publication(pubname);
	else
		check_user_catalog(relid);
}

} /* namespace rustydb::am */

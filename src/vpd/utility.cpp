/*-------------------------------------------------------------------------
 *
 * utility.cpp
 *	  VPD: utility statements on tables under policies (utility hook).
 *
 * Before a utility statement runs: CREATE INDEX is refused on a table
 * with an enabled index policy (an index is built from every row) unless
 * the user is a superuser or exempt, and DISABLE or NO FORCE ROW LEVEL
 * SECURITY is refused on a table that a VPD policy protects. After a
 * statement that creates or attaches a partition or inheritance child,
 * row security is switched on for the new children of protected tables.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/vpd/internal.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "catalog/namespace.h"
#include "executor/spi.h"
#include "utils/guc.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace vpd {

void
check_utility(Node *stmt)
{
	if (IsA(stmt, IndexStmt))
	{
		IndexStmt *is = reinterpret_cast<IndexStmt *>(stmt);
		Oid relid = RangeVarGetRelid(is->relation, NoLock, true);
		char *pol;

		if (!OidIsValid(relid) || superuser() || current_user_exempt())
			return;
		pol = catalog_policy_for(relid, "p.idx AND p.enable");
		if (pol)
			ereport(
				ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot create an index on table \"%s\"", is->relation->relname),
				 errdetail(
					 "VPD policy \"%s\" covers index statements; an index is built from every row.",
					 pol),
				 errhint("Disable the policy, or build the index as a member of "
						 "rustydb_exempt_access_policy.")));
	}
	else if (IsA(stmt, AlterTableStmt))
	{
		AlterTableStmt *as = reinterpret_cast<AlterTableStmt *>(stmt);
		ListCell *lc;
		Oid relid = InvalidOid;

		foreach (lc, as->cmds)
		{
			AlterTableCmd *cmd = static_cast<AlterTableCmd *>(lfirst(lc));
			char *pol;

			if (cmd->subtype != AT_DisableRowSecurity && cmd->subtype != AT_NoForceRowSecurity)
				continue;
			if (!OidIsValid(relid))
				relid = RangeVarGetRelid(as->relation, NoLock, true);
			if (!OidIsValid(relid))
				return;
			pol = catalog_policy_for(relid, "true");
			if (pol)
				ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
								errmsg("cannot turn off row security of table \"%s\"",
									   as->relation->relname),
								errdetail("VPD policy \"%s\" protects it.", pol),
								errhint("Drop its VPD policies with rustydb.drop_policy first.")));
		}
	}
}

/* Does the statement create or attach a partition or inheritance child? */
bool
creates_child(Node *stmt)
{
	if (IsA(stmt, CreateStmt))
	{
		CreateStmt *cs = reinterpret_cast<CreateStmt *>(stmt);

		return cs->inhRelations != NIL || cs->partbound != nullptr;
	}
	if (IsA(stmt, AlterTableStmt))
	{
		ListCell *lc;

		foreach (lc, reinterpret_cast<AlterTableStmt *>(stmt)->cmds)
		{
			AlterTableCmd *cmd = static_cast<AlterTableCmd *>(lfirst(lc));

			if (cmd->subtype == AT_AttachPartition || cmd->subtype == AT_AddInherit)
				return true;
		}
	}
	return false;
}

/* Switch row security on for new children of protected tables. */
void
protect_new_children()
{
	int nest;

	if (!extension_present())
		return;
	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog", PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute("SELECT rustydb._vpd_protect(t.relid) FROM (SELECT DISTINCT p.relid"
					" FROM rustydb.vpd_protected p JOIN pg_class c ON c.oid = p.relid"
					" WHERE EXISTS (SELECT 1 FROM pg_inherits i WHERE i.inhparent = p.relid)"
					" AND EXISTS (WITH RECURSIVE tree(r) AS (SELECT p.relid UNION"
					"   SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.r)"
					"   SELECT 1 FROM tree JOIN pg_class k ON k.oid = tree.r"
					"   WHERE NOT (k.relrowsecurity AND k.relforcerowsecurity))) t",
					false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not protect new partitions");
	SPI_finish();
	AtEOXact_GUC(true, nest);
}

} /* namespace vpd */
} /* namespace rustydb */

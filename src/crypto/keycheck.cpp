/*-------------------------------------------------------------------------
 *
 * keycheck.cpp
 *	  Master key mix-ups: a key provider that does not offer the master
 *	  key existing encrypted tables were wrapped with.
 *
 * When the provider changes (another keyring file, a key command that
 * serves another key), rustydb keeps working for new tables: they are
 * wrapped with whatever key the provider calls current. Tables wrapped
 * with a key the provider no longer offers then fail only when they are
 * read. So the first time a backend loads or creates a table key, and
 * every time an encrypted table is created, the master keys named by
 * rustydb.table_keys are checked against the provider, and each missing
 * one is reported with the number of tables that need it.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/common/boundary.h"
#include "rustydb/crypto/crypto_catalog.h"
#include "rustydb/crypto/crypto_internal.h"

#include <cstdlib>
#include <cstring>

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/parallel.h"
#include "catalog/pg_class.h"
#include "utils/lsyscache.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace crypto {

namespace {

bool first_use_checked = false;

/* One (master key, relation) pair of rustydb.table_keys. */
struct Use
{
	KeyId id;
	Oid relid;
};

int
compare_uses(const void *a, const void *b)
{
	const Use *x = static_cast<const Use *>(a);
	const Use *y = static_cast<const Use *>(b);
	int c = strcmp(x->id.hex, y->id.hex);

	if (c != 0)
		return c;
	return x->relid < y->relid ? -1 : (x->relid > y->relid ? 1 : 0);
}

} /* namespace */

void
check_master_keys(Oid new_relid, const char *new_name)
{
	if (new_relid == InvalidOid)
	{
		if (first_use_checked || IsParallelWorker())
			return;
		first_use_checked = true;
	}
	if (provider_description() == nullptr || !OidIsValid(keys_catalog_oid()))
		return;

	MasterKey current;
	try
	{
		current = current_master_key();
	}
	catch (const Error &)
	{
		return; /* no usable provider: every access reports it already */
	}

	KeyRow *rows = nullptr;
	int n = read_all_key_rows(&rows);
	Use *uses = static_cast<Use *>(palloc(sizeof(Use) * (n + 1)));
	int nuses = 0;

	/* tables and materialized views, not TOAST tables or transient relations */
	for (int i = 0; i < n; i++)
	{
		char kind = get_rel_relkind(rows[i].relid);
		if (rows[i].relid != new_relid && (kind == RELKIND_RELATION || kind == RELKIND_MATVIEW))
			uses[nuses++] = Use{rows[i].master_key_id, rows[i].relid};
	}
	if (nuses > 1)
		qsort(uses, nuses, sizeof(Use), compare_uses);

	for (int u = 0; u < nuses;)
	{
		/* uses[u, end): one master key; count its distinct relations */
		int end = u, tables = 0;
		while (end < nuses && strcmp(uses[end].id.hex, uses[u].id.hex) == 0)
		{
			if (end == u || uses[end].relid != uses[end - 1].relid)
				tables++;
			end++;
		}
		const KeyId id = uses[u].id;
		u = end;
		if (strcmp(id.hex, current.id.hex) == 0)
			continue;
		bool available = true;
		try
		{
			(void) master_key_by_id(id.hex);
		}
		catch (const Error &)
		{
			available = false;
		}
		if (available)
			continue;
		const char *provider = provider_description();
		if (OidIsValid(new_relid))
			ereport(WARNING,
					(errcode(ERRCODE_INVALID_PASSWORD),
					 errmsg("encrypted table \"%s\" is created under master key %s, but master "
							"key %s, which %d encrypted table(s) of this database need, is not "
							"available from %s",
							new_name ? new_name : "?", current.id.hex, id.hex, tables, provider),
					 errdetail("The key provider's current master key wraps every new table's "
							   "data key; tables wrapped with a master key it does not offer "
							   "cannot be read."),
					 errhint("Configure the key provider that holds master key %s (a keyring "
							 "file keeps older keys: keep a key until rustydb.encryption_status "
							 "shows no table uses it).",
							 id.hex)));
		else
			ereport(WARNING,
					(errcode(ERRCODE_INVALID_PASSWORD),
					 errmsg("master key %s, which %d encrypted table(s) of this database need, is "
							"not available from %s",
							id.hex, tables, provider),
					 errdetail("The key provider's current master key is %s; those tables cannot "
							   "be read, and new encrypted tables are wrapped with the current "
							   "key.",
							   current.id.hex),
					 errhint("Configure the key provider that holds master key %s.", id.hex)));
	}
	pfree(uses);
	if (rows != nullptr)
		pfree(rows);
}

} /* namespace crypto */
} /* namespace rustydb */

/*-------------------------------------------------------------------------
 *
 * policies.cpp
 *	  The audit policy cache: which statements of which users are audited.
 *
 * Each backend caches its database's enabled policies (table
 * rustydb.audit_policies, read with a fresh snapshot as the bootstrap
 * superuser) in Session::policy and reloads them after a change: every
 * change of that table fires rustydb._audit_policies_changed(), which
 * records a security event and sends a relcache invalidation for it,
 * which all backends of the database receive at their next transaction
 * start (policy_cache_invalidate, from session.cpp's relcache callback).
 * A policy's condition is evaluated when the policies are loaded, as the
 * session user; the policies applying to the current user are recomputed
 * when it changes.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/audit/audit.h"
#include "rustydb/audit/capture.h"

#include "rustydb/common/boundary.h"
#include "rustydb/common/settings.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace audit {

namespace {

uint32
action_bit(const char *name)
{
	for (const auto &a : kActions)
		if (strcmp(a.name, name) == 0)
			return a.bit;
	if (strcmp(name, "all") == 0)
		return 0xFFu;
	return 0;
}

Oid *
oid_array(ArrayType *arr, int *n)
{
	PolicyCache &c = session().policy;
	Datum *elems;
	bool *nulls;
	int count;
	Oid *out;
	int k = 0;

	deconstruct_array(arr, OIDOID, sizeof(Oid), true, TYPALIGN_INT, &elems, &nulls, &count);
	out = static_cast<Oid *>(MemoryContextAlloc(c.ctx, sizeof(Oid) * Max(count, 1)));
	for (int i = 0; i < count; i++)
		if (!nulls[i])
			out[k++] = DatumGetObjectId(elems[i]);
	*n = k;
	return out;
}

/* Evaluate a policy condition; an error counts as true (audit when unsure). */
bool
evaluate_condition(const char *condition)
{
	MemoryContext oldcontext = CurrentMemoryContext;
	ResourceOwner oldowner = CurrentResourceOwner;
	volatile bool result = true;

	BeginInternalSubTransaction(nullptr);
	MemoryContextSwitchTo(oldcontext);
	PG_TRY();
	{
		char *sql = psprintf("SELECT (%s)::boolean", condition);
		bool isnull;

		if (SPI_execute(sql, true, 1) == SPI_OK_SELECT && SPI_processed == 1)
		{
			Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

			result = isnull ? false : DatumGetBool(d);
		}
		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
	}
	PG_CATCH();
	{
		ErrorData *edata;

		MemoryContextSwitchTo(oldcontext);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(oldcontext);
		CurrentResourceOwner = oldowner;
		ereport(WARNING, (errmsg("audit policy condition failed: %s", edata->message),
						  errdetail("The policy applies as if its condition were true.")));
		result = true;
	}
	PG_END_TRY();
	return result;
}

/* Reload the enabled policies of this database (in a transaction). */
void
load_policies()
{
	PolicyCache &c = session().policy;
	Oid nsp;

	MemoryContextReset(c.ctx);
	c.policies = nullptr;
	c.npolicies = 0;
	c.applicable_for = InvalidOid;
	c.applicable = nullptr;
	c.napplicable = 0;
	c.user_mask = 0;
	c.valid = true;

	nsp = get_namespace_oid("rustydb", true);
	c.relid = OidIsValid(nsp) ? get_relname_relid("audit_policies", nsp) : InvalidOid;
	c.extension_present = OidIsValid(c.relid);
	c.loaded = true;
	if (!c.extension_present)
		return;

	Oid save_userid;
	int save_sec_context;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	c.loading = true;
	PG_TRY();
	{
		/* the policies are readable by superusers only */
		SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, save_sec_context |
														  SECURITY_LOCAL_USERID_CHANGE |
														  SECURITY_RESTRICTED_OPERATION);
		/*
		 * A snapshot taken now, not the transaction's: a REPEATABLE READ
		 * transaction that began before a policy change would otherwise
		 * cache the old policies past its end.
		 */
		PushActiveSnapshot(GetLatestSnapshot());
		SPI_connect();
		if (SPI_execute("SELECT actions, objects::oid[], roles, condition "
						"FROM rustydb.audit_policies WHERE enabled ORDER BY policy_name",
						true, settings::audit_max_policies) != SPI_OK_SELECT)
			elog(ERROR, "could not read rustydb.audit_policies");

		/* conditions run queries: keep this result's own pointer */
		SPITupleTable *tt = SPI_tuptable;
		int n = static_cast<int>(SPI_processed);
		Policy *loaded =
			static_cast<Policy *>(MemoryContextAllocZero(c.ctx, sizeof(Policy) * Max(n, 1)));
		int k = 0;

		for (int i = 0; i < n; i++)
		{
			HeapTuple tup = tt->vals[i];
			TupleDesc desc = tt->tupdesc;
			bool isnull;
			Datum d;
			Policy *p = &loaded[k];

			d = SPI_getbinval(tup, desc, 1, &isnull);
			if (!isnull)
			{
				Datum *elems;
				bool *nulls;
				int count;

				deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT, &elems,
								  &nulls, &count);
				for (int j = 0; j < count; j++)
					if (!nulls[j])
						p->mask |= action_bit(TextDatumGetCString(elems[j]));
			}
			d = SPI_getbinval(tup, desc, 2, &isnull);
			if (!isnull)
				p->objects = oid_array(DatumGetArrayTypeP(d), &p->nobjects);
			d = SPI_getbinval(tup, desc, 3, &isnull);
			if (!isnull)
			{
				Datum *elems;
				bool *nulls;
				int count;

				deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT, &elems,
								  &nulls, &count);
				p->roles =
					static_cast<Oid *>(MemoryContextAlloc(c.ctx, sizeof(Oid) * Max(count, 1)));
				for (int j = 0; j < count; j++)
				{
					Oid r =
						nulls[j] ? InvalidOid : get_role_oid(TextDatumGetCString(elems[j]), true);

					/* a dropped role matches nobody */
					p->roles[p->nroles++] = r;
				}
			}
			d = SPI_getbinval(tup, desc, 4, &isnull);
			if (isnull)
				p->condition_true = true;
			else
			{
				/* conditions are evaluated as the session user */
				SetUserIdAndSecContext(GetSessionUserId(),
									   save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
				p->condition_true = evaluate_condition(TextDatumGetCString(d));
				SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, save_sec_context |
																  SECURITY_LOCAL_USERID_CHANGE |
																  SECURITY_RESTRICTED_OPERATION);
			}
			if (p->mask != 0 && p->condition_true)
				k++;
		}
		SPI_finish();
		PopActiveSnapshot();
		SetUserIdAndSecContext(save_userid, save_sec_context);
		c.policies = loaded;
		c.npolicies = k;
		if (k > c.high_water)
			c.high_water = k;
		c.loading = false;
	}
	PG_CATCH();
	{
		SetUserIdAndSecContext(save_userid, save_sec_context);
		c.loading = false;
		c.valid = false;
		PG_RE_THROW();
	}
	PG_END_TRY();
}

void
compute_applicable()
{
	PolicyCache &c = session().policy;
	Oid user = GetUserId();
	Oid session = GetSessionUserId();

	c.applicable_for = user;
	c.napplicable = 0;
	c.user_mask = 0;
	if (c.npolicies == 0)
		return;
	c.applicable =
		static_cast<Policy **>(MemoryContextAlloc(c.ctx, sizeof(Policy *) * c.npolicies));
	for (int i = 0; i < c.npolicies; i++)
	{
		Policy *p = &c.policies[i];
		bool match = p->roles == nullptr;

		for (int j = 0; !match && j < p->nroles; j++)
			match = OidIsValid(p->roles[j]) && (is_member_of_role_nosuper(user, p->roles[j]) ||
												is_member_of_role_nosuper(session, p->roles[j]));
		if (match)
		{
			c.applicable[c.napplicable++] = p;
			c.user_mask |= p->mask;
		}
	}
}

} /* namespace */

/* Actions audited on relation relid for the current user. */
uint32
relation_mask(Oid relid)
{
	PolicyCache &c = session().policy;
	uint32 mask = 0;

	for (int i = 0; i < c.napplicable; i++)
	{
		Policy *p = c.applicable[i];

		if (p->objects == nullptr)
			mask |= p->mask;
		else
			for (int j = 0; j < p->nobjects; j++)
				if (p->objects[j] == relid)
				{
					mask |= p->mask;
					break;
				}
	}
	return mask;
}

/* May this statement be audited at all? Loads the policies if needed. */
bool
capture_enabled()
{
	PolicyCache &c = session().policy;

	if (session().in_audit_worker || c.loading || MyBackendType != B_BACKEND || IsParallelWorker())
		return false;
	if (!IsTransactionState())
		return false;
	if (!c.valid)
	{
		if (IsInParallelMode() || IsAbortedTransactionBlockState())
			return c.npolicies > 0;
		load_policies();
	}
	if (c.npolicies == 0)
		return false;
	if (c.applicable_for != GetUserId())
		compute_applicable();
	return c.user_mask != 0;
}

/*
 * Might a statement that failed before execution be audited? Its action
 * and objects are not known, so any policy applying to the user counts;
 * the catalogs cannot be read while the error is reported, so when the
 * policies are not known (not loaded yet in this session, or invalidated
 * and reloading failed) it is recorded.
 */
bool
failure_audited()
{
	PolicyCache &c = session().policy;

	if (!c.loaded)
		return true;
	if (!c.extension_present)
		return false;
	if (c.npolicies == 0)
		return !c.valid;
	if (c.applicable_for == GetUserId())
		return c.user_mask != 0;
	return true;
}

void
policy_cache_invalidate(Oid relid)
{
	PolicyCache &c = session().policy;

	if (relid == InvalidOid || relid == c.relid || !c.extension_present)
		c.valid = false;
}

} /* namespace audit */
} /* namespace rustydb */

/*
 * Trigger on rustydb.audit_policies (row level for INSERT/UPDATE/DELETE,
 * statement level for TRUNCATE): every change of a policy, through the
 * policy functions or not, is an audited security event and makes every
 * backend of the database reload its policies.
 */
RUSTYDB_FUNCTION(rustydb_audit_policies_changed)
{
	TriggerData *td = reinterpret_cast<TriggerData *>(fcinfo->context);
	const char *detail = "alter";
	char name[NAMEDATALEN];
	bool isnull;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
						errmsg("rustydb._audit_policies_changed() must be called as a trigger")));
	name[0] = '\0';
	if (TRIGGER_FIRED_BY_TRUNCATE(td->tg_event))
		detail = "drop all";
	else
	{
		HeapTuple tup = TRIGGER_FIRED_BY_UPDATE(td->tg_event) ? td->tg_newtuple : td->tg_trigtuple;
		TupleDesc desc = RelationGetDescr(td->tg_relation);
		Datum d = heap_getattr(tup, 1, desc, &isnull);

		if (!isnull)
			strlcpy(name, NameStr(*DatumGetName(d)), sizeof(name));
		if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
			detail = "create";
		else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
			detail = "drop";
		else
		{
			int enabled_att = SPI_fnumber(desc, "enabled");
			bool n1, n2;
			bool was = DatumGetBool(heap_getattr(td->tg_trigtuple, enabled_att, desc, &n1));
			bool now = DatumGetBool(heap_getattr(td->tg_newtuple, enabled_att, desc, &n2));

			if (!n1 && !n2 && was != now)
				detail = now ? "enable" : "disable";
		}
	}
	rustydb::audit::security_event("audit_policy", name[0] ? name : nullptr, detail);
	CacheInvalidateRelcacheByRelid(RelationGetRelid(td->tg_relation));
	return PointerGetDatum(nullptr);
}

/*-------------------------------------------------------------------------
 *
 * context.cpp
 *	  VPD: application contexts: create_context's trusted functions, set_context,
 *	  clear_context, sys_context (with the built-in USERENV namespace) and
 *	  session_context.
 *
 * A context value lives in backend memory for the session (like Oracle's
 * local contexts; not transactional). Only the namespace's trusted
 * function may change it: rustydb marks trusted functions through
 * PostgreSQL's fmgr hooks (needs_fmgr_hook/fmgr_hook, in hooks.cpp), keeps
 * a stack of the trusted functions currently executing, and
 * set_context/clear_context check that the namespace's function is on it.
 *
 * Every change bumps a generation counter and invalidates this backend's
 * cached plans that carry a context-sensitive policy, so a prepared
 * statement or PL/pgSQL query never runs with a predicate computed for an
 * older context (predicate.cpp evaluates the predicate again when the plan
 * is rebuilt and a context it depends on changed).
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/common/boundary.h"
#include "rustydb/common/settings.h"
#include "rustydb/vpd/internal.h"
#include "rustydb/vpd/session.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/dbcommands.h"
#include "mb/pg_wchar.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/tuplestore.h"
RUSTYDB_PG_INCLUDE_END

#include <unistd.h>

namespace rustydb {
namespace vpd {
namespace {

struct CtxKey
{
	char ns[kMaxNameLen + 1];
	char attr[kMaxNameLen + 1];
};

struct CtxEntry
{
	CtxKey key; /* hash key, must be first */
	char *value;
};

void
load_trusted()
{
	Oid nsp;
	Relation rel;
	SysScanDesc scan;
	HeapTuple tup;
	Session::Contexts &c = session().contexts;

	if (c.loading_trusted)
		return; /* opening the catalog called a function (e.g. a table AM handler) */
	c.ntrusted = 0;
	c.context_relid = InvalidOid;
	if (!IsTransactionState())
		return;
	c.loading_trusted = true;
	nsp = get_namespace_oid("rustydb", true);
	if (OidIsValid(nsp))
		c.context_relid = get_relname_relid("vpd_context", nsp);
	if (!OidIsValid(c.context_relid))
	{
		c.loading_trusted = false;
		return; /* no extension here (yet): look again next time */
	}
	rel = table_open(c.context_relid, AccessShareLock);
	scan = systable_beginscan(rel, InvalidOid, false, nullptr, 0, nullptr);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool isnull1, isnull2;
		Datum ns = heap_getattr(tup, 1, RelationGetDescr(rel), &isnull1);
		Datum fn = heap_getattr(tup, 2, RelationGetDescr(rel), &isnull2);
		char *s;

		if (isnull1 || isnull2)
			continue;
		if (c.ntrusted == c.trusted_cap)
		{
			int cap = c.trusted_cap == 0 ? 16 : c.trusted_cap * 2;
			TrustedFunction *n = static_cast<TrustedFunction *>(
				MemoryContextAllocZero(c.mcxt, sizeof(TrustedFunction) * cap));

			if (c.ntrusted > 0)
				memcpy(n, c.trusted, sizeof(TrustedFunction) * c.ntrusted);
			if (c.trusted)
				pfree(c.trusted);
			c.trusted = n;
			c.trusted_cap = cap;
		}
		s = TextDatumGetCString(ns);
		strlcpy(c.trusted[c.ntrusted].ns, s, sizeof(c.trusted[c.ntrusted].ns));
		pfree(s);
		c.trusted[c.ntrusted].func = DatumGetObjectId(fn);
		c.ntrusted++;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	c.trusted_valid = true;
	c.loading_trusted = false;
}

void
ensure_trusted()
{
	if (!session().contexts.trusted_valid)
		load_trusted();
}

bool
is_trusted_cached(Oid fn)
{
	for (int i = 0; i < session().contexts.ntrusted; i++)
		if (session().contexts.trusted[i].func == fn)
			return true;
	return false;
}

/* The trusted function of a namespace, or InvalidOid. */
Oid
namespace_function(const char *ns)
{
	ensure_trusted();
	for (int i = 0; i < session().contexts.ntrusted; i++)
		if (strcmp(session().contexts.trusted[i].ns, ns) == 0)
			return session().contexts.trusted[i].func;
	return InvalidOid;
}

bool
function_active(Oid fn)
{
	int n =
		session().contexts.active_depth < kActiveMax ? session().contexts.active_depth : kActiveMax;

	for (int i = n - 1; i >= 0; i--)
		if (session().contexts.active[i] == fn)
			return true;
	return false;
}

/* Copy a name argument, lower-cased and trimmed, checking its length. */
void
normalize_name(text *t, const char *what, char *out)
{
	char *s = text_to_cstring(t);
	char *p = s;
	size_t len;

	while (*p == ' ' || *p == '\t')
		p++;
	len = strlen(p);
	while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
		len--;
	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s must not be empty", what)));
	if (len > static_cast<size_t>(kMaxNameLen))
		ereport(ERROR, (errcode(ERRCODE_NAME_TOO_LONG), errmsg("%s is too long", what),
						errdetail("Context namespaces and attributes are at most %d bytes.",
								  kMaxNameLen)));
	for (size_t i = 0; i < len; i++)
		out[i] = pg_tolower(static_cast<unsigned char>(p[i]));
	out[len] = '\0';
	pfree(s);
}

void
ensure_hash()
{
	HASHCTL ctl;

	if (session().contexts.values)
		return;
	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(CtxKey);
	ctl.entrysize = sizeof(CtxEntry);
	ctl.hcxt = session().contexts.mcxt;
	session().contexts.values =
		hash_create("rustydb vpd contexts", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
}

void
context_changed()
{
	session().contexts.generation++;
	invalidate_marker_plans(kMarkerContext);
}

/* Fail unless called from the namespace's trusted function. */
void
check_trusted_caller(const char *ns, const char *fname)
{
	Oid fn;

	if (strcmp(ns, "userenv") == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("namespace userenv is read-only"),
				 errdetail("USERENV attributes are maintained by the server.")));
	fn = namespace_function(ns);
	if (!OidIsValid(fn))
		ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
						errmsg("context namespace \"%s\" does not exist", ns),
						errhint("Create it with rustydb.create_context.")));
	if (!function_active(fn))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to %s in namespace \"%s\"", fname, ns),
				 errdetail("Only the namespace's trusted function %s may change its attributes.",
						   format_procedure(fn))));
}

char *
userenv_value(const char *attr)
{
	if (strcmp(attr, "session_user") == 0)
		return GetUserNameFromId(GetSessionUserId(), false);
	if (strcmp(attr, "current_user") == 0)
		return GetUserNameFromId(GetUserId(), false);
	if (strcmp(attr, "session_userid") == 0)
		return psprintf("%u", GetSessionUserId());
	if (strcmp(attr, "current_userid") == 0)
		return psprintf("%u", GetUserId());
	if (strcmp(attr, "current_schema") == 0)
	{
		List *path = fetch_search_path(false);
		char *r = path != NIL ? get_namespace_name(linitial_oid(path)) : nullptr;

		list_free(path);
		return r;
	}
	if (strcmp(attr, "db_name") == 0)
		return get_database_name(MyDatabaseId);
	if (strcmp(attr, "ip_address") == 0)
	{
		LOCAL_FCINFO(fc, 0);
		Datum addr;

		InitFunctionCallInfoData(*fc, nullptr, 0, InvalidOid, nullptr, nullptr);
		addr = inet_client_addr(fc);
		if (fc->isnull)
			return nullptr;
		return TextDatumGetCString(DirectFunctionCall1(network_host, addr));
	}
	if (strcmp(attr, "module") == 0)
		return application_name ? pstrdup(application_name) : nullptr;
	if (strcmp(attr, "sessionid") == 0 || strcmp(attr, "sid") == 0)
		return psprintf("%d", MyProcPid);
	if (strcmp(attr, "isdba") == 0)
		return pstrdup(superuser() ? "TRUE" : "FALSE");
	if (strcmp(attr, "policy_invoker") == 0)
		return OidIsValid(session().contexts.invoker)
				   ? GetUserNameFromId(session().contexts.invoker, true)
				   : nullptr;
	if (strcmp(attr, "server_host") == 0)
	{
		char buf[256];

		if (gethostname(buf, sizeof(buf)) != 0)
			return nullptr;
		buf[sizeof(buf) - 1] = '\0';
		return pstrdup(buf);
	}
	if (strcmp(attr, "instance_name") == 0)
		return cluster_name ? pstrdup(cluster_name) : nullptr;
	if (strcmp(attr, "client_program_name") == 0)
		return application_name ? pstrdup(application_name) : nullptr;
	ereport(
		ERROR,
		(errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("invalid USERENV parameter \"%s\"", attr),
		 errhint("USERENV attributes: session_user, current_user, session_userid, current_userid, "
				 "current_schema, db_name, ip_address, module, client_program_name, "
				 "sessionid, sid, isdba, policy_invoker, server_host, "
				 "instance_name.")));
	return nullptr;
}

} /* namespace */

void
context_relcache_invalidated(Oid relid)
{
	if (!OidIsValid(relid) || relid == session().contexts.context_relid)
		session().contexts.trusted_valid = false;
}

bool
is_trusted_function(Oid fn)
{
	/*
	 * No catalog access here: PostgreSQL asks while building relation
	 * cache entries (table AM handlers). The set is loaded at the start
	 * of every statement (context_prepare) and by set_context.
	 */
	return session().contexts.trusted_valid && is_trusted_cached(fn);
}

void
trusted_function_event(FmgrHookEventType event, Oid fn)
{
	Session::Contexts &c = session().contexts;

	switch (event)
	{
		case FHET_START:
			if (c.active_depth < kActiveMax)
				c.active[c.active_depth] = fn;
			c.active_depth++;
			break;
		case FHET_END:
		case FHET_ABORT:
			if (c.active_depth > 0)
				c.active_depth--;
			break;
	}
}

void
context_prepare()
{
	if (!session().contexts.trusted_valid && !session().contexts.loading_trusted &&
		IsTransactionState())
		load_trusted();
}

const char *
context_value(const char *ns, const char *attr)
{
	CtxKey key;
	CtxEntry *e;

	if (session().contexts.values == nullptr)
		return nullptr;
	memset(&key, 0, sizeof(key));
	strlcpy(key.ns, ns, sizeof(key.ns));
	strlcpy(key.attr, attr, sizeof(key.attr));
	e = static_cast<CtxEntry *>(hash_search(session().contexts.values, &key, HASH_FIND, nullptr));
	return e ? e->value : nullptr;
}

uint64
context_generation()
{
	return session().contexts.generation;
}

void
set_policy_invoker(Oid userid)
{
	session().contexts.invoker = userid;
}

Oid
policy_invoker()
{
	return session().contexts.invoker;
}

} /* namespace vpd */
} /* namespace rustydb */

using namespace rustydb::vpd;

RUSTYDB_FUNCTION(rustydb_vpd_set_context)
{
	char ns[kMaxNameLen + 1];
	char attr[kMaxNameLen + 1];
	CtxKey key;
	CtxEntry *e;
	bool found;
	text *val;
	char *v;

	rustydb::require_argument(fcinfo, 0, "namespace");
	rustydb::require_argument(fcinfo, 1, "attribute");
	normalize_name(PG_GETARG_TEXT_PP(0), "context namespace", ns);
	normalize_name(PG_GETARG_TEXT_PP(1), "context attribute", attr);
	check_trusted_caller(ns, "set_context");
	ensure_hash();

	memset(&key, 0, sizeof(key));
	strlcpy(key.ns, ns, sizeof(key.ns));
	strlcpy(key.attr, attr, sizeof(key.attr));

	if (PG_ARGISNULL(2))
	{
		/* a NULL value removes the attribute: sys_context returns NULL either way */
		e = static_cast<CtxEntry *>(
			hash_search(session().contexts.values, &key, HASH_FIND, nullptr));
		if (e)
		{
			if (e->value)
				pfree(e->value);
			hash_search(session().contexts.values, &key, HASH_REMOVE, nullptr);
			context_changed();
		}
		PG_RETURN_VOID();
	}
	val = PG_GETARG_TEXT_PP(2);
	if (VARSIZE_ANY_EXHDR(val) > kMaxValueLen)
		ereport(ERROR, (errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION),
						errmsg("context value for %s.%s is too long", ns, attr),
						errdetail("Context values are at most %d bytes.", kMaxValueLen)));
	v = text_to_cstring(val);

	e = static_cast<CtxEntry *>(hash_search(session().contexts.values, &key, HASH_FIND, nullptr));
	if (e == nullptr)
	{
		if (hash_get_num_entries(session().contexts.values) >=
			rustydb::settings::vpd_context_max_attributes)
			ereport(
				ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many application context attributes in this session"),
				 errdetail("The limit is %d (rustydb.vpd_context_max_attributes).",
						   rustydb::settings::vpd_context_max_attributes),
				 errhint(
					 "Clear attributes that are no longer needed with rustydb.clear_context.")));
		e = static_cast<CtxEntry *>(
			hash_search(session().contexts.values, &key, HASH_ENTER, &found));
		e->value = MemoryContextStrdup(session().contexts.mcxt, v);
		context_changed();
	}
	else if (e->value == nullptr || strcmp(e->value, v) != 0)
	{
		char *old = e->value;

		e->value = MemoryContextStrdup(session().contexts.mcxt, v);
		if (old)
			pfree(old);
		context_changed();
	}
	pfree(v);
	PG_RETURN_VOID();
}

RUSTYDB_FUNCTION(rustydb_vpd_clear_context)
{
	char ns[kMaxNameLen + 1];
	char attr[kMaxNameLen + 1];
	bool changed = false;

	rustydb::require_argument(fcinfo, 0, "namespace");
	normalize_name(PG_GETARG_TEXT_PP(0), "context namespace", ns);
	if (!PG_ARGISNULL(1))
		ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						errmsg("client_identifier is not supported"),
						errdetail("rustydb application contexts are local to the session.")));
	check_trusted_caller(ns, "clear_context");
	if (session().contexts.values == nullptr)
		PG_RETURN_VOID();
	if (!PG_ARGISNULL(2))
	{
		CtxKey key;
		CtxEntry *e;

		normalize_name(PG_GETARG_TEXT_PP(2), "context attribute", attr);
		memset(&key, 0, sizeof(key));
		strlcpy(key.ns, ns, sizeof(key.ns));
		strlcpy(key.attr, attr, sizeof(key.attr));
		e = static_cast<CtxEntry *>(
			hash_search(session().contexts.values, &key, HASH_FIND, nullptr));
		if (e)
		{
			if (e->value)
				pfree(e->value);
			hash_search(session().contexts.values, &key, HASH_REMOVE, nullptr);
			changed = true;
		}
	}
	else
	{
		HASH_SEQ_STATUS st;
		CtxEntry *e;

		hash_seq_init(&st, session().contexts.values);
		while ((e = static_cast<CtxEntry *>(hash_seq_search(&st))) != nullptr)
		{
			if (strcmp(e->key.ns, ns) != 0)
				continue;
			if (e->value)
				pfree(e->value);
			hash_search(session().contexts.values, &e->key, HASH_REMOVE, nullptr);
			changed = true;
		}
	}
	if (changed)
		context_changed();
	PG_RETURN_VOID();
}

RUSTYDB_FUNCTION(rustydb_vpd_sys_context)
{
	char ns[kMaxNameLen + 1];
	char attr[kMaxNameLen + 1];
	const char *v;
	int len;
	size_t n;

	/* STRICT: no argument is NULL */
	normalize_name(PG_GETARG_TEXT_PP(0), "context namespace", ns);
	normalize_name(PG_GETARG_TEXT_PP(1), "context attribute", attr);
	len = PG_GETARG_INT32(2);
	if (len < 1 || len > kMaxValueLen)
		ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
						errmsg("sys_context length must be between 1 and %d", kMaxValueLen)));
	if (strcmp(ns, "userenv") == 0)
		v = userenv_value(attr);
	else
		v = context_value(ns, attr);
	if (v == nullptr)
		PG_RETURN_NULL();
	n = strlen(v);
	if (n > static_cast<size_t>(len))
		n = pg_mbcliplen(v, n, len);
	PG_RETURN_TEXT_P(cstring_to_text_with_len(v, n));
}

RUSTYDB_FUNCTION(rustydb_vpd_session_context)
{
	ReturnSetInfo *rsinfo = reinterpret_cast<ReturnSetInfo *>(fcinfo->resultinfo);

	InitMaterializedSRF(fcinfo, 0);
	if (session().contexts.values)
	{
		HASH_SEQ_STATUS st;
		CtxEntry *e;

		hash_seq_init(&st, session().contexts.values);
		while ((e = static_cast<CtxEntry *>(hash_seq_search(&st))) != nullptr)
		{
			Datum values[3];
			bool nulls[3] = {false, false, false};

			values[0] = CStringGetTextDatum(e->key.ns);
			values[1] = CStringGetTextDatum(e->key.attr);
			if (e->value)
				values[2] = CStringGetTextDatum(e->value);
			else
				nulls[2] = true;
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}

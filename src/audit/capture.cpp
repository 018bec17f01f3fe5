/*-------------------------------------------------------------------------
 *
 * capture.cpp
 *	  Audit policies and the hooks that turn statements into audit records.
 *
 * Each backend caches its database's enabled policies (table
 * rustydb.audit_policies) and reloads them after a change: every change of
 * that table fires a trigger that records a security event and sends a
 * relcache invalidation for it, which all backends of the database
 * receive at their next transaction start.
 *
 * A statement that a policy covers gets a "frame" when it starts
 * (ExecutorStart or ProcessUtility): the audited objects and actions, the
 * statement text, the user. The frame is turned into records when the
 * statement ends: with outcome "00000" and the rows processed when it
 * succeeds, with the SQLSTATE when it fails (each hook calls the next one
 * inside PG_TRY, so an error raised anywhere in the statement is seen
 * before the transaction aborts). Records go to the shared queue at once,
 * so they do not depend on the statement's transaction committing. A
 * statement failing before it reaches the executor or ProcessUtility
 * (parse, analysis, planning) has no frame: emit_log_hook records it as
 * action "statement" without reading the catalogs.
 *
 * Relation actions come from the plan's range table: the result relation
 * of INSERT/UPDATE/DELETE/MERGE gets the statement's write actions, every
 * other relation the statement reads gets "select". Relations in
 * pg_catalog, pg_toast and information_schema are not audited. Only client
 * backends are audited (not parallel workers, which run parts of an
 * audited statement, nor background workers).
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/audit/audit.h"
#include "rustydb/audit/internal.h"

#include "rustydb/common/boundary.h"
#include "rustydb/common/settings.h"
#include "rustydb/timeout/timeout.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/parallel.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_namespace.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "mb/pg_wchar.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/inval.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
RUSTYDB_PG_INCLUDE_END

#include <cstring>

namespace rustydb {
namespace audit {

bool in_audit_worker = false;
bool purge_in_progress = false;

namespace {

/* Action classes (bits of a policy's mask). */
enum : uint32
{
	kSelect = 1u << 0,
	kInsert = 1u << 1,
	kUpdate = 1u << 2,
	kDelete = 1u << 3,
	kTruncate = 1u << 4,
	kDdl = 1u << 5,
	kRole = 1u << 6,
	kFunction = 1u << 7,
};

const struct
{
	const char *name;
	uint32 bit;
} kActions[] = {
	{"select", kSelect},     {"insert", kInsert}, {"update", kUpdate}, {"delete", kDelete},
	{"truncate", kTruncate}, {"ddl", kDdl},       {"role", kRole},     {"function", kFunction},
};

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

/*
 * strlcpy for the per-record copies: PostgreSQL's strlcpy copies a byte at
 * a time; this finds the length with strnlen and copies it with memcpy.
 * Same result (at most size - 1 bytes, then a NUL).
 */
inline void
copy_name(char *dst, const char *src, size_t size)
{
	size_t len = strnlen(src, size - 1);

	memcpy(dst, src, len);
	dst[len] = '\0';
}

/* ---- the policy cache ---- */

struct Policy
{
	uint32 mask;
	int nobjects;
	Oid *objects; /* nullptr: every object */
	int nroles;
	Oid *roles; /* nullptr: every role */
	bool condition_true;
};

MemoryContext audit_ctx = nullptr;  /* frames, record buffer */
MemoryContext policy_ctx = nullptr; /* the cached policies */
Policy *policies = nullptr;
int npolicies = 0;
int policies_high_water = 0;
bool cache_valid = false;
bool policies_loaded = false; /* loaded at least once in this backend */
bool extension_present = false;
Oid policies_relid = InvalidOid;
bool loading = false;

/* Policies applying to the current user, recomputed when it changes. */
Oid applicable_for = InvalidOid;
Policy **applicable = nullptr;
int napplicable = 0;
uint32 user_mask = 0; /* union of applicable policies' masks */

void
ensure_contexts()
{
	if (audit_ctx == nullptr)
	{
		audit_ctx =
			AllocSetContextCreate(TopMemoryContext, "rustydb audit", ALLOCSET_DEFAULT_SIZES);
		policy_ctx =
			AllocSetContextCreate(TopMemoryContext, "rustydb audit policies", ALLOCSET_SMALL_SIZES);
	}
}

Oid *
oid_array(ArrayType *arr, int *n)
{
	Datum *elems;
	bool *nulls;
	int count;
	Oid *out;
	int k = 0;

	deconstruct_array(arr, OIDOID, sizeof(Oid), true, TYPALIGN_INT, &elems, &nulls, &count);
	out = static_cast<Oid *>(MemoryContextAlloc(policy_ctx, sizeof(Oid) * Max(count, 1)));
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
	Oid nsp;

	MemoryContextReset(policy_ctx);
	policies = nullptr;
	npolicies = 0;
	applicable_for = InvalidOid;
	applicable = nullptr;
	napplicable = 0;
	user_mask = 0;
	cache_valid = true;

	nsp = get_namespace_oid("rustydb", true);
	policies_relid = OidIsValid(nsp) ? get_relname_relid("audit_policies", nsp) : InvalidOid;
	extension_present = OidIsValid(policies_relid);
	policies_loaded = true;
	if (!extension_present)
		return;

	Oid save_userid;
	int save_sec_context;

	GetUserIdAndSecContext(&save_userid, &save_sec_context);
	loading = true;
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
			static_cast<Policy *>(MemoryContextAllocZero(policy_ctx, sizeof(Policy) * Max(n, 1)));
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
					static_cast<Oid *>(MemoryContextAlloc(policy_ctx, sizeof(Oid) * Max(count, 1)));
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
		policies = loaded;
		npolicies = k;
		if (k > policies_high_water)
			policies_high_water = k;
		loading = false;
	}
	PG_CATCH();
	{
		SetUserIdAndSecContext(save_userid, save_sec_context);
		loading = false;
		cache_valid = false;
		PG_RE_THROW();
	}
	PG_END_TRY();
}

void
compute_applicable()
{
	Oid user = GetUserId();
	Oid session = GetSessionUserId();

	applicable_for = user;
	napplicable = 0;
	user_mask = 0;
	if (npolicies == 0)
		return;
	applicable =
		static_cast<Policy **>(MemoryContextAlloc(policy_ctx, sizeof(Policy *) * npolicies));
	for (int i = 0; i < npolicies; i++)
	{
		Policy *p = &policies[i];
		bool match = p->roles == nullptr;

		for (int j = 0; !match && j < p->nroles; j++)
			match = OidIsValid(p->roles[j]) && (is_member_of_role_nosuper(user, p->roles[j]) ||
												is_member_of_role_nosuper(session, p->roles[j]));
		if (match)
		{
			applicable[napplicable++] = p;
			user_mask |= p->mask;
		}
	}
}

/* Actions audited on relation relid for the current user. */
uint32
relation_mask(Oid relid)
{
	uint32 mask = 0;

	for (int i = 0; i < napplicable; i++)
	{
		Policy *p = applicable[i];

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

/* Actions audited for the current user on statements without a relation. */
uint32
unscoped_mask()
{
	uint32 mask = 0;

	for (int i = 0; i < napplicable; i++)
		if (applicable[i]->objects == nullptr)
			mask |= applicable[i]->mask;
	return mask;
}

/* May this statement be audited at all? Loads the policies if needed. */
bool
capture_enabled()
{
	if (in_audit_worker || loading || MyBackendType != B_BACKEND || IsParallelWorker())
		return false;
	if (!IsTransactionState())
		return false;
	if (!cache_valid)
	{
		if (IsInParallelMode() || IsAbortedTransactionBlockState())
			return npolicies > 0;
		load_policies();
	}
	if (npolicies == 0)
		return false;
	if (applicable_for != GetUserId())
		compute_applicable();
	return user_mask != 0;
}

/* ---- session fields ---- */

char session_id[32];
char database_name[NAMEDATALEN];
char client_addr[kAddrLen];
Oid cached_user = InvalidOid;
char cached_user_name[NAMEDATALEN];
Oid cached_session = InvalidOid;
char cached_session_name[NAMEDATALEN];

/*
 * The session's part of a statement's records (session user, database,
 * client, ...; zeros elsewhere), built once and copied into each record:
 * a memset of the record and five strlcpy per record were a good part of
 * emitting it. Rebuilt when one of the cached names changes.
 */
Record *session_tpl = nullptr;
bool session_tpl_valid = false;

void
name_of_role(Oid role, Oid *cached, char *buf)
{
	if (*cached == role && buf[0] != '\0')
		return;
	session_tpl_valid = false;
	const char *name = IsTransactionState() ? GetUserNameFromId(role, true) : nullptr;

	if (name != nullptr)
		strlcpy(buf, name, NAMEDATALEN);
	else
		snprintf(buf, NAMEDATALEN, "role %u", role);
	*cached = role;
}

/* Resolve what needs the catalogs while that is safe (statement start). */
void
refresh_session_names()
{
	if (session_id[0] == '\0')
		snprintf(session_id, sizeof(session_id), "%lx.%x", static_cast<long>(MyStartTime),
				 MyProcPid);
	if (database_name[0] == '\0' && OidIsValid(MyDatabaseId) && IsTransactionState())
	{
		const char *db = get_database_name(MyDatabaseId);

		if (db != nullptr)
			strlcpy(database_name, db, sizeof(database_name));
		session_tpl_valid = false;
	}
	if (client_addr[0] == '\0' && MyProcPort != nullptr)
	{
		LOCAL_FCINFO(info, 0);
		Datum addr;

		InitFunctionCallInfoData(*info, nullptr, 0, InvalidOid, nullptr, nullptr);
		addr = inet_client_addr(info);
		if (info->isnull)
			strlcpy(client_addr, "[local]", sizeof(client_addr));
		else
			strlcpy(client_addr, DatumGetCString(DirectFunctionCall1(inet_out, addr)),
					sizeof(client_addr));
		session_tpl_valid = false;
	}
	if (OidIsValid(GetUserId()))
		name_of_role(GetUserId(), &cached_user, cached_user_name);
	if (OidIsValid(GetSessionUserId()))
		name_of_role(GetSessionUserId(), &cached_session, cached_session_name);
}

/* ---- statement frames ---- */

constexpr int kMaxFunctions = 16;

struct Obj
{
	Oid relid;
	uint32 actions;
	char name[kObjectLen];
};

struct Frame
{
	Frame *prev;
	const void *key; /* the QueryDesc, or the PlannedStmt of a utility */
	SubTransactionId subxid;
	bool survives_xact;          /* CALL/DO: may commit or roll back inside */
	uint32 statement_actions;    /* utility: the statement's class (one bit) */
	const char *security_action; /* utility: always-audited event, or nullptr */
	int nobj;
	int maxobj;
	Obj *objs;
	int nfunc;
	int extra_funcs;
	Oid func_oids[kMaxFunctions];
	char (*func_names)[kObjectLen]; /* allocated with the first function */
	char object[kObjectLen];        /* utility: object text when no relation */
	char detail[kDetailLen];
	char user_name[NAMEDATALEN];
	char *statement; /* bounded copy, palloc'd in audit_ctx */
	uint32 statement_len;
};

int64 pending_purge_rows = 0;
int64 pending_purge_bytes = 0;

Frame *top = nullptr;
int frame_depth = 0;
int frame_high_water = 0;
Record *record_buf = nullptr;
int last_error_code = 0;

/*
 * Statements in the executor or in ProcessUtility: an error raised while
 * this is 0 comes from parsing, analysis or planning (or the protocol
 * around them), where no frame exists. Errors leave it raised; a
 * subtransaction abort restores the value its start saw, a transaction
 * end clears it.
 */
int exec_nesting = 0;
constexpr int kMaxSavedNesting = 64;
int saved_nesting[kMaxSavedNesting];
bool recording_failure = false;

/*
 * Bytes of s[0..len) kept when clipping it to max bytes without splitting
 * a character: pg_mbcliplen. Statements are usually plain ASCII, where
 * that is min(len, max) (ASCII bytes are single characters in every
 * server encoding) and needs no per-character walk.
 */
int
clip_length(const char *s, int len, int max)
{
	constexpr uint64 kHigh = UINT64CONST(0x8080808080808080);
	constexpr uint64 kOnes = UINT64CONST(0x0101010101010101);
	int limit = Min(len, max);
	int i = 0;

	/* eight bytes at a time: any byte with its high bit set, or zero */
	for (; i + 8 <= limit; i += 8)
	{
		uint64 w;

		memcpy(&w, s + i, sizeof(w));
		if ((w & kHigh) != 0 || ((w - kOnes) & ~w & kHigh) != 0)
			return pg_mbcliplen(s, len, limit);
	}
	for (; i < limit; i++)
	{
		unsigned char c = static_cast<unsigned char>(s[i]);

		if (c == 0 || (c & 0x80) != 0)
			return pg_mbcliplen(s, len, limit);
	}
	return limit;
}

void
copy_statement(Frame *f, const char *source, int location, int len, ParamListInfo params)
{
	int max = settings::audit_statement_max;
	const char *s = source != nullptr ? source : "";
	int slen;
	int clip;

	/* the parser's location and length of this statement in the string */
	if (location > 0)
		s += location;
	slen = len > 0 ? len : static_cast<int>(strlen(s));
	/* skip leading white space */
	while (slen > 0 && (*s == ' ' || *s == '\n' || *s == '\t' || *s == '\r'))
	{
		s++;
		slen--;
	}
	clip = clip_length(s, slen, max);
	if (settings::audit_log_parameters && params != nullptr && params->numParams > 0 && clip < max)
	{
		StringInfoData buf;
		char *p = BuildParamLogString(params, nullptr, -1);

		initStringInfo(&buf);
		appendBinaryStringInfo(&buf, s, clip);
		if (p != nullptr)
		{
			appendStringInfoString(&buf, "\nparameters: ");
			appendStringInfoString(&buf, p);
		}
		if (buf.len > max)
			buf.len = pg_mbcliplen(buf.data, buf.len, max);
		f->statement = static_cast<char *>(MemoryContextAlloc(audit_ctx, buf.len + 1));
		memcpy(f->statement, buf.data, buf.len);
		f->statement[buf.len] = '\0';
		f->statement_len = buf.len;
		pfree(buf.data);
		return;
	}
	/* no parameters: the clipped text as it is, copied once */
	f->statement = static_cast<char *>(MemoryContextAlloc(audit_ctx, clip + 1));
	memcpy(f->statement, s, clip);
	f->statement[clip] = '\0';
	f->statement_len = clip;
}

Frame *
push_frame(const void *key)
{
	Frame *f = static_cast<Frame *>(MemoryContextAllocZero(audit_ctx, sizeof(Frame)));

	refresh_session_names();
	f->key = key;
	f->subxid = GetCurrentSubTransactionId();
	copy_name(f->user_name, cached_user_name, sizeof(f->user_name));
	f->prev = top;
	top = f;
	frame_depth++;
	if (frame_depth > frame_high_water)
		frame_high_water = frame_depth;
	return f;
}

void
add_object(Frame *f, Oid relid, uint32 actions, const char *name)
{
	for (int i = 0; i < f->nobj; i++)
		if (f->objs[i].relid == relid && OidIsValid(relid))
		{
			f->objs[i].actions |= actions;
			return;
		}
	if (f->nobj == f->maxobj)
	{
		int n = f->maxobj == 0 ? 4 : f->maxobj * 2;

		f->objs =
			static_cast<Obj *>(f->objs == nullptr ? MemoryContextAlloc(audit_ctx, sizeof(Obj) * n)
												  : repalloc(f->objs, sizeof(Obj) * n));
		f->maxobj = n;
	}
	Obj *o = &f->objs[f->nobj++];

	o->relid = relid;
	o->actions = actions;
	copy_name(o->name, name, sizeof(o->name));
}

/*
 * Relation names, cached per backend: three syscache lookups and a
 * snprintf per audited relation and statement were a good part of the
 * capture's cost. An entry goes when the relation's relcache entry is
 * invalidated (rename, SET SCHEMA, drop: every change of its pg_class
 * row), all of them when a schema changes (its pg_namespace row: a schema
 * rename sends no relcache invalidation) or the relcache is reset.
 * Relations that do not exist are not cached.
 */
struct RelName
{
	Oid relid; /* hash key */
	bool audited;
	char name[kObjectLen];
};

constexpr long kMaxRelNames = 1024;
HTAB *relname_cache = nullptr;

void
relname_cache_reset()
{
	if (relname_cache != nullptr)
		hash_destroy(relname_cache);
	relname_cache = nullptr;
}

/* Look the name up in the catalogs; false: not audited, *exists: found. */
bool
relation_name_lookup(Oid relid, char *out, bool *exists)
{
	Oid nsp = get_rel_namespace(relid);
	char *rel;
	char *schema;

	*exists = OidIsValid(nsp);
	if (!OidIsValid(nsp) || nsp == PG_CATALOG_NAMESPACE || nsp == PG_TOAST_NAMESPACE)
		return false;
	schema = get_namespace_name(nsp);
	if (schema == nullptr)
	{
		*exists = false;
		return false;
	}
	if (strcmp(schema, "information_schema") == 0)
		return false;
	rel = get_rel_name(relid);
	if (rel == nullptr)
	{
		*exists = false;
		return false;
	}
	snprintf(out, kObjectLen, "%s.%s", schema, rel);
	return true;
}

/* "schema.relation" of a relation, or false when it is not audited. */
bool
relation_name(Oid relid, char *out)
{
	RelName *e;
	bool found;
	bool exists;
	bool audited;

	if (relname_cache != nullptr)
	{
		e = static_cast<RelName *>(hash_search(relname_cache, &relid, HASH_FIND, nullptr));
		if (e != nullptr)
		{
			if (e->audited)
				copy_name(out, e->name, kObjectLen);
			return e->audited;
		}
	}
	audited = relation_name_lookup(relid, out, &exists);
	if (!exists)
		return false;
	if (relname_cache != nullptr && hash_get_num_entries(relname_cache) >= kMaxRelNames)
		relname_cache_reset();
	if (relname_cache == nullptr)
	{
		HASHCTL ctl;

		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(RelName);
		ctl.hcxt = TopMemoryContext;
		relname_cache = hash_create("rustydb audit relation names", 64, &ctl,
									HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	e = static_cast<RelName *>(hash_search(relname_cache, &relid, HASH_ENTER, &found));
	e->audited = audited;
	if (audited)
		copy_name(e->name, out, sizeof(e->name));
	else
		e->name[0] = '\0';
	return audited;
}

void
free_frame(Frame *f)
{
	if (f->func_names != nullptr)
		pfree(f->func_names);
	if (f->statement != nullptr)
		pfree(f->statement);
	if (f->objs != nullptr)
		pfree(f->objs);
	pfree(f);
}

/* Remove f (and anything above it) from the stack. */
void
pop_frame(Frame *f)
{
	while (top != nullptr)
	{
		Frame *t = top;

		top = t->prev;
		frame_depth--;
		free_frame(t);
		if (t == f)
			break;
	}
}

bool
on_stack(const Frame *f)
{
	for (Frame *t = top; t != nullptr; t = t->prev)
		if (t == f)
			return true;
	return false;
}

Frame *
find_frame(const void *key)
{
	for (Frame *t = top; t != nullptr; t = t->prev)
		if (t->key == key)
			return t;
	return nullptr;
}

Record *
record_buffer()
{
	if (record_buf == nullptr)
		record_buf =
			static_cast<Record *>(MemoryContextAlloc(TopMemoryContext, record_slot_size()));
	return record_buf;
}

/*
 * What fill_session() sets, except user_name (the frame's): the session
 * template, then the fields that change between records.
 */
void
fill_from_template(Record *r)
{
	FullTransactionId fxid = GetTopFullTransactionIdIfAny();

	if (!session_tpl_valid)
	{
		if (session_tpl == nullptr)
			session_tpl = static_cast<Record *>(
				MemoryContextAlloc(TopMemoryContext, offsetof(Record, statement)));
		memset(session_tpl, 0, offsetof(Record, statement));
		fill_session(session_tpl);
		session_tpl->event_time = 0;
		session_tpl->xid = 0;
		session_tpl->user_name[0] = '\0';
		memset(session_tpl->application_name, 0, sizeof(session_tpl->application_name));
		session_tpl_valid = true;
	}
	memcpy(r, session_tpl, offsetof(Record, statement));
	r->event_time = GetCurrentTimestamp();
	r->xid = FullTransactionIdIsValid(fxid) ? U64FromFullTransactionId(fxid) : 0;
	if (application_name != nullptr)
		copy_name(r->application_name, application_name, sizeof(r->application_name));
}

void
emit_one(const Frame *f, const char *action, const char *object, const char *detail,
		 const char *outcome, int64 rows)
{
	Record *r = record_buffer();

	fill_from_template(r);
	copy_name(r->user_name, f->user_name, sizeof(r->user_name));
	copy_name(r->action, action, sizeof(r->action));
	if (object != nullptr)
		copy_name(r->object, object, sizeof(r->object));
	if (detail != nullptr)
		copy_name(r->detail, detail, sizeof(r->detail));
	copy_name(r->outcome, outcome, sizeof(r->outcome));
	r->rows = rows;
	r->statement_len = f->statement_len;
	memcpy(r->statement, f->statement != nullptr ? f->statement : "", f->statement_len);
	r->statement[f->statement_len] = '\0';
	enqueue(r);
}

/* Turn a frame into records. */
void
emit_frame(const Frame *f, int sqlerrcode, int64 rows)
{
	const char *outcome = sqlerrcode == 0 ? "00000" : unpack_sql_state(sqlerrcode);
	char detail[kDetailLen];

	if (f->security_action != nullptr)
		emit_one(f, f->security_action, f->object, f->detail, outcome, -1);
	if (f->statement_actions != 0 && f->nobj == 0)
		for (const auto &a : kActions)
			if (f->statement_actions & a.bit)
				emit_one(f, a.name, f->object[0] ? f->object : nullptr,
						 f->detail[0] ? f->detail : nullptr, outcome,
						 (a.bit & (kFunction | kDdl | kRole)) ? -1 : rows);
	for (int i = 0; i < f->nobj; i++)
		for (const auto &a : kActions)
			if (f->objs[i].actions & a.bit)
				emit_one(f, a.name, f->objs[i].name, f->detail[0] ? f->detail : nullptr, outcome,
						 rows);
	for (int i = 0; i < f->nfunc; i++)
	{
		const char *d = nullptr;

		if (i == f->nfunc - 1 && f->extra_funcs > 0)
		{
			snprintf(detail, sizeof(detail), "and %d more functions not recorded", f->extra_funcs);
			d = detail;
		}
		emit_one(f, "function", f->func_names[i], d, outcome, -1);
	}
}

/* The statement of frame f failed with the error being handled. */
void
frame_failed(Frame *f, int64 rows)
{
	int code = geterrcode();

	if (!on_stack(f))
		return;
	/* inner frames whose statements did not see the error end first */
	while (top != f)
	{
		Frame *t = top;

		emit_frame(t, code, 0);
		pop_frame(t);
	}
	emit_frame(f, code, rows);
	pop_frame(f);
}

/* The current top-level statement's text, bounded, into r. */
void
copy_current_statement(Record *r)
{
	const char *stmt = debug_query_string != nullptr ? debug_query_string : "";
	int len = strlen(stmt);

	len = clip_length(stmt, len, settings::audit_statement_max);
	memcpy(r->statement, stmt, len);
	r->statement[len] = '\0';
	r->statement_len = len;
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
	if (!policies_loaded)
		return true;
	if (!extension_present)
		return false;
	if (npolicies == 0)
		return !cache_valid;
	if (applicable_for == GetUserId())
		return user_mask != 0;
	return true;
}

/*
 * emit_log_hook, ERROR: record a statement that failed at parse, analysis
 * or planning time (no frame exists for it) as action "statement", the
 * SQLSTATE as outcome and the message as detail. Uses only what needs no
 * catalog access: the cached names, else the login's.
 */
void
record_failed_statement(const ErrorData *edata)
{
	if (recording_failure || exec_nesting > 0 || in_audit_worker || loading ||
		MyBackendType != B_BACKEND || IsParallelWorker() || debug_query_string == nullptr ||
		!IsTransactionState() || IsAbortedTransactionBlockState() || !failure_audited())
		return;
	recording_failure = true;
	PG_TRY();
	{
		Record *r = record_buffer();
		memset(r, 0, offsetof(Record, statement));
		fill_session(r);
		/* names not cached yet: session_authorization's (or the oids) */
		const char *auth = GetConfigOption("session_authorization", true, false);

		if (cached_session != GetSessionUserId() || r->session_user_name[0] == '\0')
		{
			if (auth != nullptr && auth[0] != '\0')
				strlcpy(r->session_user_name, auth, sizeof(r->session_user_name));
			else
				snprintf(r->session_user_name, sizeof(r->session_user_name), "role %u",
						 GetSessionUserId());
		}
		if (cached_user != GetUserId() || r->user_name[0] == '\0')
		{
			if (GetUserId() == GetSessionUserId())
				strlcpy(r->user_name, r->session_user_name, sizeof(r->user_name));
			else
				snprintf(r->user_name, sizeof(r->user_name), "role %u", GetUserId());
		}
		if (r->database_name[0] == '\0')
			snprintf(r->database_name, sizeof(r->database_name), "database %u", MyDatabaseId);
		strlcpy(r->action, "statement", sizeof(r->action));
		if (edata->message != nullptr)
			strlcpy(r->detail, edata->message, sizeof(r->detail));
		strlcpy(r->outcome, unpack_sql_state(edata->sqlerrcode), sizeof(r->outcome));
		copy_current_statement(r);
		/* interrupts are held here: never fail, wait only under "wait" */
		enqueue(r, settings::audit_overflow == settings::kAuditOverflowWait ? EnqueueMode::Setting
																			: EnqueueMode::NoWait);
	}
	PG_CATCH();
	{
		recording_failure = false;
		PG_RE_THROW();
	}
	PG_END_TRY();
	recording_failure = false;
}

/* ---- hooks ---- */

ExecutorStart_hook_type prev_executor_start = nullptr;
ExecutorRun_hook_type prev_executor_run = nullptr;
ExecutorFinish_hook_type prev_executor_finish = nullptr;
ExecutorEnd_hook_type prev_executor_end = nullptr;
ProcessUtility_hook_type prev_process_utility = nullptr;
object_access_hook_type prev_object_access = nullptr;
emit_log_hook_type prev_emit_log = nullptr;

Frame *
frame_for_query(QueryDesc *qd)
{
	PlannedStmt *ps = qd->plannedstmt;
	uint32 write_actions = 0;
	Frame *f = nullptr;
	ListCell *lc;
	int rti = 0;
	char name[kObjectLen];

	if (!(user_mask & (kSelect | kInsert | kUpdate | kDelete | kFunction)))
		return nullptr;
	switch (qd->operation)
	{
		case CMD_INSERT:
			write_actions = kInsert;
			break;
		case CMD_UPDATE:
			write_actions = kUpdate;
			break;
		case CMD_DELETE:
			write_actions = kDelete;
			break;
		case CMD_MERGE:
			write_actions = kInsert | kUpdate | kDelete;
			break;
		default:
			break;
	}
	foreach (lc, ps->rtable)
	{
		RangeTblEntry *rte = static_cast<RangeTblEntry *>(lfirst(lc));
		uint32 actions = 0;

		rti++;
		if (rte->rtekind != RTE_RELATION || rte->requiredPerms == 0)
			continue;
		if (write_actions != 0 && list_member_int(ps->resultRelations, rti))
		{
			if (rte->requiredPerms & ACL_INSERT)
				actions |= write_actions & kInsert;
			if (rte->requiredPerms & ACL_UPDATE)
				actions |= write_actions & kUpdate;
			if (rte->requiredPerms & ACL_DELETE)
				actions |= write_actions & kDelete;
		}
		else if (rte->requiredPerms & ACL_SELECT)
			actions = kSelect;
		else if (qd->operation == CMD_SELECT)
			actions = kSelect; /* SELECT ... FOR UPDATE without column access */
		actions &= relation_mask(rte->relid);
		if (actions == 0 || !relation_name(rte->relid, name))
			continue;
		if (f == nullptr)
			f = push_frame(qd);
		add_object(f, rte->relid, actions, name);
	}
	if (f == nullptr && (unscoped_mask() & kFunction))
		f = push_frame(qd);
	if (f != nullptr)
		copy_statement(f, qd->sourceText, ps->stmt_location, ps->stmt_len, qd->params);
	return f;
}

void
call_executor_start(QueryDesc *qd, int eflags)
{
	if (prev_executor_start)
		prev_executor_start(qd, eflags);
	else
		standard_ExecutorStart(qd, eflags);
}

/* Relation named by a RangeVar, if it exists. */
Oid
rangevar_relid(RangeVar *rv)
{
	return rv != nullptr ? RangeVarGetRelid(rv, NoLock, true) : InvalidOid;
}

bool
is_rustydb_extension(List *names)
{
	ListCell *lc;

	foreach (lc, names)
	{
		Node *n = static_cast<Node *>(lfirst(lc));

		if (IsA(n, String) && strcmp(strVal(n), "rustydb") == 0)
			return true;
	}
	return false;
}

/*
 * Classify a utility statement: its action class, the relations it
 * concerns (added to rels), and whether it is an always-audited security
 * event.
 */
uint32
classify_utility(Node *n, List **rels, const char **security, bool *nonatomic, char *object)
{
	*security = nullptr;
	*nonatomic = false;
	switch (nodeTag(n))
	{
		case T_TruncateStmt:
		{
			ListCell *lc;

			foreach (lc, castNode(TruncateStmt, n)->relations)
				*rels = lappend_oid(*rels, rangevar_relid(static_cast<RangeVar *>(lfirst(lc))));
			return kTruncate;
		}
		case T_GrantStmt:
		case T_GrantRoleStmt:
		case T_CreateRoleStmt:
		case T_AlterRoleStmt:
		case T_AlterRoleSetStmt:
		case T_DropRoleStmt:
		case T_ReassignOwnedStmt:
		case T_DropOwnedStmt:
		case T_AlterDefaultPrivilegesStmt:
			return kRole;
		case T_CopyStmt:
		{
			CopyStmt *c = castNode(CopyStmt, n);

			if (c->relation == nullptr)
				return 0; /* COPY (query): the executor sees the query */
			*rels = lappend_oid(*rels, rangevar_relid(c->relation));
			return c->is_from ? kInsert : kSelect;
		}
		case T_CallStmt:
		{
			CallStmt *c = castNode(CallStmt, n);

			*nonatomic = true;
			if (c->funcexpr != nullptr)
			{
				char *fn = get_func_name(c->funcexpr->funcid);
				char *ns = get_namespace_name(get_func_namespace(c->funcexpr->funcid));

				if (fn != nullptr && ns != nullptr)
					snprintf(object, kObjectLen, "%s.%s", ns, fn);
			}
			return kFunction;
		}
		case T_DoStmt:
			*nonatomic = true;
			strlcpy(object, "DO", kObjectLen);
			return kFunction;
		case T_CreateExtensionStmt:
			if (strcmp(castNode(CreateExtensionStmt, n)->extname, "rustydb") == 0)
				*security = "audit_extension";
			return kDdl;
		case T_AlterExtensionStmt:
			if (strcmp(castNode(AlterExtensionStmt, n)->extname, "rustydb") == 0)
				*security = "audit_extension";
			return kDdl;
		case T_AlterExtensionContentsStmt:
			/* taking an object out of rustydb (so that it can be dropped) */
			if (strcmp(castNode(AlterExtensionContentsStmt, n)->extname, "rustydb") == 0)
			{
				*security = "audit_extension";
				strlcpy(object, "rustydb", kObjectLen);
			}
			return kDdl;
		case T_DropStmt:
		{
			DropStmt *d = castNode(DropStmt, n);

			if (d->removeType == OBJECT_EXTENSION && is_rustydb_extension(d->objects))
				*security = "audit_extension";
			if (d->removeType == OBJECT_TABLE || d->removeType == OBJECT_VIEW ||
				d->removeType == OBJECT_MATVIEW || d->removeType == OBJECT_FOREIGN_TABLE)
			{
				ListCell *lc;

				foreach (lc, d->objects)
					*rels = lappend_oid(*rels, rangevar_relid(makeRangeVarFromNameList(
												   static_cast<List *>(lfirst(lc)))));
			}
			return kDdl;
		}
		case T_AlterSystemStmt:
		{
			AlterSystemStmt *a = castNode(AlterSystemStmt, n);

			if (a->setstmt->name != nullptr && strncmp(a->setstmt->name, "rustydb.", 8) == 0)
			{
				*security = "setting_change";
				strlcpy(object, a->setstmt->name, kObjectLen);
			}
			return 0;
		}
		case T_AlterTableStmt:
			*rels = lappend_oid(*rels, rangevar_relid(castNode(AlterTableStmt, n)->relation));
			return kDdl;
		case T_IndexStmt:
			*rels = lappend_oid(*rels, rangevar_relid(castNode(IndexStmt, n)->relation));
			return kDdl;
		case T_CreateTrigStmt:
			*rels = lappend_oid(*rels, rangevar_relid(castNode(CreateTrigStmt, n)->relation));
			return kDdl;
		case T_RenameStmt:
			*rels = lappend_oid(*rels, rangevar_relid(castNode(RenameStmt, n)->relation));
			return kDdl;
		case T_CreateStmt:
		{
			RangeVar *rv = castNode(CreateStmt, n)->relation;

			snprintf(object, kObjectLen, "%s%s%s", rv->schemaname ? rv->schemaname : "",
					 rv->schemaname ? "." : "", rv->relname);
			return kDdl;
		}
		default:
			return GetCommandLogLevel(n) == LOGSTMT_DDL ? static_cast<uint32>(kDdl) : 0u;
	}
}

/* Emit a frame already taken off the stack, then free it. */
__attribute__((noinline)) void
emit_and_free(Frame *f, int code, int64 rows)
{
	PG_TRY();
	{
		emit_frame(f, code, rows);
	}
	PG_CATCH();
	{
		free_frame(f);
		PG_RE_THROW();
	}
	PG_END_TRY();
	free_frame(f);
}

/* End frame f (on the stack) successfully, and any frame above it. */
void
frame_succeeded(Frame *f, int64 rows)
{
	if (!on_stack(f))
		return;
	while (top != f)
	{
		Frame *t = top;

		top = t->prev;
		frame_depth--;
		emit_and_free(t, last_error_code, 0);
	}
	top = f->prev;
	frame_depth--;
	/* f is off the stack: an overflow error cannot emit it twice */
	emit_and_free(f, 0, rows);
}

/* End the frames that never finished, down to (excluding) a frame
 * surviving transaction control, or those of one subtransaction. */
void
frames_aborted(bool by_subxact, SubTransactionId subid)
{
	while (top != nullptr && !top->survives_xact && (!by_subxact || top->subxid == subid))
	{
		Frame *t = top;

		top = t->prev;
		frame_depth--;
		emit_and_free(t, last_error_code, 0);
	}
}

int64
processed(QueryDesc *qd)
{
	return qd->estate != nullptr ? static_cast<int64>(qd->estate->es_processed) : 0;
}

__attribute__((noinline)) void
guarded_start(Frame *f, QueryDesc *qd, int eflags)
{
	PG_TRY();
	{
		if (prev_executor_start)
			prev_executor_start(qd, eflags);
		else
			standard_ExecutorStart(qd, eflags);
	}
	PG_CATCH();
	{
		frame_failed(f, 0);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

__attribute__((noinline)) void
guarded_run(Frame *f, QueryDesc *qd, ScanDirection direction, uint64 count, bool execute_once)
{
	PG_TRY();
	{
		if (prev_executor_run)
			prev_executor_run(qd, direction, count, execute_once);
		else
			standard_ExecutorRun(qd, direction, count, execute_once);
	}
	PG_CATCH();
	{
		frame_failed(f, processed(qd));
		PG_RE_THROW();
	}
	PG_END_TRY();
}

__attribute__((noinline)) void
guarded_finish(Frame *f, QueryDesc *qd)
{
	PG_TRY();
	{
		if (prev_executor_finish)
			prev_executor_finish(qd);
		else
			standard_ExecutorFinish(qd);
	}
	PG_CATCH();
	{
		frame_failed(f, processed(qd));
		PG_RE_THROW();
	}
	PG_END_TRY();
}

void
call_utility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
			 ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *env,
			 DestReceiver *dest, QueryCompletion *qc)
{
	if (prev_process_utility)
		prev_process_utility(pstmt, query_string, read_only_tree, context, params, env, dest, qc);
	else
		standard_ProcessUtility(pstmt, query_string, read_only_tree, context, params, env, dest,
								qc);
}

__attribute__((noinline)) void
guarded_utility(Frame *f, PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
				ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *env,
				DestReceiver *dest, QueryCompletion *qc)
{
	PG_TRY();
	{
		call_utility(pstmt, query_string, read_only_tree, context, params, env, dest, qc);
	}
	PG_CATCH();
	{
		frame_failed(f, 0);
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/* Does a DDL statement concern the audit's own tables? */
/* Does the statement concern one of the trail's tables? (its name into object) */
bool
touches_audit_storage(List *rels, char *object)
{
	ListCell *lc;
	char name[kObjectLen];

	foreach (lc, rels)
	{
		Oid relid = lfirst_oid(lc);

		if (OidIsValid(relid) && relation_name(relid, name) &&
			(strncmp(name, "rustydb._audit_", 15) == 0 ||
			 strcmp(name, "rustydb.audit_policies") == 0))
		{
			strlcpy(object, name, kObjectLen);
			return true;
		}
	}
	return false;
}

} /* namespace */

void
fill_session(Record *r)
{
	FullTransactionId fxid = GetTopFullTransactionIdIfAny();

	if (session_id[0] == '\0')
		snprintf(session_id, sizeof(session_id), "%lx.%x", static_cast<long>(MyStartTime),
				 MyProcPid);
	r->event_time = GetCurrentTimestamp();
	r->rows = -1;
	r->xid = FullTransactionIdIsValid(fxid) ? U64FromFullTransactionId(fxid) : 0;
	r->session_start = static_cast<int64>(MyStartTime);
	r->pid = MyProcPid;
	strlcpy(r->user_name, cached_user_name, sizeof(r->user_name));
	strlcpy(r->session_user_name, cached_session_name, sizeof(r->session_user_name));
	strlcpy(r->database_name, database_name, sizeof(r->database_name));
	strlcpy(r->client_addr, client_addr, sizeof(r->client_addr));
	if (application_name != nullptr)
		strlcpy(r->application_name, application_name, sizeof(r->application_name));
}

void
note_purge(int64 rows, int64 bytes)
{
	pending_purge_rows += rows;
	pending_purge_bytes += bytes;
}

void
capture_usage(int64 *policies_now, int64 *policies_hw, Size *policy_bytes, int64 *frames_now,
			  int64 *frames_hw, Size *frame_bytes)
{
	*policies_now = npolicies;
	*policies_hw = policies_high_water;
	*policy_bytes = policy_ctx != nullptr ? MemoryContextMemAllocated(policy_ctx, true) : 0;
	*frames_now = frame_depth;
	*frames_hw = frame_high_water;
	*frame_bytes = audit_ctx != nullptr ? MemoryContextMemAllocated(audit_ctx, true) : 0;
}

void
security_event(const char *action, const char *object, const char *detail)
{
	pg::call([action, object, detail] {
		Record *r = record_buffer();

		refresh_session_names();
		memset(r, 0, offsetof(Record, statement));
		fill_session(r);
		strlcpy(r->action, action, sizeof(r->action));
		if (object != nullptr)
			strlcpy(r->object, object, sizeof(r->object));
		if (detail != nullptr)
			strlcpy(r->detail, detail, sizeof(r->detail));
		strlcpy(r->outcome, "00000", sizeof(r->outcome));
		copy_current_statement(r);
		if (in_audit_worker)
			worker_event(r); /* written with the worker's next batch */
		else
			enqueue(r);
	});
}

} /* namespace audit */
} /* namespace rustydb */

using namespace rustydb::audit;

/* ---- hook entry points ---- */

extern "C" {

static void
audit_executor_start(QueryDesc *qd, int eflags) noexcept
{
	rustydb::boundary::run("audit ExecutorStart", [&] {
		Frame *f = nullptr;

		exec_nesting++; /* until ExecutorEnd, or the (sub)transaction's abort */
		rustydb::timeout::check_armed();
		if (!(eflags & EXEC_FLAG_EXPLAIN_ONLY) && capture_enabled())
			f = frame_for_query(qd);
		if (f == nullptr)
			call_executor_start(qd, eflags);
		else
			guarded_start(f, qd, eflags);
	});
}

static void
audit_executor_run(QueryDesc *qd, ScanDirection direction, uint64 count, bool execute_once) noexcept
{
	rustydb::boundary::run("audit ExecutorRun", [&] {
		Frame *f = top != nullptr ? find_frame(qd) : nullptr;

		if (f != nullptr)
			guarded_run(f, qd, direction, count, execute_once);
		else if (prev_executor_run)
			prev_executor_run(qd, direction, count, execute_once);
		else
			standard_ExecutorRun(qd, direction, count, execute_once);
	});
}

static void
audit_executor_finish(QueryDesc *qd) noexcept
{
	rustydb::boundary::run("audit ExecutorFinish", [&] {
		Frame *f = top != nullptr ? find_frame(qd) : nullptr;

		if (f != nullptr)
			guarded_finish(f, qd);
		else if (prev_executor_finish)
			prev_executor_finish(qd);
		else
			standard_ExecutorFinish(qd);
	});
}

static void
audit_executor_end(QueryDesc *qd) noexcept
{
	rustydb::boundary::run("audit ExecutorEnd", [&] {
		Frame *f = top != nullptr ? find_frame(qd) : nullptr;

		if (f != nullptr)
			frame_succeeded(f, processed(qd));
		if (exec_nesting > 0)
			exec_nesting--;
		if (prev_executor_end)
			prev_executor_end(qd);
		else
			standard_ExecutorEnd(qd);
	});
}

static void
audit_process_utility(PlannedStmt *pstmt, const char *query_string, bool read_only_tree,
					  ProcessUtilityContext context, ParamListInfo params, QueryEnvironment *env,
					  DestReceiver *dest, QueryCompletion *qc) noexcept
{
	rustydb::boundary::run("audit ProcessUtility", [&] {
		Node *n = pstmt->utilityStmt;
		Frame *f = nullptr;
		List *rels = NIL;
		const char *security = nullptr;
		bool nonatomic = false;
		char object[kObjectLen];
		uint32 cls;
		int nesting = exec_nesting++;

		rustydb::timeout::check_armed();
		object[0] = '\0';
		if (!in_audit_worker && !loading && !IsParallelWorker() && IsTransactionState() &&
			!IsAbortedTransactionBlockState() && MyBackendType == B_BACKEND)
		{
			cls = classify_utility(n, &rels, &security, &nonatomic, object);
			if (cls == kDdl && security == nullptr && touches_audit_storage(rels, object))
				security = "audit_storage";
			if (cls != 0 && !capture_enabled())
				cls = 0;
			if (cls != 0 || security != nullptr)
			{
				uint32 unscoped = cls != 0 ? unscoped_mask() : 0;
				ListCell *lc;
				char name[kObjectLen];
				bool any_rel = false;

				f = push_frame(pstmt);
				f->security_action = security;
				f->survives_xact = nonatomic;
				strlcpy(f->object, object, sizeof(f->object));
				strlcpy(f->detail, GetCommandTagName(CreateCommandTag(n)), sizeof(f->detail));
				foreach (lc, rels)
				{
					Oid relid = lfirst_oid(lc);

					if (!OidIsValid(relid) || !relation_name(relid, name))
						continue;
					any_rel = true;
					if (cls != 0 && (relation_mask(relid) & cls))
						add_object(f, relid, cls, name);
				}
				if (!any_rel)
					f->statement_actions = cls & unscoped;
				if (f->nobj == 0 && f->statement_actions == 0 && security == nullptr)
				{
					pop_frame(f);
					f = nullptr;
				}
				else
					copy_statement(f, query_string, pstmt->stmt_location, pstmt->stmt_len, params);
			}
		}

		if (f == nullptr)
		{
			call_utility(pstmt, query_string, read_only_tree, context, params, env, dest, qc);
			exec_nesting = nesting;
			return;
		}
		guarded_utility(f, pstmt, query_string, read_only_tree, context, params, env, dest, qc);
		exec_nesting = nesting;
		frame_succeeded(f, qc != nullptr ? static_cast<int64>(qc->nprocessed) : 0);
	});
}

static void
audit_object_access(ObjectAccessType access, Oid class_id, Oid object_id, int sub_id,
					void *arg) noexcept
{
	rustydb::boundary::run("audit object_access", [&] {
		if (!in_audit_worker && !loading && IsTransactionState())
			protection_event(access, class_id, object_id, sub_id);
		if (access == OAT_FUNCTION_EXECUTE && top != nullptr && (unscoped_mask() & kFunction) &&
			!loading)
		{
			Frame *f = top;
			bool seen = false;

			for (int i = 0; i < f->nfunc; i++)
				seen = seen || f->func_oids[i] == object_id;
			if (!seen)
			{
				Oid nsp = get_func_namespace(object_id);

				if (OidIsValid(nsp) && nsp != PG_CATALOG_NAMESPACE)
				{
					char *ns = get_namespace_name(nsp);
					char *fn = get_func_name(object_id);

					if (ns != nullptr && fn != nullptr && strcmp(ns, "information_schema") != 0)
					{
						if (f->func_names == nullptr)
							f->func_names = static_cast<char(*)[kObjectLen]>(
								MemoryContextAlloc(audit_ctx, kMaxFunctions * kObjectLen));
						if (f->nfunc < kMaxFunctions)
						{
							f->func_oids[f->nfunc] = object_id;
							snprintf(f->func_names[f->nfunc], kObjectLen, "%s.%s", ns, fn);
							f->nfunc++;
						}
						else
							f->extra_funcs++;
					}
				}
			}
		}
		if (prev_object_access)
			prev_object_access(access, class_id, object_id, sub_id, arg);
	});
}

static void
audit_emit_log(ErrorData *edata) noexcept
{
	rustydb::boundary::run("audit emit_log", [&] {
		if (edata->elevel >= ERROR)
		{
			last_error_code = edata->sqlerrcode;
			rustydb::timeout::rewrite_error(edata);
			if (edata->elevel == ERROR)
				record_failed_statement(edata);
		}
		if (prev_emit_log)
			prev_emit_log(edata);
	});
}

static void
audit_relcache_callback(Datum arg, Oid relid) noexcept
{
	rustydb::boundary::run("audit relcache callback", [&] {
		if (relid == InvalidOid || relid == policies_relid || !extension_present)
			cache_valid = false;
		if (relid == InvalidOid)
			relname_cache_reset();
		else if (relname_cache != nullptr)
			(void) hash_search(relname_cache, &relid, HASH_REMOVE, nullptr);
	});
}

static void
audit_namespace_callback(Datum arg, int cacheid, uint32 hashvalue) noexcept
{
	rustydb::boundary::run("audit namespace callback", [&] { relname_cache_reset(); });
}

static void
audit_xact_callback(XactEvent event, void *arg) noexcept
{
	rustydb::boundary::run("audit xact callback", [&] {
		if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
			event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
			event == XACT_EVENT_PREPARE)
			exec_nesting = 0;
		if (event == XACT_EVENT_COMMIT)
		{
			if (pending_purge_rows != 0)
				queue_add_purged(pending_purge_rows, pending_purge_bytes);
			pending_purge_rows = pending_purge_bytes = 0;
			return;
		}
		if (event != XACT_EVENT_ABORT && event != XACT_EVENT_PARALLEL_ABORT)
			return;
		pending_purge_rows = pending_purge_bytes = 0;
		purge_in_progress = false;
		loading = false;
		/* statements (cursors) that never reached ExecutorEnd */
		frames_aborted(false, InvalidSubTransactionId);
	});
}

static void
audit_subxact_callback(SubXactEvent event, SubTransactionId my_subid, SubTransactionId parent,
					   void *arg) noexcept
{
	rustydb::boundary::run("audit subxact callback", [&] {
		int level = GetCurrentTransactionNestLevel();

		if (event == SUBXACT_EVENT_START_SUB && level < kMaxSavedNesting)
			saved_nesting[level] = exec_nesting;
		if (event == SUBXACT_EVENT_ABORT_SUB)
		{
			if (level < kMaxSavedNesting)
				exec_nesting = saved_nesting[level];
			frames_aborted(true, my_subid);
		}
	});
}

} /* extern "C" */

namespace rustydb {
namespace audit {

void
install_capture_hooks()
{
	ensure_contexts();
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = audit_executor_start;
	prev_executor_run = ExecutorRun_hook;
	ExecutorRun_hook = audit_executor_run;
	prev_executor_finish = ExecutorFinish_hook;
	ExecutorFinish_hook = audit_executor_finish;
	prev_executor_end = ExecutorEnd_hook;
	ExecutorEnd_hook = audit_executor_end;
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = audit_process_utility;
	prev_object_access = object_access_hook;
	object_access_hook = audit_object_access;
	prev_emit_log = emit_log_hook;
	emit_log_hook = audit_emit_log;
	CacheRegisterRelcacheCallback(audit_relcache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, audit_namespace_callback, (Datum) 0);
	RegisterXactCallback(audit_xact_callback, nullptr);
	RegisterSubXactCallback(audit_subxact_callback, nullptr);
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

/*
 * Statement trigger on the trail's tables: they change only through
 * rustydb (the worker's inserts bypass triggers; purges set
 * purge_in_progress).
 */
RUSTYDB_FUNCTION(rustydb_audit_trail_guard)
{
	TriggerData *td = reinterpret_cast<TriggerData *>(fcinfo->context);

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
						errmsg("rustydb._audit_trail_guard() must be called as a trigger")));
	if (!rustydb::audit::purge_in_progress && !creating_extension)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("the audit trail is append-only"),
				 errdetail("\"%s\" is changed only by the audit worker and "
						   "rustydb.purge_audit_trail().",
						   RelationGetRelationName(td->tg_relation)),
				 errhint("Use rustydb.purge_audit_trail() to remove old records.")));
	return PointerGetDatum(nullptr);
}

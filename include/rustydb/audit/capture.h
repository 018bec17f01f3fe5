/*-------------------------------------------------------------------------
 *
 * capture.h
 *	  Backend side of the audit trail: shared definitions of the files that
 *	  turn statements into audit records, around one session-state struct.
 *
 * session.cpp  the Session struct's life: memory contexts, the session's
 *              names, transaction and cache callbacks, rustydb.memory figures
 * policies.cpp the policy cache: loading, which policies apply to the user,
 *              the policy trigger
 * objects.cpp  what a statement concerns: the audited relations of a plan,
 *              utility statements classified, relation names (cached)
 * frames.cpp   the stack of statement frames: push, end, fail, abort
 * records.cpp  records built from frames, failed statements and security
 *              events (the session's fields from a template), handed to
 *              the queue
 * hooks.cpp    the PostgreSQL hooks (executor, utility, object access,
 *              emit_log) and their one install function
 *
 * Only client backends are audited (not parallel workers, which run parts
 * of an audited statement, nor background workers); docs/audit.md tells
 * what is recorded when.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_AUDIT_CAPTURE_H
#define RUSTYDB_AUDIT_CAPTURE_H

#include "rustydb/audit/internal.h"
#include "rustydb/common/memory.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "executor/execdesc.h"
#include "nodes/params.h"
#include "nodes/plannodes.h"
#include "utils/hsearch.h"
RUSTYDB_PG_INCLUDE_END

#include <cstring>

namespace rustydb {
namespace audit {

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

struct ActionName
{
	const char *name;
	uint32 bit;
};

/* The actions in the order their records are emitted. */
inline constexpr ActionName kActions[] = {
	{"select", kSelect},     {"insert", kInsert}, {"update", kUpdate}, {"delete", kDelete},
	{"truncate", kTruncate}, {"ddl", kDdl},       {"role", kRole},     {"function", kFunction},
};

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

/* One enabled policy of the database, as cached. */
struct Policy
{
	uint32 mask;
	int nobjects;
	Oid *objects; /* nullptr: every object */
	int nroles;
	Oid *roles; /* nullptr: every role */
	bool condition_true;
};

constexpr int kMaxFunctions = 16;

/* An audited relation of a statement. */
struct Obj
{
	Oid relid;
	uint32 actions;
	char name[kObjectLen];
};

/*
 * A statement a policy covers, from its start (ExecutorStart or
 * ProcessUtility) to its end, when it becomes records. Allocated in
 * FrameStack::ctx.
 */
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
	char *statement; /* bounded copy, palloc'd in FrameStack::ctx */
	uint32 statement_len;
};

/*
 * The policy cache (policies.cpp). Each backend caches its database's
 * enabled policies (table rustydb.audit_policies) and reloads them after
 * a change: every change of that table fires a trigger that records a
 * security event and sends a relcache invalidation for it, which all
 * backends of the database receive at their next transaction start.
 */
struct PolicyCache
{
	MemoryContext ctx = nullptr;    /* "rustydb audit policies": everything below */
	Policy *policies = nullptr;     /* the enabled policies (condition true) */
	int npolicies = 0;              /* at most rustydb.audit_max_policies */
	int high_water = 0;             /* most policies cached at once */
	bool valid = false;             /* false: reload at the next statement */
	bool loaded = false;            /* loaded at least once in this backend */
	bool extension_present = false; /* rustydb.audit_policies exists here */
	Oid relid = InvalidOid;         /* rustydb.audit_policies: its invalidations reload */
	bool loading = false;           /* loading: the loader's queries are not audited */

	/* The policies applying to the current user, recomputed when it changes. */
	Oid applicable_for = InvalidOid;
	Policy **applicable = nullptr;
	int napplicable = 0;
	uint32 user_mask = 0; /* union of the applicable policies' masks */
};

/*
 * What every record of the session carries (session.cpp): resolved from
 * the catalogs at statement start, while that is safe, and kept.
 */
struct SessionNames
{
	char session_id[32] = {};
	char database_name[NAMEDATALEN] = {};
	char client_addr[kAddrLen] = {};
	Oid user = InvalidOid; /* the current user whose name is cached */
	char user_name[NAMEDATALEN] = {};
	Oid session_user = InvalidOid;
	char session_user_name[NAMEDATALEN] = {};

	/*
	 * The session's part of a statement's records (session user, database,
	 * client, ...; zeros elsewhere), built once and copied into each
	 * record (records.cpp): a memset of the record and five strlcpy per record were a
	 * good part of emitting it. Rebuilt when one of the names changes.
	 */
	Record *tpl = nullptr;
	bool tpl_valid = false;
};

constexpr int kMaxSavedNesting = 64;

/* The statements being audited, innermost on top (frames.cpp). */
struct FrameStack
{
	MemoryContext ctx = nullptr; /* "rustydb audit": frames and their texts */
	Frame *top = nullptr;
	int depth = 0;
	int high_water = 0;
	int last_error_code = 0; /* SQLSTATE of the last error reported */

	/*
	 * Statements in the executor or in ProcessUtility: an error raised
	 * while this is 0 comes from parsing, analysis or planning (or the
	 * protocol around them), where no frame exists. Errors leave it
	 * raised; a subtransaction abort restores the value its start saw
	 * (saved_nesting, by nesting level), a transaction end clears it.
	 */
	int exec_nesting = 0;
	int saved_nesting[kMaxSavedNesting] = {};
};

/*
 * The backend's audit state: everything the capture files keep between
 * calls, in one place and reached only through session(). Per process,
 * never shared; statically initialised (no constructor runs).
 */
struct Session
{
	bool in_audit_worker = false;   /* the audit worker: its statements are not audited */
	bool purge_in_progress = false; /* rustydb purges: the trail's guard trigger lets it */

	/* a user purge's size accounting, applied to the queue's counters at commit */
	int64 pending_purge_rows = 0;
	int64 pending_purge_bytes = 0;

	PolicyCache policy;
	SessionNames names;
	FrameStack frames;

	Record *record_buf = nullptr;   /* the record being built (TopMemoryContext) */
	bool recording_failure = false; /* record_failed_statement() is running */
	HTAB *relname_cache = nullptr;  /* relation names (objects.cpp) */
};

/* This backend's audit state. */
inline Session &
session()
{
	static Session state;

	return state;
}

/* ---- session.cpp ---- */

/* Create the memory contexts; from init(). */
void ensure_contexts();
/* Register the transaction, subtransaction and cache callbacks; from init(). */
void register_session_callbacks();
/* Resolve the names that need the catalogs while that is safe (statement start). */
void refresh_session_names();
/* rustydb.memory figures of the policy cache and the frames. */
void policy_cache_usage(memory::BackendUsage *out);
void frame_usage(memory::BackendUsage *out);

/* ---- policies.cpp ---- */

/* May this statement be audited at all? Loads the policies if needed. */
bool capture_enabled();
/* Actions audited on relation relid for the current user. */
uint32 relation_mask(Oid relid);

/*
 * Actions audited for the current user on statements without a relation
 * (inline: the object access hook asks at every function call).
 */
inline uint32
unscoped_mask()
{
	const PolicyCache &c = session().policy;
	uint32 mask = 0;

	for (int i = 0; i < c.napplicable; i++)
		if (c.applicable[i]->objects == nullptr)
			mask |= c.applicable[i]->mask;
	return mask;
}

/* Might a statement that failed before execution be audited? */
bool failure_audited();
/* A relcache invalidation of relid (InvalidOid: all): reload when it is the policies'. */
void policy_cache_invalidate(Oid relid);

/* ---- objects.cpp ---- */

/* "schema.relation" of a relation into out, or false when it is not audited. */
bool relation_name(Oid relid, char *out);
/* Forget the cached name of relid, or of every relation (InvalidOid). */
void relation_names_invalidate(Oid relid);
/* The frame of an executor statement a policy covers, or nullptr. */
Frame *frame_for_query(QueryDesc *qd);
/* The frame of a utility statement a policy covers or that is a security event, or nullptr. */
Frame *frame_for_utility(PlannedStmt *pstmt, const char *query_string, ParamListInfo params);
/* Add a function the statement executes to the top frame. */
void add_function(Oid function);

/*
 * object_access, OAT_FUNCTION_EXECUTE: record the function in the top
 * frame when a policy audits functions without naming objects. The test
 * is inline: it runs at every function call of every statement.
 */
inline void
note_function(Oid function)
{
	const Session &s = session();

	if (s.frames.top != nullptr && (unscoped_mask() & kFunction) && !s.policy.loading)
		add_function(function);
}

/* ---- frames.cpp ---- */

Frame *push_frame(const void *key);
void add_object(Frame *f, Oid relid, uint32 actions, const char *name);
/* Copy the statement's text (and parameters), bounded, into f. */
void copy_statement(Frame *f, const char *source, int location, int len, ParamListInfo params);
/* Bytes of s[0..len) kept when clipping it to max bytes (pg_mbcliplen). */
int clip_length(const char *s, int len, int max);
/* Remove f (and anything above it) from the stack without recording it. */
void pop_frame(Frame *f);

/* The frame of key (a QueryDesc or PlannedStmt), or nullptr. */
inline Frame *
find_frame(const void *key)
{
	for (Frame *t = session().frames.top; t != nullptr; t = t->prev)
		if (t->key == key)
			return t;
	return nullptr;
}

/* The statement of frame f succeeded, or failed with the error being handled. */
void frame_succeeded(Frame *f, int64 rows);
void frame_failed(Frame *f, int64 rows);
/* End the frames of an aborted transaction, or of one subtransaction. */
void frames_aborted(bool by_subxact, SubTransactionId subid);

/* ---- records.cpp ---- */

/* Fill the session fields of rec (user, database, client, ...). */
void fill_session(Record *rec);
/* The buffer records are built in (TopMemoryContext, one queue slot). */
Record *record_buffer();
/* Turn a frame into records; sqlerrcode 0 is success. */
void emit_frame(const Frame *f, int sqlerrcode, int64 rows);
/* emit_log_hook, ERROR: record a statement that failed before it had a frame. */
void record_failed_statement(const ErrorData *edata);

} /* namespace audit */
} /* namespace rustydb */

#endif /* RUSTYDB_AUDIT_CAPTURE_H */

/*-------------------------------------------------------------------------
 *
 * records.cpp
 *	  Audit records built in backends and handed to the queue.
 *
 * Three sources: a frame at its statement's end (one record per audited
 * action and object, and per function executed), a statement that failed
 * before it reached the executor or ProcessUtility (parse, analysis,
 * planning: it has no frame, so emit_log_hook records it as action
 * "statement" without reading the catalogs), and security events, which
 * are recorded whatever the policies say (security_event(), audit.h).
 * Each record starts with the session's fields (session.cpp resolves the
 * names), copied from a template for frames' records. Records go to the
 * shared queue at once, so they do not depend on the statement's
 * transaction committing; in the audit worker a security event is kept
 * for its next batch instead.
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
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace audit {

void
fill_session(Record *r)
{
	SessionNames &n = session().names;
	FullTransactionId fxid = GetTopFullTransactionIdIfAny();

	if (n.session_id[0] == '\0')
		snprintf(n.session_id, sizeof(n.session_id), "%lx.%x", static_cast<long>(MyStartTime),
				 MyProcPid);
	r->event_time = GetCurrentTimestamp();
	r->rows = -1;
	r->xid = FullTransactionIdIsValid(fxid) ? U64FromFullTransactionId(fxid) : 0;
	r->session_start = static_cast<int64>(MyStartTime);
	r->pid = MyProcPid;
	strlcpy(r->user_name, n.user_name, sizeof(r->user_name));
	strlcpy(r->session_user_name, n.session_user_name, sizeof(r->session_user_name));
	strlcpy(r->database_name, n.database_name, sizeof(r->database_name));
	strlcpy(r->client_addr, n.client_addr, sizeof(r->client_addr));
	if (application_name != nullptr)
		strlcpy(r->application_name, application_name, sizeof(r->application_name));
}

namespace {

/*
 * What fill_session() sets, except user_name (the frame's): the session
 * template, then the fields that change between records.
 */
void
fill_from_template(Record *r)
{
	SessionNames &n = session().names;
	FullTransactionId fxid = GetTopFullTransactionIdIfAny();

	if (!n.tpl_valid)
	{
		if (n.tpl == nullptr)
			n.tpl = static_cast<Record *>(
				MemoryContextAlloc(TopMemoryContext, offsetof(Record, statement)));
		memset(n.tpl, 0, offsetof(Record, statement));
		fill_session(n.tpl);
		n.tpl->event_time = 0;
		n.tpl->xid = 0;
		n.tpl->user_name[0] = '\0';
		memset(n.tpl->application_name, 0, sizeof(n.tpl->application_name));
		n.tpl_valid = true;
	}
	memcpy(r, n.tpl, offsetof(Record, statement));
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

} /* namespace */

Record *
record_buffer()
{
	Session &s = session();

	if (s.record_buf == nullptr)
		s.record_buf =
			static_cast<Record *>(MemoryContextAlloc(TopMemoryContext, record_slot_size()));
	return s.record_buf;
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

/*
 * emit_log_hook, ERROR: record a statement that failed at parse, analysis
 * or planning time (no frame exists for it) as action "statement", the
 * SQLSTATE as outcome and the message as detail. Uses only what needs no
 * catalog access: the cached names, else the login's.
 */
void
record_failed_statement(const ErrorData *edata)
{
	Session &s = session();

	if (s.recording_failure || s.frames.exec_nesting > 0 || s.in_audit_worker || s.policy.loading ||
		MyBackendType != B_BACKEND || IsParallelWorker() || debug_query_string == nullptr ||
		!IsTransactionState() || IsAbortedTransactionBlockState() || !failure_audited())
		return;
	s.recording_failure = true;
	PG_TRY();
	{
		Record *r = record_buffer();
		memset(r, 0, offsetof(Record, statement));
		fill_session(r);
		/* names not cached yet: session_authorization's (or the oids) */
		const char *auth = GetConfigOption("session_authorization", true, false);

		if (s.names.session_user != GetSessionUserId() || r->session_user_name[0] == '\0')
		{
			if (auth != nullptr && auth[0] != '\0')
				strlcpy(r->session_user_name, auth, sizeof(r->session_user_name));
			else
				snprintf(r->session_user_name, sizeof(r->session_user_name), "role %u",
						 GetSessionUserId());
		}
		if (s.names.user != GetUserId() || r->user_name[0] == '\0')
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
		s.recording_failure = false;
		PG_RE_THROW();
	}
	PG_END_TRY();
	s.recording_failure = false;
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
		if (session().in_audit_worker)
			worker_event(r); /* written with the worker's next batch */
		else
			enqueue(r);
	});
}

} /* namespace audit */
} /* namespace rustydb */

/*-------------------------------------------------------------------------
 *
 * frames.cpp
 *	  The stack of statement frames (Session::frames).
 *
 * A statement that a policy covers gets a frame when it starts
 * (ExecutorStart or ProcessUtility): the audited objects and actions, the
 * statement text, the user. The frame is turned into records when the
 * statement ends: with outcome "00000" and the rows processed when it
 * succeeds, with the SQLSTATE when it fails (each hook calls the next one
 * inside PG_TRY, so an error raised anywhere in the statement is seen
 * before the transaction aborts), and with the last error's SQLSTATE when
 * its transaction or subtransaction aborts before it ended (a cursor never
 * closed, a statement cut short). Frames nest with statements run by
 * functions; an inner frame still open when an outer one ends is ended
 * first.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/audit/capture.h"

#include "rustydb/common/settings.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/xact.h"
#include "mb/pg_wchar.h"
#include "utils/elog.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace audit {

namespace {

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

bool
on_stack(const Frame *f)
{
	const FrameStack &fs = session().frames;

	for (Frame *t = fs.top; t != nullptr; t = t->prev)
		if (t == f)
			return true;
	return false;
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

} /* namespace */

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
	FrameStack &fs = session().frames;
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
		f->statement = static_cast<char *>(MemoryContextAlloc(fs.ctx, buf.len + 1));
		memcpy(f->statement, buf.data, buf.len);
		f->statement[buf.len] = '\0';
		f->statement_len = buf.len;
		pfree(buf.data);
		return;
	}
	/* no parameters: the clipped text as it is, copied once */
	f->statement = static_cast<char *>(MemoryContextAlloc(fs.ctx, clip + 1));
	memcpy(f->statement, s, clip);
	f->statement[clip] = '\0';
	f->statement_len = clip;
}

Frame *
push_frame(const void *key)
{
	FrameStack &fs = session().frames;
	Frame *f = static_cast<Frame *>(MemoryContextAllocZero(fs.ctx, sizeof(Frame)));

	refresh_session_names();
	f->key = key;
	f->subxid = GetCurrentSubTransactionId();
	copy_name(f->user_name, session().names.user_name, sizeof(f->user_name));
	f->prev = fs.top;
	fs.top = f;
	fs.depth++;
	if (fs.depth > fs.high_water)
		fs.high_water = fs.depth;
	return f;
}

void
add_object(Frame *f, Oid relid, uint32 actions, const char *name)
{
	FrameStack &fs = session().frames;

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
			static_cast<Obj *>(f->objs == nullptr ? MemoryContextAlloc(fs.ctx, sizeof(Obj) * n)
												  : repalloc(f->objs, sizeof(Obj) * n));
		f->maxobj = n;
	}
	Obj *o = &f->objs[f->nobj++];

	o->relid = relid;
	o->actions = actions;
	copy_name(o->name, name, sizeof(o->name));
}

/* Remove f (and anything above it) from the stack. */
void
pop_frame(Frame *f)
{
	FrameStack &fs = session().frames;

	while (fs.top != nullptr)
	{
		Frame *t = fs.top;

		fs.top = t->prev;
		fs.depth--;
		free_frame(t);
		if (t == f)
			break;
	}
}

/* The statement of frame f failed with the error being handled. */
void
frame_failed(Frame *f, int64 rows)
{
	FrameStack &fs = session().frames;
	int code = geterrcode();

	if (!on_stack(f))
		return;
	/* inner frames whose statements did not see the error end first */
	while (fs.top != f)
	{
		Frame *t = fs.top;

		emit_frame(t, code, 0);
		pop_frame(t);
	}
	emit_frame(f, code, rows);
	pop_frame(f);
}

/* End frame f (on the stack) successfully, and any frame above it. */
void
frame_succeeded(Frame *f, int64 rows)
{
	FrameStack &fs = session().frames;

	if (!on_stack(f))
		return;
	while (fs.top != f)
	{
		Frame *t = fs.top;

		fs.top = t->prev;
		fs.depth--;
		emit_and_free(t, fs.last_error_code, 0);
	}
	fs.top = f->prev;
	fs.depth--;
	/* f is off the stack: an overflow error cannot emit it twice */
	emit_and_free(f, 0, rows);
}

/* End the frames that never finished, down to (excluding) a frame
 * surviving transaction control, or those of one subtransaction. */
void
frames_aborted(bool by_subxact, SubTransactionId subid)
{
	FrameStack &fs = session().frames;

	while (fs.top != nullptr && !fs.top->survives_xact && (!by_subxact || fs.top->subxid == subid))
	{
		Frame *t = fs.top;

		fs.top = t->prev;
		fs.depth--;
		emit_and_free(t, fs.last_error_code, 0);
	}
}

} /* namespace audit */
} /* namespace rustydb */

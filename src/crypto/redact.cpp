/*-------------------------------------------------------------------------
 *
 * redact.cpp
 *	  Keeping decrypted values out of the server log
 *	  (rustydb.redact_server_log).
 *
 * Error and log messages quote data: a unique violation's DETAIL names
 * the key ("Key (v)=(...) already exists."), a check constraint's the
 * whole row, an input function the text it could not read, and the
 * statement text (STATEMENT, log_statement, log_min_duration_statement,
 * PL/pgSQL's CONTEXT) holds the statement's literals. For an encrypted
 * table that is plaintext in the server log.
 *
 * PostgreSQL's emit_log_hook runs before a message is written to the
 * server log and then sent to the client, with the same ErrorData for
 * both. So when a message would change, the hook sends the unchanged
 * message to the client itself (the protocol's ErrorResponse or
 * NoticeResponse, field by field as PostgreSQL sends it), marks it as
 * sent (output_to_client = false), and replaces the fields of the ErrorData
 * with their redacted copies, which PostgreSQL then writes to the server
 * log in its configured format (stderr, csvlog, jsonlog, syslog).
 *
 * What is redacted (each value becomes "<redacted>"):
 *	- SQL text: the statement (STATEMENT, and the statement of
 *	  log_statement and log_min_duration_statement messages), the internal
 *	  query, SQL in CONTEXT lines, parameter values, auto_explain plans and
 *	  the statements of audit records written to the log: string and
 *	  numeric constants, dollar-quoted bodies;
 *	- the primary message, for errors whose SQLSTATE class carries data
 *	  (22 data exception, 23 integrity constraint violation, P0 PL/pgSQL,
 *	  2F, 38, 39 routine exceptions, 42601 syntax error; not errors about
 *	  settings) and for PL/pgSQL's RAISE at any level: every %s argument of
 *	  the message's English format (the whole text of a RAISE), except
 *	  arguments that are the error's schema, table, column, type or
 *	  constraint name;
 *	- DETAIL and HINT of those errors: the key values of "Key (...)=(...)",
 *	  the row of "Failing row contains (...)", any other detail or hint
 *	  that quotes something;
 *	- CONTEXT lines of COPY (the input line or column value) and JSON data.
 * Numbers formatted into messages (%d: positions, counts, process ids)
 * are kept.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/common/settings.h"
#include "rustydb/crypto/crypto_internal.h"

#include <cctype>
#include <cstring>

RUSTYDB_PG_INCLUDE_BEGIN
#include "lib/stringinfo.h"
/*
 * libpq/libpq.h (pq_flush) includes libpq/libpq-be.h, which includes
 * GSSAPI's headers when the server was built with GSSAPI; nothing here uses
 * GSSAPI, and without it struct Port keeps the same layout (its GSSAPI
 * member is a pointer either way), so the headers are read as without.
 */
#ifdef ENABLE_GSS
#undef ENABLE_GSS
#include "libpq/libpq.h"
#define ENABLE_GSS 1
#else
#include "libpq/libpq.h"
#endif
#include "libpq/pqformat.h"
#include "mb/pg_wchar.h"
#include "parser/parser.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace crypto {

namespace {

constexpr char kRedacted[] = "<redacted>";

bool in_hook = false;
/* the redacted statement debug_query_string points at (TopMemoryContext) */
char *redacted_statement = nullptr;

bool
active()
{
	switch (settings::redact_server_log)
	{
		case settings::kRedactOn:
			return true;
		case settings::kRedactOff:
			return false;
		default:
			return provider_description() != nullptr;
	}
}

bool
ident_char(unsigned char c)
{
	return isalnum(c) || c == '_' || c == '$' || c >= 0x80;
}

bool
ident_start(unsigned char c)
{
	return isalpha(c) || c == '_' || c >= 0x80;
}

/* ---- SQL text ---- */

enum class SqlStop
{
	kNone,         /* the whole text */
	kClosingQuote, /* a top-level '"' at the end of a line: the end of a CONTEXT's SQL */
	kNewline       /* a top-level newline */
};

/*
 * Append s[0, len) to out with its string constants (any prefix, with the
 * escapes standard_conforming_strings implies), dollar-quoted strings and
 * numeric constants replaced by <redacted>; identifiers, keywords,
 * parameters ($1), operators and comments are kept. dq_identifiers: "..."
 * are identifiers, kept whole (false for text that is not SQL, such as a
 * JSON plan, where a double quote is just a character). An unterminated
 * constant is redacted to the end. Returns how many bytes were consumed
 * (less than len when stop matched).
 */
size_t
append_sql(StringInfo out, const char *s, size_t len, SqlStop stop, bool dq_identifiers)
{
	size_t i = 0;

	while (i < len)
	{
		unsigned char c = static_cast<unsigned char>(s[i]);
		bool after_ident = i > 0 && ident_char(static_cast<unsigned char>(s[i - 1]));

		if (stop == SqlStop::kClosingQuote && c == '"' && (i + 1 == len || s[i + 1] == '\n'))
			return i;
		if (stop == SqlStop::kNewline && c == '\n')
			return i;

		/* comments, kept */
		if (c == '-' && i + 1 < len && s[i + 1] == '-')
		{
			size_t j = i;
			while (j < len && s[j] != '\n')
				j++;
			appendBinaryStringInfo(out, s + i, j - i);
			i = j;
			continue;
		}
		if (c == '/' && i + 1 < len && s[i + 1] == '*')
		{
			size_t j = i + 2;
			int depth = 1;
			while (j < len && depth > 0)
			{
				if (s[j] == '/' && j + 1 < len && s[j + 1] == '*')
					depth++, j += 2;
				else if (s[j] == '*' && j + 1 < len && s[j + 1] == '/')
					depth--, j += 2;
				else
					j++;
			}
			appendBinaryStringInfo(out, s + i, j - i);
			i = j;
			continue;
		}
		/* quoted identifiers, kept */
		if (c == '"' && dq_identifiers)
		{
			size_t j = i + 1;
			for (;;)
			{
				while (j < len && s[j] != '"')
					j++;
				if (j + 1 < len && s[j + 1] == '"')
				{
					j += 2;
					continue;
				}
				break;
			}
			if (j >= len)
			{
				appendStringInfoString(out, kRedacted); /* unterminated */
				return len;
			}
			appendBinaryStringInfo(out, s + i, j + 1 - i);
			i = j + 1;
			continue;
		}
		/* string constants: '...', E'...', B'...', X'...', N'...', U&'...' */
		size_t prefix = 0;
		bool backslashes = !standard_conforming_strings;
		if (!after_ident && i + 1 < len && s[i + 1] == '\'' && strchr("eEbBxXnN", c) != nullptr)
		{
			prefix = 1;
			if (c == 'e' || c == 'E')
				backslashes = true;
		}
		else if (!after_ident && i + 2 < len && (c == 'u' || c == 'U') && s[i + 1] == '&' &&
				 s[i + 2] == '\'')
			prefix = 2;
		if (c == '\'' || prefix > 0)
		{
			size_t j = i + prefix + 1;
			for (;;)
			{
				if (j >= len)
				{
					appendStringInfoString(out, kRedacted); /* unterminated */
					return len;
				}
				if (s[j] == '\\' && backslashes)
					j += 2;
				else if (s[j] == '\'' && j + 1 < len && s[j + 1] == '\'')
					j += 2;
				else if (s[j] == '\'')
					break;
				else
					j++;
			}
			appendStringInfoString(out, kRedacted);
			i = j + 1;
			continue;
		}
		/* $1 parameters (kept) and $tag$ ... $tag$ strings */
		if (c == '$' && !after_ident)
		{
			size_t j = i + 1;
			if (j < len && isdigit(static_cast<unsigned char>(s[j])))
			{
				while (j < len && isdigit(static_cast<unsigned char>(s[j])))
					j++;
				appendBinaryStringInfo(out, s + i, j - i);
				i = j;
				continue;
			}
			if (j < len && ident_start(static_cast<unsigned char>(s[j])))
				while (j < len && ident_char(static_cast<unsigned char>(s[j])) && s[j] != '$')
					j++;
			if (j < len && s[j] == '$')
			{
				size_t taglen = j + 1 - i;
				const char *end = nullptr;
				for (size_t k = j + 1; k + taglen <= len; k++)
					if (memcmp(s + k, s + i, taglen) == 0)
					{
						end = s + k;
						break;
					}
				appendStringInfoString(out, kRedacted);
				if (end == nullptr)
					return len; /* unterminated */
				i = static_cast<size_t>(end - s) + taglen;
				continue;
			}
			appendStringInfoChar(out, '$');
			i++;
			continue;
		}
		/* numeric constants */
		if (!after_ident && (isdigit(c) || (c == '.' && i + 1 < len &&
											isdigit(static_cast<unsigned char>(s[i + 1])))))
		{
			size_t j = i;
			while (j < len && isdigit(static_cast<unsigned char>(s[j])))
				j++;
			if (j < len && s[j] == '.' && !(j + 1 < len && s[j + 1] == '.'))
			{
				j++;
				while (j < len && isdigit(static_cast<unsigned char>(s[j])))
					j++;
			}
			if (j < len && (s[j] == 'e' || s[j] == 'E'))
			{
				size_t k = j + 1;
				if (k < len && (s[k] == '+' || s[k] == '-'))
					k++;
				if (k < len && isdigit(static_cast<unsigned char>(s[k])))
				{
					while (k < len && isdigit(static_cast<unsigned char>(s[k])))
						k++;
					j = k;
				}
			}
			/* digits glued to letters (0x1F, 1_000) belong to the constant too */
			while (j < len && ident_char(static_cast<unsigned char>(s[j])) && s[j] != '$')
				j++;
			appendStringInfoString(out, kRedacted);
			i = j;
			continue;
		}
		/* identifiers and keywords, whole (digits inside them are not numbers) */
		if (ident_char(c))
		{
			size_t j = i;
			while (j < len && ident_char(static_cast<unsigned char>(s[j])))
				j++;
			appendBinaryStringInfo(out, s + i, j - i);
			i = j;
			continue;
		}
		appendStringInfoChar(out, static_cast<char>(c));
		i++;
	}
	return len;
}

char *
redact_sql(const char *s, bool dq_identifiers = true)
{
	StringInfoData out;

	initStringInfo(&out);
	append_sql(&out, s, strlen(s), SqlStop::kNone, dq_identifiers);
	return out.data;
}

/* ---- which errors carry data ---- */

bool
value_class(int sqlerrcode)
{
	if (sqlerrcode == ERRCODE_SYNTAX_ERROR)
		return true;
	switch (ERRCODE_TO_CATEGORY(sqlerrcode))
	{
		case ERRCODE_DATA_EXCEPTION:                        /* 22 */
		case ERRCODE_INTEGRITY_CONSTRAINT_VIOLATION:        /* 23 */
		case ERRCODE_PLPGSQL_ERROR:                         /* P0 */
		case ERRCODE_SQL_ROUTINE_EXCEPTION:                 /* 2F */
		case ERRCODE_EXTERNAL_ROUTINE_EXCEPTION:            /* 38 */
		case ERRCODE_EXTERNAL_ROUTINE_INVOCATION_EXCEPTION: /* 39 */
			return true;
		default:
			return false;
	}
}

/* The error's own names (schema, table, column, type, constraint): kept. */
bool
names_an_object(const ErrorData *e, const char *s, size_t len)
{
	const char *names[] = {e->schema_name, e->table_name, e->column_name, e->datatype_name,
						   e->constraint_name};

	for (const char *n : names)
		if (n != nullptr && strlen(n) == len && memcmp(n, s, len) == 0)
			return true;
	return false;
}

/* ---- the primary message, through its English format ---- */

/*
 * Messages whose arguments are SQL text: the format, a bit for each
 * conversion that is SQL, and whether it is a plan (auto_explain) rather
 * than SQL.
 */
struct SqlFormat
{
	const char *format;
	unsigned sql_args;
	bool plan;
};
const SqlFormat kSqlFormats[] = {
	{"statement: %s", 1u << 0, false},
	{"duration: %s ms  statement: %s", 1u << 1, false},
	{"duration: %s ms  parse %s: %s", 1u << 2, false},
	{"duration: %s ms  bind %s%s%s: %s", 1u << 4, false},
	{"duration: %s ms  %s %s%s%s: %s", 1u << 5, false},
	{"%s %s%s%s: %s", 1u << 4, false},
	{"duration: %.3f ms  plan:\n%s", 1u << 1, true},
	/* the audit trail's records while it cannot be written (src/audit/queue.cpp) */
	{"AUDIT: action=%s object=%s user=%s session_user=%s database=%s outcome=%s "
	 "rows=" INT64_FORMAT " statement=%s",
	 1u << 7, false},
};

constexpr int kMaxConversions = 16;

struct Format
{
	int n;                                       /* conversions */
	char conv[kMaxConversions];                  /* conversion characters */
	StringInfoData literal[kMaxConversions + 1]; /* text around them */
};

/* Split a printf format into literals and conversions; false if unusual. */
bool
parse_format(const char *fmt, Format *f)
{
	f->n = 0;
	initStringInfo(&f->literal[0]);
	for (const char *p = fmt; *p; p++)
	{
		if (*p != '%')
		{
			appendStringInfoChar(&f->literal[f->n], *p);
			continue;
		}
		p++;
		if (*p == '%')
		{
			appendStringInfoChar(&f->literal[f->n], '%');
			continue;
		}
		while (*p && strchr("0123456789$-+ #.*'hlLqjzt", *p) != nullptr)
			p++;
		if (*p == '\0' || f->n >= kMaxConversions)
			return false;
		f->conv[f->n++] = *p;
		initStringInfo(&f->literal[f->n]);
	}
	return true;
}

bool
numeric_text(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (strchr("0123456789abcdefABCDEFxX.+- infatyINFATY", s[i]) == nullptr)
			return false;
	return true;
}

/*
 * PostgreSQL's messages quote values ("%s"); an argument the format does
 * not quote that reads like a type name (lower case words, digits, "_",
 * ".", "(", ")", ",", "[]": "integer", "character varying(3)",
 * "timestamp with time zone") is kept. Byte sequences ("0xc3 0x28") are not.
 */
bool
unquoted_type_name(const Format &f, int k, const char *arg, size_t len)
{
	const StringInfoData &before = f.literal[k];
	const StringInfoData &after = f.literal[k + 1];

	if ((before.len > 0 && before.data[before.len - 1] == '"') ||
		(after.len > 0 && after.data[0] == '"'))
		return false;
	if (len == 0 || !islower(static_cast<unsigned char>(arg[0])) ||
		(len > 1 && arg[0] == '0' && arg[1] == 'x'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!islower(static_cast<unsigned char>(arg[i])) &&
			!isdigit(static_cast<unsigned char>(arg[i])) && strchr("_ .(),[]", arg[i]) == nullptr)
			return false;
	return true;
}

/*
 * The redacted message, or nullptr when the message does not follow its
 * format (a translation; plural forms): the caller then falls back.
 * Adjacent conversions ("%s%s") share one argument text.
 */
char *
redact_by_format(const ErrorData *e, const Format &f, unsigned sql_args, bool plan,
				 bool redact_strings)
{
	const char *msg = e->message;
	size_t len = strlen(msg), pos = f.literal[0].len;
	StringInfoData out;

	if (strncmp(msg, f.literal[0].data, f.literal[0].len) != 0)
		return nullptr;
	initStringInfo(&out);
	appendBinaryStringInfo(&out, msg, f.literal[0].len);
	for (int k = 0; k < f.n;)
	{
		/* conversions k .. last (adjacent ones) cover one argument text */
		int last = k;
		while (last + 1 < f.n && f.literal[last + 1].len == 0)
			last++;
		const StringInfoData &next = f.literal[last + 1];
		size_t end;
		if (last == f.n - 1)
		{
			if (len < pos + next.len || strcmp(msg + len - next.len, next.data) != 0)
				return nullptr;
			end = len - next.len;
		}
		else
		{
			const char *hit = strstr(msg + pos, next.data);
			if (hit == nullptr)
				return nullptr;
			end = static_cast<size_t>(hit - msg);
		}
		const char *arg = msg + pos;
		size_t arglen = end - pos;
		bool sql = false, strings = false, numbers = true;
		for (int c = k; c <= last; c++)
		{
			sql = sql || (sql_args & (1u << c)) != 0;
			if (f.conv[c] == 's' || f.conv[c] == 'c')
				strings = true, numbers = false;
			else if (f.conv[c] == 'm')
				numbers = false;
		}
		if (sql)
		{
			StringInfoData tmp;
			initStringInfo(&tmp);
			appendBinaryStringInfo(&tmp, arg, arglen);
			append_sql(&out, tmp.data, tmp.len, SqlStop::kNone, !plan);
			pfree(tmp.data);
		}
		else if (numbers && !numeric_text(arg, arglen))
			appendStringInfoString(&out, kRedacted); /* the split went wrong */
		else if (strings && redact_strings && !names_an_object(e, arg, arglen) &&
				 !(k == last && unquoted_type_name(f, k, arg, arglen)))
			appendStringInfoString(&out, kRedacted);
		else
			appendBinaryStringInfo(&out, arg, arglen);
		appendBinaryStringInfo(&out, next.data, next.len);
		pos = end + next.len;
		k = last + 1;
	}
	return out.data;
}

/* The English format with every conversion replaced by <redacted>. */
char *
format_skeleton(const Format &f)
{
	StringInfoData out;

	initStringInfo(&out);
	for (int k = 0; k <= f.n; k++)
	{
		appendBinaryStringInfo(&out, f.literal[k].data, f.literal[k].len);
		if (k < f.n)
			appendStringInfoString(&out, kRedacted);
	}
	return out.data;
}

/* The redacted primary message; the message itself when nothing changes. */
char *
redact_message(const ErrorData *e, bool values, bool dynamic)
{
	if (e->message == nullptr)
		return nullptr;
	if (dynamic)
		return pstrdup(kRedacted);
	const SqlFormat *sqlf = nullptr;
	if (e->message_id != nullptr)
		for (const SqlFormat &sf : kSqlFormats)
			if (strcmp(e->message_id, sf.format) == 0)
				sqlf = &sf;
	if (sqlf == nullptr && !values)
		return e->message;

	Format f;
	if (e->message_id == nullptr || !parse_format(e->message_id, &f))
		return sqlf != nullptr ? redact_sql(e->message) : pstrdup(kRedacted);
	char *out = redact_by_format(e, f, sqlf ? sqlf->sql_args : 0, sqlf && sqlf->plan, values);
	if (out != nullptr)
		return out;
	/* a translated or plural message: redact its SQL, or show the English format */
	return sqlf != nullptr ? redact_sql(e->message, !sqlf->plan) : format_skeleton(f);
}

/* ---- DETAIL and HINT ---- */

bool
starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* "Key (cols)=(values) ..." of unique, exclusion and foreign key violations. */
char *
redact_key_detail(const char *d)
{
	const char *cols = d + strlen("Key (");
	const char *eq = strstr(cols, ")=(");
	StringInfoData out;

	initStringInfo(&out);
	if (eq == nullptr)
	{
		appendStringInfo(&out, "Key %s.", kRedacted);
		return out.data;
	}
	appendStringInfoString(&out, "Key (");
	appendBinaryStringInfo(&out, cols, static_cast<int>(eq - cols));
	appendStringInfo(&out, ")=(%s)", kRedacted);

	/* what follows the values: the last occurrence is PostgreSQL's, not the data's */
	const char *tails[] = {") is not present in table ", ") is still referenced from table "};
	for (const char *t : tails)
	{
		const char *hit = nullptr;
		for (const char *p = strstr(d, t); p != nullptr; p = strstr(p + 1, t))
			hit = p;
		if (hit != nullptr)
		{
			appendStringInfoString(&out, hit + 1);
			return out.data;
		}
	}
	size_t len = strlen(d);
	const char *exists = ") already exists.";
	if (len >= strlen(exists) && strcmp(d + len - strlen(exists), exists) == 0)
		appendStringInfoString(&out, " already exists.");
	else if (strstr(d, ") conflicts with existing key (") != nullptr)
	{
		appendStringInfoString(&out, " conflicts with existing key (");
		appendBinaryStringInfo(&out, cols, static_cast<int>(eq - cols));
		appendStringInfo(&out, ")=(%s).", kRedacted);
	}
	else if (strstr(d, ") conflicts with key (") != nullptr)
	{
		appendStringInfoString(&out, " conflicts with key (");
		appendBinaryStringInfo(&out, cols, static_cast<int>(eq - cols));
		appendStringInfo(&out, ")=(%s).", kRedacted);
	}
	else
		appendStringInfoChar(&out, '.');
	return out.data;
}

/* A DETAIL or HINT of an error that carries data. */
char *
redact_value_text(const char *d)
{
	if (d == nullptr)
		return nullptr;
	if (starts_with(d, "Key ("))
		return redact_key_detail(d);
	if (starts_with(d, "Failing row contains ("))
		return psprintf("Failing row contains (%s).", kRedacted);
	if (strpbrk(d, "\"'()") != nullptr)
		return pstrdup(kRedacted);
	return const_cast<char *>(d);
}

/*
 * Details of any message: the "parameters: ..." and "prepare: ..." of
 * statement logging, the "Process N: query" lines of a deadlock report.
 */
char *
redact_sql_in_detail(const char *d)
{
	if (d == nullptr)
		return nullptr;
	if (starts_with(d, "parameters: ") || starts_with(d, "prepare: "))
		return redact_sql(d);
	const char *p = d;
	while (p != nullptr)
	{
		if (strncmp(p, "Process ", 8) == 0 && isdigit(static_cast<unsigned char>(p[8])))
		{
			const char *q = p + 8;
			while (isdigit(static_cast<unsigned char>(*q)))
				q++;
			if (q[0] == ':' && q[1] == ' ')
			{
				/* queries from here on (they may span lines) */
				StringInfoData out;
				initStringInfo(&out);
				appendBinaryStringInfo(&out, d, static_cast<int>(p - d));
				append_sql(&out, p, strlen(p), SqlStop::kNone, true);
				return out.data;
			}
		}
		p = strchr(p, '\n');
		if (p != nullptr)
			p++;
	}
	return const_cast<char *>(d);
}

/* ---- CONTEXT ---- */

char *
redact_context(const char *ctx)
{
	static const char *const sql_prefixes[] = {"SQL statement \"", "SQL expression \"",
											   "PL/pgSQL assignment \""};
	if (ctx == nullptr)
		return nullptr;
	size_t len = strlen(ctx), i = 0;
	StringInfoData out;

	initStringInfo(&out);
	while (i < len)
	{
		const char *line = ctx + i;
		const char *eol = strchr(line, '\n');
		size_t linelen = eol ? static_cast<size_t>(eol - line) : len - i;
		bool done = false;

		for (const char *pre : sql_prefixes)
			if (starts_with(line, pre))
			{
				size_t pl = strlen(pre);
				appendBinaryStringInfo(&out, line, pl);
				i += pl;
				i += append_sql(&out, ctx + i, len - i, SqlStop::kClosingQuote, true);
				if (i < len)
					appendStringInfoChar(&out, ctx[i++]); /* the closing quote */
				done = true;
				break;
			}
		if (done)
			continue;

		/* values of COPY input and JSON data: the rest of the context goes */
		const char *colon = nullptr;
		if (starts_with(line, "COPY ") || starts_with(line, "JSON data, line "))
			for (const char *p = line; p < line + linelen; p++)
				if (p[0] == ':' && p[1] == ' ')
				{
					colon = p;
					break;
				}
		if (colon != nullptr)
		{
			appendBinaryStringInfo(&out, line, static_cast<int>(colon - line) + 2);
			appendStringInfoString(&out, kRedacted);
			return out.data;
		}

		/* parameter values of a portal */
		const char *param = nullptr;
		for (const char *p = line; p < line + linelen; p++)
			if ((p[0] == ' ' && p[1] == '=' && p[2] == ' ' && p > line &&
				 isdigit(static_cast<unsigned char>(p[-1])) &&
				 strstr(line, "parameter $") != nullptr && strstr(line, "parameter $") < p) ||
				starts_with(p, "with parameters: "))
			{
				param = p;
				break;
			}
		if (param != nullptr)
		{
			size_t skip = param[0] == ' ' ? 3 : strlen("with parameters: ");
			appendBinaryStringInfo(&out, line, static_cast<int>(param - line + skip));
			i += static_cast<size_t>(param - line) + skip;
			i += append_sql(&out, ctx + i, len - i, SqlStop::kNewline, true);
			continue;
		}

		appendBinaryStringInfo(&out, line, static_cast<int>(linelen));
		i += linelen;
		if (i < len)
			appendStringInfoChar(&out, ctx[i++]); /* the newline */
	}
	return out.data;
}

/* ---- the statement ---- */

/* elog.c's rule for whether a message of elevel reaches the log at log_min_level. */
bool
log_level_output(int elevel, int log_min_level)
{
	if (elevel == LOG || elevel == LOG_SERVER_ONLY)
		return log_min_level == LOG || log_min_level <= ERROR;
	if (elevel == WARNING_CLIENT_ONLY)
		return false;
	if (log_min_level == LOG)
		return elevel >= FATAL;
	return elevel >= log_min_level;
}

/* ---- the client's copy ---- */

const char *
severity(int elevel)
{
	if (elevel <= DEBUG1)
		return "DEBUG";
	switch (elevel)
	{
		case LOG:
		case LOG_SERVER_ONLY:
			return "LOG";
		case INFO:
			return "INFO";
		case NOTICE:
			return "NOTICE";
		case WARNING:
		case WARNING_CLIENT_ONLY:
			return "WARNING";
		case ERROR:
			return "ERROR";
		case FATAL:
			return "FATAL";
		case PANIC:
			return "PANIC";
		default:
			return "???";
	}
}

void
put_field(StringInfo buf, char code, const char *value)
{
	if (value == nullptr)
		return;
	pq_sendbyte(buf, code);
	pq_sendstring(buf, value);
}

void
put_number(StringInfo buf, char code, int value)
{
	char text[12];

	if (value <= 0)
		return;
	snprintf(text, sizeof(text), "%d", value);
	put_field(buf, code, text);
}

/*
 * Send e, unchanged, to the client as an ErrorResponse ('E') or
 * NoticeResponse ('N') of protocol 3, with the fields PostgreSQL sends
 * (DETAIL, never the server-only detail_log).
 */
void
send_to_client(const ErrorData *e)
{
	StringInfoData buf;
	const char *sev = severity(e->elevel);

	pq_beginmessage(&buf, e->elevel < ERROR ? 'N' : 'E');
	put_field(&buf, PG_DIAG_SEVERITY, _(sev));
	put_field(&buf, PG_DIAG_SEVERITY_NONLOCALIZED, sev);
	put_field(&buf, PG_DIAG_SQLSTATE, unpack_sql_state(e->sqlerrcode));
	put_field(&buf, PG_DIAG_MESSAGE_PRIMARY, e->message ? e->message : _("missing error text"));
	put_field(&buf, PG_DIAG_MESSAGE_DETAIL, e->detail);
	put_field(&buf, PG_DIAG_MESSAGE_HINT, e->hint);
	put_field(&buf, PG_DIAG_CONTEXT, e->context);
	put_field(&buf, PG_DIAG_SCHEMA_NAME, e->schema_name);
	put_field(&buf, PG_DIAG_TABLE_NAME, e->table_name);
	put_field(&buf, PG_DIAG_COLUMN_NAME, e->column_name);
	put_field(&buf, PG_DIAG_DATATYPE_NAME, e->datatype_name);
	put_field(&buf, PG_DIAG_CONSTRAINT_NAME, e->constraint_name);
	put_number(&buf, PG_DIAG_STATEMENT_POSITION, e->cursorpos);
	put_number(&buf, PG_DIAG_INTERNAL_POSITION, e->internalpos);
	put_field(&buf, PG_DIAG_INTERNAL_QUERY, e->internalquery);
	put_field(&buf, PG_DIAG_SOURCE_FILE, e->filename);
	put_number(&buf, PG_DIAG_SOURCE_LINE, e->lineno);
	put_field(&buf, PG_DIAG_SOURCE_FUNCTION, e->funcname);
	pq_sendbyte(&buf, '\0');
	pq_endmessage(&buf);
	pq_flush();
}

/* Whether this process can send the client's copy itself (protocol 3 to a client). */
bool
can_send_to_client()
{
	return whereToSendOutput == DestRemote && PG_PROTOCOL_MAJOR(FrontendProtocol) >= 3;
}

/* Replace *field by value when it differs (value allocated in the current context). */
bool
replace(char **field, char *value)
{
	if (value == *field || value == nullptr)
		return false;
	if (*field != nullptr && strcmp(*field, value) == 0)
		return false;
	*field = value;
	return true;
}

bool
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);
	return n >= m && strcmp(s + n - m, suffix) == 0;
}

void
redact(ErrorData *e)
{
	/*
	 * Errors about settings (guc.c: values of postgresql.conf, SET, ALTER
	 * SYSTEM) quote no table data. PL/pgSQL's RAISE says whatever its
	 * function computed.
	 */
	bool setting = e->filename != nullptr && ends_with(e->filename, "guc.c");
	bool raise = e->funcname != nullptr && strcmp(e->funcname, "exec_stmt_raise") == 0;
	bool values = !setting && (raise || value_class(e->sqlerrcode));
	bool dynamic = values && e->message_id != nullptr && strcmp(e->message_id, "%s") == 0;
	ErrorData r = *e;

	bool changed = replace(&r.message, redact_message(e, values, dynamic));
	if (dynamic)
	{
		changed |= replace(&r.detail, e->detail ? pstrdup(kRedacted) : nullptr);
		changed |= replace(&r.detail_log, e->detail_log ? pstrdup(kRedacted) : nullptr);
		changed |= replace(&r.hint, e->hint ? pstrdup(kRedacted) : nullptr);
	}
	else if (values)
	{
		changed |= replace(&r.detail, redact_value_text(e->detail));
		changed |= replace(&r.detail_log, redact_value_text(e->detail_log));
		changed |= replace(&r.hint, redact_value_text(e->hint));
	}
	else
	{
		changed |= replace(&r.detail, redact_sql_in_detail(e->detail));
		changed |= replace(&r.detail_log, redact_sql_in_detail(e->detail_log));
	}
	changed |= replace(&r.context, redact_context(e->context));
	if (e->internalquery != nullptr)
		changed |= replace(&r.internalquery, redact_sql(e->internalquery));

	/* the statement PostgreSQL prints after the message (debug_query_string) */
	const char *statement = nullptr;
	if (debug_query_string != nullptr && !e->hide_stmt &&
		log_level_output(e->elevel, log_min_error_statement))
	{
		char *s = redact_sql(debug_query_string);
		if (strcmp(s, debug_query_string) != 0)
			statement = s;
	}
	if (!changed && statement == nullptr)
		return;

	if (e->output_to_client)
	{
		if (can_send_to_client())
		{
			send_to_client(e);
			e->output_to_client = false;
		}
		/* else the client gets the redacted text too: never the log the plaintext */
	}
	e->message = r.message;
	e->detail = r.detail;
	e->detail_log = r.detail_log;
	e->hint = r.hint;
	e->context = r.context;
	e->internalquery = r.internalquery;
	if (statement != nullptr)
	{
		if (e->elevel >= ERROR)
		{
			/*
			 * Point debug_query_string at the redacted statement: error
			 * recovery resets it before the next statement (postgres.c).
			 */
			char *copy = MemoryContextStrdup(TopMemoryContext, statement);
			if (redacted_statement != nullptr && redacted_statement != debug_query_string)
				pfree(redacted_statement);
			redacted_statement = copy;
			debug_query_string = copy;
		}
		else
		{
			/* a warning or notice goes on: keep its statement, print the redacted one */
			e->hide_stmt = true;
			e->context = e->context != nullptr
							 ? psprintf("%s\nstatement: %s", e->context, statement)
							 : psprintf("statement: %s", statement);
		}
	}
}

} /* namespace */

void
hook_emit_log(hooks::EmitLogCall &call)
{
	ErrorData *e = call.edata;

	if (!in_hook && e->output_to_server && !in_error_recursion_trouble() && active())
	{
		in_hook = true;
		PG_TRY();
		{
			redact(e);
		}
		PG_FINALLY();
		{
			in_hook = false;
		}
		PG_END_TRY();
	}
	call.proceed();
}

} /* namespace crypto */
} /* namespace rustydb */

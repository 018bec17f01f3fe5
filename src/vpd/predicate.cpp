/*-------------------------------------------------------------------------
 *
 * predicate.cpp
 *	  VPD: predicate evaluation, calling policy functions and parsing their result.
 *
 * A policy function is called as its owner, with search_path pg_catalog,
 * the protected table's schema and the function's schema, and with USERENV
 * policy_invoker set to the user it runs for; its errors are logged and
 * reported as 38000 without their message (the message could reveal what
 * the function read). Its result is parsed as one boolean SQL expression
 * over the table's columns, never run as a statement.
 *
 * Two caches, in Session::Predicates, reset together by relcache and
 * pg_proc invalidations: a function's result (per policy, or per function
 * for shared policies; a context-sensitive result with a snapshot of the
 * context values it depends on; dynamic results are never cached), and
 * the parsed expression for a policy, table and text.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/common/settings.h"
#include "rustydb/vpd/internal.h"
#include "rustydb/vpd/session.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/htup_details.h"
#include "catalog/pg_proc.h"
#include "nodes/nodeFuncs.h"
#include "parser/parse_clause.h"
#include "parser/parse_collate.h"
#include "parser/parse_node.h"
#include "parser/parse_relation.h"
#include "parser/parser.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/lsyscache.h"
#include "utils/regproc.h"
#include "utils/rel.h"
#include "utils/syscache.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace vpd {
namespace {

/* Policy function results, by policy (or shared function) and type. */
struct PredKey
{
	int32 kind; /* 0: per policy (id), 1: shared by function (id = function OID) */
	int32 type;
	uint32 id;
};

struct PredEntry
{
	PredKey key;
	bool isnull;
	char *pred;
	char *snapshot;
};

/* Parsed predicates, by policy and table, with the text they were parsed from. */
struct ExprKey
{
	int32 id;
	Oid relid;
};

struct ExprEntry
{
	ExprKey key;
	MemoryContext cxt; /* holds text and expr */
	char *text;
	Node *expr;
};

bool
cancel_like(int sqlerrcode)
{
	return sqlerrcode == ERRCODE_QUERY_CANCELED || sqlerrcode == ERRCODE_ADMIN_SHUTDOWN ||
		   ERRCODE_TO_CATEGORY(sqlerrcode) == ERRCODE_INSUFFICIENT_RESOURCES ||
		   ERRCODE_TO_CATEGORY(sqlerrcode) == ERRCODE_OPERATOR_INTERVENTION;
}

void
set_policy_search_path(Policy *p)
{
	char *fschema = get_namespace_name(get_func_namespace(p->func));
	char *path;

	path = psprintf("pg_catalog, %s%s%s", quote_identifier(p->defschema), fschema ? ", " : "",
					fschema ? quote_identifier(fschema) : "");
	(void) set_config_option("search_path", path, PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true,
							 0, false);
}

bool
may_see_details(Relation rel)
{
	return superuser() || pg_class_ownercheck(RelationGetRelid(rel), GetUserId());
}
char *
context_snapshot(Policy *p)
{
	StringInfoData buf;

	if (p->ndeps == 0)
		return psprintf("g" UINT64_FORMAT, context_generation());
	initStringInfo(&buf);
	for (int i = 0; i < p->ndeps; i++)
	{
		const char *v = context_value(p->dep_ns[i], p->dep_attr[i]);

		if (v)
			appendStringInfo(&buf, "%zu:%s|", strlen(v), v);
		else
			appendStringInfoString(&buf, "-|");
	}
	return buf.data;
}

bool
valid_select_shape(List *raw)
{
	RawStmt *rs;
	SelectStmt *s;
	ResTarget *rt;

	if (list_length(raw) != 1)
		return false;
	rs = linitial_node(RawStmt, raw);
	if (rs->stmt == nullptr || !IsA(rs->stmt, SelectStmt))
		return false;
	s = reinterpret_cast<SelectStmt *>(rs->stmt);
	if (s->op != SETOP_NONE || s->distinctClause != NIL || s->intoClause != nullptr ||
		s->fromClause != NIL || s->whereClause != nullptr || s->groupClause != NIL ||
		s->havingClause != nullptr || s->windowClause != NIL || s->valuesLists != NIL ||
		s->sortClause != NIL || s->limitOffset != nullptr || s->limitCount != nullptr ||
		s->lockingClause != NIL || s->withClause != nullptr || list_length(s->targetList) != 1)
		return false;
	rt = linitial_node(ResTarget, s->targetList);
	return rt->name == nullptr && rt->val != nullptr && rt->indirection == NIL;
}

} /* namespace */

void
ensure_predicate_cache()
{
	HASHCTL ctl;

	if (session().pred.results == nullptr)
	{
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(PredKey);
		ctl.entrysize = sizeof(PredEntry);
		ctl.hcxt = session().pred.mcxt;
		session().pred.results =
			hash_create("rustydb vpd predicates", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
}

void
reset_pred_cache()
{
	if (session().pred.results)
	{
		hash_destroy(session().pred.results);
		session().pred.results = nullptr;
	}
	if (session().pred.parsed)
	{
		hash_destroy(session().pred.parsed);
		session().pred.parsed = nullptr;
	}
	MemoryContextReset(session().pred.mcxt);
}

/* Call the policy function as its owner; returns nullptr for NULL or ''. */
char *
evaluate_policy(Policy *p, Relation rel)
{
	Oid relid = RelationGetRelid(rel);
	HeapTuple proctup;
	Oid owner;
	Oid save_uid;
	int save_sec;
	Oid save_invoker = policy_invoker();
	int nest;
	MemoryContext oldcxt = CurrentMemoryContext;
	char *volatile result = nullptr;
	ErrorData *volatile edata = nullptr;

	for (int i = 0; i < session().pred.eval_depth; i++)
		if (session().pred.eval_stack[i] == relid)
			ereport(
				ERROR,
				(errcode(ERRCODE_INVALID_RECURSION),
				 errmsg("policy function of policy \"%s\" on table \"%s\" refers to the table it "
						"protects",
						p->name, RelationGetRelationName(rel)),
				 errhint(
					 "A policy function must not query its own table; read a lookup table or an "
					 "application context instead.")));
	if (session().pred.eval_depth >= kEvalMax)
		ereport(
			ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("policy functions nested too deeply evaluating policy \"%s\" on table \"%s\"",
					p->name, RelationGetRelationName(rel))));

	if (!p->finfo_valid)
	{
		proctup = SearchSysCache1(PROCOID, ObjectIdGetDatum(p->func));
		if (!HeapTupleIsValid(proctup))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("policy function of policy \"%s\" on table \"%s\" does not exist",
							p->name, RelationGetRelationName(rel)),
					 errhint("Drop the policy or add it again with an existing function.")));
		p->owner = reinterpret_cast<Form_pg_proc>(GETSTRUCT(proctup))->proowner;
		ReleaseSysCache(proctup);
		fmgr_info_cxt(p->func, &p->finfo, p->mcxt);
		p->finfo_valid = true;
	}
	owner = p->owner;

	GetUserIdAndSecContext(&save_uid, &save_sec);
	nest = NewGUCNestLevel();
	set_policy_search_path(p);
	session().pred.eval_stack[session().pred.eval_depth++] = relid;
	set_policy_invoker(save_uid);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	PG_TRY();
	{
		LOCAL_FCINFO(fc, 2);
		Datum d;

		InitFunctionCallInfoData(*fc, &p->finfo, 2, InvalidOid, nullptr, nullptr);
		fc->args[0].value = CStringGetTextDatum(p->defschema);
		fc->args[0].isnull = false;
		fc->args[1].value = CStringGetTextDatum(p->defname);
		fc->args[1].isnull = false;
		d = FunctionCallInvoke(fc);
		if (!fc->isnull)
		{
			MemoryContextSwitchTo(oldcxt);
			result = TextDatumGetCString(d);
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		session().pred.eval_depth--;
		set_policy_invoker(save_invoker);
		edata = CopyErrorData();
		if (cancel_like(edata->sqlerrcode))
			PG_RE_THROW();
		FlushErrorState();
	}
	PG_END_TRY();

	if (edata != nullptr)
	{
		/* the transaction is failing: its abort restores the user and settings */
		ereport(LOG_SERVER_ONLY,
				(errhidestmt(true), errhidecontext(true),
				 errmsg("policy function %s of policy \"%s\" on table \"%s\" failed: %s",
						format_procedure(p->func), p->name, RelationGetRelationName(rel),
						edata->message ? edata->message : "(no message)")));
		ereport(ERROR,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("policy function of policy \"%s\" on table \"%s\" failed", p->name,
						RelationGetRelationName(rel)),
				 errdetail(
					 "The function raised SQLSTATE %s; its message was written to the server log.",
					 unpack_sql_state(edata->sqlerrcode))));
	}
	SetUserIdAndSecContext(save_uid, save_sec);
	AtEOXact_GUC(true, nest);
	session().pred.eval_depth--;
	set_policy_invoker(save_invoker);

	if (result != nullptr)
	{
		const char *s = result;

		while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
			s++;
		if (*s == '\0')
			return nullptr;
	}
	return result;
}

/* The predicate text of a policy for this statement, or nullptr for none. */
char *
get_predicate(Policy *p, Relation rel)
{
	PredKey key;
	PredEntry *pe;
	char *snap = nullptr;
	char *pred;
	bool found;
	bool shared = p->type == kSharedStatic || p->type == kSharedContextSensitive;

	if (p->type == kDynamic)
		return evaluate_policy(p, rel);
	ensure_caches();
	memset(&key, 0, sizeof(key));
	key.kind = shared ? 1 : 0;
	key.type = p->type;
	key.id = shared ? p->func : static_cast<uint32>(p->id);
	if (p->type == kContextSensitive || p->type == kSharedContextSensitive)
		snap = context_snapshot(p);

	pe = static_cast<PredEntry *>(hash_search(session().pred.results, &key, HASH_FIND, nullptr));
	if (pe && (snap == nullptr || (pe->snapshot && strcmp(pe->snapshot, snap) == 0)))
		return pe->isnull ? nullptr : pstrdup(pe->pred);

	pred = evaluate_policy(p, rel);

	/* the function ran SQL: the cache may have been reset meanwhile */
	ensure_caches();
	pe = static_cast<PredEntry *>(hash_search(session().pred.results, &key, HASH_FIND, nullptr));
	if (pe == nullptr &&
		hash_get_num_entries(session().pred.results) >= rustydb::settings::vpd_cache_entries)
	{
		reset_pred_cache();
		ensure_caches();
	}
	pe = static_cast<PredEntry *>(hash_search(session().pred.results, &key, HASH_ENTER, &found));
	if (found)
	{
		if (pe->pred)
			pfree(pe->pred);
		if (pe->snapshot)
			pfree(pe->snapshot);
	}
	pe->isnull = pred == nullptr;
	pe->pred = pred ? MemoryContextStrdup(session().pred.mcxt, pred) : nullptr;
	pe->snapshot = snap ? MemoryContextStrdup(session().pred.mcxt, snap) : nullptr;
	return pred;
}

Node *
parse_predicate(Policy *p, Relation rel, const char *pred)
{
	size_t len = strlen(pred);
	int limit = p->long_predicate ? kMaxLongPredicate : kMaxPredicate;
	char *sql;
	int nest;
	volatile int status = 0; /* 0 ok, 1 not one expression, 2 parse error */
	Node *volatile result = nullptr;
	ErrorData *volatile edata = nullptr;
	MemoryContext oldcxt = CurrentMemoryContext;

	if (len > static_cast<size_t>(limit))
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("predicate of policy \"%s\" on table \"%s\" is too long", p->name,
						RelationGetRelationName(rel)),
				 errdetail("It is %zu bytes; the limit is %d bytes.", len, limit),
				 p->long_predicate
					 ? 0
					 : errhint("Add the policy with long_predicate => true for up to %d bytes.",
							   kMaxLongPredicate)));
	sql = psprintf("SELECT (%s\n)", pred);

	nest = NewGUCNestLevel();
	set_policy_search_path(p);
	PG_TRY();
	{
		List *raw = raw_parser(sql, RAW_PARSE_DEFAULT);

		if (!valid_select_shape(raw))
			status = 1;
		else
		{
			SelectStmt *s = reinterpret_cast<SelectStmt *>(linitial_node(RawStmt, raw)->stmt);
			Node *expr = linitial_node(ResTarget, s->targetList)->val;
			ParseState *pstate = make_parsestate(nullptr);
			ParseNamespaceItem *nsitem;
			Node *q;

			pstate->p_sourcetext = sql;
			nsitem =
				addRangeTableEntryForRelation(pstate, rel, AccessShareLock, nullptr, false, false);
			addNSItemToQuery(pstate, nsitem, false, true, true);
			q = transformWhereClause(pstate, expr, EXPR_KIND_POLICY, "POLICY");
			assign_expr_collations(pstate, q);
			free_parsestate(pstate);
			result = q;
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(oldcxt);
		edata = CopyErrorData();
		if (cancel_like(edata->sqlerrcode))
			PG_RE_THROW();
		FlushErrorState();
		status = 2;
	}
	PG_END_TRY();

	if (status != 0)
	{
		if (status == 2)
			ereport(LOG_SERVER_ONLY,
					(errhidestmt(true), errhidecontext(true),
					 errmsg("predicate of policy \"%s\" on table \"%s\" is invalid: %s", p->name,
							RelationGetRelationName(rel), edata->message ? edata->message : "")));
		if (status == 2 && may_see_details(rel))
			ereport(ERROR, (errcode(ERRCODE_SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION),
							errmsg("predicate of policy \"%s\" on table \"%s\" is invalid", p->name,
								   RelationGetRelationName(rel)),
							errdetail("The predicate was rejected: %s.",
									  edata->message ? edata->message : "")));
		ereport(
			ERROR,
			(errcode(ERRCODE_SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION),
			 errmsg("predicate of policy \"%s\" on table \"%s\" is invalid", p->name,
					RelationGetRelationName(rel)),
			 errdetail(
				 "A policy predicate must be one boolean SQL expression over the table's columns, "
				 "like a WHERE clause; it is never run as a statement.")));
	}
	AtEOXact_GUC(true, nest);
	return result;
}

/*
 * parse_predicate, remembering the result for the same policy, table and
 * text: a static or context-sensitive predicate is parsed once, not for
 * every statement. Dropped with the predicate cache (relcache and pg_proc
 * invalidations).
 */
Node *
parsed_predicate(Policy *p, Relation rel, const char *pred)
{
	ExprKey key;
	ExprEntry *ee;
	Node *expr;
	bool found;
	MemoryContext old;

	if (session().pred.parsed == nullptr)
	{
		HASHCTL ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(ExprKey);
		ctl.entrysize = sizeof(ExprEntry);
		ctl.hcxt = session().pred.mcxt;
		session().pred.parsed = hash_create("rustydb vpd parsed predicates", 64, &ctl,
											HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	memset(&key, 0, sizeof(key));
	key.id = p->id;
	key.relid = RelationGetRelid(rel);
	ee = static_cast<ExprEntry *>(hash_search(session().pred.parsed, &key, HASH_FIND, nullptr));
	if (ee && strcmp(ee->text, pred) == 0)
		return copy_node(ee->expr);

	expr = parse_predicate(p, rel, pred);
	if (session().pred.parsed == nullptr)
		return expr; /* reset while parsing */
	if (ee == nullptr &&
		hash_get_num_entries(session().pred.parsed) >= rustydb::settings::vpd_cache_entries)
		return expr; /* full: not cached (the next reset empties it) */
	ee = static_cast<ExprEntry *>(hash_search(session().pred.parsed, &key, HASH_ENTER, &found));
	if (found)
		MemoryContextReset(ee->cxt);
	else
		ee->cxt = AllocSetContextCreate(session().pred.mcxt, "rustydb vpd parsed predicate",
										ALLOCSET_SMALL_SIZES);
	old = MemoryContextSwitchTo(ee->cxt);
	ee->text = pstrdup(pred);
	ee->expr = copy_node(expr);
	MemoryContextSwitchTo(old);
	return expr;
}

} /* namespace vpd */
} /* namespace rustydb */

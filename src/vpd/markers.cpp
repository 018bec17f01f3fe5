/*-------------------------------------------------------------------------
 *
 * markers.cpp
 *	  VPD: the marker functions ANDed in front of every policy predicate.
 *
 * Every qual rustydb gives PostgreSQL starts with a call of
 * rustydb._vpd_static, _vpd_context or _vpd_dynamic (immutable functions
 * returning true, folded away by the planner), whose constant arguments
 * say which policy the qual belongs to and how it applies: policy id,
 * flags (kFlag*), the sec_relevant_cols attnums and, for a dynamic
 * policy, the predicate text and the statement counter when it was
 * computed. The call gives a cached plan a PROCOID dependency on the
 * marker, so invalidating the marker's syscache hash value rebuilds
 * exactly the plans that use that kind of policy. This file builds the
 * calls, reads them back (decode_qual) and sends those invalidations.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/vpd/internal.h"
#include "rustydb/vpd/session.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/array.h"
#include "utils/inval.h"
#include "utils/syscache.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace vpd {
namespace {

const char *const kMarkerNames[kMarkerCount] = {"_vpd_static", "_vpd_context", "_vpd_dynamic"};

void
load_markers()
{
	Oid argtypes[5] = {INT4OID, INT4OID, INT2ARRAYOID, TEXTOID, INT8OID};
	Session::Markers &m = session().markers;

	for (int k = 0; k < kMarkerCount; k++)
	{
		m.oid[k] = InvalidOid;
		m.hash[k] = 0;
	}
	if (!IsTransactionState() || !OidIsValid(get_namespace_oid("rustydb", true)))
		return;
	for (int k = 0; k < kMarkerCount; k++)
	{
		List *name =
			list_make2(makeString(pstrdup("rustydb")), makeString(pstrdup(kMarkerNames[k])));

		m.oid[k] = LookupFuncName(name, k == kMarkerDynamic ? 5 : 3, argtypes, true);
		if (OidIsValid(m.oid[k]))
			m.hash[k] = GetSysCacheHashValue1(PROCOID, ObjectIdGetDatum(m.oid[k]));
	}
	m.valid = OidIsValid(m.oid[0]);
}

} /* namespace */

Oid
marker_oid(MarkerKind kind)
{
	if (!session().markers.valid)
		load_markers();
	return session().markers.oid[kind];
}

int
marker_kind_of(Oid funcid)
{
	if (!session().markers.valid)
		load_markers();
	for (int k = 0; k < kMarkerCount; k++)
		if (session().markers.oid[k] == funcid && OidIsValid(funcid))
			return k;
	return -1;
}

void
invalidate_marker_plans(MarkerKind kind)
{
	if (!session().markers.valid)
		load_markers();
	if (!OidIsValid(session().markers.oid[kind]))
		return;
	session().markers.firing = true;
	PG_TRY();
	{
		CallSyscacheCallbacks(PROCOID, session().markers.hash[kind]);
	}
	PG_FINALLY();
	{
		session().markers.firing = false;
	}
	PG_END_TRY();
}

bool
invalidating_marker_plans()
{
	return session().markers.firing;
}

void
forget_markers()
{
	session().markers.valid = false;
}

Expr *
make_marker(MarkerKind kind, int32 id, int flags, int ncols, const int16 *cols, const char *pred)
{
	List *args;
	Const *colconst;

	if (!session().markers.valid)
		load_markers();
	if (!OidIsValid(session().markers.oid[kind]))
		ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
						errmsg("rustydb VPD functions are missing"),
						errhint("Recreate the rustydb extension in this database.")));
	if (ncols > 0)
	{
		Datum *d = static_cast<Datum *>(palloc(sizeof(Datum) * ncols));

		for (int i = 0; i < ncols; i++)
			d[i] = Int16GetDatum(cols[i]);
		colconst =
			makeConst(INT2ARRAYOID, -1, InvalidOid, -1,
					  PointerGetDatum(construct_array(d, ncols, INT2OID, 2, true, TYPALIGN_SHORT)),
					  false, false);
	}
	else
		colconst = makeNullConst(INT2ARRAYOID, -1, InvalidOid);
	args = list_make3(makeConst(INT4OID, -1, InvalidOid, 4, Int32GetDatum(id), false, true),
					  makeConst(INT4OID, -1, InvalidOid, 4, Int32GetDatum(flags), false, true),
					  colconst);
	if (kind == kMarkerDynamic)
	{
		/* the predicate text and when it was computed, checked at each execution */
		args = lappend(args, pred ? makeConst(TEXTOID, -1, DEFAULT_COLLATION_OID, -1,
											  CStringGetTextDatum(pred), false, false)
								  : makeNullConst(TEXTOID, -1, DEFAULT_COLLATION_OID));
		args = lappend(args, makeConst(INT8OID, -1, InvalidOid, 8,
									   Int64GetDatum(session().stmt.exec_counter), false,
									   FLOAT8PASSBYVAL));
		session().stmt.seen_dynamic = true;
	}
	return reinterpret_cast<Expr *>(makeFuncExpr(session().markers.oid[kind], BOOLOID, args,
												 InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL));
}

MarkerKind
marker_for(PolicyType t)
{
	switch (t)
	{
		case kStatic:
		case kSharedStatic:
			return kMarkerStatic;
		case kContextSensitive:
		case kSharedContextSensitive:
			return kMarkerContext;
		case kDynamic:
			break;
	}
	return kMarkerDynamic;
}

/* If qual is one of our marker-led quals, describe it. */
bool
decode_qual(Node *qual, MarkerInfo *mi)
{
	FuncExpr *fe;
	Const *c;

	mi->pred = nullptr;
	if (qual == nullptr)
		return false;
	if (IsA(qual, BoolExpr) && reinterpret_cast<BoolExpr *>(qual)->boolop == AND_EXPR &&
		list_length(reinterpret_cast<BoolExpr *>(qual)->args) == 2)
	{
		List *args = reinterpret_cast<BoolExpr *>(qual)->args;

		if (!IsA(linitial(args), FuncExpr))
			return false;
		fe = static_cast<FuncExpr *>(linitial(args));
		mi->pred = static_cast<Expr *>(lsecond(args));
	}
	else if (IsA(qual, FuncExpr))
		fe = reinterpret_cast<FuncExpr *>(qual);
	else
		return false;
	mi->kind = marker_kind_of(fe->funcid);
	if (mi->kind < 0 || list_length(fe->args) != (mi->kind == kMarkerDynamic ? 5 : 3))
		return false;
	mi->marker = fe;
	mi->text = nullptr;
	mi->stamp = 0;
	if (mi->kind == kMarkerDynamic)
	{
		c = static_cast<Const *>(list_nth(fe->args, 3));
		if (!c->constisnull)
			mi->text = TextDatumGetCString(c->constvalue);
		mi->stamp = DatumGetInt64(static_cast<Const *>(list_nth(fe->args, 4))->constvalue);
	}
	c = static_cast<Const *>(linitial(fe->args));
	mi->id = DatumGetInt32(c->constvalue);
	c = static_cast<Const *>(lsecond(fe->args));
	mi->flags = DatumGetInt32(c->constvalue);
	c = static_cast<Const *>(lthird(fe->args));
	mi->ncols = 0;
	mi->cols = nullptr;
	if (!c->constisnull)
	{
		Datum *elems;
		bool *nulls;
		int n;

		deconstruct_array(DatumGetArrayTypeP(c->constvalue), INT2OID, 2, true, TYPALIGN_SHORT,
						  &elems, &nulls, &n);
		mi->cols = static_cast<int16 *>(palloc(sizeof(int16) * (n + 1)));
		for (int i = 0; i < n; i++)
			mi->cols[i] = DatumGetInt16(elems[i]);
		mi->ncols = n;
	}
	return true;
}

} /* namespace vpd */
} /* namespace rustydb */

/*-------------------------------------------------------------------------
 *
 * rls.cpp
 *	  VPD: the policies rustydb returns to PostgreSQL's row-security hooks.
 *
 * The restrictive hook gets one restrictive policy per enabled VPD policy
 * that applies to the statement type and to the active policy groups: the
 * marker call ANDed with the parsed predicate (just the marker when the
 * function returned NULL or ''), as USING and, with update_check, as WITH
 * CHECK. A table with driving contexts also gets a marker-only policy, so
 * its plans depend on the contexts even when no policy applies. The
 * permissive hook adds one "true" policy so the restrictive ones do not
 * deny everything (none when the table has native permissive policies).
 * Members of rustydb_exempt_access_policy get no policies; their access is
 * reported to the exempt-access listener.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/vpd/internal.h"
#include "rustydb/vpd/session.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "rewrite/rewriteManip.h"
#include "rewrite/rowsecurity.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/rel.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace vpd {
namespace {

bool
applies_to(const Policy *p, CmdType cmd)
{
	if (!p->enabled)
		return false;
	switch (cmd)
	{
		case CMD_SELECT:
			return p->sel;
		case CMD_INSERT:
			return p->ins && p->update_check;
		case CMD_UPDATE:
			return p->upd;
		case CMD_DELETE:
			return p->del;
		default:
			return false;
	}
}

bool
group_active(const RelEntry *e, const Policy *p, List *active)
{
	ListCell *lc;

	if (e->ndrv == 0 || pg_strcasecmp(p->group, "SYS_DEFAULT") == 0)
		return true;
	foreach (lc, active)
		if (pg_strcasecmp(static_cast<char *>(lfirst(lc)), p->group) == 0)
			return true;
	return false;
}

/* Groups named by the driving contexts (only when there are some). */
List *
active_groups(const RelEntry *e, Relation rel)
{
	List *groups = NIL;

	for (int i = 0; i < e->ndrv; i++)
	{
		const char *v = context_value(e->drv_ns[i], e->drv_attr[i]);
		bool known = pg_strcasecmp(v ? v : "", "SYS_DEFAULT") == 0;

		if (v == nullptr)
			continue;
		for (int g = 0; g < e->ngroups && !known; g++)
			known = pg_strcasecmp(e->groups[g], v) == 0;
		if (!known)
			ereport(
				ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("driving context %s.%s of table \"%s\" names an unknown policy group",
						e->drv_ns[i], e->drv_attr[i], RelationGetRelationName(rel)),
				 errhint(
					 "Set it to the name of a group created with rustydb.create_policy_group.")));
		groups = lappend(groups, pstrdup(v));
	}
	return groups;
}

ArrayType *
public_roles()
{
	Datum role = ObjectIdGetDatum(ACL_ID_PUBLIC);

	return construct_array(&role, 1, OIDOID, sizeof(Oid), true, TYPALIGN_INT);
}

RowSecurityPolicy *
make_policy(const char *name, CmdType cmd, Expr *qual, Expr *check, bool permissive)
{
	RowSecurityPolicy *rsp = static_cast<RowSecurityPolicy *>(palloc0(sizeof(RowSecurityPolicy)));

	rsp->policy_name = pstrdup(name);
	rsp->polcmd = '*';
	rsp->roles = public_roles();
	rsp->permissive = permissive;
	rsp->qual = qual;
	rsp->with_check_qual = check;
	rsp->hassublinks = checkExprHasSubLink(reinterpret_cast<Node *>(qual)) ||
					   checkExprHasSubLink(reinterpret_cast<Node *>(check));
	return rsp;
}

Expr *
true_const()
{
	return reinterpret_cast<Expr *>(makeBoolConst(true, false));
}

bool
has_native_permissive(Relation rel)
{
	ListCell *lc;

	if (rel->rd_rsdesc == nullptr)
		return false;
	foreach (lc, rel->rd_rsdesc->policies)
		if (static_cast<RowSecurityPolicy *>(lfirst(lc))->permissive)
			return true;
	return false;
}

List *
build_restrictive(CmdType cmd, Relation rel)
{
	RelEntry *e = get_entry(RelationGetRelid(rel));
	List *result = NIL;
	List *groups;
	int napplicable = 0;

	if (!e->any)
		return NIL;
	for (int i = 0; i < e->npol; i++)
		if (applies_to(&e->pol[i], cmd))
			napplicable++;
	if (current_user_exempt())
	{
		if (napplicable > 0)
			report_exempt_access(rel, cmd, napplicable);
		return NIL;
	}

	groups = active_groups(e, rel);
	for (int i = 0; i < e->npol; i++)
	{
		Policy *p = &e->pol[i];
		MarkerKind kind;
		int flags = 0;
		Expr *marker;
		Expr *qual;
		Expr *check = nullptr;
		char *pred;

		if (!applies_to(p, cmd) || !group_active(e, p, groups))
			continue;
		kind = marker_for(p->type);
		if (p->has_cols)
		{
			flags |= kFlagSecCols;
			session().stmt.seen_sec_cols = true;
		}
		if (p->all_rows)
			flags |= kFlagAllRows;
		if (!p->update_check)
			flags |= kFlagNoCheck;
		pred = get_predicate(p, rel);
		marker = make_marker(kind, p->id, flags, p->ncols, p->cols, pred);
		if (pred == nullptr)
			qual = marker;
		else
			qual = make_andclause(
				list_make2(marker, reinterpret_cast<Expr *>(p->type == kDynamic
																? parse_predicate(p, rel, pred)
																: parsed_predicate(p, rel, pred))));
		if (cmd == CMD_INSERT || cmd == CMD_UPDATE)
			check = p->update_check ? copy_node(qual) : true_const();
		result = lappend(result, make_policy(p->name, cmd, qual, check, false));
	}
	if (e->ndrv > 0)
	{
		/* plans depend on the driving contexts even when no policy applies */
		Expr *marker = make_marker(kMarkerContext, 0, 0, 0, nullptr);

		result = lappend(
			result,
			make_policy("rustydb driving context", cmd, marker,
						cmd == CMD_INSERT || cmd == CMD_UPDATE ? true_const() : nullptr, false));
	}
	return result;
}

} /* namespace */

List *
restrictive_policies(CmdType cmd, Relation rel)
{
	List *volatile mine = NIL;

	pin_policy_cache();
	PG_TRY();
	{
		mine = build_restrictive(cmd, rel);
	}
	PG_FINALLY();
	{
		unpin_policy_cache();
	}
	PG_END_TRY();
	return mine;
}

List *
permissive_policies(CmdType cmd, Relation rel)
{
	RelEntry *e = get_entry(RelationGetRelid(rel));

	if (!e->any || has_native_permissive(rel))
		return NIL;
	return list_make1(make_policy("rustydb vpd", cmd, true_const(), true_const(), true));
}

bool
current_user_exempt()
{
	Oid role = get_role_oid("rustydb_exempt_access_policy", true);

	return OidIsValid(role) && has_privs_of_role(GetUserId(), role);
}

} /* namespace vpd */
} /* namespace rustydb */

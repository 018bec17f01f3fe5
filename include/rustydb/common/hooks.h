/*-------------------------------------------------------------------------
 *
 * hooks.h
 *	  PostgreSQL's query-processing hooks, installed in one place.
 *
 * rustydb installs each PostgreSQL hook it uses exactly once
 * (src/common/hooks.cpp). The installed hook builds a call record holding
 * the hook's arguments and runs the subsystems' steps for that hook in a
 * fixed order, written down as a table in hooks.cpp and in
 * docs/architecture.md. A step is a plain C++ function taking the call
 * record:
 *
 *	void step(hooks::UtilityCall &call)
 *	{
 *		... before ...
 *		call.proceed();		   (the later steps, then the previous hook or
 *							   PostgreSQL's standard function)
 *		... after ...
 *	}
 *
 * A step may change the call's arguments before proceed() (as a wrapping
 * hook could), wrap proceed() in PG_TRY to act on errors, or not call
 * proceed() at all to stop the statement's processing there (it then
 * reports an error). Each step runs inside its own error boundary
 * (boundary.h), so a C++ exception in one step becomes an ordinary
 * PostgreSQL error before it reaches the PG_TRY of an earlier step.
 * Steps hold no C++ objects with destructors across proceed(): an error
 * longjmps through them.
 *
 * Hooks with a single owner that replace PostgreSQL's behaviour instead
 * of wrapping it (ExplainOneQuery, the row-security policy hooks: VPD)
 * are installed from the same place, straight to their owner. The
 * shared-memory hooks are not here: src/common/shmem.cpp owns them.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_COMMON_HOOKS_H
#define RUSTYDB_COMMON_HOOKS_H

#include "rustydb/pg.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "catalog/objectaccess.h"
#include "executor/execdesc.h"
#include "nodes/params.h"
#include "nodes/parsenodes.h"
#include "nodes/plannodes.h"
#include "parser/parse_node.h"
#include "tcop/cmdtag.h"
#include "tcop/dest.h"
#include "tcop/utility.h"
#include "utils/queryjumble.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb::hooks {

/* Every call record: the index of the next step to run. */
struct Call
{
	int next_step = 0;
};

/* post_parse_analyze_hook */
struct PostParseCall : Call
{
	ParseState *pstate;
	Query *query;
	JumbleState *jstate;
	void proceed();
};

/* planner_hook; the innermost call sets result */
struct PlannerCall : Call
{
	Query *parse;
	const char *query_string;
	int cursor_options;
	ParamListInfo bound_params;
	PlannedStmt *result = nullptr;
	void proceed();
};

/* ExecutorStart_hook */
struct StartCall : Call
{
	QueryDesc *query_desc;
	int eflags;
	void proceed();
};

/* ExecutorRun_hook */
struct RunCall : Call
{
	QueryDesc *query_desc;
	ScanDirection direction;
	uint64 count;
	bool execute_once;
	void proceed();
};

/* ExecutorFinish_hook */
struct FinishCall : Call
{
	QueryDesc *query_desc;
	void proceed();
};

/* ExecutorEnd_hook */
struct EndCall : Call
{
	QueryDesc *query_desc;
	void proceed();
};

/* ProcessUtility_hook */
struct UtilityCall : Call
{
	PlannedStmt *pstmt;
	const char *query_string;
	bool read_only_tree;
	ProcessUtilityContext context;
	ParamListInfo params;
	QueryEnvironment *query_env;
	DestReceiver *dest;
	QueryCompletion *qc;
	void proceed();
};

/* object_access_hook; "proceed" runs the later steps and the previous hook */
struct ObjectAccessCall : Call
{
	ObjectAccessType access;
	Oid class_id;
	Oid object_id;
	int sub_id;
	void *arg;
	void proceed();
};

/* emit_log_hook */
struct EmitLogCall : Call
{
	ErrorData *edata;
	void proceed();
};

/* Install every hook; from _PG_init, after the subsystems' init. */
void install();

} /* namespace rustydb::hooks */

#endif /* RUSTYDB_COMMON_HOOKS_H */

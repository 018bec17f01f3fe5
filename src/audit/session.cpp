/*-------------------------------------------------------------------------
 *
 * session.cpp
 *	  The life of the backend's audit state (the Session struct of
 *	  include/rustydb/audit/capture.h).
 *
 * Owns: the memory contexts, the session's names that every record
 * carries (user, session user, database, client, session id; records.cpp
 * copies them into records), the transaction and subtransaction
 * callbacks (frames of aborted statements, statement nesting, a user
 * purge's size accounting), the cache invalidation callbacks (policy
 * cache, relation names), and the figures rustydb.memory shows for the
 * policy cache and the frames.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/audit/capture.h"

#include "rustydb/common/boundary.h"
#include "rustydb/common/settings.h"

RUSTYDB_PG_INCLUDE_BEGIN
#include "access/xact.h"
#include "commands/dbcommands.h"
#include "utils/acl.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/syscache.h"
RUSTYDB_PG_INCLUDE_END

namespace rustydb {
namespace audit {

namespace {

void
name_of_role(Oid role, Oid *cached, char *buf)
{
	if (*cached == role && buf[0] != '\0')
		return;
	session().names.tpl_valid = false;
	const char *name = IsTransactionState() ? GetUserNameFromId(role, true) : nullptr;

	if (name != nullptr)
		strlcpy(buf, name, NAMEDATALEN);
	else
		snprintf(buf, NAMEDATALEN, "role %u", role);
	*cached = role;
}

} /* namespace */

void
ensure_contexts()
{
	Session &s = session();

	if (s.frames.ctx == nullptr)
	{
		s.frames.ctx =
			AllocSetContextCreate(TopMemoryContext, "rustydb audit", ALLOCSET_DEFAULT_SIZES);
		s.policy.ctx =
			AllocSetContextCreate(TopMemoryContext, "rustydb audit policies", ALLOCSET_SMALL_SIZES);
	}
}

void
refresh_session_names()
{
	SessionNames &n = session().names;

	if (n.session_id[0] == '\0')
		snprintf(n.session_id, sizeof(n.session_id), "%lx.%x", static_cast<long>(MyStartTime),
				 MyProcPid);
	if (n.database_name[0] == '\0' && OidIsValid(MyDatabaseId) && IsTransactionState())
	{
		const char *db = get_database_name(MyDatabaseId);

		if (db != nullptr)
			strlcpy(n.database_name, db, sizeof(n.database_name));
		n.tpl_valid = false;
	}
	if (n.client_addr[0] == '\0' && MyProcPort != nullptr)
	{
		LOCAL_FCINFO(info, 0);
		Datum addr;

		InitFunctionCallInfoData(*info, nullptr, 0, InvalidOid, nullptr, nullptr);
		addr = inet_client_addr(info);
		if (info->isnull)
			strlcpy(n.client_addr, "[local]", sizeof(n.client_addr));
		else
			strlcpy(n.client_addr, DatumGetCString(DirectFunctionCall1(inet_out, addr)),
					sizeof(n.client_addr));
		n.tpl_valid = false;
	}
	if (OidIsValid(GetUserId()))
		name_of_role(GetUserId(), &n.user, n.user_name);
	if (OidIsValid(GetSessionUserId()))
		name_of_role(GetSessionUserId(), &n.session_user, n.session_user_name);
}

void
note_purge(int64 rows, int64 bytes)
{
	Session &s = session();

	s.pending_purge_rows += rows;
	s.pending_purge_bytes += bytes;
}

void
policy_cache_usage(memory::BackendUsage *out)
{
	const PolicyCache &p = session().policy;

	out->bytes = p.ctx != nullptr ? static_cast<int64>(MemoryContextMemAllocated(p.ctx, true)) : 0;
	out->entries = p.npolicies;
	out->limit = settings::audit_max_policies;
	out->high_water = p.high_water;
	out->limit_setting = "rustydb.audit_max_policies";
}

void
frame_usage(memory::BackendUsage *out)
{
	const FrameStack &fs = session().frames;

	out->bytes =
		fs.ctx != nullptr ? static_cast<int64>(MemoryContextMemAllocated(fs.ctx, true)) : 0;
	out->entries = fs.depth;
	out->limit = -1; /* one per nested statement: bounded by max_stack_depth */
	out->high_water = fs.high_water;
	out->limit_setting = "max_stack_depth";
}

} /* namespace audit */
} /* namespace rustydb */

using namespace rustydb::audit;

extern "C" {

static void
audit_relcache_callback(Datum arg, Oid relid) noexcept
{
	rustydb::boundary::run("audit relcache callback", [&] {
		policy_cache_invalidate(relid);
		relation_names_invalidate(relid);
	});
}

static void
audit_namespace_callback(Datum arg, int cacheid, uint32 hashvalue) noexcept
{
	/* a schema rename sends no relcache invalidation */
	rustydb::boundary::run("audit namespace callback",
						   [&] { relation_names_invalidate(InvalidOid); });
}

static void
audit_xact_callback(XactEvent event, void *arg) noexcept
{
	rustydb::boundary::run("audit xact callback", [&] {
		Session &s = session();

		if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
			event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT ||
			event == XACT_EVENT_PREPARE)
			s.frames.exec_nesting = 0;
		if (event == XACT_EVENT_COMMIT)
		{
			if (s.pending_purge_rows != 0)
				queue_add_purged(s.pending_purge_rows, s.pending_purge_bytes);
			s.pending_purge_rows = s.pending_purge_bytes = 0;
			return;
		}
		if (event != XACT_EVENT_ABORT && event != XACT_EVENT_PARALLEL_ABORT)
			return;
		s.pending_purge_rows = s.pending_purge_bytes = 0;
		s.purge_in_progress = false;
		s.policy.loading = false;
		/* statements (cursors) that never reached ExecutorEnd */
		frames_aborted(false, InvalidSubTransactionId);
	});
}

static void
audit_subxact_callback(SubXactEvent event, SubTransactionId my_subid, SubTransactionId parent,
					   void *arg) noexcept
{
	rustydb::boundary::run("audit subxact callback", [&] {
		FrameStack &fs = session().frames;
		int level = GetCurrentTransactionNestLevel();

		if (event == SUBXACT_EVENT_START_SUB && level < kMaxSavedNesting)
			fs.saved_nesting[level] = fs.exec_nesting;
		if (event == SUBXACT_EVENT_ABORT_SUB)
		{
			if (level < kMaxSavedNesting)
				fs.exec_nesting = fs.saved_nesting[level];
			frames_aborted(true, my_subid);
		}
	});
}

} /* extern "C" */

namespace rustydb {
namespace audit {

void
register_session_callbacks()
{
	CacheRegisterRelcacheCallback(audit_relcache_callback, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, audit_namespace_callback, (Datum) 0);
	RegisterXactCallback(audit_xact_callback, nullptr);
	RegisterSubXactCallback(audit_subxact_callback, nullptr);
}

} /* namespace audit */
} /* namespace rustydb */

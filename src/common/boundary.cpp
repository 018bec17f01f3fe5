/*-------------------------------------------------------------------------
 *
 * boundary.cpp
 *	  Translating C++ exceptions to PostgreSQL errors and back.
 *
 * See include/rustydb/common/boundary.h for the rules. Nothing in this file
 * may throw: it runs while an exception is being handled or just before a
 * longjmp.
 *
 *-------------------------------------------------------------------------
 */
#include "rustydb/common/boundary.h"

#include <cstdlib>
#include <cstring>
#include <cxxabi.h>
#include <new>
#include <typeinfo>

namespace rustydb {

const char *
PgError::what() const noexcept
{
	if (edata_ != nullptr && edata_->message != nullptr)
		return edata_->message;
	return "PostgreSQL error";
}

namespace boundary {

static void
copy_text(char *dst, size_t size, const char *src) noexcept
{
	if (src == nullptr)
		src = "";
	strlcpy(dst, src, size);
}

void
capture_current_exception(Failure *out) noexcept
{
	out->edata = nullptr;
	out->sqlstate = ERRCODE_INTERNAL_ERROR;
	out->message[0] = '\0';
	out->detail[0] = '\0';
	out->hint[0] = '\0';
	out->type_name[0] = '\0';
	out->file = nullptr;
	out->line = 0;
	out->func = nullptr;

	try
	{
		throw;
	}
	catch (const Error &e)
	{
		out->kind = Failure::kRustydb;
		out->sqlstate = e.sqlstate();
		copy_text(out->message, sizeof(out->message), e.what());
		copy_text(out->detail, sizeof(out->detail), e.detail().c_str());
		copy_text(out->hint, sizeof(out->hint), e.hint().c_str());
		out->file = e.file();
		out->line = e.line();
		out->func = e.func();
	}
	catch (const PgError &e)
	{
		out->kind = Failure::kPostgres;
		out->edata = e.data();
	}
	catch (const std::bad_alloc &)
	{
		out->kind = Failure::kOutOfMemory;
		out->sqlstate = ERRCODE_OUT_OF_MEMORY;
		copy_text(out->message, sizeof(out->message), "out of memory");
	}
	catch (const std::exception &e)
	{
		out->kind = Failure::kStd;
		copy_text(out->message, sizeof(out->message), e.what());
		int status = 0;
		char *demangled = abi::__cxa_demangle(typeid(e).name(), nullptr, nullptr, &status);

		copy_text(out->type_name, sizeof(out->type_name),
				  status == 0 && demangled ? demangled : typeid(e).name());
		free(demangled);
	}
	catch (...)
	{
		out->kind = Failure::kUnknown;
		copy_text(out->message, sizeof(out->message), "unknown C++ exception");
	}
}

void
raise(const char *where, const Failure *failure)
{
	switch (failure->kind)
	{
		case Failure::kPostgres:
			ReThrowError(failure->edata);
			break;
		case Failure::kRustydb:
			/* ereport spelled out, so that LOCATION is the raising site */
			if (errstart(ERROR, TEXTDOMAIN))
			{
				errcode(failure->sqlstate);
				errmsg_internal("%s", failure->message);
				if (failure->detail[0])
					errdetail_internal("%s", failure->detail);
				if (failure->hint[0])
					errhint("%s", failure->hint);
				errfinish(failure->file ? failure->file : __FILE__,
						  failure->file ? failure->line : __LINE__,
						  failure->func ? failure->func : PG_FUNCNAME_MACRO);
			}
			break;
		case Failure::kOutOfMemory:
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory"),
					 errdetail("A C++ allocation failed in rustydb function \"%s\".", where)));
			break;
		case Failure::kStd:
			ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
							errmsg("internal error in rustydb function \"%s\": %s", where,
								   failure->message),
							errdetail("C++ exception of type %s.", failure->type_name)));
			break;
		case Failure::kUnknown:
			ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
							errmsg("internal error in rustydb function \"%s\": %s", where,
								   failure->message)));
			break;
	}
	pg_unreachable();
}

} /* namespace boundary */

namespace pg {
namespace detail {

ErrorData *
take_error(MemoryContext ctx) noexcept
{
	ErrorData *edata;

	MemoryContextSwitchTo(ctx);
	edata = CopyErrorData();
	FlushErrorState();
	return edata;
}

} /* namespace detail */
} /* namespace pg */
} /* namespace rustydb */

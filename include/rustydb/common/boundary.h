/*-------------------------------------------------------------------------
 *
 * boundary.h
 *	  The C++/PostgreSQL error boundary: no C++ exception crosses a
 *	  PostgreSQL frame, no PostgreSQL error skips a C++ destructor.
 *
 * PostgreSQL reports errors with ereport(ERROR), which longjmps to the
 * nearest PG_TRY; C++ reports them with exceptions, which unwind through
 * destructors. Neither may cross the other:
 *
 *	- A C++ exception must never propagate into a PostgreSQL frame (the
 *	  executor, the fmgr, a hook caller): it would terminate the backend.
 *	- A PostgreSQL longjmp must never skip a C++ frame that owns an object
 *	  with a destructor: the destructor would silently not run.
 *
 * Two tools enforce this:
 *
 *	rustydb::boundary::run(where, body)
 *		Wraps the body of every extern "C" entry point (SQL functions,
 *		table AM and rmgr callbacks, hooks, worker main). It runs body();
 *		if any C++ exception escapes, all of body's objects are destroyed
 *		by normal unwinding, the exception is translated into plain data,
 *		and only then, with no C++ object alive in any frame between here
 *		and PostgreSQL, is ereport(ERROR) raised. Entry points are declared
 *		noexcept, and scripts/check-boundary.pl fails the build's tests if
 *		one does not start with boundary::run or use RUSTYDB_FUNCTION.
 *
 *	rustydb::pg::call(fn, args...)
 *		Calls a PostgreSQL function that may ereport(ERROR) from code where
 *		C++ objects are alive. The error is caught with PG_TRY in a frame
 *		that owns no C++ objects, copied out of the error state, and thrown
 *		as rustydb::PgError, so C++ unwinding runs every destructor;
 *		boundary::run re-throws the original error (same SQLSTATE, message,
 *		detail, hint and context) once the C++ frames are gone. A PgError
 *		must never be swallowed: the transaction is already failed.
 *
 * Code inside boundary::run that holds no non-trivially-destructible
 * objects may call PostgreSQL directly; that is the common case in thin
 * callback glue.
 *
 *-------------------------------------------------------------------------
 */
#ifndef RUSTYDB_COMMON_BOUNDARY_H
#define RUSTYDB_COMMON_BOUNDARY_H

#include "rustydb/pg.h"

#include <exception>
#include <string>
#include <type_traits>
#include <utility>

namespace rustydb {

/*
 * An error raised by rustydb's C++ code, carrying what ereport needs.
 * Thrown as an exception; boundary::run turns it into ereport(ERROR).
 */
class Error : public std::exception
{
  public:
	/*
	 * file, line and func default to the site that constructs the error
	 * (GCC and Clang builtins), so the server log's LOCATION names the
	 * raising code rather than boundary.cpp.
	 */
	Error(int sqlstate, std::string message, std::string detail = {}, std::string hint = {},
		  const char *file = __builtin_FILE(), int line = __builtin_LINE(),
		  const char *func = __builtin_FUNCTION())
		: sqlstate_(sqlstate), message_(std::move(message)), detail_(std::move(detail)),
		  hint_(std::move(hint)), file_(file), line_(line), func_(func)
	{}

	const char *what() const noexcept override { return message_.c_str(); }
	int sqlstate() const noexcept { return sqlstate_; }
	const std::string &detail() const noexcept { return detail_; }
	const std::string &hint() const noexcept { return hint_; }
	const char *file() const noexcept { return file_; }
	int line() const noexcept { return line_; }
	const char *func() const noexcept { return func_; }

  private:
	int sqlstate_;
	std::string message_;
	std::string detail_;
	std::string hint_;
	const char *file_; /* string literals: static storage */
	int line_;
	const char *func_;
};

/*
 * A PostgreSQL error caught beneath C++ code by pg::call. Owns nothing
 * C++-managed: the ErrorData lives in the memory context that was current
 * at the call, which the aborting transaction cleans up.
 */
class PgError : public std::exception
{
  public:
	explicit PgError(ErrorData *edata) noexcept : edata_(edata) {}
	const char *what() const noexcept override;
	ErrorData *data() const noexcept { return edata_; }

  private:
	ErrorData *edata_;
};

namespace boundary {

/* Plain data describing a failure; no destructor, survives any longjmp. */
struct Failure
{
	enum Kind
	{
		kRustydb,     /* rustydb::Error */
		kPostgres,    /* PgError: re-throw edata */
		kOutOfMemory, /* std::bad_alloc */
		kStd,         /* other std::exception */
		kUnknown      /* anything else */
	} kind;
	int sqlstate;
	ErrorData *edata;
	char message[1024];
	char detail[1024];
	char hint[512];
	char type_name[128];
	/* kRustydb: where the Error was constructed (static strings) */
	const char *file;
	int line;
	const char *func;
};

/* Fill *out from the exception being handled; call only inside catch. */
void capture_current_exception(Failure *out) noexcept;

/* ereport(ERROR) the captured failure; never returns. */
[[noreturn]] void raise(const char *where, const Failure *failure);

/*
 * Run body() at an extern "C" entry point. No exception leaves; a failure
 * becomes an ordinary PostgreSQL ERROR after body's objects are destroyed.
 */
template <typename Body>
auto
run(const char *where, Body &&body) noexcept -> decltype(body())
{
	Failure failure;

	try
	{
		return body();
	}
	catch (...)
	{
		capture_current_exception(&failure);
	}
	raise(where, &failure);
}

} /* namespace boundary */

namespace pg {

namespace detail {
/* Copy the current PostgreSQL error out of ErrorContext and clear it. */
ErrorData *take_error(MemoryContext ctx) noexcept;
} /* namespace detail */

/*
 * Call a PostgreSQL function that may ereport(ERROR) from C++ code; a
 * PostgreSQL error comes back as a thrown rustydb::PgError. fn must be a
 * plain function or a lambda whose own frame holds no objects with
 * destructors.
 */
template <typename Fn, typename... Args>
auto
call(Fn &&fn, Args &&...args) -> decltype(fn(std::forward<Args>(args)...))
{
	using Result = decltype(fn(std::forward<Args>(args)...));
	MemoryContext volatile ctx = CurrentMemoryContext;
	ErrorData *volatile edata = nullptr;

	if constexpr (std::is_void_v<Result>)
	{
		PG_TRY();
		{
			fn(std::forward<Args>(args)...);
		}
		PG_CATCH();
		{
			edata = detail::take_error(ctx);
		}
		PG_END_TRY();
		if (edata != nullptr)
			throw PgError(edata);
	}
	else
	{
		static_assert(std::is_scalar_v<Result>,
					  "pg::call returns only scalar values (pointers, numbers, Datum)");
		Result volatile result{};

		PG_TRY();
		{
			result = fn(std::forward<Args>(args)...);
		}
		PG_CATCH();
		{
			edata = detail::take_error(ctx);
		}
		PG_END_TRY();
		if (edata != nullptr)
			throw PgError(edata);
		return result;
	}
}

} /* namespace pg */

/*
 * A SQL function's argument n that has no meaning when NULL: the one
 * error rustydb raises for it (22004, naming the argument; the SQL
 * functions raise the same through rustydb._not_null). Functions that
 * compute a value are STRICT instead. LOCATION names the caller.
 */
inline void
require_argument(FunctionCallInfo fcinfo, int n, const char *name,
				 const char *file = __builtin_FILE(), int line = __builtin_LINE(),
				 const char *func = __builtin_FUNCTION())
{
	if (PG_ARGISNULL(n))
		throw Error(ERRCODE_NULL_VALUE_NOT_ALLOWED,
					std::string("argument \"") + name + "\" must not be null", {}, {}, file, line,
					func);
}

} /* namespace rustydb */

/*
 * Define a V1 SQL-callable function whose body is C++:
 *
 *	RUSTYDB_FUNCTION(rustydb_version)
 *	{
 *		PG_RETURN_TEXT_P(cstring_to_text("0.1.0"));
 *	}
 *
 * The exported symbol is extern "C" and noexcept and runs the body through
 * boundary::run; the body receives fcinfo like any PG_FUNCTION_ARGS.
 */
#define RUSTYDB_FUNCTION(name)                                                                     \
	static Datum name##_body(FunctionCallInfo fcinfo);                                             \
	extern "C" {                                                                                   \
	PGDLLEXPORT const Pg_finfo_record *pg_finfo_##name(void) noexcept;                             \
	PGDLLEXPORT Datum name(FunctionCallInfo fcinfo) noexcept;                                      \
	const Pg_finfo_record *pg_finfo_##name(void) noexcept                                          \
	{                                                                                              \
		static const Pg_finfo_record finfo = {1};                                                  \
		return &finfo;                                                                             \
	}                                                                                              \
	Datum name(FunctionCallInfo fcinfo) noexcept                                                   \
	{                                                                                              \
		return rustydb::boundary::run(#name, [fcinfo] { return name##_body(fcinfo); });            \
	}                                                                                              \
	}                                                                                              \
	static Datum name##_body(FunctionCallInfo fcinfo)

#endif /* RUSTYDB_COMMON_BOUNDARY_H */

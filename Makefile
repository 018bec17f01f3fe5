# rustydb: PGXS build of a C++17 extension for PostgreSQL 15.
#
#   make                 build rustydb.so and the extension script
#   make install         install into the server found by PG_CONFIG
#   make format          reformat C++ sources with clang-format
#   make check-format    fail if any C++ source is not formatted
#   make installcheck    pg_regress against a running server (see scripts/test.sh)
#
# The whole test suite, with a throwaway server, is scripts/test.sh.

EXTENSION = rustydb
MODULE_big = rustydb
EXTVERSION = 0.1.0

PG_CONFIG ?= /usr/lib/postgresql/15/bin/pg_config

SOURCES := $(sort $(wildcard src/*/*.cpp))
CXX_HEADERS := $(sort $(wildcard include/rustydb/*.h include/rustydb/*/*.h))
OBJS = $(SOURCES:.cpp=.o)

# The extension script is assembled from one part per subsystem.
SQL_PARTS := $(sort $(wildcard sql/install/*.sql))
DATA_built = sql/$(EXTENSION)--$(EXTVERSION).sql

# pg_regress tests run in the order of test/schedule.
REGRESS_OPTS = --temp-config=test/regress.conf --schedule=test/schedule

SHLIB_LINK += -lsodium -lstdc++

PGXS := $(shell $(PG_CONFIG) --pgxs)
PG_MAJOR := $(shell $(PG_CONFIG) --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
ifneq ($(PG_MAJOR),15)
$(error rustydb needs PostgreSQL 15; $(PG_CONFIG) reports $(PG_MAJOR))
endif

# No LLVM bitcode: rustydb is C++ and not inlined by the JIT.
override with_llvm = no

include $(PGXS)

# C++17, warnings on (errors with WERROR=1, as the test suite builds),
# automatic header dependencies.
override CXXFLAGS += -std=c++17 -Wall -Wextra -Wno-unused-parameter -fPIC \
	-fvisibility=hidden -MMD -MP
ifeq ($(WERROR),1)
override CXXFLAGS += -Werror
endif
override CPPFLAGS := -I$(CURDIR)/include $(CPPFLAGS)

%.o: %.cpp
	$(CXX) $(CXXFLAGS) $(CPPFLAGS) -c -o $@ $<

-include $(OBJS:.o=.d)

$(DATA_built): $(SQL_PARTS) Makefile
	cat $(SQL_PARTS) > $@

EXTRA_CLEAN += $(OBJS:.o=.d) $(DATA_built)

.PHONY: format check-format
CLANG_FORMAT ?= clang-format
format:
	$(CLANG_FORMAT) -i $(SOURCES) $(CXX_HEADERS)

check-format:
	$(CLANG_FORMAT) --dry-run -Werror $(SOURCES) $(CXX_HEADERS)

# PostgreSQL's own regression and isolation suites on rustydb tables.
.PHONY: pgsuite
pgsuite:
	bash scripts/pgsuite.sh

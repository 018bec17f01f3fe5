#!/usr/bin/env bash
# rustydb test helpers: throwaway PostgreSQL 15 clusters for scenario tests,
# pgTAP runs and the demo. Source this file; it defines rdb_* functions.
#
#   RDB_BINDIR    PostgreSQL bin directory to use (default: the system's;
#                 scripts/test.sh points it at a private install that
#                 contains the freshly built rustydb)
#   RDB_WORK      directory for nodes (default: a new directory under /tmp)
#   RDB_TDE       1: every node preloading rustydb encrypts every new
#                 rustydb table (a test keyring, rustydb.encrypt_new_tables
#                 on, plaintext index, derived table and temporary file
#                 reports only logged, full statistics unless
#                 RDB_TDE_STATISTICS=none, the opened-payload cache on:
#                 RDB_TDE_CACHE_SIZE, default 64MB, for every read:
#                 tde_cache_min_read = 0); scripts/test.sh
#                 runs the access method's crash and standby scenarios so
#   RDB_INITDB_OPTS extra initdb options for the nodes rdb_node_init makes
#                 (e.g. --data-checksums), word-split
#
# Nodes: rdb_node_init NAME [--no-rustydb] | rdb_node_start NAME |
#   rdb_node_stop NAME [fast|immediate] | rdb_node_crash NAME | rdb_node_running NAME |
#   rdb_node_restart NAME | rdb_standby_create PRIMARY STANDBY |
#   rdb_wait_replay PRIMARY STANDBY | rdb_psql NAME SQL... |
#   rdb_compare PRIMARY STANDBY SQL | rdb_node_conf NAME LINE
# Assertions: rdb_ok DESC CMD... | rdb_is DESC GOT WANT |
#   rdb_expect_error DESC NODE SQL PATTERN | rdb_wait_for DESC SECONDS CMD... |
#   rdb_summary (which also fails every node whose server log shows a
#   failed assertion or a crash: rdb_server_problems)
# Waiting for a state: rdb_poll SECONDS CMD... | rdb_psql_true NODE SQL |
#   rdb_reload NODE

RDB_BINDIR=${RDB_BINDIR:-/usr/lib/postgresql/15/bin}
# shellcheck source=serverlog.sh
. "$(dirname "${BASH_SOURCE[0]}")/serverlog.sh"
RDB_NODES=()
RDB_PASS=${RDB_PASS:-0}
RDB_FAIL=${RDB_FAIL:-0}

if [ -z "${RDB_WORK:-}" ]; then
	RDB_WORK=$(mktemp -d /tmp/rustydb-nodes.XXXXXX)
	RDB_WORK_OWNED=1
fi
chmod 755 "$RDB_WORK"

# The server refuses to run as root: as root, run it as 'postgres'.
if [ "$(id -u)" -eq 0 ]; then
	RDB_SERVER_USER=postgres
	rdb_as_server() { runuser -u postgres -- "$@"; }
else
	RDB_SERVER_USER=$(id -un)
	rdb_as_server() { "$@"; }
fi

rdb_log() { echo "# $*"; }
rdb_die() {
	echo "FATAL: $*" >&2
	exit 1
}

# A TCP port nobody listens on (the server also uses it to name its socket).
rdb_free_port() {
	local port
	for _ in $(seq 1 200); do
		port=$((20000 + RANDOM % 30000))
		if ! (echo >/dev/tcp/127.0.0.1/"$port") 2>/dev/null &&
			! ls /tmp/.s.PGSQL."$port" >/dev/null 2>&1 &&
			! grep -qs "^$port\$" "$RDB_WORK"/*/port 2>/dev/null; then
			echo "$port"
			return 0
		fi
	done
	rdb_die "no free port found"
}

rdb_dir() { echo "$RDB_WORK/$1"; }
rdb_port() { cat "$RDB_WORK/$1/port"; }
rdb_sock() { echo "$RDB_WORK/$1/socket"; }

# rdb_node_conf NAME LINE: append a line to the node's postgresql.conf.
rdb_node_conf() {
	echo "$2" | rdb_as_server tee -a "$RDB_WORK/$1/data/postgresql.conf" >/dev/null
}

# rdb_node_init NAME [--no-rustydb]
rdb_node_init() {
	local name=$1 preload=rustydb dir port
	[ "${2:-}" = "--no-rustydb" ] && preload=""
	dir=$RDB_WORK/$name
	mkdir -p "$dir/socket"
	chown -R "$RDB_SERVER_USER" "$dir"
	port=$(rdb_free_port)
	echo "$port" >"$dir/port"
	# shellcheck disable=SC2086
	rdb_as_server "$RDB_BINDIR/initdb" -D "$dir/data" -U postgres --auth=trust \
		--no-sync -E UTF8 --locale=C ${RDB_INITDB_OPTS:-} >"$dir/initdb.log" 2>&1 ||
		{
			cat "$dir/initdb.log"
			rdb_die "initdb failed for $name"
		}
	rdb_as_server tee -a "$dir/data/postgresql.conf" >/dev/null <<CONF
# rustydb test node $name
port = $port
listen_addresses = ''
unix_socket_directories = '$dir/socket'
shared_preload_libraries = '$preload'
wal_level = replica
max_wal_senders = 10
hot_standby = on
fsync = off
log_line_prefix = '%m [%p] %q%a '
logging_collector = off
max_prepared_transactions = 10
CONF
	if [ "${RDB_TDE:-0}" = 1 ] && [ -n "$preload" ]; then
		local ring=$RDB_WORK/tde_variant_keys/ring
		if [ ! -e "$ring" ]; then
			mkdir -p "$RDB_WORK/tde_variant_keys"
			chown "$RDB_SERVER_USER" "$RDB_WORK/tde_variant_keys"
			rdb_as_server bash "$(dirname "${BASH_SOURCE[0]}")/../../scripts/rustydb-keyring" create "$ring" >/dev/null
		fi
		rdb_node_conf "$name" "rustydb.keyring_file = '$ring'"
		rdb_node_conf "$name" "rustydb.encrypt_new_tables = on"
		rdb_node_conf "$name" "rustydb.plaintext_index_action = log"
		# the other plaintext paths rustydb reports (docs/tde.md) go to the
		# server log too, and ANALYZE keeps full statistics so that plans
		# are the unencrypted run's (scripts/pgsuite.sh compares them)
		rdb_node_conf "$name" "rustydb.plaintext_derived_action = log"
		rdb_node_conf "$name" "rustydb.plaintext_temp_file_action = log"
		rdb_node_conf "$name" "rustydb.tde_statistics = ${RDB_TDE_STATISTICS:-full}"
		# the opened-payload cache (by default a quarter of shared_buffers
		# with a key provider): a fixed size, so every encrypted suite and
		# scenario reads through it alike
		rdb_node_conf "$name" "rustydb.tde_cache_size = '${RDB_TDE_CACHE_SIZE:-64MB}'"
		# and single rows too (by default a fetch of a small row bypasses it)
		rdb_node_conf "$name" "rustydb.tde_cache_min_read = 0"
	fi
	RDB_NODES+=("$name")
}

rdb_node_start() {
	local dir=$RDB_WORK/$1
	rdb_as_server "$RDB_BINDIR/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 120 start >"$dir/pg_ctl.log" 2>&1 ||
		{
			cat "$dir/pg_ctl.log"
			tail -n 30 "$dir/server.log"
			rdb_die "could not start $1"
		}
}

rdb_node_stop() {
	local dir=$RDB_WORK/$1 mode=${2:-fast}
	rdb_as_server "$RDB_BINDIR/pg_ctl" -D "$dir/data" -m "$mode" -w -t 120 stop >/dev/null 2>&1 || true
}

rdb_node_restart() {
	rdb_node_stop "$1"
	rdb_node_start "$1"
}

rdb_node_pid() { head -n 1 "$RDB_WORK/$1/data/postmaster.pid" 2>/dev/null; }

# rdb_node_running NAME: status 0 while the node's postmaster runs
rdb_node_running() {
	local pid
	pid=$(rdb_node_pid "$1")
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null
}

# Kill -9 the postmaster and every process of the cluster, as a machine
# crash would, then wait until none is left.
rdb_node_crash() {
	local pid children
	pid=$(rdb_node_pid "$1")
	[ -n "$pid" ] || rdb_die "$1 is not running"
	children=$(pgrep -P "$pid" || true)
	kill -9 "$pid" $children 2>/dev/null || true
	for _ in $(seq 1 100); do
		if ! kill -0 "$pid" 2>/dev/null && ! pgrep -P "$pid" >/dev/null &&
			{ [ -z "$children" ] || ! kill -0 $children 2>/dev/null; }; then
			return 0
		fi
		sleep 0.1
	done
	rdb_die "processes of $1 survived kill -9"
}

# rdb_psql NAME SQL [psql options...]: unaligned, tuples only, stop on error.
# rdb_keyring_create DIR: a new keyring file DIR/ring (DIR made private to
# the server's user), for rustydb.keyring_file; prints the file's path
rdb_keyring_create() {
	mkdir -p "$1"
	chown "$RDB_SERVER_USER" "$1"
	chmod 700 "$1"
	rdb_as_server bash "$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/rustydb-keyring" create "$1/ring" >/dev/null
	echo "$1/ring"
}

# rdb_audit_key_create FILE: a new random audit key (64 hex digits), private
# to the server's user, for rustydb.audit_key_file; prints the file's path
rdb_audit_key_create() {
	head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$1"
	chown "$RDB_SERVER_USER" "$1"
	chmod 600 "$1"
	echo "$1"
}

rdb_psql() {
	local name=$1 sql=$2
	shift 2
	"$RDB_BINDIR/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$(rdb_sock "$name")" \
		-p "$(rdb_port "$name")" -U postgres -d "${RDB_DB:-postgres}" "$@" -c "$sql"
}

# rdb_standby_create PRIMARY STANDBY: pg_basebackup with streaming replication
# through a replication slot named after the standby (the primary keeps the
# WAL a slow standby still needs).
rdb_standby_create() {
	local primary=$1 name=$2 dir port
	dir=$RDB_WORK/$name
	mkdir -p "$dir/socket"
	chown -R "$RDB_SERVER_USER" "$dir"
	port=$(rdb_free_port)
	echo "$port" >"$dir/port"
	rdb_as_server "$RDB_BINDIR/pg_basebackup" -h "$(rdb_sock "$primary")" -p "$(rdb_port "$primary")" \
		-U postgres -D "$dir/data" -R -X stream -c fast --no-sync -C -S "$name" >"$dir/basebackup.log" 2>&1 ||
		{
			cat "$dir/basebackup.log"
			rdb_die "pg_basebackup of $primary failed"
		}
	rdb_as_server tee -a "$dir/data/postgresql.conf" >/dev/null <<CONF
# rustydb test standby $name of $primary
port = $port
unix_socket_directories = '$dir/socket'
CONF
	RDB_NODES+=("$name")
	rdb_node_start "$name"
}

# rdb_wait_replay PRIMARY STANDBY: until the standby has replayed all the
# WAL the primary has written so far (at most RDB_REPLAY_TIMEOUT seconds, 60).
rdb_wait_replay() {
	local lsn
	lsn=$(rdb_psql "$1" "SELECT pg_current_wal_lsn()") && [ -n "$lsn" ] ||
		rdb_die "could not read the WAL position of $1 (its log: $RDB_WORK/$1/server.log)"
	for _ in $(seq 1 $((${RDB_REPLAY_TIMEOUT:-60} * 10))); do
		if [ "$(rdb_psql "$2" "SELECT pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn")" = "t" ]; then
			return 0
		fi
		# a standby whose replay failed has shut down: no point waiting
		rdb_node_running "$2" || rdb_die "$2 stopped before replaying up to $lsn (its log: $RDB_WORK/$2/server.log)"
		sleep 0.1
	done
	rdb_die "$2 did not replay up to $lsn within ${RDB_REPLAY_TIMEOUT:-60} s"
}

# rdb_wait_for DESC SECONDS CMD...: poll CMD (every 0.1 s) until it
# succeeds; after SECONDS without success the script dies naming DESC. For
# waiting on a state, never on time.
rdb_wait_for() {
	local desc=$1 secs=$2 i
	shift 2
	for ((i = 0; i < secs * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	rdb_die "timed out after $secs s waiting for $desc"
}

# rdb_poll SECONDS CMD...: like rdb_wait_for, but returns non-zero instead
# of dying when CMD has not succeeded within SECONDS, so a check can wait
# for its state: rdb_ok "DESC" rdb_poll 30 rdb_psql_true NODE "SQL".
rdb_poll() {
	local secs=$1 i
	shift
	for ((i = 0; i < secs * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	return 1
}

# rdb_psql_true NODE SQL: succeeds when the query prints t (a failed
# connection or query is false, quietly: the node may be restarting).
rdb_psql_true() {
	[ "$(rdb_psql "$1" "$2" 2>/dev/null)" = t ]
}

# rdb_reload NODE: pg_reload_conf(), then wait until new sessions run with
# the reloaded configuration (pg_conf_load_time() advanced; the postmaster
# reloads asynchronously, and every session forked after that inherits it).
rdb_reload() {
	local before
	before=$(rdb_psql "$1" "SELECT pg_conf_load_time()")
	rdb_psql "$1" "SELECT pg_reload_conf()" >/dev/null
	rdb_wait_for "$1 to reload its configuration" 60 \
		rdb_psql_true "$1" "SELECT pg_conf_load_time() > '$before'::timestamptz"
}

# rdb_compare A B SQL: the query's output must be identical on both nodes.
rdb_compare() {
	local a b
	a=$(rdb_psql "$1" "$3" 2>&1)
	b=$(rdb_psql "$2" "$3" 2>&1)
	if [ "$a" = "$b" ]; then
		rdb_pass "same result on $1 and $2: $3"
	else
		rdb_fail "different results on $1 and $2: $3" "$(diff <(echo "$a") <(echo "$b") | head -20)"
	fi
}

rdb_pass() {
	RDB_PASS=$((RDB_PASS + 1))
	echo "ok $((RDB_PASS + RDB_FAIL)) - $1"
}

rdb_fail() {
	RDB_FAIL=$((RDB_FAIL + 1))
	echo "not ok $((RDB_PASS + RDB_FAIL)) - $1"
	[ -n "${2:-}" ] && echo "$2" | sed 's/^/#   /'
	return 0
}

# rdb_is DESC GOT WANT
rdb_is() {
	if [ "$2" = "$3" ]; then
		rdb_pass "$1"
	else
		rdb_fail "$1" "got:  $2
want: $3"
	fi
}

# rdb_expect_error DESC NODE SQL PATTERN: passes when the statement's output
# (errors included) matches PATTERN (grep basic regular expression).
rdb_expect_error() {
	local out
	out=$(rdb_psql "$2" "$3" 2>&1 || true)
	# a here-string, not a pipe: grep -q stops reading at the first match, and
	# under pipefail the writer's SIGPIPE would fail a matching check
	if grep -q -- "$4" <<<"$out"; then
		rdb_pass "$1"
	else
		rdb_fail "$1" "got: $out
want a match for: $4"
	fi
}

# rdb_ok DESC CMD...: passes when CMD succeeds.
rdb_ok() {
	local desc=$1
	shift
	if "$@"; then rdb_pass "$desc"; else rdb_fail "$desc"; fi
}

# rdb_check_server_logs: one failed test per node whose server log shows a
# failed assertion or a crash (rdb_server_problems)
rdb_check_server_logs() {
	local n out
	RDB_LOGS_CHECKED=1
	for n in "${RDB_NODES[@]}"; do
		if out=$(rdb_server_problems "$RDB_WORK/$n/server.log"); then
			rdb_fail "no failed assertion or crash in the server log of $n" "$(echo "$out" | rdb_problem_digest 60)"
		fi
	done
}

# rdb_summary: print the totals; non-zero status when anything failed.
rdb_summary() {
	rdb_check_server_logs
	echo "1..$((RDB_PASS + RDB_FAIL))"
	echo "# passed $RDB_PASS, failed $RDB_FAIL"
	[ "$RDB_FAIL" -eq 0 ]
}

rdb_cleanup() {
	local n out
	# a script that died before rdb_summary: say why, if a server did
	if [ -z "${RDB_LOGS_CHECKED:-}" ]; then
		for n in "${RDB_NODES[@]}"; do
			if out=$(rdb_server_problems "$RDB_WORK/$n/server.log"); then
				echo "# failed assertion or crash in the server log of $n:"
				echo "$out" | rdb_problem_digest 60 | sed 's/^/#   /'
			fi
		done
	fi
	for n in "${RDB_NODES[@]}"; do
		[ -f "$RDB_WORK/$n/data/postmaster.pid" ] && rdb_node_stop "$n" immediate
	done
	if [ -n "${RDB_WORK_OWNED:-}" ] && [ -z "${RDB_KEEP:-}" ]; then
		rm -rf "$RDB_WORK"
	fi
}

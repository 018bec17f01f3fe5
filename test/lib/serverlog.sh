#!/usr/bin/env bash
# Failed assertions and crashes in PostgreSQL server logs. Every test run
# checks the logs of the servers it started with rdb_server_problems (through
# rdb_summary in test/lib/cluster.sh, in scripts/test.sh's pg_regress layers
# and in scripts/pgsuite.sh): a failed Assert on the assert-enabled server
# (scripts/cassert-build.sh), or a crash on any server, is a failed test.

# rdb_server_problems LOG...: the lines of PostgreSQL server logs that show
# a failed assertion ("TRAP:", an assert-enabled server's Assert, with the
# backtrace the server prints after it) or a crashed process ("terminated by
# signal", but not signal 9: scenarios kill -9 backends on purpose, and the
# statement it was running), under a "== LOG" line per log. Status 0 when
# there is such a line. Read it through rdb_problem_digest (a summary, and
# backtraces resolved to function, file and line) and rdb_count_problems.
rdb_server_problems() {
	local log found=1
	for log in "$@"; do
		[ -f "$log" ] || continue
		grep -qE 'TRAP: |terminated by signal|terminated by exception' "$log" || continue
		echo "== $log"
		awk '
			/TRAP: / { print; bt = 1; next }
			/terminated by (signal|exception)/ && !/terminated by signal 9:/ { print; bt = 0; failed = 1; next }
			failed && /Failed process was running: / { print; failed = 0; stmt = 1; next }
			# the rest of a statement of several lines (up to 40 of them)
			stmt && !/^[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] / && !/TRAP: / && stmt++ <= 40 { print "    | " $0; next }
			bt && /\(.*\)\[0x[0-9a-f]+\]$/ { print; next }
			{ bt = 0; failed = 0; stmt = 0 }
		' "$log"
		if [ "$(awk '/TRAP: |terminated by exception/ || (/terminated by signal/ && !/terminated by signal 9:/) { n++ }
			END { print n + 0 }' "$log")" != 0 ]; then
			found=0
		fi
	done
	return "$found"
}

# rdb_symbolize_backtrace: a filter turning the frames of a backtrace the
# server printed ("/path/rustydb.so(+0x1f2e3)[0x7f...]",
# "postgres: ...(fn+0x12)[0x55...]") into "fn at file:line" (addr2line; the
# postgres binary is $RDB_BINDIR/postgres, the assert-enabled build has its
# debugging information); other lines pass unchanged, indented
rdb_symbolize_backtrace() {
	local line obj sym off addr where syms="" server=${RDB_BINDIR:-/usr/lib/postgresql/15/bin}/postgres
	command -v addr2line >/dev/null || {
		cat
		return
	}
	# a stripped server (Debian's) would resolve its frames to wrong names
	if [ ! -r "$server" ] || [ "$(nm "$server" 2>/dev/null | awk '$3 == "ExceptionalCondition" { n++ } END { print n + 0 }')" = 0 ]; then
		server=""
	fi
	while IFS= read -r line; do
		obj=""
		if [[ "$line" =~ ^(/[^\(]+)\(([^+\)]*)\+(0x[0-9a-f]+)\)\[0x[0-9a-f]+\]$ ]]; then
			obj=${BASH_REMATCH[1]} sym=${BASH_REMATCH[2]} off=${BASH_REMATCH[3]}
		elif [[ "$line" =~ ^postgres:\ .*\(([A-Za-z0-9_]*)\+(0x[0-9a-f]+)\)\[0x[0-9a-f]+\]$ ]] && [ -n "$server" ]; then
			obj=$server sym=${BASH_REMATCH[1]} off=${BASH_REMATCH[2]}
		fi
		addr=""
		if [ -n "$obj" ] && [ -r "$obj" ]; then
			if [ -z "$sym" ]; then
				addr=$((off))
			else
				# (named frames of shared libraries other than the server stay as they are)
				if [ "$obj" = "$server" ]; then
					[ -n "$syms" ] || syms=$(nm --defined-only "$obj" 2>/dev/null)
					addr=$(awk -v s="$sym" '$3 == s && !f { print $1; f = 1 }' <<<"$syms")
				fi
				[ -n "$addr" ] && addr=$((0x$addr + off))
			fi
		fi
		if [ -n "$addr" ]; then
			# a return address: the call is the instruction before it
			where=$(addr2line -f -C -i -p -e "$obj" "$(printf '0x%x' $((addr - 1)))" 2>/dev/null | tr '\n' ' ')
			case "$where" in
			"?? "* | "") echo "  $line" ;;
			*) echo "  $(basename "$obj"): $where" ;;
			esac
		else
			case "$line" in
			"== "* | [0-9]*" x "*) echo "$line" ;;
			*) echo "  $line" ;;
			esac
		fi
	done
}

# rdb_count_problems: reads rdb_server_problems' output, prints how many
# processes failed (an Assert prints TRAP and its process is then reported
# terminated by signal 6: one failure)
rdb_count_problems() {
	awk '/TRAP: / { t++ } /terminated by/ { k++ } END { print (t > k ? t : k) + 0 }'
}

# rdb_problem_digest LINES: reads rdb_server_problems' output; prints how
# often each distinct failed assertion and crash signal occurred, then the
# first occurrence of each (the TRAP line, the backtrace resolved by
# rdb_symbolize_backtrace, the statement), at most LINES lines. Reads all its
# input (safe in a pipeline under pipefail).
rdb_problem_digest() {
	awk -v max="$1" '
		function key(line, k) {
			k = line
			if (k ~ /TRAP: /) { sub(/.*TRAP: /, "TRAP: ", k); sub(/, PID: [0-9]+\)/, ")", k) }
			else sub(/.* was terminated/, "a process was terminated", k)
			return k
		}
		/^== / { out[++no] = $0; next }
		/TRAP: / {
			k = key($0); n[k]++
			if (!(k in o)) { o[k] = ++nk; show = 1; pending = 1; out[++no] = $0 } else { show = 0; pending = 0 }
			next
		}
		/terminated by (signal|exception)/ {
			k = key($0); n[k]++
			if (!(k in o)) o[k] = ++nk
			if (pending || n[k] == 1) { out[++no] = $0; failed = 1 } else failed = 0
			pending = 0; show = 0
			next
		}
		/Failed process was running: / { if (failed) { out[++no] = $0; stmt = 1 } else stmt = 0; failed = 0; next }
		/^    \| / { if (stmt) out[++no] = $0; next }
		{ if (show) out[++no] = $0 }
		END {
			for (k in o) kk[o[k]] = k
			for (i = 1; i <= nk; i++) printf "%d x %s\n", n[kk[i]], kk[i]
			for (i = 1; i <= no && i <= max; i++) print out[i]
			if (no > max) printf "(%d more lines)\n", no - max
		}' | rdb_symbolize_backtrace
}

#!/usr/bin/env bash
# Active Session History overhead, measured in one run on one server:
#   1. pgbench, 2 clients, select-only (-S) and TPC-B, with ASH off and
#      sampling every 1 s, 100 ms and 10 ms. Separate pgbench runs of the
#      same mode differ by 10-25% on a 2-core machine, far more than the
#      1-2% to be measured, so each workload is ONE continuous pgbench run
#      (-P 1, per-second throughput) during which the mode changes every
#      ASH_BENCH_WINDOW seconds, with an "off" window between any two "on"
#      windows: off m1 off m2 off m3 off ..., the order of m1..m3 rotated
#      from cycle to cycle. Each per-second figure is assigned to the window
#      that was active for the whole second (the second after a switch is
#      discarded); each "on" window is compared with the mean of the two
#      "off" windows around it, so a steady drift of the throughput (tables
#      growing, checkpoints, autovacuum) cancels instead of favouring the
#      modes measured early in a cycle. Printed per mode: the mean of those
#      window ratios, their median and a 95% confidence half-width.
#   2. the sampler's cost per sample with N connections all active
#      (sleeping in pg_sleep) and all idle, for N = 100 and 500.
# Uses a build installed privately (as scripts/test.sh does).
#   ASH_BENCH_CYCLES    cycles (each: the three "on" modes, each after an off window; default 10)
#   ASH_BENCH_WINDOW    seconds per mode within a cycle (default 6)
# Besides TPS, the CPU time the sampler process itself used in each mode is
# recorded (from /proc): its share of the run is the sampler's direct cost.
#   ASH_BENCH_SCALE     pgbench scale (default 10)
#   ASH_BENCH_CONNS     connection counts for the sampler cost (default "100 500")
#   ASH_BENCH_WORKLOADS the TPS workloads (default "select-only tpcb"; "" for none)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
CYCLES=${ASH_BENCH_CYCLES:-10}
WINDOW=${ASH_BENCH_WINDOW:-6}
SCALE=${ASH_BENCH_SCALE:-10}
CONNS=${ASH_BENCH_CONNS:-100 500}
WORKLOADS=${ASH_BENCH_WORKLOADS-select-only tpcb}
bench_setup
WORK=$BENCH_WORK

maxconn=20
for n in $CONNS; do [ $((n + 20)) -gt $maxconn ] && maxconn=$((n + 20)); done
rdb_node_init b
rdb_node_conf b "max_connections = $maxconn"
rdb_node_conf b "shared_buffers = 256MB"
rdb_node_conf b "rustydb.ash_persist_every = 10"
rdb_node_start b
rdb_psql b "CREATE EXTENSION rustydb"
# pgbench itself (not a shell function around it), so that $! of "pgb ... &" is
# pgbench's pid and a kill stops it
PGB=("$RDB_BINDIR/pgbench" -h "$(rdb_sock b)" -p "$(rdb_port b)" -U postgres -d postgres)
pgb() { "${PGB[@]}" "$@"; }
pgb -i -q -s "$SCALE" >/dev/null 2>&1

set_mode() { # off | interval
	if [ "$1" = off ]; then
		rdb_psql b "ALTER SYSTEM SET rustydb.ash_enabled = off"
	else
		rdb_psql b "ALTER SYSTEM RESET rustydb.ash_enabled"
		rdb_psql b "ALTER SYSTEM SET rustydb.ash_sampling_interval = '$1'"
	fi
	rdb_psql b "SELECT pg_reload_conf()" >/dev/null
	local want
	if [ "$1" = off ]; then want="f"; else want="t $(echo "$1" | sed -E 's/ms$//; s/^([0-9]+)s$/\1000/')"; fi
	for _ in $(seq 1 100); do
		[ "$(rdb_psql b "SELECT CASE WHEN enabled THEN 't ' || sampling_interval_ms ELSE 'f' END FROM rustydb.ash_info")" = "$want" ] && return 0
		sleep 0.1
	done
	echo "mode $1 not picked up by the sampler" >&2
	exit 1
}

# Server CPU ticks (user + system) so far: the postmaster, its exited
# children (the psql backends of set_mode, reaped) and its live children
# (pgbench's backends, the sampler, checkpointer ...), and committed
# transactions of the database: per window, CPU per transaction.
server_cpu_txn() {
	local pm t c
	pm=$(rdb_node_pid b)
	t=$(awk '{print $14 + $15 + $16 + $17}' "/proc/$pm/stat")
	for c in $(pgrep -P "$pm"); do
		t=$((t + $(awk '{print $14 + $15}' "/proc/$c/stat" 2>/dev/null || echo 0)))
	done
	echo "$t $(rdb_psql b "SELECT xact_commit FROM pg_stat_database WHERE datname = 'postgres'")"
}

# CPU seconds (user + system) the sampler process has used so far
worker_cpu() {
	local pid
	pid=$(rdb_psql b "SELECT worker_pid FROM rustydb.ash_info")
	awk -v hz="$(getconf CLK_TCK)" '{print ($14 + $15) / hz}' "/proc/$pid/stat"
}

ON_MODES=(1s 100ms 10ms)
# the window schedule: off m1 off m2 off m3 per cycle (m1..m3 rotated), then a closing off
SCHEDULE=()
for c in $(seq 1 "$CYCLES"); do
	for k in 0 1 2; do SCHEDULE+=("$c off" "$c ${ON_MODES[$(((c + k) % 3))]}"); done
done
SCHEDULE+=("$CYCLES off")
# pgbench runs until the schedule is done (then it is stopped): -T only bounds it
TOTAL=$((${#SCHEDULE[@]} * (WINDOW + 5) + 30))
echo "# rustydb ASH overhead: pgbench scale $SCALE, 2 clients, one continuous run per workload,"
echo "# $CYCLES cycles of off/on windows ($WINDOW s each; each on window between two off windows), $(nproc) cores"
RESULTS=()
for wl in $WORKLOADS; do
	flag=""
	[ "$wl" = select-only ] && flag="-S"
	set_mode off
	: >"$WORK/switches"
	: >"$WORK/cpu"
	: >"$WORK/cputxn"
	"${PGB[@]}" $flag -n -c 2 -j 2 -T "$TOTAL" -P 1 --progress-timestamp >/dev/null 2>"$WORK/progress" &
	pgpid=$!
	sleep 1
	for entry in "${SCHEDULE[@]}"; do
		read -r c m <<<"$entry"
		set_mode "$m"
		echo "$(date +%s.%N) $c $m" >>"$WORK/switches"
		c0=$(worker_cpu)
		sleep 1
		read -r k0 x0 <<<"$(server_cpu_txn)"
		sleep "$((WINDOW - 1))"
		read -r k1 x1 <<<"$(server_cpu_txn)"
		echo "$m $(echo "$(worker_cpu) - $c0" | bc -l)" >>"$WORK/cpu"
		echo "$m $((k1 - k0)) $((x1 - x0))" >>"$WORK/cputxn"
	done
	kill -TERM "$pgpid" 2>/dev/null || true
	wait "$pgpid" || true
	# progress lines: "progress: <epoch> s, <tps> tps, ..." covering the second before <epoch>
	RESULTS+=("$(python3 - "$wl" "$WORK/switches" "$WORK/progress" "$WORK/cpu" "$WINDOW" "$WORK/cputxn" <<'PY'
import sys, statistics as st
wl, swf, prf, cpuf, window, ctf = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], float(sys.argv[5]), sys.argv[6]
# server CPU ticks per committed transaction of each window (index as in switches)
ct = [int(k) / max(int(x), 1) for m, k, x in (l.split() for l in open(ctf) if l.strip())]
sw = [(float(t), int(c), m) for t, c, m in (l.split() for l in open(swf) if l.strip())]
win = {}  # window index -> [tps]
for l in open(prf):
    if not l.startswith('progress:'):
        continue
    parts = l.split()
    end, tps = float(parts[1]), float(parts[3])
    begin = end - 1.0
    # the window containing [begin, end], skipping its first second
    for i, (t, c, m) in enumerate(sw):
        nxt = sw[i + 1][0] if i + 1 < len(sw) else t + window
        if begin >= t + 1.0 and end <= nxt:
            win.setdefault(i, []).append(tps)
            break
wmean = {i: st.mean(v) for i, v in win.items()}
cpu = {}
windows = {}
for l in open(cpuf):
    m, v = l.split()
    cpu[m] = cpu.get(m, 0.0) + float(v)
    windows[m] = windows.get(m, 0) + 1
off_all = [x for i, v in win.items() if sw[i][2] == 'off' for x in v]
base = st.mean(off_all)
secs = len(off_all)
print(f"{wl:<12} {'off':<7} {base:10.1f} {secs:5d} {1.0:8.3f} {1.0:8.3f} {0.0:8.3f} "
      f"{100.0 * cpu.get('off', 0.0) / (windows.get('off', 1) * window):9.3f}% {1.0:8.3f} {0.0:8.3f}")
for m in ['1s', '100ms', '10ms']:
    allv = [x for i, v in win.items() if sw[i][2] == m for x in v]
    # each on window against the mean of the off windows before and after it
    rs = [wmean[i] / ((wmean[i - 1] + wmean[i + 1]) / 2) for i in wmean
          if sw[i][2] == m and i - 1 in wmean and i + 1 in wmean]
    hw = 1.96 * st.stdev(rs) / len(rs) ** 0.5 if len(rs) > 1 else float('nan')
    share = 100.0 * cpu.get(m, 0.0) / (windows.get(m, 1) * window)
    # CPU per transaction: (mean of the off windows around it) / the on window
    cr = [((ct[i - 1] + ct[i + 1]) / 2) / ct[i] for i in range(1, len(ct) - 1) if sw[i][2] == m]
    chw = 1.96 * st.stdev(cr) / len(cr) ** 0.5 if len(cr) > 1 else float('nan')
    print(f"{wl:<12} {m:<7} {st.mean(allv):10.1f} {len(allv):5d} {st.mean(rs):8.3f} {st.median(rs):8.3f} {hw:8.3f} {share:9.3f}% {st.mean(cr):8.3f} {chw:8.3f}")
PY
)")
done
echo
printf '%-12s %-7s %10s %5s %8s %8s %8s %10s %8s %8s\n' workload ash mean_tps secs ratio med_win ci95_hw sampler_cpu cpu_ratio cpu_ci95
for r in "${RESULTS[@]}"; do echo "$r"; done
echo "# ratio: mean over the mode's windows of (window TPS / mean TPS of the off windows around it);"
echo "# med_win: their median; ci95_hw: 95% half-width of their mean; sampler_cpu: sampler CPU time"
echo "# as a share of one core; cpu_ratio: mean over the mode's windows of (server CPU per"
echo "# transaction of the off windows around it / that of the window), sampler included;"
echo "# cpu_ci95: its 95% half-width"

# ---- sampler cost per sample
echo
set_mode 10ms
echo "SELECT pg_sleep(5);" >"$WORK/active.sql"
printf '\\sleep 5 s\n' >"$WORK/idle.sql"
cost_during() { # script clients -> "us_per_sample sessions_per_sample"
	local before after
	# pgbench opens its connections one after another (hundreds take seconds on
	# 2 cores): measure only once every client is connected, then stop it
	"${PGB[@]}" -n -c "$2" -j 2 -T 120 -f "$1" >/dev/null 2>&1 &
	local pid=$!
	for _ in $(seq 1 600); do
		[ "$(rdb_psql b "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND application_name = 'pgbench'")" -ge "$2" ] && break
		sleep 0.1
	done
	sleep 1
	before=$(rdb_psql b "SELECT avg_sample_us * samples_taken, samples_taken FROM rustydb.ash_info" -F ' ')
	sleep 3
	after=$(rdb_psql b "SELECT avg_sample_us * samples_taken, samples_taken, sessions_last_sample FROM rustydb.ash_info" -F ' ')
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" || true
	read -r us0 n0 <<<"$before"
	read -r us1 n1 s1 <<<"$after"
	printf '%.1f %s' "$(echo "($us1 - $us0) / ($n1 - $n0)" | bc -l)" "$s1"
}
echo "# sampler cost per sample at 10 ms (share of one core = us_per_sample / 10000)"
printf '%-12s %-8s %16s %18s\n' connections state us_per_sample sessions_sampled
for n in $CONNS; do
	for state in active idle; do
		read -r us s <<<"$(cost_during "$WORK/$state.sql" "$n")"
		printf '%-12s %-8s %16s %18s\n' "$n" "$state" "$us" "$s"
	done
done

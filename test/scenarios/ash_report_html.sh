#!/usr/bin/env bash
# rustydb.ash_report_html renders in a real browser: headless Chromium
# (Debian's chromium package, installed here when missing) takes a
# screenshot of the page, and the screenshot's pixels show the stacked
# average-active-sessions chart: bars in the CPU colour and in the Timeout
# (pg_sleep) colour. A report over an empty range draws no bars. The
# workload runs until the sampler has sampled it, not for a fixed time.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

if ! command -v chromium >/dev/null 2>&1; then
	SUDO=""
	[ "$(id -u)" -ne 0 ] && SUDO=sudo
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq >/dev/null
	$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

rdb_node_init ash_html
rdb_node_conf ash_html "rustydb.ash_sampling_interval = 50ms"
rdb_node_start ash_html
rdb_psql ash_html "CREATE EXTENSION rustydb"

# two sleeping sessions and one on CPU, held until the sampler has taken 60
# samples of the three (3 s at 50 ms on an idle machine; longer when the
# machine is loaded, never fewer samples)
rdb_psql ash_html "CREATE TABLE released ()"
rdb_psql ash_html "SELECT pg_sleep(600) /* sleeper */" >/dev/null 2>&1 &
rdb_psql ash_html "SELECT pg_sleep(600) /* sleeper */" >/dev/null 2>&1 &
rdb_wait_for "the two sleepers to be in pg_sleep" 120 rdb_psql_true ash_html \
	"SELECT count(*) = 2 FROM pg_stat_activity WHERE query LIKE '%/* sleeper */' AND wait_event = 'PgSleep'"
start=$(rdb_psql ash_html "SELECT clock_timestamp()")
rdb_psql ash_html "DO \$\$ BEGIN WHILE NOT EXISTS (SELECT FROM released) LOOP END LOOP; END \$\$ /* on cpu */" >/dev/null &
cpu=$!
rdb_wait_for "60 samples of the three sessions" 300 rdb_psql_true ash_html \
	"SELECT count(*) >= 60 FROM (SELECT sample_id FROM rustydb.active_session_history
		WHERE sample_time > '$start' AND (query LIKE '%/* sleeper */' OR query LIKE '%/* on cpu */')
		GROUP BY sample_id HAVING count(*) = 3) s"
rdb_psql ash_html "INSERT INTO released DEFAULT VALUES"
wait "$cpu"
rdb_psql ash_html "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE query LIKE '%/* sleeper */'" >/dev/null
wait || true
rdb_psql ash_html "SELECT rustydb.ash_report_html('$start', now())" >"$RDB_WORK/report.html"
rdb_psql ash_html "SELECT rustydb.ash_report_html('2000-01-01', '2000-01-02')" >"$RDB_WORK/empty.html"
chmod a+r "$RDB_WORK"/*.html

browse() { # browse OUTPUT-OPTION FILE
	local profile
	profile=$(mktemp -d /tmp/rustydb-chromium.XXXXXX)
	timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
		--no-first-run --disable-component-update --disable-sync --user-data-dir="$profile" \
		--window-size=1000,800 --hide-scrollbars "$1" "file://$2" 2>/dev/null
	rm -rf "$profile"
}

# pixels of colour RRGGBB in a PNG screenshot (8-bit RGB/RGBA, any filter)
count_pixels() {
	python3 - "$1" "$2" <<'PY'
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
want = bytes.fromhex(sys.argv[2])
assert data[:8] == b'\x89PNG\r\n\x1a\n'
pos, idat = 8, b''
while pos < len(data):
    n, kind = struct.unpack('>I4s', data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b'IHDR':
        w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
    elif kind == b'IDAT':
        idat += body
    pos += 12 + n
assert depth == 8 and ctype in (2, 6), (depth, ctype)
bpp = 3 if ctype == 2 else 4
raw = zlib.decompress(idat)
stride = w * bpp
prev = bytearray(stride)
count = 0
i = 0
for y in range(h):
    f = raw[i]; line = bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
    for x in range(stride):
        a = line[x - bpp] if x >= bpp else 0
        b = prev[x]
        c = prev[x - bpp] if x >= bpp else 0
        if f == 1: line[x] = (line[x] + a) & 255
        elif f == 2: line[x] = (line[x] + b) & 255
        elif f == 3: line[x] = (line[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    for x in range(0, stride, bpp):
        if line[x:x + 3] == want:
            count += 1
    prev = line
print(count)
PY
}

(cd "$RDB_WORK" && browse --screenshot="$RDB_WORK/report.png" "$RDB_WORK/report.html" >/dev/null)
rdb_ok "Chromium rendered the report to a PNG" test -s "$RDB_WORK/report.png"
cpu=$(count_pixels "$RDB_WORK/report.png" 2e9e44)
sleep_px=$(count_pixels "$RDB_WORK/report.png" e377c2)
echo "# chart pixels: CPU $cpu, Timeout $sleep_px"
rdb_ok "the chart draws CPU bars ($cpu pixels)" test "$cpu" -gt 2000
rdb_ok "the chart draws Timeout (pg_sleep) bars ($sleep_px pixels)" test "$sleep_px" -gt 2000
dom=$(browse --dump-dom "$RDB_WORK/report.html")
rdb_ok "the browser's DOM has the SVG chart with stacked bars" \
	bash -c "grep -q '<svg id=\"aas-chart\"' <<<'$(grep -o '<svg id="aas-chart"' <<<"$dom" | head -1)' && test $(grep -o 'class="aas"' <<<"$dom" | wc -l) -gt 10"
rdb_ok "and the report's tables" grep -q "Top Blocking Sessions" <<<"$dom"

(cd "$RDB_WORK" && browse --screenshot="$RDB_WORK/empty.png" "$RDB_WORK/empty.html" >/dev/null)
rdb_is "an empty range draws no bars" \
	"$(count_pixels "$RDB_WORK/empty.png" 2e9e44) $(count_pixels "$RDB_WORK/empty.png" e377c2)" "0 0"

rdb_summary

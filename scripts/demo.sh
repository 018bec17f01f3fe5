#!/usr/bin/env bash
# rustydb's main job, from a fresh Debian 12 machine (as root or with sudo):
# install dependencies, build, install into the system's PostgreSQL 15,
# start a throwaway cluster with rustydb preloaded (data, socket and log
# under /tmp/rustydb-demo, its own port), create the extension, run the
# demo scripts in scripts/demo.d/, and leave the cluster running.
#
#   bash scripts/demo.sh         (re)create and start the demo cluster
#   bash scripts/demo.sh stop    stop it and remove /tmp/rustydb-demo
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DEMO=/tmp/rustydb-demo
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo

stop_demo() {
	if [ -f "$DEMO/demo/data/postmaster.pid" ]; then
		if [ "$(id -u)" -eq 0 ]; then
			runuser -u postgres -- /usr/lib/postgresql/15/bin/pg_ctl -D "$DEMO/demo/data" -m fast -w stop >/dev/null || true
		else
			/usr/lib/postgresql/15/bin/pg_ctl -D "$DEMO/demo/data" -m fast -w stop >/dev/null || true
		fi
	fi
	$SUDO rm -rf "$DEMO"
}

if [ "${1:-}" = "stop" ]; then
	stop_demo
	echo "rustydb demo cluster stopped and removed"
	exit 0
fi

echo "==> installing dependencies"
bash scripts/install-deps.sh
echo "==> building rustydb"
make -s -j"$(nproc)"
echo "==> installing rustydb into PostgreSQL 15"
$SUDO make -s install >/dev/null

echo "==> starting a throwaway cluster in $DEMO"
stop_demo
mkdir -p "$DEMO"
RDB_WORK=$DEMO
RDB_BINDIR=/usr/lib/postgresql/15/bin
. test/lib/cluster.sh
rdb_node_init demo
rdb_node_conf demo "compute_query_id = on"
# a master key for transparent data encryption, outside the data directory
rdb_as_server bash scripts/rustydb-keyring create "$DEMO/demo/keyring" >/dev/null
rdb_node_conf demo "rustydb.keyring_file = '$DEMO/demo/keyring'"
rdb_node_start demo
rdb_psql demo "CREATE EXTENSION rustydb"

PSQL=("$RDB_BINDIR/psql" -X -h "$(rdb_sock demo)" -p "$(rdb_port demo)" -U postgres -d postgres)
for f in scripts/demo.d/*.sql; do
	echo
	echo "==> demo: $(sed -n '1s/^-- *//p' "$f")"
	"${PSQL[@]}" -v ON_ERROR_STOP=1 -e -f "$f"
done

cat <<MSG

rustydb is running (PostgreSQL 15, rustydb preloaded, data in $DEMO/demo/data).
  connect:  ${PSQL[*]}
  stop:     bash $ROOT/scripts/demo.sh stop
MSG

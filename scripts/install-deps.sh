#!/usr/bin/env bash
# Install the Debian packages rustydb's build and tests need. Idempotent and quiet:
# packages already present are left alone, and apt runs only when something is missing.
set -euo pipefail

PKGS=(
	postgresql-15
	postgresql-server-dev-15
	postgresql-15-pgtap
	libpq-dev
	libsodium-dev
	g++
	make
	clang-format
	libtap-parser-sourcehandler-pgtap-perl
	perl
	procps
	bzip2
	gdb
	postgresql-15-repack
	postgresql-15-partman
	# logical decoding scenarios: am_decode.sh compares wal2json's and
	# decoderbufs' output, am_pglogical.sh replicates with pglogical
	postgresql-15-wal2json
	postgresql-15-decoderbufs
	postgresql-15-pglogical
	# PostgreSQL's own TAP suites (subscription suite with rustydb as default AM)
	libipc-run-perl
	# the assert-enabled PostgreSQL 15 built from source (scripts/cassert-build.sh),
	# the copy of the tree rustydb is built in for it, and the fuzzer run against it
	pkg-config
	zlib1g-dev
	libreadline-dev
	libssl-dev
	libicu-dev
	liblz4-dev
	libzstd-dev
	libxml2-dev
	rsync
	sqlsmith
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi

missing=()
for p in "${PKGS[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("$p")
	fi
done

if [ "${#missing[@]}" -gt 0 ]; then
	echo "install-deps: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	# Debian's postgresql-common would create and start a 'main' cluster on port 5432;
	# rustydb's scripts run their own throwaway clusters, so skip it.
	$SUDO mkdir -p /etc/postgresql-common/createcluster.d
	echo "create_main_cluster = false" | $SUDO tee /etc/postgresql-common/createcluster.d/rustydb-no-main.conf >/dev/null
	$SUDO apt-get update -qq >/dev/null
	$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Debian's PostgreSQL 15 must be the one on the system.
pg_config_bin=/usr/lib/postgresql/15/bin/pg_config
if [ ! -x "$pg_config_bin" ]; then
	echo "install-deps: $pg_config_bin missing after install" >&2
	exit 1
fi

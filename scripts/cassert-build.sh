#!/usr/bin/env bash
# An assert-enabled PostgreSQL 15 (--enable-cassert --enable-debug) built from
# the source the test command already fetches (test/lib/pgsrc.sh), with the
# contrib modules rustydb's tests load, installed into a cache that later runs
# reuse. Prints the pg_config of the build on stdout; progress goes to stderr.
#
#   bash scripts/cassert-build.sh
#
#   RDB_CASSERT_CACHE  the cache (default: build/pg-cassert of the checkout).
#                      Each build lives in a directory named after the source
#                      version and a hash of the configure options, contrib
#                      list and this script's build recipe: a change to any
#                      of them builds anew (the old build is removed after
#                      the new one is complete), an unchanged one is reused.
#   RDB_PGSRC_CACHE    where the source is kept (test/lib/pgsrc.sh)
#
# Builds are serialised by a lock on the cache, so several checkouts sharing
# one cache build it once. The build time is kept in BUILD/build-seconds.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

CACHE=${RDB_CASSERT_CACHE:-$ROOT/build/pg-cassert}
# bump when the recipe below changes in a way the options do not show
RECIPE=1
CONFIGURE_OPTS=(
	--enable-cassert --enable-debug
	--with-openssl --with-icu --with-lz4 --with-zstd --with-libxml
	--with-system-tzdata=/usr/share/zoneinfo
)
# contrib modules the tests use (sql/, test/), and the page-level tools a
# debugging session on an assert-enabled server wants; pgtap, pg_repack and
# pg_partman are Debian builds for the production server and are not here
CONTRIB=(amcheck dblink pageinspect pg_buffercache pg_freespacemap pg_prewarm pg_surgery
	pg_visibility pg_walinspect pgcrypto pgstattuple postgres_fdw test_decoding)

bash scripts/install-deps.sh >&2
# shellcheck source=../test/lib/pgsrc.sh
. test/lib/pgsrc.sh
SRC=$(rdb_pgsrc)
VERSION=$(basename "$SRC")
KEY=$(printf '%s\n' "$VERSION" "$RECIPE" "${CONFIGURE_OPTS[@]}" "${CONTRIB[@]}" | md5sum | cut -c1-12)
DEST=$CACHE/${VERSION#postgresql-}-$KEY

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9

if [ ! -f "$DEST/.complete" ]; then
	echo "cassert-build: building $VERSION with ${CONFIGURE_OPTS[*]} into $DEST" >&2
	start=$SECONDS
	rm -rf "$DEST" "$DEST.build"
	mkdir -p "$DEST.build"
	(
		cd "$DEST.build"
		# a VPATH build: the unpacked source stays clean for pgsuite.sh
		"$SRC/configure" --prefix="$DEST" "${CONFIGURE_OPTS[@]}" >configure.log 2>&1 ||
			{
				tail -n 30 configure.log
				exit 1
			}
		make -s -j"$(nproc)" >make.log 2>&1 || {
			tail -n 50 make.log
			exit 1
		}
		make -s install >>make.log 2>&1
		for c in "${CONTRIB[@]}"; do
			make -s -C "contrib/$c" -j"$(nproc)" install >>make.log 2>&1 || {
				tail -n 50 make.log
				exit 1
			}
		done
	) >&2
	rm -rf "$DEST.build"
	echo $((SECONDS - start)) >"$DEST/build-seconds"
	printf '%s\n' "$VERSION" "${CONFIGURE_OPTS[@]}" "${CONTRIB[@]}" >"$DEST/build-options"
	touch "$DEST/.complete"
	echo "cassert-build: built in $(cat "$DEST/build-seconds") s" >&2
	# earlier builds (other source versions or options) are stale
	for old in "$CACHE"/*/; do
		old=${old%/}
		[ "$old" = "$DEST" ] || rm -rf "$old"
	done
fi
chmod -R a+rX "$DEST"
echo "$DEST/bin/pg_config"

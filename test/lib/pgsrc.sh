#!/usr/bin/env bash
# PostgreSQL 15's source, fetched through Debian's deb-src: the same minor
# release as the installed server when Debian still has its source package,
# else the newest one apt can fetch. Shared by scripts/pgsuite.sh (the test
# suites, regress.so) and scripts/cassert-build.sh (the assert-enabled server).
# Source this file; it defines rdb_pgsrc.
#
#   RDB_PGSRC_CACHE   where the source is kept (default: build/pgsrc of the
#                     checkout); later runs reuse it
#
# rdb_pgsrc: fetch and unpack the source once; prints its directory.

rdb_pgsrc() {
	local cache=${RDB_PGSRC_CACHE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/build/pgsrc}
	mkdir -p "$cache"
	if [ -f "$cache/current" ] && [ -d "$(cat "$cache/current")" ]; then
		cat "$cache/current"
		return 0
	fi
	if ! grep -rqs '^Types: deb-src' /etc/apt/sources.list.d/ /etc/apt/sources.list 2>/dev/null &&
		! grep -qs '^deb-src' /etc/apt/sources.list 2>/dev/null; then
		sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
			>/etc/apt/sources.list.d/rustydb-deb-src.sources
		apt-get update -qq >/dev/null
	fi
	command -v bzip2 >/dev/null || apt-get install -y -qq bzip2 >/dev/null
	local installed versions v upstream tarball
	installed=$(dpkg-query -W -f='${Version}' postgresql-15)
	# The installed version first; security updates may lack a source
	# package, so fall back to the newest source apt can fetch.
	versions="$installed $(apt-cache showsrc postgresql-15 | sed -n 's/^Version: //p' | sort -rV)"
	for v in $versions; do
		(cd "$cache" && apt-get source --download-only -qq "postgresql-15=$v" >/dev/null 2>&1) || continue
		upstream=${v%%-*}
		tarball=$(ls "$cache"/postgresql-15_"$upstream".orig.tar.* 2>/dev/null | head -n1)
		[ -n "$tarball" ] || continue
		tar xf "$tarball" -C "$cache"
		echo "$cache/postgresql-$upstream" >"$cache/current"
		echo "pgsrc: PostgreSQL source $upstream (server is $installed)" >&2
		cat "$cache/current"
		return 0
	done
	echo "pgsrc: could not fetch the postgresql-15 source package" >&2
	return 1
}

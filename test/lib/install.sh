#!/usr/bin/env bash
# rdb_temp_install DEST [SRC_ROOT] [PG_CONFIG]: a private copy of a
# PostgreSQL 15 server (the system's, or the one PG_CONFIG names, e.g. the
# assert-enabled build of scripts/cassert-build.sh) with the rustydb built in
# SRC_ROOT installed into it (like PostgreSQL's own "make check"
# tmp_install). PostgreSQL finds its share and lib directories relative to
# its binaries, so servers started from the copy's bin directory load this
# rustydb, not whatever is installed system-wide, and several checkouts can
# be tested at once. Prints the bin directory.
#
# rdb_build_tree SRC_ROOT PG_CONFIG: builds rustydb for the server PG_CONFIG
# names; prints the tree it was built in, for rdb_temp_install. For the
# system's server that is SRC_ROOT itself; for any other server it is a copy
# of SRC_ROOT under SRC_ROOT/build/ (PGXS builds in the source tree, and the
# objects for one server must not replace those for another), kept in step
# with SRC_ROOT by rsync, so rebuilds are incremental.

RDB_SYSTEM_PG_CONFIG=/usr/lib/postgresql/15/bin/pg_config

rdb_temp_install() {
	local dest=$1 src_root=${2:-.} pg_config=${3:-$RDB_SYSTEM_PG_CONFIG} bindir base dir
	bindir=$("$pg_config" --bindir)
	base=$(dirname "$bindir")
	rm -rf "${dest:?}$base"
	mkdir -p "$(dirname "$dest$base")"
	cp -a "$base" "$dest$base"
	# the share and lib directories, where they are not under the bin
	# directory's parent (Debian: /usr/share/postgresql/15)
	for dir in "$("$pg_config" --sharedir)" "$("$pg_config" --pkglibdir)"; do
		case "$dir/" in "$base"/*) continue ;; esac
		rm -rf "${dest:?}$dir"
		mkdir -p "$(dirname "$dest$dir")"
		cp -a "$dir" "$dest$dir"
	done
	make -C "$src_root" -s install PG_CONFIG="$pg_config" DESTDIR="$dest" >/dev/null || return 1
	chmod -R a+rX "$dest"
	echo "$dest$bindir"
}

rdb_build_tree() {
	local src_root=$1 pg_config=$2 tree
	if [ "$pg_config" = "$RDB_SYSTEM_PG_CONFIG" ]; then
		tree=$src_root
	else
		tree=$src_root/build/tree-$(echo "$pg_config" | md5sum | cut -c1-12)
		mkdir -p "$tree"
		# the sources only: another server's objects and the build directory
		# stay out (excluded files on the copy's side are kept, so its own
		# objects survive)
		rsync -a --delete --exclude=/build/ --exclude=/.git --exclude='*.o' --exclude='*.d' \
			--exclude='*.so' --exclude='*.bc' --exclude='/sql/rustydb--*.sql' \
			--exclude=/results/ --exclude=/log/ --exclude=/tmp_check/ \
			"$src_root"/ "$tree"/
	fi
	make -C "$tree" -s -j"$(nproc)" PG_CONFIG="$pg_config" WERROR="${WERROR:-}" >&2 || return 1
	echo "$tree"
}

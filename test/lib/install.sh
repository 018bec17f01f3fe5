#!/usr/bin/env bash
# rdb_temp_install DEST: a private copy of the system's PostgreSQL 15 server
# with the freshly built rustydb installed into it (like PostgreSQL's own
# "make check" tmp_install). PostgreSQL finds its share and lib directories
# relative to its binaries, so servers started from DEST/usr/lib/postgresql/
# 15/bin load this rustydb, not whatever is installed system-wide, and
# several checkouts can be tested at once. Prints the bin directory.
rdb_temp_install() {
	local dest=$1 src_root=${2:-.}
	mkdir -p "$dest/usr/lib/postgresql" "$dest/usr/share/postgresql"
	rm -rf "$dest/usr/lib/postgresql/15" "$dest/usr/share/postgresql/15"
	cp -a /usr/lib/postgresql/15 "$dest/usr/lib/postgresql/15"
	cp -a /usr/share/postgresql/15 "$dest/usr/share/postgresql/15"
	make -C "$src_root" -s install DESTDIR="$dest" >/dev/null
	chmod -R a+rX "$dest"
	echo "$dest/usr/lib/postgresql/15/bin"
}

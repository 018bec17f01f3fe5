#!/usr/bin/env bash
# docs/settings.md cannot drift from the settings registry: every setting
# the server defines is documented with the registry's type, default,
# bounds, unit and context, and every documented setting exists.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
. "$ROOT/test/lib/cluster.sh"
trap rdb_cleanup EXIT

rdb_node_init docs
rdb_node_start docs
rdb_psql docs "CREATE EXTENSION rustydb"

registry=$(rdb_psql docs "SELECT name, type, coalesce(default_value, ''), coalesce(min, '-'),
	coalesce(max, '-'), coalesce(unit, '-'), context FROM rustydb.settings ORDER BY name" -F '|')
# Table rows whose first cell is a `rustydb.*` name.
documented=$({ grep -E '^\| *`rustydb\.' "$ROOT/docs/settings.md" || true; } |
	awk -F'|' '{for (i = 2; i <= 8; i++) { gsub(/^ +| +$/, "", $i); gsub(/`/, "", $i) }
		d = ($4 == "-" || $4 == "\"\"") ? "" : $4
		print $2 "|" $3 "|" d "|" $5 "|" $6 "|" $7 "|" $8}' | sort)

rdb_is "docs/settings.md lists exactly the registry's settings" \
	"$(echo "$documented" | cut -d'|' -f1 | sed '/^$/d')" \
	"$(echo "$registry" | cut -d'|' -f1 | sed '/^$/d')"
rdb_is "docs/settings.md shows each setting's type, default, bounds, unit and context" \
	"$documented" "$registry"

rdb_summary

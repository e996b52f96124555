#!/usr/bin/env bash
# Make the pgvector extension available to the system PostgreSQL 15 (used by tests/test_pgvector.py).
# 1. the Debian package where the configured archives have it (PGDG, Debian >= trixie);
# 2. otherwise (Debian bookworm has no pgvector package) build Debian's own pgvector source package
#    against postgresql-server-dev-15. The source is fetched with apt-get from Debian's archive using a
#    private, temporary sources list: the system's apt configuration is not changed.
set -euo pipefail
PGV=${PGV:-15}
CONTROL=/usr/share/postgresql/$PGV/extension/vector.control
if [ -f "$CONTROL" ]; then echo "pgvector: present ($CONTROL)"; exit 0; fi
command -v apt-get >/dev/null || { echo "pgvector: apt-get not found; install pgvector for PostgreSQL $PGV by hand" >&2; exit 1; }
apt-get update -q
if apt-get install -y -q "postgresql-$PGV-pgvector"; then exit 0; fi
echo "pgvector: no postgresql-$PGV-pgvector package here; building Debian's pgvector source for PostgreSQL $PGV"
apt-get install -y -q "postgresql-server-dev-$PGV" make gcc dpkg-dev
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lists/partial" "$tmp/cache/archives/partial"
echo "deb-src http://deb.debian.org/debian trixie main" > "$tmp/sources.list"
APT=(-o "Dir::Etc::SourceList=$tmp/sources.list" -o Dir::Etc::SourceParts=/dev/null
     -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache")
apt-get -q "${APT[@]}" update
(cd "$tmp" && apt-get -q "${APT[@]}" source pgvector)
src=$(find "$tmp" -maxdepth 1 -type d -name 'pgvector-*' | head -1)
make -C "$src" PG_CONFIG="/usr/lib/postgresql/$PGV/bin/pg_config" OPTFLAGS="" -j2
make -C "$src" PG_CONFIG="/usr/lib/postgresql/$PGV/bin/pg_config" install
test -f "$CONTROL" && echo "pgvector: installed ($CONTROL)"

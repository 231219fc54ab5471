#!/usr/bin/env bash
# Audit appends through PostgreSQL: group commit vs one INSERT transaction per record (PostgresAppendRunner).
# Starts a throwaway PostgreSQL cluster in a temp folder (Unix socket only, default durability: fsync and
# synchronous_commit on), runs the runner against it, stops and removes the cluster.
# Usage (from the repository root): benchmarks/results/Audit/run-postgres.sh [seconds=10] [writers=3] [appenders=64]
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "PostgreSQL not installed (.ci/steps/20-postgresql.sh installs it)" >&2; exit 2; }
dir=$(mktemp -d /tmp/har-pg-bench-XXXXXX)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
cleanup() { as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 60 stop >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
as_pg "$bin/initdb" -D "$dir/data" -U har -A trust -E UTF8 --locale=C --no-sync >/dev/null
as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 90 -o "-k $dir -p 5432 -c listen_addresses='' -c max_connections=200" start >/dev/null
"$bin/postgres" --version
dotnet run -c Release --project benchmarks/Har.Benchmarks -- pg-append "Host=$dir;Port=5432;Username=har;Database=postgres" "${1:-10}" "${2:-3}" "${3:-64}"

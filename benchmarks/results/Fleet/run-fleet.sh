#!/usr/bin/env bash
# The fleet's figures on a throwaway PostgreSQL cluster (temp folder, Unix socket only, default durability: fsync and
# synchronous_commit on), then the cluster is stopped and removed.
#   append  [seconds=10] [processes=3] [appenders=64]   audit appends/s from separate processes: group commit vs one INSERT transaction per record
#   control [changes=60] [failovers=5] [replicas=3]     state change reaching every replica (p99) and leader failover, with real replica processes
#   drift-store [devices=1000] [rounds=5]               per-device drift state in PostgreSQL (save, WAL, restore) against the state file
# Usage (from the repository root): benchmarks/results/Fleet/run-fleet.sh append 10 3 64
set -euo pipefail
mode=${1:?usage: run-fleet.sh append|control|drift-store [arguments]}
shift
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -x "$bin/initdb" ] || { echo "PostgreSQL not installed (.ci/steps/20-postgresql.sh installs it)" >&2; exit 2; }
dir=$(mktemp -d /tmp/har-pg-fleet-bench-XXXXXX)
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
cleanup() { as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 60 stop >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
as_pg "$bin/initdb" -D "$dir/data" -U har -A trust -E UTF8 --locale=C --no-sync >/dev/null
as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 90 -o "-k $dir -p 5432 -c listen_addresses='' -c max_connections=300" start >/dev/null
"$bin/postgres" --version
nproc; uptime
dotnet build -c Release benchmarks/Har.Benchmarks >/dev/null
[ "$mode" = drift-store ] || mode="fleet-$mode"
dotnet run -c Release --no-build --project benchmarks/Har.Benchmarks -- "$mode" "Host=$dir;Port=5432;Username=har;Database=postgres" "$@"

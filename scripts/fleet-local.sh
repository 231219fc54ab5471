#!/usr/bin/env bash
# Har on a fleet, on one machine, without containers: a PostgreSQL cluster in a temporary folder (initdb/pg_ctl,
# Unix socket only), N Har.Service replicas on loopback ports sharing it (ConnectionStrings__Har), and nginx in front
# routing each device's stream to one replica by consistent hashing of its stream id. Prints the URLs and an API key,
# runs until Ctrl-C (or SIGTERM), then stops everything it started and removes the folder. See docs/fleet.md.
#
#   scripts/fleet-local.sh                      # 3 replicas, nginx on http://127.0.0.1:5080, replicas on 5081..5083
#   scripts/fleet-local.sh -n 5 -p 6080         # 5 replicas, nginx on 6080, replicas on 6081..6085
#   scripts/fleet-local.sh -- Har:Service:RolloutAnalysisInterval=00:00:10   # settings passed to every replica
#
# Options:
#   -n, --replicas N     number of service replicas (default 3)
#   -p, --port P         nginx port on 127.0.0.1 (default 5080); replica i listens on P+i
#   --dir DIR            the fleet's folder (created; must be empty or absent). Default: a new temporary folder
#   --keep               keep the folder at exit (PostgreSQL data, replica logs, nginx access log)
#   --service-dll PATH   run this Har.Service.dll instead of building samples/Har.Service (Release)
#   --api-key KEY        the operator+auditor key every replica accepts (default: generated; at least 24 characters)
#   -- KEY=VALUE ...     configuration settings given to every replica (as --KEY=VALUE)
#
# Requires: the .NET SDK, PostgreSQL server binaries (initdb, pg_ctl; Debian: apt-get install postgresql), nginx
# (Debian: apt-get install nginx), curl or python3. Run as root, PostgreSQL runs as the 'postgres' user.
# Once every replica is ready it prints "fleet ready" and writes DIR/fleet.env (shell syntax: URLs, process ids,
# the connection string, the API key, each replica's restart script DIR/replica-<i>.sh).
set -euo pipefail

replicas=3
port=5080
dir=""
keep=0
service_dll=""
api_key=""
settings=()
while [ $# -gt 0 ]; do
  case "$1" in
    -n|--replicas) replicas="$2"; shift 2 ;;
    -p|--port) port="$2"; shift 2 ;;
    --dir) dir="$2"; shift 2 ;;
    --keep) keep=1; shift ;;
    --service-dll) service_dll="$2"; shift 2 ;;
    --api-key) api_key="$2"; shift 2 ;;
    --) shift; settings=("$@"); break ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "fleet-local: unknown argument '$1'; see --help" >&2; exit 2 ;;
  esac
done
case "$replicas" in ''|*[!0-9]*) echo "fleet-local: --replicas must be a number from 1 to 32, got '$replicas'" >&2; exit 2 ;; esac
case "$port" in ''|*[!0-9]*) echo "fleet-local: --port must be a number, got '$port'" >&2; exit 2 ;; esac
if [ "$replicas" -lt 1 ] || [ "$replicas" -gt 32 ] || [ $((port + replicas)) -gt 65535 ] || [ "$port" -lt 1024 ]; then
  echo "fleet-local: --replicas must be 1..32 and --port 1024..$((65535 - replicas)) (got $replicas replicas on $port)" >&2; exit 2
fi
if [ -n "$api_key" ] && [ ${#api_key} -lt 24 ]; then
  echo "fleet-local: --api-key must have at least 24 characters (got ${#api_key})" >&2; exit 2
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
log() { echo "fleet-local: $*" >&2; }
die() { log "$*"; exit 1; }

# --- tools -----------------------------------------------------------------------------------------------------------
pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
  pg_bin=$(dirname "$(readlink -f "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")")
fi
[ -x "$pg_bin/initdb" ] && [ -x "$pg_bin/pg_ctl" ] || die "PostgreSQL server binaries (initdb, pg_ctl) not found; install them (Debian: apt-get install postgresql, or .ci/steps/20-postgresql.sh)."
nginx_bin=$(command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)
[ -n "$nginx_bin" ] || die "nginx not found; install it (Debian: apt-get install nginx, or .ci/steps/25-nginx.sh)."
if command -v curl >/dev/null 2>&1; then
  http_status() { curl -s -o /dev/null -m 3 -w '%{http_code}' "$1" || true; }
elif command -v python3 >/dev/null 2>&1; then
  http_status() {
    python3 - "$1" <<'PY' || true
import sys, urllib.request, urllib.error
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=3).status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
PY
  }
else
  die "curl or python3 is needed to wait for readiness."
fi

# As root, PostgreSQL must run as an unprivileged user (it refuses root): the Debian package's 'postgres'.
as_pg=()
if [ "$(id -u)" = 0 ]; then
  id -u postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' user for the server (.ci/steps/20-postgresql.sh creates it)."
  as_pg=(runuser -u postgres --)
fi

if [ -z "$service_dll" ]; then
  log "building samples/Har.Service (Release)"
  dotnet build "$repo/samples/Har.Service/Har.Service.csproj" -c Release -nologo -v quiet >&2 || die "the build of samples/Har.Service failed"
  service_dll="$repo/samples/Har.Service/bin/Release/net10.0/Har.Service.dll"
fi
[ -f "$service_dll" ] || die "no Har.Service.dll at '$service_dll'"
service_dll=$(readlink -f "$service_dll")

# --- folder and cleanup ----------------------------------------------------------------------------------------------
if [ -z "$dir" ]; then
  dir=$(mktemp -d "${TMPDIR:-/tmp}/har-fleet.XXXXXX")
else
  mkdir -p "$dir"
  [ -z "$(ls -A "$dir")" ] || die "--dir '$dir' is not empty"
  dir=$(cd "$dir" && pwd)
fi
chmod 755 "$dir" # the postgres user and nginx's workers must reach their subfolders
if [ ${#as_pg[@]} -gt 0 ] && ! runuser -u postgres -- test -x "$dir"; then
  rmdir "$dir" 2>/dev/null || true
  die "the postgres user cannot reach '$dir' (a parent folder is not searchable by others); choose a --dir under a folder it can traverse, e.g. under /tmp"
fi

pids=()
sleeper=""
pg_started=0
cleaned=0
cleanup() {
  [ "$cleaned" = 1 ] && return
  cleaned=1
  trap - INT TERM EXIT
  log "stopping"
  [ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null || true
  # Replicas first (SIGTERM: they flush the audit log and sign a last checkpoint), bounded; then SIGKILL.
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for _ in $(seq 1 150); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  if [ -s "$dir/nginx/nginx.pid" ]; then
    pid=$(cat "$dir/nginx/nginx.pid")
    kill -QUIT "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  fi
  if [ "$pg_started" = 1 ]; then
    "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$dir/pg/data" -m fast -w -t 60 stop >/dev/null 2>&1 \
      || "${as_pg[@]}" "$pg_bin/pg_ctl" -D "$dir/pg/data" -m immediate -w -t 30 stop >/dev/null 2>&1 || true
  fi
  if [ "$keep" = 1 ]; then log "kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- PostgreSQL: a throwaway cluster on a Unix socket in the folder ---------------------------------------------------
mkdir -p "$dir/pg"
[ ${#as_pg[@]} -eq 0 ] || chown postgres "$dir/pg"
log "PostgreSQL: initdb in $dir/pg/data"
"${as_pg[@]}" "$pg_bin/initdb" -D "$dir/pg/data" -U har -A trust -E UTF8 --locale=C --no-sync >"$dir/pg/initdb.log" 2>&1 \
  || { cat "$dir/pg/initdb.log" >&2; die "initdb failed"; }
"${as_pg[@]}" "$pg_bin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/postgres.log" -w -t 90 \
  -o "-k $dir/pg -p 5432 -c listen_addresses='' -c max_connections=300" start >/dev/null \
  || { cat "$dir/pg/postgres.log" >&2; die "pg_ctl start failed"; }
pg_started=1
"$pg_bin/psql" -h "$dir/pg" -p 5432 -U har -d postgres -qAt -c "CREATE DATABASE har" >/dev/null || die "CREATE DATABASE har failed"
connection="Host=$dir/pg;Port=5432;Database=har;Username=har"

# --- replicas --------------------------------------------------------------------------------------------------------
[ -n "$api_key" ] || api_key=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
# One signing key for the whole fleet (the checkpoints of one log): every replica's key folder is this one, the
# first replica to start generates the key and the others use it (the service publishes it without overwriting).
mkdir -p "$dir/keys"
chmod 700 "$dir/keys"
for i in $(seq 1 "$replicas"); do
  data="$dir/replica-$i"
  mkdir -p "$data"
  ln -s ../keys "$data/keys"
  {
    echo "#!/usr/bin/env bash"
    echo "# Starts replica $i of the fleet in $dir (written by scripts/fleet-local.sh; run it again to restart a killed replica)."
    echo "cd $(printf '%q' "$(dirname "$service_dll")")"
    printf 'export ConnectionStrings__Har=%q DOTNET_ENVIRONMENT=Production\n' "$connection"
    printf 'export Har__Service__DataDirectory=%q\n' "$data"
    printf 'export Har__Service__ApiKeys__0__Name=fleet-admin Har__Service__ApiKeys__0__Key=%q\n' "$api_key"
    echo "export Har__Service__ApiKeys__0__Roles__0=operator Har__Service__ApiKeys__0__Roles__1=auditor"
    printf 'exec dotnet %q --urls http://127.0.0.1:%d' "$service_dll" $((port + i))
    for s in "${settings[@]}"; do printf ' %q' "--$s"; done
    printf ' >>%q 2>&1\n' "$dir/replica-$i.log"
  } >"$dir/replica-$i.sh"
  chmod 700 "$dir/replica-$i.sh"
  bash "$dir/replica-$i.sh" &
  pids+=($!)
done

# --- nginx: consistent hash on the stream id -------------------------------------------------------------------------
mkdir -p "$dir/nginx"
user_line=""
if [ "$(id -u)" = 0 ]; then
  if id -u www-data >/dev/null 2>&1; then user_line="user www-data www-data;"; else user_line="user nobody nogroup;"; fi
fi
{
  echo "# Written by scripts/fleet-local.sh. The routing rule is the one of docs/fleet.md and deploy/k8s (upstream-hash-by)."
  echo "$user_line"
  echo "worker_processes 1;"
  echo "pid $dir/nginx/nginx.pid;"
  echo "error_log $dir/nginx/error.log warn;"
  echo "events { worker_connections 1024; }"
  echo "http {"
  echo "  client_body_temp_path $dir/nginx/body; proxy_temp_path $dir/nginx/proxy;"
  echo "  fastcgi_temp_path $dir/nginx/fastcgi; uwsgi_temp_path $dir/nginx/uwsgi; scgi_temp_path $dir/nginx/scgi;"
  echo "  # The stream id: from the path of a stream append (/v1/streams/{id}/samples, as sent, not decoded), else the"
  echo "  # X-Stream-Id header (whole windows, /v1/predict). Requests without one (operations, audit reads) have an empty"
  echo "  # key, which nginx's hash balancer spreads round-robin."
  echo "  map \$request_uri \$stream_id {"
  echo "    \"~^/v1/streams/(?<sid>[^/?]+)/\" \$sid;"
  echo "    default \$http_x_stream_id;"
  echo "  }"
  echo "  log_format fleet '\$time_iso8601 \$request_method \$uri \$status stream=\$stream_id replica=\$upstream_addr \$request_time';"
  echo "  access_log $dir/nginx/access.log fleet;"
  echo "  upstream har_replicas {"
  echo "    hash \$stream_id consistent;"
  for i in $(seq 1 "$replicas"); do
    echo "    server 127.0.0.1:$((port + i)) max_fails=1 fail_timeout=5s;"
  done
  echo "    keepalive 32;"
  echo "  }"
  echo "  server {"
  echo "    listen 127.0.0.1:$port;"
  echo "    client_max_body_size 16m;"
  echo "    location / {"
  echo "      proxy_pass http://har_replicas;"
  echo "      proxy_http_version 1.1;"
  echo "      proxy_set_header Connection \"\";"
  echo "      proxy_set_header Host \$host;"
  echo "      proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;"
  echo "      proxy_connect_timeout 2s;"
  echo "      proxy_read_timeout 120s;"
  echo "      # A replica that refuses the connection is skipped (its streams move to the next one on the ring); a request"
  echo "      # that reached a replica is never sent twice (POSTs are not idempotent)."
  echo "      proxy_next_upstream error timeout;"
  echo "      add_header X-Har-Replica \$upstream_addr always;"
  echo "    }"
  echo "  }"
  echo "}"
} >"$dir/nginx/nginx.conf"
"$nginx_bin" -e "$dir/nginx/error.log" -p "$dir/nginx" -c "$dir/nginx/nginx.conf" \
  || { cat "$dir/nginx/error.log" >&2 2>/dev/null; die "nginx did not start (port $port taken?)"; }
for _ in $(seq 1 50); do [ -s "$dir/nginx/nginx.pid" ] && break; sleep 0.1; done

# --- wait until every replica is ready (bounded) ---------------------------------------------------------------------
deadline=$((SECONDS + 180))
for i in $(seq 1 "$replicas"); do
  until [ "$(http_status "http://127.0.0.1:$((port + i))/ready")" = 200 ]; do
    kill -0 "${pids[$((i - 1))]}" 2>/dev/null || { tail -n 40 "$dir/replica-$i.log" >&2; die "replica $i exited before it was ready (log above: $dir/replica-$i.log)"; }
    [ $SECONDS -lt $deadline ] || { tail -n 40 "$dir/replica-$i.log" >&2; die "replica $i was not ready within 180 s"; }
    sleep 0.5
  done
done
[ "$(http_status "http://127.0.0.1:$port/ready")" = 200 ] || die "nginx on port $port does not reach the replicas (see $dir/nginx/error.log)"

{
  printf 'HAR_FLEET_DIR=%q\n' "$dir"
  printf 'HAR_FLEET_URL=%q\n' "http://127.0.0.1:$port"
  printf 'HAR_FLEET_API_KEY=%q\n' "$api_key"
  printf 'HAR_FLEET_CONNECTION=%q\n' "$connection"
  printf 'HAR_FLEET_PG_BIN=%q\n' "$pg_bin"
  printf 'HAR_FLEET_PG_DATA=%q\n' "$dir/pg/data"
  printf 'HAR_FLEET_PG_USER=%q\n' "$([ ${#as_pg[@]} -eq 0 ] || echo postgres)"
  printf 'HAR_FLEET_NGINX_PID=%q\n' "$(cat "$dir/nginx/nginx.pid")"
  printf 'HAR_FLEET_REPLICAS=%q\n' "$replicas"
  for i in $(seq 1 "$replicas"); do
    printf 'HAR_FLEET_REPLICA_%d_URL=%q\n' "$i" "http://127.0.0.1:$((port + i))"
    printf 'HAR_FLEET_REPLICA_%d_PID=%q\n' "$i" "${pids[$((i - 1))]}"
    printf 'HAR_FLEET_REPLICA_%d_START=%q\n' "$i" "$dir/replica-$i.sh"
  done
} >"$dir/fleet.env.tmp"
mv "$dir/fleet.env.tmp" "$dir/fleet.env"

cat <<EOF
fleet ready: $replicas replicas on PostgreSQL behind nginx (consistent hash on the stream id)
  entry point    http://127.0.0.1:$port            (nginx; the X-Har-Replica response header names the replica)
$(for i in $(seq 1 "$replicas"); do echo "  replica $i      http://127.0.0.1:$((port + i))            (pid ${pids[$((i - 1))]}, log $dir/replica-$i.log)"; done)
  PostgreSQL     $connection
  API key        $api_key   (operator + auditor: X-Api-Key header)
  folder         $dir   (fleet.env, nginx/access.log; removed at exit unless --keep)
try:
  curl -s -XPOST -H 'Content-Type: application/json' -d '{"samples":[0,0,1,0,0,0]}' http://127.0.0.1:$port/v1/streams/device-1/samples
  curl -s -H 'X-Api-Key: $api_key' 'http://127.0.0.1:$port/v1/audit/events?page_size=5'
  ConnectionStrings__Har='$connection' dotnet samples/Har.Cli/bin/Release/net10.0/har.dll audit verify
Ctrl-C stops everything.
EOF

# Runs until interrupted; a replica that dies (or is killed) is not restarted: run DIR/replica-<i>.sh to bring it back.
while true; do
  sleep 3600 &
  sleeper=$!
  wait "$sleeper" || true
done

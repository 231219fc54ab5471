#!/bin/bash
# docs/hardening.md point 51, finding 2: the time of the first GET /v1/rollouts after the audit log grew by N operator
# events (2 entries each; a 429 is the operator's rate limit, and adds nothing). Starts its own service on PORT.
# usage: rollouts_catchup.sh SERVICE_DLL MODELS_DIR PORT N
set -e
DLL=$1; MODELS=$2; PORT=$3; N=$4
here=$(cd "$(dirname "$0")" && pwd)
d=$(mktemp -d)
Har__Service__DataDirectory=$d/data Har__ModelsDirectory=$MODELS nohup dotnet "$DLL" --urls "http://127.0.0.1:$PORT" > "$d/service.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$d"' EXIT
for _ in $(seq 1 60); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/ready" && break; sleep 1; done
key=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[0]['key'])" "$d/data/api-keys.json")
curl -s -o /dev/null -w "GET /v1/rollouts before: %{time_total} s\n" "http://127.0.0.1:$PORT/v1/rollouts"
python3 "$here/bulk_events.py" "$key" "$N" 6 "$PORT"
curl -s "http://127.0.0.1:$PORT/metrics" | grep -m1 "^har_audit_log_entries"
for i in 1 2 3; do curl -s -o /dev/null -w "GET /v1/rollouts after ($i): %{time_total} s\n" "http://127.0.0.1:$PORT/v1/rollouts"; done

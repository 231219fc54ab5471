#!/bin/sh
# run.sh SERVICE_DLL MODELS PORT SECONDS RATE OUT [NAME=VALUE ...]
# Starts the service on PORT with a fresh data folder (removed at the end) and the given environment (e.g.
# DOTNET_gcServer=1), runs soak.py at RATE requests/s for SECONDS, samples memory every 30 s while it runs and for
# IDLE_SECONDS (default 420: past the 5-minute stream idle timeout, so the mass eviction and its compacting
# collection are in the samples) after it, then stops the service. Writes OUT/samples.tsv, OUT/load.jsonl and
# OUT/service.log. SOAK_OPS=1 adds soak.py's operator (a canary rollout every 3 minutes, aborted, then a backup).
set -e
DLL=$1; MODELS=$2; PORT=$3; SECS=$4; RATE=$5; OUT=$6; shift 6
HERE=$(cd "$(dirname "$0")" && pwd)
IDLE=${IDLE_SECONDS:-420}
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
DATA=$(mktemp -d)
env "$@" Har__Service__DataDirectory="$DATA" Har__ModelsDirectory="$MODELS" dotnet "$DLL" --urls "http://127.0.0.1:$PORT" > "$OUT/service.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null; rm -rf "$DATA"' EXIT
for i in $(seq 1 60); do curl -sf "http://127.0.0.1:$PORT/ready" > /dev/null && break; sleep 1; done
KEY=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[0]['key'])" "$DATA/api-keys.json")
"$HERE/sample.sh" $PID "$PORT" $((SECS + IDLE)) 30 > "$OUT/samples.tsv" &
SAMPLER=$!
python3 "$HERE/soak.py" "$PORT" "$KEY" "$SECS" "$RATE" ${SOAK_OPS:+ops} > "$OUT/load.jsonl"
wait $SAMPLER

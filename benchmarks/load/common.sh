# Shared by load.sh and soak.sh: build, models, HAPT bodies, start/stop the service on loopback.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORK=$(mktemp -d -t har-load-XXXXXX)
SERVICE_PID=""
cleanup() {
  if [ -n "$SERVICE_PID" ] && kill -0 "$SERVICE_PID" 2>/dev/null; then kill "$SERVICE_PID"; wait "$SERVICE_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

command -v wrk >/dev/null || { echo "wrk is not installed: apt-get install -y wrk" >&2; exit 2; }
HAPT=${HAR_SHARED:-$ROOT/../shared}/data/uci-hapt
[ -f "$HAPT/hapt_raw_50hz.csv.gz" ] || { echo "the shared HAPT data is missing (../shared/data/uci-hapt beside the repository, or HAR_SHARED)" >&2; exit 2; }

build() {
  nice -n 10 dotnet build "$ROOT/samples/Har.Service" -c Release -v q -nologo >/dev/null
  nice -n 10 dotnet build "$ROOT/benchmarks/load/Har.LoadBaseline" -c Release -v q -nologo >/dev/null
  SERVICE_DLL="$ROOT/samples/Har.Service/bin/Release/net10.0/Har.Service.dll"
  BASELINE_DLL="$ROOT/benchmarks/load/Har.LoadBaseline/bin/Release/net10.0/Har.LoadBaseline.dll"
  # The bundled models when the repository has them; the Har.Inference test fixtures otherwise.
  MODELS="$ROOT/samples/Har.Service/bin/Release/net10.0/models"
  if [ "$(ls "$MODELS"/*.onnx 2>/dev/null | wc -l)" -lt 1 ]; then
    MODELS="$WORK/models"; mkdir -p "$MODELS"
    cp "$ROOT/tests/Har.Inference.Tests/Fixtures/tiny-probs-1.0.0.onnx" "$ROOT/tests/Har.Inference.Tests/Fixtures/tiny-logits-1.1.0.onnx" "$MODELS/"
    MODELS_KIND="test fixtures (tiny-probs 1.0.0 champion; the bundled models were not in the repository yet)"
  else
    MODELS_KIND="bundled models"
  fi
}

# make_bodies <windows per request> <count>
make_bodies() {
  dotnet "$BASELINE_DLL" bodies "$MODELS" "$HAPT" "$WORK/bodies" "$1" "$2"
}

start_service() {
  PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  URL="http://127.0.0.1:$PORT"
  # Rate limits far above the offered load: this measures capacity, not the per-client throttle.
  ( cd "$(dirname "$SERVICE_DLL")" && exec dotnet "$SERVICE_DLL" --urls "$URL" \
      --Har:ModelsDirectory="$MODELS" --Har:Service:DataDirectory="$WORK/data" \
      --Har:Service:RateLimitPerSecond=1000000 --Har:Service:RateLimitBurst=10000000 ) >"$WORK/service.log" 2>&1 &
  SERVICE_PID=$!
  for _ in $(seq 1 300); do
    curl -fs "$URL/ready" >/dev/null 2>&1 && return 0
    kill -0 "$SERVICE_PID" 2>/dev/null || { cat "$WORK/service.log" >&2; exit 1; }
    sleep 0.2
  done
  echo "the service was not ready in 60 s" >&2; exit 1
}

machine() {
  echo "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
}

-- wrk script: POST real HAPT test windows to /v1/predict, cycling through the generated bodies.
-- args: <body dir> <body count> <json|octet>  (done() runs in its own Lua state: windows/s is computed by the caller)
local bodies = {}
local next_body = 0
local content_type = "application/json"

function init(args)
  local dir, count, format = args[1], tonumber(args[2]), args[3]
  local ext = "json"
  if format == "octet" then
    ext = "bin"
    content_type = "application/octet-stream"
  end
  for k = 1, count do
    local f = assert(io.open(dir .. "/body-" .. k .. "." .. ext, "rb"))
    bodies[k] = f:read("*a")
    f:close()
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = content_type
end

function request()
  next_body = next_body % #bodies + 1
  return wrk.format(nil, "/v1/predict", nil, bodies[next_body])
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.status + e.timeout
  io.write(string.format("requests=%d\n", summary.requests))
  io.write(string.format("seconds=%.2f\n", seconds))
  io.write(string.format("requests_per_second=%.1f\n", summary.requests / seconds))
  io.write(string.format("p50_ms=%.2f\n", latency:percentile(50) / 1000))
  io.write(string.format("p90_ms=%.2f\n", latency:percentile(90) / 1000))
  io.write(string.format("p99_ms=%.2f\n", latency:percentile(99) / 1000))
  io.write(string.format("max_ms=%.2f\n", latency.max / 1000))
  io.write(string.format("errors=%d (connect %d, read %d, write %d, non-2xx %d, timeout %d)\n", errors, e.connect, e.read, e.write, e.status, e.timeout))
end

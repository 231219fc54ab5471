-- wrk -s predict.lua: POST /v1/predict with 8 whole windows (float32, the bundled models' 200 x 6) under the key in
-- the HAR_KEY environment variable; the body is made once from a fixed pseudo-random sequence.
local key = os.getenv("HAR_KEY")
local windows, values = 8, 8 * 1200
local function f32(x)
  -- little-endian IEEE 754 single of x (finite, normal)
  if x == 0 then return string.char(0, 0, 0, 0) end
  local sign = 0
  if x < 0 then sign = 0x80; x = -x end
  local m, e = math.frexp(x) -- x = m * 2^e, 0.5 <= m < 1
  e = e + 126
  m = math.floor((m * 2 - 1) * 8388608 + 0.5)
  return string.char(m % 256, math.floor(m / 256) % 256, (e % 2) * 128 + math.floor(m / 65536), sign + math.floor(e / 2))
end
local seed, parts = 12345, {}
for i = 1, values do
  seed = (seed * 1103515245 + 12345) % 2147483648
  local u = seed / 2147483648 - 0.5
  parts[i] = f32(((i - 1) % 6 == 2) and (1 + u) or u)
end
wrk.method = "POST"
wrk.body = table.concat(parts)
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["X-Api-Key"] = key
done = function(summary, latency, requests)
  local codes = summary.errors.status
  io.write(string.format("requests %d, non-2xx %d, windows/s %.0f, p50 %.1f ms, p99 %.1f ms\n",
    summary.requests, codes, (summary.requests - codes) * windows / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end

#!/usr/bin/env python3
"""Soak load for Har.Service: many devices streaming 6-axis frames (50 Hz) in chunks of varied size, so the
micro-batcher's batches vary, plus whole-window predictions and a labeller.

usage: soak.py PORT API_KEY SECONDS [RATE] [ops]
  RATE  requests/s in all (default 100). Prints one JSON line of counts every 30 s, and a summary at the end.
  ops   also an operator every 3 minutes: a canary rollout of the registered version that is not current (each one
        loads the candidate's ONNX Runtime session; the model it replaces or the aborted candidate is disposed),
        aborted after 150 s if still in progress, then a backup (POST /v1/backups). API_KEY must be an operator's.

Devices: 1,500 keyed (the given key) and 1,500 anonymous, spread over 10 loopback source addresses
(127.0.0.11-20, 150 streams each: under MaxStreamsPerAnonymousClient and the anonymous window budget).
Mix: 85 % stream appends of 25-700 frames (0-6 windows at the bundled models' stride of 100),
12 % /v1/predict of 1-16 whole windows (half of them with a stream id), and a feedback post every 2 s.
"""
import http.client, json, os, random, socket, struct, sys, threading, time

PORT, KEY, SECONDS = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
RATE = float(sys.argv[4]) if len(sys.argv) > 4 else 100.0
OPS = len(sys.argv) > 5 and sys.argv[5] == 'ops'
THREADS = 10
KEYED, ANON, ANON_ADDRS = 1500, 1500, [f'127.0.0.{i}' for i in range(11, 21)]
WINDOW = 200  # frames per window of the bundled models

rnd = random.Random(42)
# 60 s of plausible 50 Hz frames (gravity on z plus noise), float32, sliced at random frame offsets.
FRAMES = 3000
POOL = struct.pack(f'<{FRAMES * 6}f', *[v for i in range(FRAMES) for v in (
    rnd.gauss(0, 0.3), rnd.gauss(0, 0.3), 1 + rnd.gauss(0, 0.3), rnd.gauss(0, 0.5), rnd.gauss(0, 0.5), rnd.gauss(0, 0.5))])


def frames(n, r):
    start = r.randrange(0, FRAMES - n)
    return POOL[start * 24:(start + n) * 24]


class Conn:
    def __init__(self, src):
        self.src, self.c = src, None

    def request(self, method, path, body, headers):
        for attempt in (0, 1):
            try:
                if self.c is None:
                    self.c = http.client.HTTPConnection('127.0.0.1', PORT, timeout=60, source_address=(self.src, 0))
                self.c.request(method, path, body=body, headers=headers)
                r = self.c.getresponse()
                r.read()
                if r.getheader('Connection', '').lower() == 'close':
                    self.c.close(); self.c = None
                return r.status
            except (OSError, http.client.HTTPException):
                if self.c: self.c.close()
                self.c = None
                if attempt: return 0
        return 0


stats_lock = threading.Lock()
stats = {}
latencies = []
stop_at = time.monotonic() + SECONDS


def count(kind, status, dt):
    with stats_lock:
        k = f'{kind}:{status}'
        stats[k] = stats.get(k, 0) + 1
        latencies.append(dt)


def worker(idx):
    r = random.Random(idx)
    keyed = Conn('127.0.0.1')
    anon = Conn(ANON_ADDRS[idx % len(ANON_ADDRS)])
    # this thread's devices: keyed k-{idx}-*, anonymous a-{addr}-* (every thread on one address shares its streams)
    my_keyed = [f'k-{i}' for i in range(idx, KEYED, THREADS)]
    my_anon = [f'a{idx}-{i}' for i in range(ANON // THREADS)]
    gap = THREADS / RATE
    nxt = time.monotonic()
    while time.monotonic() < stop_at:
        nxt += gap
        t = time.monotonic()
        u = r.random()
        if u < 0.85:
            n = r.randint(25, 700)
            if r.random() < 0.5:
                dev, conn, hdr = r.choice(my_keyed), keyed, {'X-Api-Key': KEY}
            else:
                dev, conn, hdr = r.choice(my_anon), anon, {}
            hdr['Content-Type'] = 'application/octet-stream'
            st = conn.request('POST', f'/v1/streams/{dev}/samples', frames(n, r), hdr)
            count('samples', st, time.monotonic() - t)
        else:
            w = r.randint(1, 16)
            body = b''.join(frames(WINDOW, r) for _ in range(w))
            hdr = {'Content-Type': 'application/octet-stream', 'X-Api-Key': KEY}
            if r.random() < 0.5:
                hdr['X-Stream-Id'] = r.choice(my_keyed)
            st = keyed.request('POST', '/v1/predict', body, hdr)
            count('predict', st, time.monotonic() - t)
        d = nxt - time.monotonic()
        if d > 0:
            time.sleep(d)
        elif d < -5:
            nxt = time.monotonic()  # behind by more than 5 s: do not burst to catch up


def labeller():
    r = random.Random(7)
    c = Conn('127.0.0.1')
    acts = ['WALKING', 'SITTING', 'STANDING', 'LAYING', 'WALKING_UPSTAIRS', 'WALKING_DOWNSTAIRS']
    while time.monotonic() < stop_at:
        t = time.monotonic()
        labels = [{'stream_id': f'k-{r.randrange(KEYED)}', 'activity': r.choice(acts),
                   'start_frame': 0, 'end_frame': 100000} for _ in range(5)]
        st = c.request('POST', '/v1/feedback', json.dumps({'labels': labels}),
                       {'Content-Type': 'application/json', 'X-Api-Key': KEY})
        count('feedback', st, time.monotonic() - t)
        time.sleep(2)


def operator():
    hdr = {'Content-Type': 'application/json', 'X-Api-Key': KEY}

    def call(method, path, body=None):
        # a connection per call: the 150 s between calls outlast Kestrel's keep-alive timeout (2 minutes)
        c = http.client.HTTPConnection('127.0.0.1', PORT, timeout=120)
        try:
            c.request(method, path, body=body, headers=hdr)
            r = c.getresponse()
            return r.status, r.read()
        except (OSError, http.client.HTTPException):
            return 0, b''
        finally:
            c.close()

    while time.monotonic() < stop_at - 170:
        t = time.monotonic()
        st, body = call('GET', '/v1/models')
        models = json.loads(body) if st == 200 else {}
        others = [v['version'] for v in models.get('versions', []) if v['version'] in ('1.0.0', '1.1.0') and v['version'] != models.get('current')]
        if others:
            st, _ = call('POST', '/v1/rollouts', json.dumps({'candidate': others[0], 'strategy': 'canary', 'reason': 'memory soak'}))
            count('rollout', st, time.monotonic() - t)
        time.sleep(150)
        st, _ = call('POST', '/v1/rollouts/current/abort', json.dumps({'reason': 'memory soak'}))
        count('abort', st, 0)
        t = time.monotonic()
        st, _ = call('POST', '/v1/backups', '{}')
        count('backup', st, time.monotonic() - t)
        time.sleep(max(0.0, 180 - (time.monotonic() - t) - 150))


threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(THREADS)]
threads.append(threading.Thread(target=labeller, daemon=True))
if OPS:
    threads.append(threading.Thread(target=operator, daemon=True))
for th in threads: th.start()
start = time.monotonic(); last = start; last_total = 0
while any(th.is_alive() for th in threads):
    time.sleep(1)
    now = time.monotonic()
    if now - last >= 30 or not any(th.is_alive() for th in threads):
        with stats_lock:
            total = sum(stats.values()); snap = dict(stats)
            lat = sorted(latencies); latencies.clear()
        p = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))] * 1000, 1) if lat else None
        print(json.dumps({'t': round(now - start), 'rps': round((total - last_total) / (now - last), 1),
                          'p50_ms': p(0.5), 'p99_ms': p(0.99), 'counts': snap}), flush=True)
        last, last_total = now, total
print(json.dumps({'done': True, 'seconds': round(time.monotonic() - start), 'requests': sum(stats.values()),
                  'rps': round(sum(stats.values()) / (time.monotonic() - start), 1), 'counts': stats}), flush=True)

#!/usr/bin/env python3
"""Hostile slow-body sender. Many connections from many source addresses send prediction bodies slowly.
usage: slow.py --addrs 1 --per-addr 20 --mode cl|chunked --cl 4194304 --rate 5000 --stall-after -1 --duration 90 [--key K] [--reconnect] [--path /v1/predict]
Prints a summary of the statuses received, when, and how much of its body each connection had sent then."""
import argparse, asyncio, socket, time, json, collections, os
ap = argparse.ArgumentParser()
ap.add_argument('--addrs', type=int, default=1); ap.add_argument('--first', type=int, default=10)
ap.add_argument('--per-addr', type=int, default=20)
ap.add_argument('--mode', default='cl'); ap.add_argument('--cl', type=int, default=4194304)
ap.add_argument('--rate', type=float, default=5000, help='bytes/s per connection')
ap.add_argument('--tick', type=float, default=1.0)
ap.add_argument('--stall-after', type=int, default=-1, help='stop sending after this many body bytes, keep open')
ap.add_argument('--send-total', type=int, default=-1, help='body bytes to send in all (default: cl)')
ap.add_argument('--duration', type=float, default=90)
ap.add_argument('--key'); ap.add_argument('--reconnect', action='store_true')
ap.add_argument('--path', default='/v1/predict'); ap.add_argument('--ctype', default='application/octet-stream')
ap.add_argument('--ramp', type=float, default=0.0, help='seconds between connection starts')
a = ap.parse_args()
HOST, PORT = '127.0.0.1', int(os.environ.get('HAR_PORT', '5580'))
T0 = time.monotonic()
results = []  # (t_response, status, sent_bytes, closed_after)
counts = collections.Counter()
open_now = 0; peak_open = 0

async def one(src):
    global open_now, peak_open
    s = socket.socket(); s.setblocking(False); s.bind((src, 0))
    loop = asyncio.get_running_loop()
    try:
        await asyncio.wait_for(loop.sock_connect(s, (HOST, PORT)), 10)
    except Exception as e:
        counts['connect-fail'] += 1; s.close(); return
    r, w = await asyncio.open_connection(sock=s)
    open_now += 1; peak_open = max(peak_open, open_now)
    h = f"POST {a.path} HTTP/1.1\r\nHost: x\r\nContent-Type: {a.ctype}\r\n"
    if a.mode == 'cl': h += f"Content-Length: {a.cl}\r\n"
    else: h += "Transfer-Encoding: chunked\r\n"
    if a.key: h += f"X-Api-Key: {a.key}\r\n"
    h += "\r\n"
    sent = 0; t_start = time.monotonic()
    total = a.send_total if a.send_total >= 0 else (a.cl if a.mode == 'cl' else 1 << 62)
    status = None; resp = b''
    async def reader():
        nonlocal resp
        try:
            while True:
                c = await r.read(65536)
                if not c: return 'eof'
                resp += c
        except Exception as e:
            return 'reset'
    first = {}
    async def reader2():
        nonlocal resp
        try:
            while True:
                c = await r.read(65536)
                if not c: return 'eof'
                if not resp: first['t'] = time.monotonic() - t_start; first['sent'] = sent
                resp += c
        except Exception as e:
            if resp and 'close_t' not in first: first['close_t'] = time.monotonic() - t_start
            return 'reset'
    rt = asyncio.ensure_future(reader2())
    try:
        w.write(h.encode()); await w.drain()
        per = max(1, int(a.rate * a.tick))
        while not rt.done() and time.monotonic() - T0 < a.duration:
            if sent < total and (a.stall_after < 0 or sent < a.stall_after):
                n = min(per, total - sent)
                if a.stall_after >= 0: n = min(n, a.stall_after - sent)
                data = b'\0' * n
                w.write((b'%x\r\n' % n + data + b'\r\n') if a.mode == 'chunked' else data)
                await w.drain(); sent += n
            await asyncio.wait([rt], timeout=a.tick)
    except Exception as e:
        pass
    how = None
    if rt.done(): how = rt.result()
    else:
        # response may have arrived but connection kept open
        how = 'open'
    if resp.startswith(b'HTTP/'):
        status = int(resp.split(b' ', 2)[1])
    t = time.monotonic() - t_start
    results.append({'t': round(first.get('t', t), 2), 'sent_at_resp': first.get('sent'), 'status': status, 'sent': sent, 'conn': how, 'body': resp.split(b'\r\n\r\n', 1)[-1][:300].decode('latin1') if status else ''})
    counts[f'{status}/{how}'] += 1
    rt.cancel(); w.close(); open_now -= 1

async def worker(src, idx):
    await asyncio.sleep(idx * a.ramp)
    while time.monotonic() - T0 < a.duration:
        await one(src)
        if not a.reconnect: break

async def main():
    tasks = []
    i = 0
    for k in range(a.addrs):
        src = f'127.0.0.{a.first + k}'
        for j in range(a.per_addr):
            tasks.append(worker(src, i)); i += 1
    await asyncio.gather(*tasks)
asyncio.run(main())
summary = {'counts': dict(counts), 'peak_open': peak_open, 'n': len(results)}
bystatus = collections.defaultdict(list)
for r in results: bystatus[r['status']].append(r)
for st, rs in bystatus.items():
    ts = sorted(x['t'] for x in rs); ss = sorted(x['sent'] for x in rs); sa = sorted((x['sent_at_resp'] or 0) for x in rs)
    summary[str(st)] = {'n': len(rs), 't_resp_min': ts[0], 't_resp_max': ts[-1], 'sent_at_resp_min': sa[0], 'sent_at_resp_max': sa[-1], 'sent_total_max': ss[-1], 'example': rs[0]['body'][:250]}
print(json.dumps(summary, indent=1))

#!/usr/bin/env python3
"""Grows a service's audit log: N operator events through POST /v1/audit/events from T threads (keep-alive).
usage: bulk_events.py KEY N T [PORT]   (each accepted call is two entries: the event and its http.operation record)"""
import http.client, json, sys, threading, time

KEY, N, T = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
PORT = int(sys.argv[4]) if len(sys.argv) > 4 else 5580
count, codes, lock = [0], {}, threading.Lock()


def worker():
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    while True:
        with lock:
            if count[0] >= N:
                return
            count[0] += 1
            i = count[0]
        body = json.dumps({"event_type": "ops.bulk", "entity_type": "node", "entity_id": f"node-{i % 50}", "severity": "info",
                           "action_details": {"i": i, "note": "history growth"}})
        c.request("POST", "/v1/audit/events", body=body, headers={"X-Api-Key": KEY, "Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        with lock:
            codes[r.status] = codes.get(r.status, 0) + 1


t = time.time()
threads = [threading.Thread(target=worker) for _ in range(T)]
[x.start() for x in threads]
[x.join() for x in threads]
print(f"{N} calls in {time.time() - t:.1f} s, statuses {codes}")

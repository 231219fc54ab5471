#!/usr/bin/env python3
"""Legitimate client: N sequential POST /v1/predict (one window, float32 octet-stream) from a source address; prints latencies."""
import socket, struct, sys, time, statistics, json, os
HOST, PORT = '127.0.0.1', int(os.environ.get('HAR_PORT', '5580'))
def predict(src, key=None, timeout=30):
    body = struct.pack('<1200f', *([0.0, 0.0, 1.0, 0.0, 0.0, 0.0] * 200))
    hdr = f"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: {len(body)}\r\nConnection: close\r\n"
    if key: hdr += f"X-Api-Key: {key}\r\n"
    hdr += "\r\n"
    t = time.monotonic()
    s = socket.socket(); s.settimeout(timeout); s.bind((src, 0)); s.connect((HOST, PORT))
    s.sendall(hdr.encode() + body)
    data = b''
    try:
        while True:
            c = s.recv(65536)
            if not c: break
            data += c
    except socket.timeout:
        return None, timeout, b'timeout'
    finally:
        s.close()
    dt = time.monotonic() - t
    status = int(data.split(b' ', 2)[1]) if data.startswith(b'HTTP/') else 0
    return status, dt, data
if __name__ == '__main__':
    src = sys.argv[1] if len(sys.argv) > 1 else '127.0.0.200'
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    key = sys.argv[3] if len(sys.argv) > 3 and sys.argv[3] != '-' else None
    gap = float(sys.argv[4]) if len(sys.argv) > 4 else 0.0
    lat, codes = [], {}
    for i in range(n):
        st, dt, data = predict(src, key)
        lat.append(dt); codes[st] = codes.get(st, 0) + 1
        if st != 200 and codes[st] <= 2:
            print('non-200', st, data[-300:], flush=True)
        if gap: time.sleep(gap)
    print(json.dumps({'src': src, 'n': n, 'codes': codes, 'median_ms': round(statistics.median(lat)*1000, 1), 'max_ms': round(max(lat)*1000, 1)}), flush=True)

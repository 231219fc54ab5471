#!/usr/bin/env python3
"""Edge cases of prediction bodies, one raw connection each. usage: edges.py CASE  (cases below)"""
import socket, sys, time, struct, threading, os
HOST, PORT = '127.0.0.1', int(os.environ.get('HAR_PORT', '5580'))
WIN = struct.pack('<1200f', *([0.0, 0.0, 1.0, 0.0, 0.0, 0.0] * 200))
def conn(src='127.0.0.150'):
    s = socket.socket(); s.bind((src, 0)); s.connect((HOST, PORT)); s.settimeout(90); return s
def hdr(cl=None, chunked=False, path='/v1/predict', extra=''):
    h = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
    h += "Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {cl}\r\n"
    return (h + extra + "\r\n").encode()
def read_all(s, t0, limit=90):
    """Read until EOF/reset/timeout; report first-byte time, the status lines, how the connection ended."""
    data = b''; first = None; end = 'timeout'
    s.settimeout(limit)
    try:
        while True:
            c = s.recv(65536)
            if not c: end = 'eof'; break
            if first is None: first = time.monotonic() - t0
            data += c
    except socket.timeout: end = 'timeout(open)'
    except ConnectionResetError: end = 'reset'
    statuses = [l.decode() for l in data.split(b'\r\n') if l.startswith(b'HTTP/1.1')]
    return {'first_byte_s': None if first is None else round(first, 2), 'end_s': round(time.monotonic() - t0, 2), 'end': end, 'statuses': statuses,
            'problem_json': b'application/problem+json' in data, 'conn_close_hdr': b'Connection: close' in data, 'tail': data[-160:].decode('latin1')}
def case(name):
    t0 = time.monotonic(); s = conn()
    if name == 'cl-5mib-headers-only':      # declared over MaxRequestBodyBytes, nothing sent
        s.sendall(hdr(5 * 1024 * 1024)); return read_all(s, t0, 15)
    if name == 'cl-1gib-headers-only':
        s.sendall(hdr(1 << 30)); return read_all(s, t0, 15)
    if name == 'cl-5mib-full':              # declared over, all sent fast
        s.sendall(hdr(5 * 1024 * 1024))
        sent = 0
        try:
            while sent < 5 * 1024 * 1024: s.sendall(b'\0' * 65536); sent += 65536
        except Exception as e: pass
        r = read_all(s, t0, 15); r['sent'] = sent; return r
    if name == 'chunked-over-4mib-fast':    # chunked, 6 MiB fast
        s.sendall(hdr(chunked=True)); sent = 0
        try:
            while sent < 6 * 1024 * 1024: s.sendall(b'10000\r\n' + b'\0' * 65536 + b'\r\n'); sent += 65536
        except Exception as e: pass
        r = read_all(s, t0, 15); r['sent'] = sent; return r
    if name == 'cl-smaller-than-sent':      # declares one window, sends two (the second as garbage after the body)
        s.sendall(hdr(len(WIN)) + WIN + WIN); return read_all(s, t0, 15)
    if name == 'cl-larger-stall-small':     # declares 10 windows, sends 5 fast, then holds the connection open
        s.sendall(hdr(10 * len(WIN)) + WIN * 5); return read_all(s, t0, 80)
    if name == 'cl-larger-stall-1mib':      # declares 4 MiB-1, sends 1 MiB fast, then holds open (rate stays above the minimum)
        s.sendall(hdr(4194303) + b'\0' * (1 << 20)); return read_all(s, t0, 80)
    if name == 'chunked-never-ends':        # chunked at 4.5 KB/s, never the last chunk
        s.sendall(hdr(chunked=True)); res = {}
        def rd(): res.update(read_all(s, t0, 80))
        th = threading.Thread(target=rd); th.start()
        while th.is_alive() and time.monotonic() - t0 < 80:
            try: s.sendall(b'1194\r\n' + b'\0' * 4500 + b'\r\n')
            except Exception: break
            th.join(1.0)
        th.join(); return res
    if name == 'chunked-stall-mid':         # chunked, 1 MiB fast then nothing (not the last chunk)
        s.sendall(hdr(chunked=True) + b'100000\r\n' + b'\0' * (1 << 20) + b'\r\n'); return read_all(s, t0, 80)
    if name == 'pipelined-after-408':       # a 408 by the deadline, then does the server still read a pipelined request? (it should close)
        pass
    raise SystemExit('unknown case')
if __name__ == '__main__':
    for n in sys.argv[1:]:
        print(n, case(n), flush=True)

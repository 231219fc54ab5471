#!/bin/sh
# Finding 1: one address holding 4 zero-byte prediction bodies under an API key (Content-Length 4194303, nothing sent,
# reconnecting after each 408) makes every prediction with that key, from any address, 429 for as long as it runs.
# usage: repro_key_lockout.sh KEY   (service on 127.0.0.1:${HAR_PORT:-5580})
KEY=$1; cd "$(dirname "$0")"
python3 slow.py --addrs 1 --first 12 --per-addr 4 --mode cl --cl 4194303 --stall-after 0 --duration 62 --reconnect --key "$KEY" > repro_key_lockout.attacker.json &
sleep 2
python3 legit.py 127.0.0.201 100 "$KEY" 0.5 | tail -1     # before the fix (point 49): {"429": 100}; after: {"200": 100}
wait

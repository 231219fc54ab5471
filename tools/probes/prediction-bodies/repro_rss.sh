#!/bin/sh
# Finding 4: rounds of 128 bodies (32 addresses x 4), each Content-Length 4194303 with all but its last byte sent, held to the
# 60 s deadline. VmRSS after each round (before the fix, point 49: 225 MB -> 755 -> 1075 (a chunked round) -> 1256 -> 1348 -> 1342 MB; after: peaks 842-1078 MB over eight rounds).
# usage: repro_rss.sh SERVICE_PID ROUNDS
P=$1; cd "$(dirname "$0")"
for r in $(seq 1 ${2:-3}); do
  python3 slow.py --addrs 32 --first 20 --per-addr 4 --mode cl --cl 4194303 --stall-after 4194302 --rate 2000000 --tick 0.5 --duration 64 > /dev/null &
  ./rss.sh $P 66
done

#!/bin/sh
# rss.sh PID SECONDS: VmRSS peak over the period, sampled every 0.5 s
P=$1; N=$(( $2 * 2 )); peak=0
for i in $(seq 1 $N); do r=$(awk '/VmRSS/{print $2}' /proc/$P/status); [ "$r" -gt "$peak" ] && peak=$r; sleep 0.5; done
echo "rss_peak_kB=$peak rss_now_kB=$(awk '/VmRSS/{print $2}' /proc/$P/status)"

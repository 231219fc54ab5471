#!/bin/sh
# sample.sh PID PORT SECONDS [INTERVAL]: one line every INTERVAL seconds (default 30), in MiB:
#   t rss anon file | gc_committed gc_heap frag total_memory | anon_minus_committed | gen2 collections
# rss/anon/file: VmRSS, RssAnon, RssFile of /proc/PID/status. From GET /metrics (System.Runtime meter, as of the
# last collection): gc_committed = dotnet_gc_last_collection_memory_committed_size, gc_heap = the sum of
# dotnet_gc_last_collection_heap_size over the generations, frag = the sum of their fragmentation;
# total_memory = dotnet_total_memory_bytes (GC.GetTotalMemory). anon_minus_committed estimates the native memory
# (ONNX Runtime, the runtime itself, thread stacks, malloc arenas) resident besides the managed heap.
P=$1; PORT=$2; N=$3; I=${4:-30}
printf 't_s\trss\tanon\tfile\tgc_committed\tgc_heap\tgc_frag\ttotal_memory\tanon_minus_committed\tgen2\n'
start=$(date +%s)
while :; do
  now=$(date +%s); t=$((now - start))
  [ -r /proc/$P/status ] || { echo "process $P gone"; exit 1; }
  st=$(awk '/^VmRSS|^RssAnon|^RssFile/{printf "%s ", $2}' /proc/$P/status)
  m=$(curl -s --max-time 10 "http://127.0.0.1:$PORT/metrics")
  echo "$st|$m" | awk -v t=$t -F'\n' '
    NR==1 { split($0, a, "|"); split(a[1], s, " "); rss=s[1]; anon=s[2]; file=s[3]; line=a[2] } 
    NR>1 { line=$0 }
    { if (line ~ /^system_runtime_dotnet_gc_last_collection_memory_committed_size /) { split(line, x, " "); com=x[2] }
      else if (line ~ /^system_runtime_dotnet_gc_last_collection_heap_size\{/) { split(line, x, " "); heap+=x[2] }
      else if (line ~ /^system_runtime_dotnet_gc_last_collection_heap_fragmentation_size\{/) { split(line, x, " "); frag+=x[2] }
      else if (line ~ /^dotnet_total_memory_bytes /) { split(line, x, " "); tot=x[2] }
      else if (line ~ /^dotnet_collection_count_total\{generation="2"\}/) { split(line, x, " "); g2=x[2] } }
    END { M=1048576; printf "%d\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%.0f\t%d\n", t, rss/1024, anon/1024, file/1024, com/M, heap/M, frag/M, tot/M, anon/1024-com/M, g2 }'
  [ $t -ge $N ] && exit 0
  sleep $((I - ($(date +%s) - now)))
done

#!/usr/bin/env bash
# Produce throughput of one idempotent librdkafka producer (kcat, acks=all, 1 KiB messages) against
# librdkafka's mock cluster with one broker: direct, and through a Kafka route of each BindProxy
# build given, alternated round by round so a slow minute hits every contender.
#
#   bench/kafka-produce.sh [--rounds N] [--messages N] NAME=PATH/BindProxy.dll ...
#
# Prints MB/s per run and the median per contender. Needs kcat and a built src/BindProxy.Demo
# (DEMO=path/BindProxy.Demo.dll, default its Release output). Ports: 18700 upward (KAFKA_BENCH_PORT).
set -uo pipefail
rounds=3 messages=200000
while [[ $# -gt 0 && $1 == --* ]]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --messages) messages=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $# -gt 0 ]] || { echo "usage: $0 [--rounds N] [--messages N] NAME=BindProxy.dll ..." >&2; exit 2; }
demo=${DEMO:-src/BindProxy.Demo/bin/Release/net10.0/BindProxy.Demo.dll}
port=${KAFKA_BENCH_PORT:-18700}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -- -"$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

head -c 1024 /dev/zero | tr '\0' 'x' > "$work/one"
for ((i = 0; i < messages; i++)); do cat "$work/one"; echo; done > "$work/messages"

# The mock cluster runs until its stdin ends: a sleep keeps it open for the whole run.
(sleep 100000 | setsid dotnet "$demo" mock-cluster --brokers 1 --topic bench --partitions 1 > "$work/cluster.log" 2>&1) &
pids+=($!)
for _ in $(seq 100); do grep -q bootstrap "$work/cluster.log" && break; sleep 0.1; done
upstream=$(grep -o 'bootstrap [0-9.:]*' "$work/cluster.log" | head -1 | cut -d' ' -f2)
[[ -n $upstream ]] || { echo "mock cluster did not start" >&2; cat "$work/cluster.log" >&2; exit 1; }

names=(direct) targets=("$upstream")
for spec in "$@"; do
  name=${spec%%=*} dll=${spec#*=}
  cat > "$work/$name.json" <<JSON
{ "Serilog": { "MinimumLevel": { "Default": "Warning" } },
  "BindProxy": { "Routes": { "bench": { "Listen": "127.0.0.1:$port", "Upstream": "$upstream", "Source": "127.0.0.2", "Protocol": "Kafka" } } },
  "Admin": { "Listen": "127.0.0.1:0" } }
JSON
  setsid dotnet "$dll" --config "$work/$name.json" > "$work/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name") targets+=("127.0.0.1:$port")
  port=$((port + 100))
done
sleep 3

produce() { # bootstrap -> MB/s
  local start end
  start=$(date +%s.%N)
  kcat -b "$1" -P -t bench -X message.max.bytes=2000000 -X enable.idempotence=true -X acks=all -X linger.ms=5 -X queue.buffering.max.messages=1000000 < "$work/messages"
  end=$(date +%s.%N)
  echo "scale=2; $messages * 1024 / 1000000 / ($end - $start)" | bc
}

declare -A results
for ((r = 0; r < rounds; r++)); do
  for ((k = 0; k < ${#names[@]}; k++)); do
    i=$(((k + r) % ${#names[@]}))
    mbs=$(produce "${targets[$i]}")
    results[${names[$i]}]+="$mbs "
    echo "round $((r + 1)) ${names[$i]}: $mbs MB/s"
  done
done
echo
for name in "${names[@]}"; do
  median=$(tr ' ' '\n' <<< "${results[$name]}" | grep . | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
  echo "$name: median $median MB/s (runs: ${results[$name]})"
done

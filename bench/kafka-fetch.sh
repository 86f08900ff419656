#!/usr/bin/env bash
# Fetch cost: one librdkafka consumer (kcat -C, default settings) reads every partition of a topic
# from the beginning to its end in large Fetch responses, against librdkafka's mock cluster with one
# broker; the contenders alternated round by round so a slow minute hits every one:
#   direct        the broker itself
#   NAME          a Kafka route of each BindProxy build given as NAME=PATH/BindProxy.dll
#   NAME+tail     the first build's route with `bindproxy kafka tail --client bench-tail` attached (every Fetch
#                 response decoded by the model and summarized, a line per request to the tail)
#   haproxy       HAProxy in TCP mode from 127.0.0.2, in front of a second mock cluster whose broker
#                 advertises HAProxy's port (so the client stays on HAProxy after the bootstrap)
#
#   bench/kafka-fetch.sh [--rounds N] [--partitions N] [--passes N] NAME=PATH/BindProxy.dll ...
#
# The mock cluster answers a Fetch with one record batch per partition and keeps about the last
# 5 MB of each partition, so the topic has many partitions (64), loaded first with 1 MB batches
# (1 KiB messages, batch.size 1000000, a long linger): a Fetch response then carries a batch of
# about a megabyte for each partition, up to the consumer's fetch.max.bytes (50 MB), and the topic
# holds about 5 MB a partition. A run reads the topic --passes times (3), one consumer after the
# other. Prints MB/s (the messages' bytes read over the consumers' run time) per run and the median
# per contender. Needs kcat, haproxy and a built src/BindProxy.Demo
# (DEMO=path/BindProxy.Demo.dll, default its Release output). Ports: 19400 upward (KAFKA_BENCH_PORT).
set -uo pipefail
rounds=5 partitions=64 passes=3
while [[ $# -gt 0 && $1 == --* ]]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --partitions) partitions=$2; shift 2 ;;
    --passes) passes=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $# -gt 0 ]] || { echo "usage: $0 [--rounds N] [--partitions N] [--passes N] NAME=BindProxy.dll ..." >&2; exit 2; }
per_partition=6000 # more than the mock cluster keeps
here=$(cd "$(dirname "$0")" && pwd)
source "$here/configs.sh"
demo=${DEMO:-src/BindProxy.Demo/bin/Release/net10.0/BindProxy.Demo.dll}
port=${KAFKA_BENCH_PORT:-19400}
work=$(mktemp -d)
pids=()
tail_pid=
cleanup() {
  [[ -n $tail_pid ]] && kill "$tail_pid" 2>/dev/null
  for p in "${pids[@]}"; do kill -- -"$p" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

line=$(head -c 1024 /dev/zero | tr '\0' 'x')
yes "$line" | head -n "$per_partition" > "$work/messages"

source "$here/kafka-lib.sh"

load() { # bootstrap: every partition, in 1 MB batches
  for ((p = 0; p < partitions; p++)); do
    timeout 120 kcat -b "$1" -P -t bench -p "$p" -X batch.size=1000000 -X linger.ms=200 -X queue.buffering.max.messages=1000000 \
      -X enable.idempotence=true -X acks=all < "$work/messages" \
      || { echo "loading $1 partition $p failed" >&2; exit 1; }
  done
}

wait_port() { # port: until something listens there (a loaded machine starts a proxy slowly)
  for _ in $(seq 300); do (exec 3<> "/dev/tcp/127.0.0.1/$1") 2> /dev/null && return; sleep 0.1; done
  echo "nothing listens on port $1" >&2; exit 1
}

start_cluster main "$partitions"
upstream=$bootstrap
[[ -n $upstream ]] || { echo "mock cluster did not start" >&2; cat "$work/main.log" >&2; exit 1; }
load "$upstream"

names=(direct) targets=("$upstream")
first_admin=
for spec in "$@"; do
  name=${spec%%=*} dll=${spec#*=}
  admin_port=$((port + 50))
  cat > "$work/$name.json" <<JSON
{ "Serilog": { "MinimumLevel": { "Default": "Warning" } },
  "BindProxy": { "Routes": { "bench": { "Listen": "127.0.0.1:$port", "Upstream": "$upstream", "Source": "127.0.0.2", "Protocol": "Kafka" } } },
  "Admin": { "Listen": "127.0.0.1:$admin_port" } }
JSON
  setsid dotnet "$dll" --config "$work/$name.json" > "$work/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name") targets+=("127.0.0.1:$port")
  wait_port "$port"
  wait_port "$admin_port"
  if [[ -z $first_admin ]]; then
    first_admin=$admin_port first_dll=$dll
    names+=("$name+tail") targets+=("127.0.0.1:$port")
  fi
  port=$((port + 100))
done

# HAProxy before a cluster of its own, loaded the same way, whose broker advertises HAProxy's port.
if command -v haproxy > /dev/null; then
  start_cluster haproxy "$partitions"
  hupstream=$bootstrap
  load "$hupstream"
  hport=$port
  haproxy_config "$hport" 127.0.0.2 "${hupstream##*:}" > "$work/haproxy.cfg"
  setsid haproxy -db -f "$work/haproxy.cfg" > "$work/haproxy.log" 2>&1 &
  pids+=($!)
  echo "advertise 1 127.0.0.1 $hport" >&"$cluster_fd"
  names+=(haproxy) targets+=("127.0.0.1:$hport")
fi
sleep 3

consume() { # bootstrap client.id -> MB/s, or "failed (N messages)" when fewer came than the cluster holds
  local start end count total=0
  start=$(date +%s.%N)
  for ((pass = 0; pass < passes; pass++)); do
    count=$(timeout 300 kcat -b "$1" -X client.id="$2" -C -t bench -o beginning -e -q -f '.' | wc -c)
    if ((count < partitions * 4000)); then
      echo "failed ($count messages)"
      return
    fi
    echo "$count" >> "$work/counts"
    total=$((total + count))
  done
  end=$(date +%s.%N)
  echo "scale=2; $total * 1024 / 1000000 / ($end - $start)" | bc
}

# One tail for the whole run, started before the first round and following only the +tail runs'
# client.id: it is attached and warm like a user's, and the other runs of the same route go unwatched.
if [[ -n $first_admin ]]; then
  dotnet "$first_dll" kafka tail --client bench-tail --admin "127.0.0.1:$first_admin" > "$work/tail.out" 2>&1 &
  tail_pid=$!
  for _ in $(seq 100); do grep -q following "$work/tail.out" && break; sleep 0.1; done
fi

declare -A results
for ((r = 0; r < rounds; r++)); do
  for ((k = 0; k < ${#names[@]}; k++)); do
    i=$(((k + r) % ${#names[@]}))
    client=bench
    if [[ ${names[$i]} == *+tail ]]; then
      client=bench-tail
      lines_before=$(grep -c ' Fetch v' "$work/tail.out")
    fi
    mbs=$(consume "${targets[$i]}" "$client")
    if [[ $client == bench-tail ]]; then
      echo "  (tail printed $(( $(grep -c ' Fetch v' "$work/tail.out") - lines_before )) Fetch lines, e.g. $(grep ' Fetch v' "$work/tail.out" | grep -m1 -o 'records=[0-9]*\|[0-9]* records' || echo none))"
    fi
    [[ $mbs == failed* ]] || results[${names[$i]}]+="$mbs "
    echo "round $((r + 1)) ${names[$i]}: $mbs MB/s"
  done
done
echo "messages read per pass: $(sort -n "$work/counts" | uniq -c | awk '{printf "%s%s x%s", sep, $2, $1; sep=", "}')"
for name in "${names[@]}"; do
  runs=${results[$name]:-}
  median=$(tr ' ' '\n' <<< "$runs" | grep . | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
  echo "$name: median $median MB/s (runs: $runs)"
done

#!/usr/bin/env bash
# Produce throughput of one idempotent librdkafka producer (kcat, acks=all, 1 KiB messages) against
# librdkafka's mock cluster with one broker, alternated round by round so a slow minute hits every
# contender:
#   direct        the broker itself
#   NAME          a Kafka route of each BindProxy build given as NAME=PATH/BindProxy.dll
#   NAME+tail     the first build's route with `bindproxy kafka tail --client bench-tail` attached (its bodies decoded)
#   haproxy       HAProxy in TCP mode from 127.0.0.2, in front of a second mock cluster whose broker
#                 advertises HAProxy's port (so the client stays on HAProxy after the bootstrap)
#
#   bench/kafka-produce.sh [--rounds N] [--messages N] NAME=PATH/BindProxy.dll ...
#
# Prints MB/s per run and the median per contender. Needs kcat, haproxy and a built
# src/BindProxy.Demo (DEMO=path/BindProxy.Demo.dll, default its Release output).
# Ports: 18700 upward (KAFKA_BENCH_PORT).
set -uo pipefail
rounds=3 messages=100000
while [[ $# -gt 0 && $1 == --* ]]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --messages) messages=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $# -gt 0 ]] || { echo "usage: $0 [--rounds N] [--messages N] NAME=BindProxy.dll ..." >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
source "$here/configs.sh"
demo=${DEMO:-src/BindProxy.Demo/bin/Release/net10.0/BindProxy.Demo.dll}
port=${KAFKA_BENCH_PORT:-18700}
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
yes "$line" | head -n "$messages" > "$work/messages"

source "$here/kafka-lib.sh"

start_cluster main
upstream=$bootstrap
[[ -n $upstream ]] || { echo "mock cluster did not start" >&2; cat "$work/main.log" >&2; exit 1; }

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
  if [[ -z $first_admin ]]; then
    first_admin=$admin_port first_dll=$dll
    names+=("$name+tail") targets+=("127.0.0.1:$port")
  fi
  port=$((port + 100))
done

# HAProxy before a cluster of its own, whose broker advertises HAProxy's port.
if command -v haproxy > /dev/null; then
  start_cluster haproxy
  hupstream=$bootstrap
  hport=$port
  haproxy_config "$hport" 127.0.0.2 "${hupstream##*:}" > "$work/haproxy.cfg"
  setsid haproxy -db -f "$work/haproxy.cfg" > "$work/haproxy.log" 2>&1 &
  pids+=($!)
  echo "advertise 1 127.0.0.1 $hport" >&"$cluster_fd"
  names+=(haproxy) targets+=("127.0.0.1:$hport")
fi
sleep 3

produce() { # bootstrap client.id -> MB/s
  local start end
  start=$(date +%s.%N)
  kcat -b "$1" -P -t bench -X client.id="$2" -X message.max.bytes=2000000 -X enable.idempotence=true -X acks=all -X linger.ms=5 -X queue.buffering.max.messages=1000000 < "$work/messages"
  end=$(date +%s.%N)
  echo "scale=2; $messages * 1024 / 1000000 / ($end - $start)" | bc
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
      lines_before=$(grep -c ' Produce v' "$work/tail.out")
    fi
    mbs=$(produce "${targets[$i]}" "$client")
    if [[ $client == bench-tail ]]; then
      echo "  (tail printed $(( $(grep -c ' Produce v' "$work/tail.out") - lines_before )) Produce lines)"
    fi
    results[${names[$i]}]+="$mbs "
    echo "round $((r + 1)) ${names[$i]}: $mbs MB/s"
  done
done
echo
for name in "${names[@]}"; do
  median=$(tr ' ' '\n' <<< "${results[$name]}" | grep . | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}')
  echo "$name: median $median MB/s (runs: ${results[$name]})"
done

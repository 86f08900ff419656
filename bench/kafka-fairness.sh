#!/usr/bin/env bash
# A Kafka client's request round trips beside a bulk producer on the same Kafka route: against
# librdkafka's mock cluster with one broker, for each contender, alternated round by round,
#   alone   `BindProxy.Bench kafka-ping` (ApiVersions requests one at a time on one connection)
#   beside  the same, on its own connection to the same broker through the same contender, while
#           an idempotent librdkafka producer (kcat, acks=all, 1 KiB messages) sends flat out
# Contenders:
#   direct        the broker itself
#   NAME          a Kafka route (from 127.0.0.2) of each BindProxy build given as NAME=PATH/BindProxy.dll
#   haproxy       HAProxy in TCP mode from 127.0.0.2, in front of a second mock cluster whose broker
#                 advertises HAProxy's port (so the producer stays on HAProxy after the bootstrap)
#
#   bench/kafka-fairness.sh [--rounds N] [--messages N] [--duration SECONDS] [--interval DURATION] NAME=PATH/BindProxy.dll ...
#
# Prints each run and, per contender, the medians over the rounds of the round trips' p50/p99/max
# (µs) alone and beside the producer, and of the producer's MB/s. Needs kcat, haproxy, a built
# src/BindProxy.Demo (DEMO=path/BindProxy.Demo.dll) and bench/BindProxy.Bench (BENCH=path/BindProxy.Bench.dll),
# default their Release outputs. Ports: 18800 upward (KAFKA_BENCH_PORT).
set -uo pipefail
rounds=3 messages=500000 duration=3 interval=1ms
while [[ $# -gt 0 && $1 == --* ]]; do
  case $1 in
    --rounds) rounds=$2; shift 2 ;;
    --messages) messages=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --interval) interval=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $# -gt 0 ]] || { echo "usage: $0 [--rounds N] [--messages N] [--duration SECONDS] [--interval DURATION] NAME=BindProxy.dll ..." >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
source "$here/configs.sh"
demo=${DEMO:-src/BindProxy.Demo/bin/Release/net10.0/BindProxy.Demo.dll}
bench=${BENCH:-bench/BindProxy.Bench/bin/Release/net10.0/BindProxy.Bench.dll}
port=${KAFKA_BENCH_PORT:-18800}
work=$(mktemp -d)
pids=()
cleanup() {
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
for spec in "$@"; do
  name=${spec%%=*} dll=${spec#*=}
  cat > "$work/$name.json" <<JSON
{ "Serilog": { "MinimumLevel": { "Default": "Warning" } },
  "BindProxy": { "Routes": { "bench": { "Listen": "127.0.0.1:$port", "Upstream": "$upstream", "Source": "127.0.0.2", "Protocol": "Kafka" } } },
  "Admin": { "Listen": "127.0.0.1:$((port + 50))" } }
JSON
  setsid dotnet "$dll" --config "$work/$name.json" > "$work/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name") targets+=("127.0.0.1:$port")
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

field() { # json name -> value
  grep -o "\"$2\":[^,}]*" <<< "$1" | head -1 | cut -d: -f2 | tr -d '"' | sed 's/^null$//'
}

ping_alone() { # target -> "p50 p99 max count"
  local out
  out=$(timeout $((duration + 30)) dotnet "$bench" kafka-ping --target "$1" --count 1000000 --duration "${duration}s" --interval "$interval" 2> "$work/ping.err")
  echo "$(field "$out" p50_us) $(field "$out" p99_us) $(field "$out" max_us) $(field "$out" completed) $(field "$out" error)"
}

ping_beside() { # target -> "p50 p99 max count MB/s error"
  local start end ping_pid kcat_pid out mbs status=0
  # The round trips start first (on their own connection), run while the producer does, and are
  # stopped with SIGTERM when it ends (--duration 60s bounds them otherwise).
  timeout 150 dotnet "$bench" kafka-ping --target "$1" --count 1000000 --warmup 10 --duration 60s --interval "$interval" > "$work/ping.out" 2> "$work/ping.err" &
  ping_pid=$!
  for _ in $(seq 100); do grep -q connected "$work/ping.err" && break; sleep 0.1; done
  start=$(date +%s.%N)
  timeout 120 kcat -b "$1" -P -t bench -X message.max.bytes=2000000 -X enable.idempotence=true -X acks=all -X linger.ms=5 -X queue.buffering.max.messages=1000000 < "$work/messages" &
  kcat_pid=$!
  wait "$kcat_pid" || status=$?
  end=$(date +%s.%N)
  kill -TERM "$ping_pid" 2>/dev/null
  wait "$ping_pid"
  out=$(cat "$work/ping.out")
  mbs=$(echo "scale=2; $messages * 1024 / 1000000 / ($end - $start)" | bc)
  ((status == 0)) || mbs="failed($status)"
  echo "$(field "$out" p50_us) $(field "$out" p99_us) $(field "$out" max_us) $(field "$out" completed) $mbs $(field "$out" error)"
}

declare -A alone beside
for ((r = 0; r < rounds; r++)); do
  for ((k = 0; k < ${#names[@]}; k++)); do
    i=$(((k + r) % ${#names[@]}))
    name=${names[$i]}
    read -r p50 p99 max n err <<< "$(ping_alone "${targets[$i]}")"
    echo "round $((r + 1)) $name alone: p50 $p50 µs, p99 $p99 µs, max $max µs ($n round trips${err:+, error $err})"
    alone[$name.p50]+="$p50 " alone[$name.p99]+="$p99 " alone[$name.max]+="$max "
    read -r p50 p99 max n mbs err <<< "$(ping_beside "${targets[$i]}")"
    echo "round $((r + 1)) $name beside producer: p50 $p50 µs, p99 $p99 µs, max $max µs ($n round trips${err:+, error $err}); producer $mbs MB/s"
    beside[$name.p50]+="$p50 " beside[$name.p99]+="$p99 " beside[$name.max]+="$max " beside[$name.mbs]+="$mbs "
  done
done

median() { tr ' ' '\n' <<< "$1" | grep . | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo
echo "| contender | alone p50 / p99 / max µs | beside producer p50 / p99 / max µs | producer MB/s |"
echo "|---|---|---|---|"
for name in "${names[@]}"; do
  echo "| $name | $(median "${alone[$name.p50]}") / $(median "${alone[$name.p99]}") / $(median "${alone[$name.max]}") | $(median "${beside[$name.p50]}") / $(median "${beside[$name.p99]}") / $(median "${beside[$name.max]}") | $(median "${beside[$name.mbs]}") (runs: ${beside[$name.mbs]% }) |"
done

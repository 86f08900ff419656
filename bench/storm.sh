#!/usr/bin/env bash
# A refusal storm beside the connections a proxy already serves, with its console read slowly:
# does anything on the refusal path hold up the threads that move those connections' bytes?
#
#   bench/storm.sh [--proxy [LABEL=]DLL]... [--rounds N] [--nofile N] [--attempts N] [--rate N] [--concurrency N]
#
#   --proxy DLL     a BindProxy.dll to measure (repeatable; default: this checkout's Release build,
#                   built first); LABEL=DLL names it in the table
#   --rounds N      alternated rounds over the proxies (default 3)
#   --nofile N      the proxy's open-files limit (default 500): about (N - 250) / 2 connections fit
#   --attempts N    clients in the storm, all refused (default 5000)
#   --rate N        storm clients a second (default 1000; 0: as fast as they go)
#   --concurrency N storm clients at once (default 4: on a small machine more measures the storm
#                   clients' own CPU, not the proxy)
#
# Each run starts the proxy afresh, logging at its default level (Information) to a pipe that a
# reader drains at 20 lines a second, and fills that pipe first with a second of churn. Then the
# bench tool's `storm`: 4 pingers open, the proxy's descriptors filled with held connections, the
# pingers measured alone for 3 s, then again while the storm's clients are refused. Prints a
# table of the pingers' p50/p99/max before and during the storm, per proxy and round.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$script_dir/.." && pwd)
rounds=3 nofile=500 attempts=5000 rate=1000 concurrency=4
proxies=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --proxy) proxies+=("${2:?--proxy needs a BindProxy.dll}"); shift ;;
        --rounds) rounds=${2:?}; shift ;;
        --nofile) nofile=${2:?}; shift ;;
        --attempts) attempts=${2:?}; shift ;;
        --concurrency) concurrency=${2:?}; shift ;;
        --rate) rate=${2:?}; shift ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

port_base=${BENCH_PORT_BASE:-18700}
echo_port=$((port_base + 0)) proxy_port=$((port_base + 1)) churn_port=$((port_base + 1))
work=$(mktemp -d /tmp/bindproxy-storm.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

dotnet build -c Release --nologo -v q "$repo/bench/BindProxy.Bench" >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
bench_dll="$repo/bench/BindProxy.Bench/bin/Release/net10.0/BindProxy.Bench.dll"
if [[ ${#proxies[@]} -eq 0 ]]; then
    dotnet build -c Release --nologo -v q "$repo/src/BindProxy" >"$work/build-proxy.log" 2>&1 || { cat "$work/build-proxy.log"; exit 1; }
    proxies=("this=$repo/src/BindProxy/bin/Release/net10.0/BindProxy.dll")
fi

setsid dotnet "$bench_dll" echo-server --listen "127.0.0.1:$echo_port" >"$work/echo.log" 2>&1 < /dev/null &
pids+=($!)

wait_listen() { for _ in $(seq 200); do [[ -n "$(ss -Hltn "sport = :$1")" ]] && return 0; sleep 0.1; done; return 1; }
wait_listen "$echo_port"

printf '| proxy | round | held | refused | served | storm s | p50 before µs | p99 before µs | p50 during µs | p99 during µs | max during µs | p99 during / before |\n'
printf '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n'
for ((round = 1; round <= rounds; round++)); do
    for entry in "${proxies[@]}"; do
        label=${entry%%=*} dll=${entry#*=}
        [[ $label == "$entry" ]] && label=$(basename "$(dirname "$(dirname "$(dirname "$(dirname "$dll")")")")")
        # The proxy logs at Information into a pipe drained at 20 lines a second.
        setsid bash -c 'prlimit --nofile="$0":"$0" dotnet "$1" --listen "127.0.0.1:$2" --upstream "127.0.0.1:$3" --source 127.0.0.2 --admin off \
            | python3 -c "import sys, time
for line in sys.stdin: time.sleep(0.05)"' "$nofile" "$dll" "$proxy_port" "$echo_port" >/dev/null 2>"$work/proxy.err" < /dev/null &
        pid=$!
        pids+=("$pid")
        wait_listen "$proxy_port" || { echo "$label did not listen" >&2; cat "$work/proxy.err" >&2; exit 1; }
        dotnet "$bench_dll" churn --target "127.0.0.1:$churn_port" --duration 1s --concurrency 8 >/dev/null 2>&1 || true
        dotnet "$bench_dll" storm --target "127.0.0.1:$proxy_port" --fill $(( nofile / 2 )) --attempts "$attempts" --concurrency "$concurrency" --rate "$rate" >"$work/storm.json" 2>>"$work/storm.err" || true
        python3 - "$work/storm.json" "$label" "$round" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
ratio = d["storm_p99_us"] / d["baseline_p99_us"] if d["baseline_p99_us"] else float("nan")
print(f'| {sys.argv[2]} | {sys.argv[3]} | {d["held"]} | {d["refused"]} | {d["served"]} | {d["storm_seconds"]} | {d["baseline_p50_us"]} | {d["baseline_p99_us"]} | {d["storm_p50_us"]} | {d["storm_p99_us"]} | {d["storm_max_us"]} | {ratio:.2f} |')
PY
        kill -TERM -- "-$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
done

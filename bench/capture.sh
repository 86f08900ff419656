#!/usr/bin/env bash
# What a capture costs in throughput while a bulk stream runs: one iperf3 stream (client to
# server) through a Tcp route (relay engine), alternated round by round with
#   direct         iperf3 itself
#   haproxy        HAProxy in TCP mode from 127.0.0.2
#   bindproxy      the route, no capture
#   +other         the route with a capture of another client attached (`/api/capture?source=127.0.0.3`:
#                  it waits for a connection from that address; the bulk stream carries no tap)
#   +self          the route with a capture of the bulk stream itself (`/api/capture?route=bulk`),
#                  both legs, read by curl into /dev/null as fast as it comes
#
#   bench/capture.sh [--rounds N] [--secs N]
#
#   --rounds N   alternated rounds (default 5)
#   --secs N     seconds per iperf3 run (default 5)
#
# Prints a Markdown table of every run (Gbit/s, and for +self the pcapng curl received and the
# share of the stream's legs it covers; the rest was dropped by the capture's bounded queue, as
# designed: forwarding never waits) and the median per contender with its ratio to `bindproxy`.
# Release build. Ports: 18900 upward (BENCH_PORT_BASE).
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$script_dir/.." && pwd)
source "$script_dir/configs.sh"
rounds=5 secs=5
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) rounds=${2:?}; shift ;;
        --secs) secs=${2:?}; shift ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

for tool in haproxy iperf3 curl python3; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done

port_base=${BENCH_PORT_BASE:-18900}
iperf_port=$((port_base + 0)) haproxy_port=$((port_base + 1)) bindproxy_port=$((port_base + 2)) admin_port=$((port_base + 3))
work=$(mktemp -d /tmp/bindproxy-capture-bench.XXXXXX)
pids=()
capture_pid=
cleanup() {
    [[ -n $capture_pid ]] && kill "$capture_pid" 2>/dev/null
    stop_all
}
trap cleanup EXIT
# shellcheck source=lib.sh
source "$script_dir/lib.sh"

log "building BindProxy (Release)"
dotnet build -c Release --nologo -v q "$repo/src/BindProxy" >"$work/build.log" 2>&1 || { tail -20 "$work/build.log" >&2; exit 1; }
proxy_dll="$repo/src/BindProxy/bin/Release/net10.0/BindProxy.dll"

start_bg "$work/iperf3.log" iperf3 -s -B 127.0.0.1 -p "$iperf_port"
haproxy_config "$haproxy_port" 127.0.0.2 "$iperf_port" >"$work/haproxy.cfg"
start_bg "$work/haproxy.log" haproxy -db -f "$work/haproxy.cfg"
cat >"$work/bindproxy.json" <<CFG
{
  "Serilog": { "MinimumLevel": "Warning" },
  "Admin": { "Listen": "127.0.0.1:$admin_port" },
  "BindProxy": { "Routes": {
    "bulk": { "Listen": "127.0.0.1:$bindproxy_port", "Upstream": "127.0.0.1:$iperf_port", "Source": "127.0.0.2" }
  } }
}
CFG
start_bg "$work/bindproxy.log" dotnet "$proxy_dll" --config "$work/bindproxy.json"
for p in "$iperf_port" "$haproxy_port" "$bindproxy_port" "$admin_port"; do wait_listen "$p"; done

contenders=(direct haproxy bindproxy +other +self)
declare -A target=([direct]=$iperf_port [haproxy]=$haproxy_port [bindproxy]=$bindproxy_port [+other]=$bindproxy_port [+self]=$bindproxy_port)
declare -A query=([+other]="source=127.0.0.3" [+self]="route=bulk")
declare -A results
printf '| round | contender | Gbit/s | pcapng received | share of both legs captured |\n|---|---|---|---|---|\n' >"$work/table.md"
for ((r = 0; r < rounds; r++)); do
    for ((k = 0; k < ${#contenders[@]}; k++)); do
        c=${contenders[$(((k + r) % ${#contenders[@]}))]}
        captured="" share=""
        if [[ -n ${query[$c]:-} ]]; then
            # The capture ends by itself a second after the run (seconds=), and curl prints what it got.
            curl -s -o /dev/null -w '%{size_download}' "http://127.0.0.1:$admin_port/api/capture?${query[$c]}&seconds=$((secs + 2))" >"$work/curl.out" &
            capture_pid=$!
            # The capture runs once its section header has been sent; a short wait covers that.
            sleep 0.5
        fi
        iperf3 -c 127.0.0.1 -p "${target[$c]}" -t "$secs" -J >"$work/iperf.json" 2>/dev/null || true
        read -r gbps bytes < <(python3 -c "import json; d=json.load(open('$work/iperf.json'))['end']['sum_received']; print(round(d['bits_per_second']/1e9, 2), d['bytes'])" 2>/dev/null || echo "- 0")
        if [[ -n $capture_pid ]]; then
            wait "$capture_pid" 2>/dev/null || true
            capture_pid=
            got=$(cat "$work/curl.out" 2>/dev/null || echo 0)
            captured="$(python3 -c "print(round(${got:-0}/1e6))") MB"
            # Each byte is on two legs; pcapng adds 28 + 40 bytes a segment of up to 64 KB.
            [[ $c == +self && $bytes -gt 0 ]] && share=$(python3 -c "print(f'{min(1.0, ${got:-0} / (2 * $bytes)):.2f}')")
        fi
        results[$c]+="$gbps "
        printf '| %d | %s | %s | %s | %s |\n' "$((r + 1))" "$c" "$gbps" "$captured" "$share" >>"$work/table.md"
        log "round $((r + 1)) $c: $gbps Gbit/s ${captured}"
    done
done

median() { tr ' ' '\n' <<<"$1" | grep -v '^-*$' | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
echo "## Capture cost (iperf3, 1 stream, ${secs} s a run, $rounds alternated rounds; $(haproxy -v | head -1 | cut -d' ' -f1-3); dotnet $(dotnet --version); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg))"
cat "$work/table.md"
echo
base=$(median "${results[bindproxy]}")
printf '| contender | median Gbit/s | runs | / bindproxy |\n|---|---|---|---|\n'
for c in "${contenders[@]}"; do
    m=$(median "${results[$c]}")
    printf '| %s | %s | %s | %s |\n' "$c" "$m" "${results[$c]}" "$(python3 -c "print(f'{$m / $base:.2f}')" 2>/dev/null || echo -)"
done

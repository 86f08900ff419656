#!/usr/bin/env bash
# Where the CPU goes while a capture of a bulk stream runs: one iperf3 stream (4 s) through a Tcp
# route (relay engine), with no capture (`none`) or a capture of the stream itself (`self`,
# `/api/capture?route=bulk`, read by curl into /dev/null), and each proxy thread's CPU time and
# time spent waiting for a CPU (/proc/PID/task/*/stat and schedstat, before and after the run),
# with curl's. Per GB of stream is what compares across runs on a shared machine.
#
#   bench/capture-cpu.sh [none|self] [--secs N]
#
# Release build. Ports: 18980 upward (BENCH_PORT_BASE).
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$script_dir/.." && pwd)
mode=${1:-self}
secs=4
[[ ${2:-} == --secs ]] && secs=${3:?}
for tool in iperf3 curl python3; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 1; }
done

port_base=${BENCH_PORT_BASE:-18980}
iperf_port=$port_base bindproxy_port=$((port_base + 2)) admin_port=$((port_base + 3))
work=$(mktemp -d /tmp/bindproxy-capture-cpu.XXXXXX)
pids=()
# shellcheck source=lib.sh
source "$script_dir/lib.sh"
trap stop_all EXIT

log "building BindProxy (Release)"
dotnet build -c Release --nologo -v q "$repo/src/BindProxy" >"$work/build.log" 2>&1 || { tail -20 "$work/build.log" >&2; exit 1; }
cat >"$work/bindproxy.json" <<CFG
{ "Serilog": { "MinimumLevel": "Warning" }, "Admin": { "Listen": "127.0.0.1:$admin_port" },
  "BindProxy": { "Routes": { "bulk": { "Listen": "127.0.0.1:$bindproxy_port", "Upstream": "127.0.0.1:$iperf_port", "Source": "127.0.0.2" } } } }
CFG
start_bg "$work/iperf3.log" iperf3 -s -B 127.0.0.1 -p "$iperf_port"
start_bg "$work/bindproxy.log" dotnet "$repo/src/BindProxy/bin/Release/net10.0/BindProxy.dll" --config "$work/bindproxy.json"
for p in "$iperf_port" "$bindproxy_port" "$admin_port"; do wait_listen "$p"; done
proxy=$(pgrep -f -n "BindProxy.dll --config $work/bindproxy.json")
iperf3 -c 127.0.0.1 -p "$bindproxy_port" -t 1 >/dev/null 2>&1 || true # warm

# thread id | name | utime+stime ticks | run ns | wait ns
snapshot() {
    for t in /proc/"$proxy"/task/*; do
        local stat name sched
        stat=$(cat "$t/stat" 2>/dev/null) || continue
        name=$(cat "$t/comm") sched=$(cat "$t/schedstat")
        set -- ${stat##*) }
        echo "$(basename "$t")|$name|$(( ${12} + ${13} ))|${sched// /|}"
    done | sort
}

curl_pid=
if [[ $mode == self ]]; then
    /usr/bin/time -f '%U %S' -o "$work/curl.time" curl -s -o /dev/null -w '%{size_download}' \
        "http://127.0.0.1:$admin_port/api/capture?route=bulk&seconds=$((secs + 2))" >"$work/curl.out" &
    curl_pid=$!
    sleep 0.5 # the capture runs once its section header is sent
fi
snapshot >"$work/before"
iperf3 -c 127.0.0.1 -p "$bindproxy_port" -t "$secs" -J >"$work/iperf.json" 2>/dev/null || true
snapshot >"$work/after"
read -r gbps bytes < <(python3 -c "import json; d=json.load(open('$work/iperf.json'))['end']['sum_received']; print(round(d['bits_per_second']/1e9, 2), d['bytes'])")
echo "## capture-cpu $mode: $gbps Gbit/s, $((bytes / 1000000)) MB in ${secs} s; load $(cut -d' ' -f1-3 /proc/loadavg)"
if [[ -n $curl_pid ]]; then
    wait "$curl_pid" || true
    read -r user sys <"$work/curl.time"
    echo "curl: $(( $(cat "$work/curl.out") / 1000000 )) MB of pcapng, ${user}+${sys} s CPU"
fi
echo "| thread | CPU s | waiting for a CPU, s | CPU ticks per GB of stream |"
echo "|---|---|---|---|"
join -t'|' "$work/before" "$work/after" | awk -F'|' -v gb="$bytes" '
    { cpu[$2] += ($8 - $3) / 100; run[$2] += ($9 - $4) / 1e9; wait[$2] += ($10 - $5) / 1e9 }
    END { for (n in cpu) if (cpu[n] >= 0.01) printf "| %s | %.2f | %.2f | %.0f |\n", n, cpu[n], wait[n], cpu[n] * 100 / (gb / 1e9) }'

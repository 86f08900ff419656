#!/usr/bin/env bash
# Where a new connection's CPU goes: HAProxy and BindProxy side by side under the churn load of
# bench/run.sh (16 workers: connect, 64-byte exchange, close), sampled with perf call graphs.
# Prints microseconds of proxy CPU per connection by the system call each sample was in, and by
# thread.
#
#   bench/churn-profile.sh [--seconds N]     (default 5; run as root, needs perf and haproxy)
#
# Absolute figures move with other load on the machine; compare the two columns of one run.
set -euo pipefail

seconds=5
while [[ $# -gt 0 ]]; do
    case "$1" in
        --seconds)
            [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || { echo "--seconds needs a positive number" >&2; exit 2; }
            seconds=$2; shift ;;
        -h|--help) sed -n '2,9p' "$0"; exit 0 ;;
        *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

for tool in perf haproxy dotnet; do
    command -v "$tool" >/dev/null || { echo "$tool is missing (Debian: apt-get install linux-perf haproxy)" >&2; exit 1; }
done

repo=$(cd "$(dirname "$0")/.." && pwd)
bench_dll="$repo/bench/BindProxy.Bench/bin/Release/net10.0/BindProxy.Bench.dll"
proxy_dll="$repo/src/BindProxy/bin/Release/net10.0/BindProxy.dll"
port_base=${BENCH_PORT_BASE:-18500}
echo_port=$port_base hap_port=$((port_base + 10)) bp_port=$((port_base + 13))
frequency=2000
work=$(mktemp -d /tmp/bindproxy-profile.XXXXXX)
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

echo "building (Release)" >&2
dotnet build -c Release "$repo/bench/BindProxy.Bench/BindProxy.Bench.csproj" -v q -nologo >/dev/null
dotnet build -c Release "$repo/src/BindProxy/BindProxy.csproj" -v q -nologo >/dev/null

start() { # logfile command...: own process group, the same open-files limit as bench/run.sh
    local logfile=$1; shift
    setsid bash -c 'ulimit -Hn 20000 && ulimit -Sn 20000 && exec "$@"' _ "$@" >"$logfile" 2>&1 </dev/null &
    pids+=($!)
}

wait_listen() { # port
    local i
    for ((i = 0; i < 100; i++)); do
        [[ -n "$(ss -Hltn "sport = :$1")" ]] && return 0
        sleep 0.1
    done
    echo "nothing listens on port $1; see the logs in $work" >&2
    exit 1
}

# shellcheck source=bench/configs.sh
source "$repo/bench/configs.sh"
haproxy_config "$hap_port" 127.0.0.2 "$echo_port" >"$work/haproxy.cfg"
bindproxy_config >"$work/bindproxy.json"

start "$work/echo.log" dotnet "$bench_dll" echo-server --listen "127.0.0.1:$echo_port"
wait_listen "$echo_port"
start "$work/haproxy.log" haproxy -db -f "$work/haproxy.cfg"
wait_listen "$hap_port"
start "$work/bindproxy.log" dotnet "$proxy_dll" --config "$work/bindproxy.json" \
    --listen "127.0.0.1:$bp_port" --upstream "127.0.0.1:$echo_port" --source 127.0.0.2
wait_listen "$bp_port"

# Samples per (thread, system call), in µs of CPU per completed connection.
breakdown() { # perf.data connections
    perf script -i "$1" 2>/dev/null | awk -v per="$((1000000 / frequency))" -v n="$2" '
        function flush() { if (have) count[thread "|" (call == "" ? "no system call: user code, faults, interrupts" : call)]++; have = 0 }
        /^[^ \t]/ { flush(); thread = ""; for (i = 1; i <= NF && $i !~ /^[0-9]+$/; i++) thread = thread (thread == "" ? "" : " ") $i
                    call = ""; have = 1; next }
        /__x64_sys_/ { if (call == "") { call = $2; sub(/\+0x.*/, "", call); sub(/^__x64_sys_/, "", call) } next }
        /^$/ { flush() }
        END { flush(); for (k in count) printf "%s\t%.2f\n", k, count[k] * per / n }'
}

for contender in haproxy bindproxy; do
    port=$hap_port; [[ $contender == bindproxy ]] && port=$bp_port
    pid=$(ss -Hltnp "sport = :$port" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
    echo "$contender: 5 s warm-up, then $seconds s under perf" >&2
    dotnet "$bench_dll" churn --target "127.0.0.1:$port" --duration 5s --concurrency 16 >/dev/null
    perf record -g -F "$frequency" -p "$pid" -o "$work/$contender.data" -- sleep $((seconds + 1)) >/dev/null 2>&1 &
    perf_pid=$!
    sleep 0.5
    out=$(dotnet "$bench_dll" churn --target "127.0.0.1:$port" --duration "${seconds}s" --concurrency 16)
    wait "$perf_pid" || true
    completed=$(grep -o '"completed":[0-9]*' <<<"$out" | cut -d: -f2)
    rate=$(grep -o '"connections_per_second":[0-9.]*' <<<"$out" | cut -d: -f2)
    echo "$contender	$completed	$rate" >>"$work/runs.tsv"
    breakdown "$work/$contender.data" "$completed" | sed "s/^/$contender	/" >>"$work/breakdown.tsv"
done

# mawk-compatible (no arrays of arrays): keys are "row SUBSEP contender".
awk -F'\t' '
    FNR == NR { runs[$1] = sprintf("%d connections, %.0f conn/s", $2, $3); next }
    { split($2, part, "|")
      calls[part[2]] = 1; call[part[2], $1] += $3
      threads[part[1]] = 1; thread[part[1], $1] += $3; total[$1] += $3 }
    END {
        printf "Proxy CPU per connection under churn (µs), sampled by perf.\n\n"
        printf "- haproxy: %s\n- bindproxy: %s\n\n", runs["haproxy"], runs["bindproxy"]
        printf "| system call | haproxy | bindproxy |\n|---|---:|---:|\n"
        n = 0; for (c in calls) order[++n] = c
        for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++)
            if (call[order[j], "haproxy"] + call[order[j], "bindproxy"] > call[order[i], "haproxy"] + call[order[i], "bindproxy"]) { t = order[i]; order[i] = order[j]; order[j] = t }
        for (i = 1; i <= n; i++)
            if (call[order[i], "haproxy"] + call[order[i], "bindproxy"] >= 0.5)
                printf "| %s | %.1f | %.1f |\n", order[i], call[order[i], "haproxy"], call[order[i], "bindproxy"]
        printf "| **total** | **%.1f** | **%.1f** |\n", total["haproxy"], total["bindproxy"]
        printf "\n| thread | haproxy | bindproxy |\n|---|---:|---:|\n"
        for (t in threads)
            if (thread[t, "haproxy"] + thread[t, "bindproxy"] >= 0.05)
                printf "| %s | %.1f | %.1f |\n", t, thread[t, "haproxy"], thread[t, "bindproxy"]
    }' "$work/runs.tsv" "$work/breakdown.tsv"

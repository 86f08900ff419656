#!/usr/bin/env bash
# BindProxy soak: an hour of mixed traffic through one proxy process (a Tcp route with long-lived
# and churning connections, a Kafka route with an idempotent producer and a consumer group while
# partition leaders move), reporting its RSS, descriptors and latency over time.
#
#   bench/soak.sh [--duration 1h] [--quick] [-- SOAK-OPTIONS...]
#
#   --duration D    how long the traffic runs: 90s, 30m, 1h (default 1h)
#   --quick         2 minutes, to check that everything works
#   -- ...          passed on to `BindProxy.Bench soak` (e.g. --connections 1000 --churn-rate 200)
#
# Writes bench/results/soak-<timestamp>.md (the report, also printed) and .jsonl (a sample every
# 10 s), plus the proxy's and the Kafka clients' logs next to them. Exits 0 when nothing was lost
# and no error occurred, 1 otherwise. See bench/README.md for what is measured.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$script_dir/.." && pwd)

duration=1h
extra=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --duration)
            [[ "${2:-}" =~ ^[0-9]+(\.[0-9]+)?(ms|s|m|h)?$ ]] || { echo "--duration needs a duration such as 90s, 30m or 1h" >&2; exit 2; }
            duration=$2; shift ;;
        --quick) duration=2m ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

nofile=20000
port_base=${SOAK_PORT_BASE:-18600}   # below the ephemeral range; run.sh uses 18400-18413
echo_port=$((port_base + 0))
tcp_port=$((port_base + 1))
kafka_port=$((port_base + 2))
admin_port=$((port_base + 3))
bench_dll="$repo/bench/BindProxy.Bench/bin/Release/net10.0/BindProxy.Bench.dll"
proxy_dll="$repo/src/BindProxy/bin/Release/net10.0/BindProxy.dll"
work=$(mktemp -d /tmp/bindproxy-soak.XXXXXX)
started_at=$SECONDS

log() { printf '[%4ds] %s\n' $((SECONDS - started_at)) "$*" >&2; }

# Raise the open-files limit for everything started below (the hard limit needs root).
if ! { ulimit -Hn "$nofile" && ulimit -Sn "$nofile"; } 2>/dev/null; then
    ulimit -Sn "$(ulimit -Hn)"
    log "could not raise the open-files limit to $nofile; running with $(ulimit -Sn)"
fi

# Background processes get their own process group, so the proxy the soak starts goes down too.
declare -A pgid_of=()
start_bg() { # name logfile command...
    local name=$1 logfile=$2; shift 2
    setsid "$@" >"$logfile" 2>&1 </dev/null &
    pgid_of[$name]=$!
}

stop_bg() { # name
    local pid=${pgid_of[$1]:-} i
    [[ -z "$pid" ]] && return 0
    kill -TERM -- "-$pid" 2>/dev/null || true
    for ((i = 0; i < 100; i++)); do
        kill -0 -- "-$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "pgid_of[$1]"
}

cleanup() {
    local name
    for name in "${!pgid_of[@]}"; do stop_bg "$name"; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_listen() { # port name -> 0 when something listens on the port within 20 s
    local i
    for ((i = 0; i < 200; i++)); do
        [[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ]] && return 0
        kill -0 "${pgid_of[$2]}" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

for port in "$echo_port" "$tcp_port" "$kafka_port" "$admin_port"; do
    if [[ -n "$(ss -Hltn "sport = :$port")" ]]; then
        echo "port $port is already in use; set SOAK_PORT_BASE to another base" >&2
        exit 1
    fi
done

log "building the bench tool and BindProxy (Release)"
dotnet build -c Release --nologo -v q "$repo/bench/BindProxy.Bench" >"$work/build-bench.log" 2>&1 \
    || { tail -30 "$work/build-bench.log" >&2; exit 1; }
dotnet build -c Release --nologo -v q "$repo/src/BindProxy" >"$work/build-proxy.log" 2>&1 \
    || { tail -30 "$work/build-proxy.log" >&2; exit 1; }

start_bg echo "$work/echo.log" dotnet "$bench_dll" echo-server --listen "127.0.0.1:$echo_port"
wait_listen "$echo_port" echo || { cat "$work/echo.log" >&2; exit 1; }

log "soak for $duration; load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
# Its own process group as well, with stdout (the report) and stderr (progress) left as they are.
setsid dotnet "$bench_dll" soak \
    --echo "127.0.0.1:$echo_port" --proxy "$proxy_dll" \
    --tcp-listen "127.0.0.1:$tcp_port" --kafka-listen "127.0.0.1:$kafka_port" --admin "127.0.0.1:$admin_port" \
    --duration "$duration" --output-dir "$repo/bench/results" \
    --commit "$(git -C "$repo" log -1 --format='%h %s' 2>/dev/null || echo unknown)" "${extra[@]}" </dev/null &
pgid_of[soak]=$!
rc=0
wait "${pgid_of[soak]}" || rc=$?
unset "pgid_of[soak]"
stop_bg echo
log "done in $((SECONDS - started_at)) s (exit code $rc); load average $(cut -d' ' -f1-3 /proc/loadavg)"
exit "$rc"

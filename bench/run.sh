#!/usr/bin/env bash
# BindProxy side-by-side benchmark: direct, HAProxy, nginx stream, socat and BindProxy, all
# forwarding loopback traffic from source address 127.0.0.2 to the same upstream.
#
#   bench/run.sh [--quick] [--max-conn [N]] [--rounds N] [--only LIST] [--tests LIST]
#                [--hold-count N] [--bindproxy-log LEVEL] [--baseline DLL] [--skip-install]
#
#   --quick         one short round of everything (about two minutes once built)
#   --max-conn [N]  also find how many connections one proxy process holds: asks for N
#                   (default 10050, more than 20000 fds allow) and counts those that echo
#   --rounds N      interleaved rounds (default 3, quick 1)
#   --only LIST     comma-separated contenders, e.g. direct,haproxy,bindproxy
#   --tests LIST    comma-separated tests, e.g. throughput,fairness (default: throughput,latency,
#                   churn,fairness,hold)
#   --hold-count N  idle connections per hold run (default 4000, quick 2000), fresh and warmed
#   --bindproxy-log LEVEL  BindProxy's log level (default Warning, as the others log errors only;
#                   Information is what it logs out of the box: a line per connection)
#   --baseline DLL  also measure another BindProxy build (a BindProxy.dll built from an older
#                   commit), as contenders `before` and `before-pipes`, in the same rounds
#   --skip-install  do not apt-get missing packages
#
# Writes bench/results/<timestamp>.md (and the raw .jsonl next to it) and prints the tables.
# See bench/README.md for what each column means.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$script_dir/.." && pwd)
# shellcheck source=bench/configs.sh
source "$script_dir/configs.sh"

quick=0
max_conn=0
max_conn_count=10050   # above what 20000 fds allow at 2 fds per proxied connection
rounds=""
only=""
baseline_dll=""
tests="throughput,latency,churn,fairness,hold"
skip_install=0
hold_count_arg=""
bindproxy_log=Warning
while [[ $# -gt 0 ]]; do
    case "$1" in
        --quick) quick=1 ;;
        --max-conn)
            max_conn=1
            if [[ "${2:-}" =~ ^[0-9]+$ ]]; then max_conn_count=$2; shift; fi ;;
        --rounds)
            [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || { echo "--rounds needs a positive number" >&2; exit 2; }
            rounds=$2; shift ;;
        --only) only=${2:?--only needs a list such as direct,haproxy,bindproxy}; shift ;;
        --skip-install) skip_install=1 ;;
        --hold-count)
            [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || { echo "--hold-count needs a positive number" >&2; exit 2; }
            hold_count_arg=$2; shift ;;
        --bindproxy-log)
            [[ "${2:-}" =~ ^(Verbose|Debug|Information|Warning|Error|Fatal)$ ]] || { echo "--bindproxy-log needs a Serilog level such as Information or Warning" >&2; exit 2; }
            bindproxy_log=$2; shift ;;
        --tests) tests=${2:?--tests needs a list such as throughput,fairness}; shift ;;
        --baseline)
            [[ -f "${2:-}" ]] || { echo "--baseline needs a BindProxy.dll that exists" >&2; exit 2; }
            baseline_dll=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift ;;
        -h|--help) sed -n '2,23p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

# ---- settings ------------------------------------------------------------------------------
nofile=20000                 # every contender, server and client runs with this soft=hard limit
source_addr=127.0.0.2
port_base=${BENCH_PORT_BASE:-18400}   # below the ephemeral range, so no outgoing socket holds it
echo_port=$((port_base + 0))
iperf_port=$((port_base + 1))
fair_echo_port=$((port_base + 2))   # a thread-per-connection echo server: fair to its own connections
declare -A listen_port=([direct]=0 [haproxy]=$((port_base + 10)) [nginx]=$((port_base + 11)) [socat]=$((port_base + 12)) [bindproxy]=$((port_base + 13)) [bindproxy-pipes]=$((port_base + 14)) [before]=$((port_base + 15)) [before-pipes]=$((port_base + 16)))

if [[ $quick == 1 ]]; then
    rounds=${rounds:-1}; iperf_secs=2; ping_count=10000; ping_warmup=5000
    churn_secs=2s; hold_count=2000; hold_secs=2s; fair_secs=4s
else
    rounds=${rounds:-3}; iperf_secs=4; ping_count=20000; ping_warmup=5000
    churn_secs=4s; hold_count=4000; hold_secs=3s; fair_secs=8s
fi
# Fairness: light connections pinging beside bulk streams through the same proxy.
fair_bulk=2; fair_pingers=16; fair_interval=10ms
hold_count=${hold_count_arg:-$hold_count}
churn_concurrency=16
# Churn is the noisiest figure on a shared machine: it gets this many interleaved runs per round.
churn_passes=$([[ $quick == 1 ]] && echo 1 || echo 3)
# Connections each contender opens, echoes and closes before the idle-connection baseline is read:
# per-connection memory is then the marginal cost, not first-use costs (code warm-up, threads).
hold_warmup=500
# bindproxy-pipes: BindProxy on its pipe engine (--engine pipes), the path Kafka routes and every
# route on macOS and Windows take.
all_contenders=(direct haproxy nginx socat bindproxy bindproxy-pipes)
# before, before-pipes: the --baseline build, the same two ways.
[[ -n "${baseline_dll:-}" ]] && all_contenders+=(before before-pipes)
wants() { [[ ",$tests," == *",$1,"* ]]; }

# The clients (iperf3, the bench tool) get the same limit as the contenders.
ulimit -Hn "$nofile" && ulimit -Sn "$nofile"

stamp=$(date -u +%Y%m%dT%H%M%SZ)
results_dir="$repo/bench/results"
mkdir -p "$results_dir"
jsonl="$results_dir/$stamp.jsonl"
report="$results_dir/$stamp.md"
work=$(mktemp -d /tmp/bindproxy-bench.XXXXXX)
bench_dll="$repo/bench/BindProxy.Bench/bin/Release/net10.0/BindProxy.Bench.dll"
proxy_dll="$repo/src/BindProxy/bin/Release/net10.0/BindProxy.dll"
started_at=$SECONDS

log() { printf '[%4ds] %s\n' $((SECONDS - started_at)) "$*" >&2; }

# ---- process bookkeeping: every background process gets its own process group -------------
declare -A pgid_of=()   # name -> pid (= process group id, via setsid)

start_bg() { # name logfile command...
    local name=$1 logfile=$2; shift 2
    # setsid: own process group, so forked children (socat) go down with it; same limits for all.
    setsid bash -c 'ulimit -Hn "$0" && ulimit -Sn "$0" && exec "$@"' "$nofile" "$@" >"$logfile" 2>&1 < /dev/null &
    pgid_of[$name]=$!
}

stop_bg() { # name
    local name=$1 pid=${pgid_of[$1]:-}
    [[ -z "$pid" ]] && return 0
    kill -TERM -- "-$pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do
        kill -0 -- "-$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "pgid_of[$name]"
}

# Long commands run as waited-for background jobs: bash runs an INT/TERM trap only once a
# foreground child ends, and ignores Ctrl+C altogether when the child exits gracefully on it
# (iperf3 and dotnet both do), while `wait` is interrupted at once.
fg_pid=""
run_fg() {
    "$@" &
    fg_pid=$!
    local rc=0
    wait "$fg_pid" || rc=$?
    fg_pid=""
    return "$rc"
}

cleanup() {
    local name
    [[ -n "$fg_pid" ]] && kill -TERM "$fg_pid" 2>/dev/null
    for name in "${!pgid_of[@]}"; do stop_bg "$name"; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_listen() { # port name -> 0 when something listens on 127.0.0.1:port within 20 s
    local port=$1 name=$2 i
    for ((i = 0; i < 200; i++)); do
        if [[ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ]]; then return 0; fi
        if [[ -n "${pgid_of[$name]:-}" ]] && ! kill -0 "${pgid_of[$name]}" 2>/dev/null; then return 1; fi
        sleep 0.1
    done
    return 1
}

# Waits until a contender's process group is back to $2 processes (socat children linger
# for their half-close timeout), at most 3 s, so CPU of reaped children is counted.
wait_group_settled() { # name baseline
    local pid=${pgid_of[$1]:-} i
    [[ -z "$pid" ]] && return 0
    for ((i = 0; i < 30; i++)); do
        (( $(pgrep -c -g "$pid" || true) <= $2 )) && return 0
        sleep 0.1
    done
}

bench() { dotnet "$bench_dll" "$@"; }

record() { printf '%s\n' "$1" >>"$jsonl"; }

record_env() { # name value
    local value=${2//\\/\\\\}; value=${value//\"/\\\"}
    record "{\"test\":\"env\",\"name\":\"$1\",\"value\":\"$value\"}"
}

note() { log "NOTE: $*"; record_env note "$*"; }

json_or_null() { local s; s=$(tr -d '\n' <"$1"); [[ "$s" == \{* ]] && printf '%s' "$s" || printf 'null'; }

# ---- 1. packages ---------------------------------------------------------------------------
# wrk is installed for HTTP routes; the TCP runs below do not use it.
packages=(iperf3 haproxy nginx libnginx-mod-stream socat wrk)
install_packages() {
    local missing=() p
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    log "installing ${missing[*]}"
    # Keep the distribution's haproxy/nginx services from starting on install: only the
    # benchmark's own instances may listen.
    local policy=/usr/sbin/policy-rc.d own_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >$policy && chmod +x $policy && own_policy=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get update -q >"$work/apt-update.log" 2>&1
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >"$work/apt-install.log" 2>&1 \
        || { tail -20 "$work/apt-install.log" >&2; [[ $own_policy == 1 ]] && rm -f $policy; exit 1; }
    [[ $own_policy == 1 ]] && rm -f $policy
    return 0
}
[[ $skip_install == 0 ]] && install_packages

# ---- 2. build ------------------------------------------------------------------------------
log "building the bench tool"
run_fg dotnet build -c Release --nologo -v q "$repo/bench/BindProxy.Bench" >"$work/build-bench.log" 2>&1 \
    || { tail -30 "$work/build-bench.log" >&2; exit 1; }

bindproxy_ok=0
if [[ -f "$repo/src/BindProxy/BindProxy.csproj" ]]; then
    log "building BindProxy"
    if run_fg dotnet build -c Release --nologo -v q "$repo/src/BindProxy" >"$work/build-proxy.log" 2>&1; then
        bindproxy_ok=1
    else
        tail -15 "$work/build-proxy.log" >&2
    fi
fi

# ---- 3. contenders and configs ---------------------------------------------------------------
contenders=()
for c in "${all_contenders[@]}"; do
    if [[ -n "$only" && ",$only," != *",$c,"* ]]; then continue; fi
    contenders+=("$c")
done

write_configs() { # upstream_port: configs for every proxy, all forwarding to 127.0.0.1:upstream_port
    local up=$1
    mkdir -p "$work/nginx"
    haproxy_config "${listen_port[haproxy]}" "$source_addr" "$up" >"$work/haproxy.cfg"
    bindproxy_config "$bindproxy_log" >"$work/bindproxy.json"
    local load_stream=""
    [[ -f /usr/lib/nginx/modules/ngx_stream_module.so ]] && load_stream="load_module /usr/lib/nginx/modules/ngx_stream_module.so;"
    cat >"$work/nginx/nginx.conf" <<EOF
$load_stream
daemon off;
worker_processes auto;
worker_rlimit_nofile $nofile;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections $nofile; }
stream {
    server {
        listen 127.0.0.1:${listen_port[nginx]};
        proxy_pass 127.0.0.1:$up;
        proxy_bind $source_addr;
        proxy_connect_timeout 5s;
        proxy_timeout 1h;
    }
}
EOF
}

start_contender() { # name upstream_port -> 0 if listening
    local c=$1 up=$2 port=${listen_port[$1]}
    case "$c" in
        direct) return 0 ;;
        haproxy) start_bg haproxy "$work/haproxy.log" haproxy -db -f "$work/haproxy.cfg" ;;
        nginx) start_bg nginx "$work/nginx.log" nginx -p "$work/nginx" -e "$work/nginx/error.log" -c "$work/nginx/nginx.conf" ;;
        # socat's default backlog is 5; 4096 matches the kernel's somaxconn.
        socat) start_bg socat "$work/socat.log" socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr,backlog=4096" "TCP:127.0.0.1:$up,bind=$source_addr" ;;
        bindproxy) start_bg bindproxy "$work/bindproxy.log" dotnet "$proxy_dll" --config "$work/bindproxy.json" \
            --listen "127.0.0.1:$port" --upstream "127.0.0.1:$up" --source "$source_addr" ;;
        bindproxy-pipes) start_bg bindproxy-pipes "$work/bindproxy-pipes.log" dotnet "$proxy_dll" --config "$work/bindproxy.json" \
            --listen "127.0.0.1:$port" --upstream "127.0.0.1:$up" --source "$source_addr" --engine pipes ;;
        before) start_bg before "$work/before.log" dotnet "$baseline_dll" --config "$work/bindproxy.json" \
            --listen "127.0.0.1:$port" --upstream "127.0.0.1:$up" --source "$source_addr" ;;
        before-pipes) start_bg before-pipes "$work/before-pipes.log" dotnet "$baseline_dll" --config "$work/bindproxy.json" \
            --listen "127.0.0.1:$port" --upstream "127.0.0.1:$up" --source "$source_addr" --engine pipes ;;
    esac
    if ! wait_listen "$port" "$c"; then
        log "$c did not start; last lines of its log:"
        tail -5 "$work/$c.log" >&2 || true
        stop_bg "$c"
        return 1
    fi
}

target_of() { # contender upstream_port
    if [[ $1 == direct ]]; then echo "127.0.0.1:$2"; else echo "127.0.0.1:${listen_port[$1]}"; fi
}

# Starts every contender for one upstream; drops those that fail from this phase.
phase_contenders=()
start_phase() { # upstream_port
    write_configs "$1"
    phase_contenders=()
    local c
    for c in "${contenders[@]}"; do
        if start_contender "$c" "$1"; then phase_contenders+=("$c"); else note "$c skipped: it did not start (upstream port $1)"; fi
    done
}

stop_phase() {
    local c
    for c in "${contenders[@]}"; do stop_bg "$c"; done
}

# Round r visits the contenders starting at offset r, so no contender always runs first or last.
rotated() { # round
    local n=${#phase_contenders[@]} i
    for ((i = 0; i < n; i++)); do echo "${phase_contenders[(($1 + i) % n)]}"; done
}

for port in "$echo_port" "$iperf_port" "$fair_echo_port" "${listen_port[haproxy]}" "${listen_port[nginx]}" "${listen_port[socat]}" "${listen_port[bindproxy]}" "${listen_port[bindproxy-pipes]}" "${listen_port[before]}" "${listen_port[before-pipes]}"; do
    if [[ -n "$(ss -Hltn "sport = :$port")" ]]; then
        echo "port $port is already in use; set BENCH_PORT_BASE to another base" >&2
        exit 1
    fi
done

without_bindproxy() { # drops bindproxy and bindproxy-pipes from the contenders
    local kept=() c
    for c in "${contenders[@]}"; do [[ $c == bindproxy* ]] || kept+=("$c"); done
    contenders=("${kept[@]}")
}
if [[ " ${contenders[*]} " == *" bindproxy"* ]]; then
    if [[ $bindproxy_ok == 0 || ! -f "$proxy_dll" ]]; then
        without_bindproxy
        note "bindproxy skipped: it did not build"
    else
        # Check that it answers the quick-mode command.
        write_configs "$echo_port"
        if start_contender bindproxy "$echo_port"; then
            stop_bg bindproxy
        else
            without_bindproxy
            note "bindproxy skipped: 'BindProxy --listen --upstream --source' did not listen"
        fi
    fi
fi

# ---- environment ---------------------------------------------------------------------------
: >"$jsonl"
record_env mode "$([[ $quick == 1 ]] && echo quick || echo full), $rounds round(s), tests $tests; iperf3 ${iperf_secs}s per run, pingpong $ping_count x 64 B, churn $churn_secs x $churn_concurrency workers x $((rounds * churn_passes)) runs, fairness $fair_pingers pingers every $fair_interval beside $fair_bulk bulk streams for $fair_secs, hold $hold_count x $hold_secs from a fresh proxy and after $hold_warmup warm-up connections; bindproxy logs at $bindproxy_log"
record_env machine "$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), kernel $(uname -r), $(free -g | awk '/Mem:/{print $2}') GiB"
record_env limits "RLIMIT_NOFILE $nofile soft and hard for every process; tcp_tw_reuse=$(sysctl -n net.ipv4.tcp_tw_reuse), ip_local_port_range=$(sysctl -n net.ipv4.ip_local_port_range | xargs), somaxconn=$(sysctl -n net.core.somaxconn)"
record_env versions "$(haproxy -v | head -1 | cut -d' ' -f1-3); $(nginx -v 2>&1 | cut -d' ' -f3); socat $(socat -V | sed -n 's/^socat version \([^ ]*\).*/\1/p'); $(iperf3 --version | head -1 | cut -d' ' -f1-2); dotnet $(dotnet --version)"
record_env bindproxy "$(git -C "$repo" log -1 --format='%h %s' 2>/dev/null || echo unknown)$([[ " ${contenders[*]} " == *" bindproxy "* ]] || echo ' (not measured)')"
record_env "load average at start" "$(cut -d' ' -f1-3 /proc/loadavg)"
if awk -v l="$(cut -d' ' -f1 /proc/loadavg)" -v n="$(nproc)" 'BEGIN { exit !(l > n) }'; then
    note "the machine was busy before the run (1-minute load $(cut -d' ' -f1 /proc/loadavg) on $(nproc) cores): expect noisy figures"
fi
log "contenders: ${contenders[*]}; $rounds round(s)"

# ---- servers -------------------------------------------------------------------------------
start_bg iperf3 "$work/iperf3.log" iperf3 -s -B 127.0.0.1 -p "$iperf_port"
start_bg echo "$work/echo.log" dotnet "$bench_dll" echo-server --listen "127.0.0.1:$echo_port"
wait_listen "$iperf_port" iperf3 || { cat "$work/iperf3.log" >&2; exit 1; }
wait_listen "$echo_port" echo || { cat "$work/echo.log" >&2; exit 1; }
if wants fairness; then
    start_bg fair-echo "$work/fair-echo.log" dotnet "$bench_dll" echo-server --listen "127.0.0.1:$fair_echo_port" --thread-per-connection
    wait_listen "$fair_echo_port" fair-echo || { cat "$work/fair-echo.log" >&2; exit 1; }
fi

# ---- a. throughput and d. CPU per GB -------------------------------------------------------
if wants throughput; then
log "throughput: iperf3 ${iperf_secs}s runs"
start_phase "$iperf_port"
for ((r = 1; r <= rounds; r++)); do
    for mode in "1 false" "1 true" "8 false" "8 true"; do
        read -r streams reverse <<<"$mode"
        for c in $(rotated "$r"); do
            args=(-c 127.0.0.1 -p "${listen_port[$c]}" -t "$iperf_secs" -P "$streams" -J -i 0 --connect-timeout 3000)
            [[ $c == direct ]] && args[3]=$iperf_port
            [[ $reverse == true ]] && args+=(-R)
            cpu_before="" cpu_after="" procs=0
            if [[ $c != direct ]]; then
                procs=$(pgrep -c -g "${pgid_of[$c]}" || true)
                cpu_before=$(bench procstat --pid "${pgid_of[$c]}") || true
            fi
            run_fg timeout $((iperf_secs + 20)) iperf3 "${args[@]}" >"$work/iperf.json" 2>"$work/iperf.err" || true
            if [[ $c != direct ]]; then
                wait_group_settled "$c" "$procs"
                cpu_after=$(bench procstat --pid "${pgid_of[$c]}") || true
            fi
            record "{\"test\":\"iperf\",\"contender\":\"$c\",\"round\":$r,\"streams\":$streams,\"reverse\":$reverse,\"cpu_before\":${cpu_before:-null},\"cpu_after\":${cpu_after:-null},\"result\":$(json_or_null "$work/iperf.json")}"
            gbps=$(grep -A8 '"sum_received"' "$work/iperf.json" | sed -n 's/.*"bits_per_second":[[:space:]]*\([0-9.e+]*\).*/\1/p' | head -1)
            log "  round $r  $c  P$streams$([[ $reverse == true ]] && echo ' -R')  $(awk -v b="${gbps:-0}" 'BEGIN { printf "%.2f Gbit/s", b / 1e9 }')"
        done
    done
done
stop_phase
fi

# ---- b. latency, c. churn and f. fairness -----------------------------------------------------
if wants latency || wants churn; then
log "latency and churn through every contender to the echo server"
start_phase "$echo_port"
if wants latency; then
for ((r = 1; r <= rounds; r++)); do
    for c in $(rotated "$r"); do
        run_fg bench pingpong --target "$(target_of "$c" "$echo_port")" --size 64 --count "$ping_count" --warmup "$ping_warmup" >"$work/out.json" 2>>"$work/bench.err" || true
        out=$(cat "$work/out.json")
        record "{\"test\":\"pingpong\",\"contender\":\"$c\",\"round\":$r,\"result\":${out:-null}}"
        log "  round $r  $c  pingpong $(sed -n 's/.*"p50_us":\([0-9.]*\).*"p99_us":\([0-9.]*\).*/p50 \1 µs, p99 \2 µs/p' <<<"$out")"
    done
done
fi
if wants churn; then
for ((r = 1; r <= rounds * churn_passes; r++)); do
    for c in $(rotated "$r"); do
        # 1 s unmeasured first, as pingpong has its warm-up: steady state, not a cold start.
        run_fg bench churn --target "$(target_of "$c" "$echo_port")" --duration 1s --concurrency "$churn_concurrency" >/dev/null 2>>"$work/bench.err" || true
        run_fg bench churn --target "$(target_of "$c" "$echo_port")" --duration "$churn_secs" --concurrency "$churn_concurrency" >"$work/out.json" 2>>"$work/bench.err" || true
        out=$(cat "$work/out.json")
        record "{\"test\":\"churn\",\"contender\":\"$c\",\"round\":$r,\"result\":${out:-null}}"
        log "  round $r  $c  churn $(sed -n 's/.*"failed":\([0-9]*\),"connections_per_second":\([0-9.]*\).*/\2 conn\/s, \1 failed/p' <<<"$out")"
    done
done
fi
stop_phase
fi

if wants fairness; then
# Its own upstream: the async echo server serves a connection whose data keeps arriving without
# yielding, so pings through it would measure the echo server, not the proxy.
log "fairness: pingers beside bulk streams through every contender"
start_phase "$fair_echo_port"
for ((r = 1; r <= rounds; r++)); do
    for c in $(rotated "$r"); do
        run_fg bench fairness --target "$(target_of "$c" "$fair_echo_port")" --bulk "$fair_bulk" --pingers "$fair_pingers" \
            --interval "$fair_interval" --duration "$fair_secs" --warmup 1s >"$work/out.json" 2>>"$work/bench.err" || true
        out=$(cat "$work/out.json")
        record "{\"test\":\"fairness\",\"contender\":\"$c\",\"round\":$r,\"result\":${out:-null}}"
        log "  round $r  $c  fairness $(sed -n 's/.*"p50_us":\([0-9.]*\).*"p99_us":\([0-9.]*\).*"max_us":\([0-9.]*\),"bulk_gbps":\([0-9.]*\).*/ping p50 \1 µs, p99 \2 µs, max \3 µs; bulk \4 Gbit\/s/p' <<<"$out")"
    done
done
stop_phase
fi

# ---- e. idle connections: a fresh proxy for every run, so memory starts from the same place ----
# Two runs per contender and round: "hold-fresh" measures the first connections the process ever
# serves (what a user starting the proxy for a load test pays: code compiled on first use, threads
# started under the burst, the GC heap growing), "hold" the marginal cost after a warm-up.
phase_contenders=("${contenders[@]}")
hold_run() { # test contender round count parallel [warmup]
    local test=$1 c=$2 r=$3 count=$4 parallel=$5 warmup=${6:-0} pid_args=() out
    if ! start_contender "$c" "$echo_port"; then
        note "$c skipped in $test round $r: it did not start"
        return 0
    fi
    sleep 0.5
    [[ $c != direct ]] && pid_args=(--pid "${pgid_of[$c]}")
    run_fg bench hold --targets "$(target_of "$c" "$echo_port")" --count "$count" --parallel "$parallel" \
        --bytes 16 --hold "$hold_secs" --timeout 10s --warmup "$warmup" "${pid_args[@]}" >"$work/out.json" 2>>"$work/bench.err" || true
    out=$(cat "$work/out.json")
    record "{\"test\":\"$test\",\"contender\":\"$c\",\"round\":$r,\"result\":${out:-null}}"
    log "  $test round $r  $c  $(sed -n 's/.*"verified":\([0-9]*\).*"open_ms":\([0-9.]*\).*"rss_per_conn_kb":\([0-9.null-]*\).*/verified \1, open \2 ms, \3 KB\/conn/p' <<<"$out")"
    stop_bg "$c"
}
if wants hold; then
log "idle connections: $hold_count held for $hold_secs"
for ((r = 1; r <= rounds; r++)); do
    for c in $(rotated "$r"); do
        hold_run hold-fresh "$c" "$r" "$hold_count" 128 0
        hold_run hold "$c" "$r" "$hold_count" 128 "$hold_warmup"
    done
done
fi

# ---- max-conn: how many connections one proxy process holds under the fd limit -------------
if [[ $max_conn == 1 ]]; then
    log "max-conn: $max_conn_count connections through one process"
    for c in bindproxy haproxy nginx; do
        [[ " ${contenders[*]} " == *" $c "* ]] || continue
        hold_run maxconn "$c" 1 "$max_conn_count" 256
    done
fi

# ---- report --------------------------------------------------------------------------------
stop_bg echo
stop_bg fair-echo
stop_bg iperf3
record_env "load average at end" "$(cut -d' ' -f1-3 /proc/loadavg) (over 2 on 2 cores means something else competed for the CPU)"
log "done in $((SECONDS - started_at)) s"
bench report --input "$jsonl" --output "$report" --title "BindProxy benchmark $stamp"
echo
echo "written: $report"

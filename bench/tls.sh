#!/usr/bin/env bash
# TLS toward the upstream: BindProxy (a Tcp route with "Tls") beside HAProxy (`ssl` on its
# server line), both plaintext to the client and TLS to the same stunnel terminators, which hand
# the plaintext to iperf3 and to the bench tool's echo server.
#
#   bench/tls.sh [--rounds N] [--secs N]
#
#   --rounds N   alternated rounds (default 3)
#   --secs N     seconds per iperf3 run and per churn run (default 5)
#
# Per round and contender: iperf3 throughput (1 stream, client to server), and the bench tool's
# churn (16 workers: connect, one 64-byte exchange, close), in which every connection is a new
# TLS handshake with the terminator. The certificates are made by `bindproxy cert`; both proxies
# verify the terminator's certificate against its CA.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$script_dir/.." && pwd)
rounds=3 secs=5
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) rounds=${2:?}; shift ;;
        --secs) secs=${2:?}; shift ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

for tool in haproxy stunnel4 iperf3; do
    command -v "$tool" >/dev/null || { echo "needs $tool (apt-get install $tool)" >&2; exit 1; }
done

port_base=${BENCH_PORT_BASE:-18800}
echo_port=$((port_base + 0)) iperf_port=$((port_base + 1))
tls_echo=$((port_base + 10)) tls_iperf=$((port_base + 11))
declare -A echo_at=([haproxy]=$((port_base + 20)) [bindproxy]=$((port_base + 30)))
declare -A iperf_at=([haproxy]=$((port_base + 21)) [bindproxy]=$((port_base + 31)))
source_addr=127.0.0.2
work=$(mktemp -d /tmp/bindproxy-tls-bench.XXXXXX)
pids=()
trap stop_all EXIT
# shellcheck source=lib.sh
source "$script_dir/lib.sh"

log "building the bench tool and BindProxy (Release)"
dotnet build -c Release --nologo -v q "$repo/bench/BindProxy.Bench" >"$work/build.log" 2>&1 || { tail -20 "$work/build.log" >&2; exit 1; }
dotnet build -c Release --nologo -v q "$repo/src/BindProxy" >>"$work/build.log" 2>&1 || { tail -20 "$work/build.log" >&2; exit 1; }
bench_dll="$repo/bench/BindProxy.Bench/bin/Release/net10.0/BindProxy.Bench.dll"
proxy_dll="$repo/src/BindProxy/bin/Release/net10.0/BindProxy.dll"

log "certificates (bindproxy cert)"
printf '{ "BindProxy": { "Routes": {} } }\n' >"$work/empty.json"
dotnet "$proxy_dll" cert --config "$work/empty.json" --out "$work/certs" >"$work/cert.log"
cat "$work/certs/proxy.pem" "$work/certs/proxy-key.pem" >"$work/certs/combined.pem"

log "upstreams: echo server, iperf3, and a stunnel TLS terminator in front of each"
start_bg "$work/echo.log" dotnet "$bench_dll" echo-server --listen "127.0.0.1:$echo_port"
start_bg "$work/iperf3.log" iperf3 -s -B 127.0.0.1 -p "$iperf_port"
cat >"$work/stunnel.conf" <<CFG
foreground = yes
pid =
debug = 3
[echo]
accept = 127.0.0.1:$tls_echo
connect = 127.0.0.1:$echo_port
cert = $work/certs/combined.pem
[iperf]
accept = 127.0.0.1:$tls_iperf
connect = 127.0.0.1:$iperf_port
cert = $work/certs/combined.pem
CFG
start_bg "$work/stunnel.log" stunnel4 "$work/stunnel.conf"
for p in "$echo_port" "$iperf_port" "$tls_echo" "$tls_iperf"; do wait_listen "$p"; done

log "contenders"
cat >"$work/haproxy.cfg" <<CFG
global
    log stderr format raw local0 err
defaults
    mode tcp
    log global
    timeout connect 5s
    timeout client 1h
    timeout server 1h
frontend echo
    bind 127.0.0.1:${echo_at[haproxy]}
    default_backend echo
frontend iperf
    bind 127.0.0.1:${iperf_at[haproxy]}
    default_backend iperf
backend echo
    source $source_addr
    server s localhost:$tls_echo ssl verify required ca-file $work/certs/ca.pem sni str(localhost)
backend iperf
    source $source_addr
    server s localhost:$tls_iperf ssl verify required ca-file $work/certs/ca.pem sni str(localhost)
CFG
start_bg "$work/haproxy.log" haproxy -db -f "$work/haproxy.cfg"
cat >"$work/bindproxy.json" <<CFG
{
  "Serilog": { "MinimumLevel": "Warning" },
  "Admin": { "Listen": "off" },
  "BindProxy": { "Routes": {
    "echo": { "Listen": "127.0.0.1:${echo_at[bindproxy]}", "Upstream": "localhost:$tls_echo", "Source": "$source_addr", "Tls": { "CaFile": "$work/certs/ca.pem" } },
    "iperf": { "Listen": "127.0.0.1:${iperf_at[bindproxy]}", "Upstream": "localhost:$tls_iperf", "Source": "$source_addr", "Tls": { "CaFile": "$work/certs/ca.pem" } }
  } }
}
CFG
start_bg "$work/bindproxy.log" dotnet "$proxy_dll" --config "$work/bindproxy.json"
for c in haproxy bindproxy; do wait_listen "${echo_at[$c]}"; wait_listen "${iperf_at[$c]}"; done

printf '| round | contender | iperf3 Gbit/s (TLS to upstream) | churn conn/s (a TLS handshake each) | churn p99 ms | failed |\n|---|---|---|---|---|---|\n' >"$work/table.md"
for ((r = 1; r <= rounds; r++)); do
    order=(haproxy bindproxy); ((r % 2 == 0)) && order=(bindproxy haproxy)
    for c in "${order[@]}"; do
        log "round $r: $c"
        iperf3 -c 127.0.0.1 -p "${iperf_at[$c]}" -t "$secs" -J >"$work/iperf.json" 2>/dev/null || true
        gbps=$(python3 -c "import json,sys; d=json.load(open('$work/iperf.json')); print(round(d['end']['sum_received']['bits_per_second']/1e9, 2))" 2>/dev/null || echo "-")
        dotnet "$bench_dll" churn --target "127.0.0.1:${echo_at[$c]}" --duration "${secs}s" --concurrency 16 >"$work/churn.json" 2>/dev/null || true
        read -r rate p99 failed < <(python3 -c "import json; d=json.load(open('$work/churn.json')); print(round(d['connections_per_second']), d['p99_ms'], d['failed'])" 2>/dev/null || echo "- - -")
        printf '| %d | %s | %s | %s | %s | %s |\n' "$r" "$c" "$gbps" "$rate" "$p99" "$failed" >>"$work/table.md"
    done
done
echo "## TLS toward the upstream ($(haproxy -v | head -1 | cut -d' ' -f1-3); stunnel4 $(dpkg-query -W -f "${Version}" stunnel4 2>/dev/null); dotnet $(dotnet --version); $(nproc) cores)"
cat "$work/table.md"

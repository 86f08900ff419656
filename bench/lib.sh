# Helpers shared by the bench scripts that start servers in the background (sourced, not run).
# The sourcing script sets `work` (its scratch directory) and `pids=()` first.

log() { printf '[%4ds] %s\n' "$SECONDS" "$*" >&2; }

# start_bg LOGFILE COMMAND...: runs COMMAND in its own process group, remembered for stop_all.
start_bg() {
    local logfile=$1; shift
    setsid "$@" >"$logfile" 2>&1 &
    pids+=($!)
}

# wait_listen PORT: 0 once something listens on PORT, within 20 s.
wait_listen() {
    for _ in $(seq 1 200); do
        ss -Hltn "sport = :$1" | grep -q . && return 0
        sleep 0.1
    done
    echo "nothing listens on $1" >&2; return 1
}

# stop_all: stops every process group start_bg began and removes the scratch directory.
stop_all() {
    for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
    rm -rf "$work"
}

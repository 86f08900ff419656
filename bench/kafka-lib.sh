# Helpers shared by the Kafka bench scripts (sourced, not run). The sourcing script sets `demo`
# (BindProxy.Demo.dll), `work` (its scratch directory) and `pids=()` first.

# start_cluster NAME [PARTITIONS]: a one-broker mock cluster with topic `bench`; sets $bootstrap and
# $cluster_fd (its stdin, for commands such as `advertise`, held open until the script ends).
start_cluster() {
  mkfifo "$work/$1.in"
  setsid dotnet "$demo" mock-cluster --brokers 1 --topic bench --partitions "${2:-1}" < "$work/$1.in" > "$work/$1.log" 2>&1 &
  pids+=($!)
  exec {cluster_fd}> "$work/$1.in"
  for _ in $(seq 200); do grep -q bootstrap "$work/$1.log" && break; sleep 0.1; done
  bootstrap=$(grep -o 'bootstrap [0-9.:]*' "$work/$1.log" | head -1 | cut -d' ' -f2)
}

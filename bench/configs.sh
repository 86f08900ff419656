# Contender configs shared by bench/run.sh and bench/churn-profile.sh (sourced; prints to stdout).

haproxy_config() { # listen_port source_address upstream_port
    cat <<CFG
global
    # No maxconn: HAProxy derives it from RLIMIT_NOFILE, as the others use what they are given.
    log stderr format raw local0 err
defaults
    mode tcp
    log global
    timeout connect 5s
    timeout client 1h
    timeout server 1h
frontend fe
    bind 127.0.0.1:$1
    default_backend be
backend be
    source $2
    server upstream 127.0.0.1:$3
CFG
}

# The route comes from the command line (--listen, --upstream, --source); the file only sets
# logging, to Warning unless told otherwise, as the other proxies log only errors and warnings
# here (a line per connection would cost churn).
bindproxy_config() { # [level]
    cat <<CFG
{
  "Serilog": {
    "MinimumLevel": { "Default": "${1:-Warning}" },
    "WriteTo": [ { "Name": "Console" } ]
  }
}
CFG
}

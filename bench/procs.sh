# Sourced by the benchmark scripts that start their own servers
# (pubsub_compare.sh, device_telemetry.sh): a temporary directory, the
# PIDs they start (stopped, by PID only, on exit), and free loopback
# ports read from /proc/net. Not a benchmark itself.

# One socket per simulated client or subscriber.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

TMP=$(mktemp -d)
PIDS=
cleanup() {
  for p in $PIDS; do kill "$p" 2>/dev/null || true; done
  for p in $PIDS; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Is a socket bound to local port $2 in /proc/net/$1 (tcp or udp)?
bound() {
  hex=$(printf '%04X' "$2")
  awk -v p=":$hex\$" '$2 ~ p { f = 1 } END { exit !f }' \
    "/proc/net/$1" "/proc/net/${1}6" 2>/dev/null
}

# A port free for both TCP and UDP, from $1 upwards.
free_port() {
  p=$1
  while bound tcp "$p" || bound udp "$p"; do p=$((p + 1)); done
  echo "$p"
}

# await PID tcp|udp PORT NAME LOG: waits up to 5 s until PID binds PORT;
# exits with NAME's log if it dies or never does.
await() {
  i=0
  until bound "$2" "$3"; do
    if ! kill -0 "$1" 2>/dev/null; then
      echo "$4 exited; its log:"
      cat "$5"
      exit 1
    fi
    i=$((i + 1))
    [ $i -lt 50 ] || { echo "$4 does not listen on $3"; exit 1; }
    sleep 0.1
  done
}

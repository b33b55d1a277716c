# Sourced by the tests that run libcoap's coap-server-notls (not a test
# itself): finds a free loopback port and starts the server there. The
# sourcing script sets SERVER and T (a scratch directory) first.

listening() {
  hex=$(printf '%04X' "$1")
  awk -v p=":$hex\$" '$2 ~ p { found = 1 } END { exit !found }' \
    /proc/net/udp /proc/net/udp6 2>/dev/null
}

# Is local port $1 taken, for UDP or TCP? (The server binds both.)
port_used() {
  hex=$(printf '%04X' "$1")
  awk -v p=":$hex\$" '$2 ~ p { found = 1 } END { exit !found }' \
    /proc/net/udp /proc/net/udp6 /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# start_server BASE DYNAMIC: starts $SERVER on a free port from BASE on,
# allowing DYNAMIC resources created by PUT; sets SRV_PID and PORT. libcoap binds
# UDP with SO_REUSEADDR, so a UDP bind succeeds even on a port another
# libcoap server holds: its TCP bind on the same port tells ("created
# TCP endpoint" in the log). On a clash, stop it and try the next port.
start_server() {
  PORT=$(($1 + $$ % 10000))
  for try in 1 2 3 4 5 6 7 8 9 10; do
    while port_used "$PORT"; do PORT=$((PORT + 1)); done
    : >"$T/server.log"
    "$SERVER" -A 127.0.0.1 -p "$PORT" -d "$2" -v 7 >>"$T/server.log" 2>&1 &
    SRV_PID=$!
    i=0
    while [ "$i" -lt 50 ] && kill -0 "$SRV_PID" 2>/dev/null; do
      if grep -aq "created TCP  *endpoint" "$T/server.log" &&
        listening "$PORT"; then
        return 0
      fi
      grep -aq "cannot create TCP endpoint" "$T/server.log" && break
      i=$((i + 1))
      sleep 0.1
    done
    kill "$SRV_PID" 2>/dev/null
    wait "$SRV_PID" 2>/dev/null
    SRV_PID=
    PORT=$((PORT + 1))
  done
  echo "FAIL: could not start $SERVER"
  exit 1
}

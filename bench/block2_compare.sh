#!/bin/sh
# A 16 MiB Block2 download over loopback (RFC 7959): coapkit's library
# server (coap-block2-server, the representation given by reference and
# kept for the transfer) against libcoap's coap-server-notls serving the
# same bytes (created there with a PUT, its -d option), each fetched by
# our client (coap get) and by libcoap's coap-client-notls, ROUNDS times,
# in the same run. Server CPU is utime + stime of the server process over
# the downloads, from /proc. BASE_SERVER, when set, is a coap-block2-server
# built against an older library (the "before" of a change) and is
# measured the same way.
#
# Usage: block2_compare.sh COAP_BLOCK2_SERVER COAP [ROUNDS] [SIZE]
# Prints one line per server and client:
#   block2 server=S client=C size=N rounds=R wall_s=W server_cpu_s=U ok=K
set -eu
SERVER=$1
COAP=$2
ROUNDS=${3:-3}
SIZE=${4:-16777216}
T=$(mktemp -d)
PID=
cleanup() {
  if [ -n "$PID" ]; then
    kill "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  rm -rf "$T"
}
trap cleanup EXIT

now() { date +%s.%N; }
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

# Starts a coap-block2-server binary; sets PID and PORT.
start_ck() {
  "$1" "$SIZE" "$T/expect" >"$T/srv.out" 2>&1 &
  PID=$!
  i=0
  while ! grep -q '^port ' "$T/srv.out" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 100 ] || { echo "server did not start" >&2; exit 1; }
    sleep 0.1
  done
  PORT=$(awk '/^port /{print $2}' "$T/srv.out")
}

start_libcoap() {
  PORT=$(( 20000 + $$ % 20000 ))
  coap-server-notls -A 127.0.0.1 -p "$PORT" -d 4 >"$T/lsrv.log" 2>&1 &
  PID=$!
  sleep 0.5
  coap-client-notls -B 600 -m put -b 1024 -f "$T/expect" \
    "coap://127.0.0.1:$PORT/big" >/dev/null
}

stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; }

# measure NAME CLIENT: ROUNDS downloads of /big from the running server.
measure() {
  good=0
  c0=$(ticks "$PID")
  t0=$(now)
  r=0
  while [ $r -lt "$ROUNDS" ]; do
    rm -f "$T/out"
    if [ "$2" = coap ]; then
      timeout 600 "$COAP" get "coap://127.0.0.1:$PORT/big" >"$T/out" || true
    else
      timeout 600 coap-client-notls -B 600 -o "$T/out" \
        "coap://127.0.0.1:$PORT/big" >/dev/null 2>&1 || true
    fi
    cmp -s "$T/expect" "$T/out" && good=$((good + 1))
    r=$((r + 1))
  done
  t1=$(now)
  c1=$(ticks "$PID")
  awk -v s="$1" -v c="$2" -v n="$SIZE" -v r="$ROUNDS" -v t0="$t0" -v t1="$t1" \
    -v c0="$c0" -v c1="$c1" -v hz="$hz" -v ok="$good" 'BEGIN {
    printf "block2 server=%s client=%s size=%d rounds=%d wall_s=%.3f " \
      "server_cpu_s=%.3f ok=%d\n", s, c, n, r, (t1 - t0) / r,
      (c1 - c0) / hz / r, ok }'
}

start_ck "$SERVER"
measure coapkit coap
measure coapkit coap-client
stop
if [ -n "${BASE_SERVER:-}" ]; then
  start_ck "$BASE_SERVER"
  measure coapkit-before coap
  measure coapkit-before coap-client
  stop
fi
if command -v coap-server-notls >/dev/null; then
  start_libcoap
  measure libcoap coap
  measure libcoap coap-client
  stop
fi

#!/usr/bin/env bash
# Large representations from a library server (RFC 7959 §2.4, §3.2):
# coap-block2-server's 16 MiB /big, given by reference, fetched by our
# client (coap) and by libcoap's coap-client-notls, byte for byte, with
# the handler run once per transfer and every payload released at its
# end; a 3,000-byte POST to /echo comes back whole through Block1 and
# Block2 with both clients (it used to get 4.02 for its second block).
# Usage: block2_peers.sh PATH_TO_COAP_BLOCK2_SERVER PATH_TO_COAP
set -u
SERVER=$1
COAP=$2
T=$(mktemp -d)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

"$SERVER" 16777216 "$T/expect" >"$T/srv.out" 2>&1 &
PID=$!
for _ in $(seq 50); do
  grep -q '^port ' "$T/srv.out" 2>/dev/null && break
  sleep 0.1
done
PORT=$(awk '/^port /{print $2}' "$T/srv.out")
[ -n "$PORT" ] || fail "the server did not start: $(cat "$T/srv.out")"
U=coap://127.0.0.1:$PORT

calls_are() {
  got=$(timeout 10 "$COAP" get "$U/calls") || fail "GET /calls"
  [ "$got" = "$1" ] || fail "/calls is '$got', not '$1' (runs, held)"
}

timeout 120 "$COAP" get "$U/big" >"$T/ours" || fail "coap get /big"
cmp -s "$T/expect" "$T/ours" || fail "coap: /big differs"
calls_are "1 0"
ok "coap: 16 MiB byte for byte, one handler run, payload released"

timeout 120 coap-client-notls -B 100 -o "$T/theirs" "$U/big" ||
  fail "coap-client-notls /big"
cmp -s "$T/expect" "$T/theirs" || fail "coap-client-notls: /big differs"
calls_are "2 0"
ok "coap-client-notls: 16 MiB byte for byte, one handler run"

timeout 120 coap-client-notls -B 100 -b 256 -o "$T/theirs256" "$U/big" ||
  fail "coap-client-notls -b 256 /big"
cmp -s "$T/expect" "$T/theirs256" || fail "coap-client-notls -b 256 differs"
calls_are "3 0"
ok "coap-client-notls with 256-byte blocks (65,536 of them), one run"

head -c 3000 /dev/urandom >"$T/body"
timeout 30 "$COAP" post -f "$T/body" "$U/echo" >"$T/echo1" ||
  fail "coap post -f /echo"
cmp -s "$T/body" "$T/echo1" || fail "coap: the echo differs"
ok "coap: POST 3,000 bytes, Block1 up and Block2 down"

timeout 30 coap-client-notls -B 20 -m post -f "$T/body" -b 1024 \
  -o "$T/echo2" "$U/echo" || fail "coap-client-notls -m post /echo"
cmp -s "$T/body" "$T/echo2" || fail "coap-client-notls: the echo differs"
ok "coap-client-notls: POST 3,000 bytes, Block1 up and Block2 down"
calls_are "3 0"

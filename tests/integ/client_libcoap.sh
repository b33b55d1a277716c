#!/bin/sh
# The client library against libcoap's coap-server-notls, on loopback:
# starts the server (-d: PUT and POST create resources; -v 7: it logs
# every PDU and its observers), runs integ_client_libcoap against it, then
# reads the server's log for what only the server can see: the FETCH,
# PATCH and iPATCH requests with their payloads, the NON request, the
# ping, the observers added and removed (our proactive cancels), the
# block numbers of the 1 KiB, 100 KiB and 4 MiB transfers, and that no
# request carries a needless Uri-Port (RFC 7252 §6.4 step 7). Every wait
# is bounded; the server started here is killed by PID on exit.
#
# Usage: client_libcoap.sh PATH/TO/integ_client_libcoap
# Exits 0 on success, 1 on a failure (a missing coap-server-notls too:
# scripts/install-deps installs it, and a skip would hide a broken setup).
set -u

PROG=${1:?usage: client_libcoap.sh PATH/TO/integ_client_libcoap}
SERVER=coap-server-notls
if ! command -v "$SERVER" >/dev/null 2>&1; then
  echo "FAIL: $SERVER not installed (Debian package libcoap3-bin)"
  exit 1
fi

T=$(mktemp -d)
SRV_PID=
cleanup() {
  if [ -n "$SRV_PID" ]; then
    kill "$SRV_PID" 2>/dev/null
    wait "$SRV_PID" 2>/dev/null
  fi
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

FAILED=0
fail() {
  echo "FAIL: $*"
  FAILED=1
}

# Is a UDP socket bound to local port $1? (/proc, so no ss is needed.)
. "$(dirname "$0")/libcoap_server.sh"

# The PDU lines of the server's log (its other lines are timestamped).
pdus() { grep -a '^v:1 ' "$T/server.log"; }

# logged DESCRIPTION REGEX: the server logged a PDU matching REGEX.
logged() {
  pdus | grep -q -- "$2" || fail "server log: no $1"
}

start_server 30000 20
echo "$SERVER on 127.0.0.1:$PORT"

timeout 240 "$PROG" "$PORT" >"$T/out" 2>&1
RC=$?
cat "$T/out"
[ "$RC" -eq 0 ] || fail "integ_client_libcoap exited with $RC"

# What the server received from us.
for m in FETCH PATCH iPATCH; do
  body=$(printf '%s' "$m" | tr 'A-Z' 'a-z')-body
  logged "$m with payload" \
    "^v:1 t:CON c:$m .*Uri-Path:example_data.* :: '$body'\$"
done
logged "NON request" '^v:1 t:NON c:GET '
logged "ping" '^v:1 t:CON c:0\.00 i:[0-9a-f]* {} \[ \]'
logged "RST for the ping" '^v:1 t:RST c:0\.00 '
n=$(pdus | grep '^v:1 t:\(CON\|NON\) c:[A-Za-z]' | grep -c 'Uri-Port:')
[ "$n" -eq 0 ] || fail "$n requests carried a Uri-Port equal to the port"

# Block-wise: the last block of each upload (Block1) and download
# (Block2), with the block size asked for.
for spec in 1024:3:256 102400:99:1024 4194304:4095:1024; do
  size=${spec%%:*}
  rest=${spec#*:}
  last=${rest%%:*}
  bs=${rest#*:}
  logged "PUT of block $last of blk-$size" \
    "^v:1 t:CON c:PUT .*Uri-Path:blk-$size,.*Block1:$last/_/$bs"
  logged "GET of block $last of blk-$size" \
    "^v:1 t:CON c:GET .*Uri-Path:blk-$size,.*Block2:$last/_/$bs"
done

# Observe: the observer the test registered on /time, and its removal by
# our proactive cancel (GET with Observe=1).
tok=$(sed -n 's/^PASS observe: .*token=\([0-9a-f]*\)$/\1/p' "$T/out")
if [ -z "$tok" ]; then
  fail "no observe token in the test's output"
else
  grep -aq "create new subscription" "$T/server.log" ||
    fail "server log: no observer created"
  logged "cancel (Observe:1) with token $tok" \
    "^v:1 t:CON c:GET i:[0-9a-f]* {$tok} \[ Observe:1, Uri-Path:time \]"
  grep -aq "removed subscription .* with token '$tok'" "$T/server.log" ||
    fail "server log: observer $tok was not removed"
fi

if [ "$FAILED" -ne 0 ]; then
  echo "--- last lines of the server log:"
  grep -av ' :: ' "$T/server.log" | tail -n 20
  exit 1
fi
echo "PASS: the server saw the methods, NON, ping, blocks and the cancel"

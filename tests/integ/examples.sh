#!/bin/sh
# The examples in examples/ against libcoap's coap-server-notls on
# loopback, with their output checked: discover lists the server's links,
# put creates and then changes a resource that get reads back, get shows
# a 4.04 as a code (exit 0) and an unreachable server as an error (exit
# 1), and observe prints the notifications asked for and then cancels,
# which the server's log (-v 7) must show, or fails on a missing
# resource. Every run is bounded by
# timeout(1); the server started here is killed by PID on exit.
#
# poll_loop embeds the library in its own poll() loop: it fetches on
# command while libcoap's coap-client fetches from it.
#
# Usage: examples.sh GET PUT OBSERVE DISCOVER POLL_LOOP  (example_* programs)
set -u

if [ $# -ne 5 ]; then
  echo "usage: examples.sh EXAMPLE_GET EXAMPLE_PUT EXAMPLE_OBSERVE" \
    "EXAMPLE_DISCOVER EXAMPLE_POLL_LOOP"
  exit 2
fi
GET=$1 PUT=$2 OBSERVE=$3 DISCOVER=$4 POLL_LOOP=$5
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

fail() {
  echo "FAIL: $*"
  [ -n "${OUT:-}" ] && printf '%s\n' "--- output:" "$OUT"
  exit 1
}

. "$(dirname "$0")/libcoap_server.sh"

# run PROGRAM ARGS...: sets OUT (stdout and stderr) and RC.
run() {
  OUT=$(timeout 30 "$@" 2>&1)
  RC=$?
}

# has LINE: OUT has exactly this line.
has() {
  printf '%s\n' "$OUT" | grep -qxF -- "$1" || fail "no line '$1'"
}

start_server 40000 10
U=coap://127.0.0.1:$PORT

# 1. Discovery: one line per link of libcoap's /.well-known/core.
run "$DISCOVER" "$U"
[ "$RC" -eq 0 ] || fail "example_discover exited $RC"
has "</> rt=- ct=0"
has "</time> rt=ticks ct=0 obs"
has "</async> rt=- ct=0"
has "</example_data> rt=- ct=0 obs"
echo "ok 1 discover: $(printf '%s\n' "$OUT" | wc -l) links"

# 2. PUT creates a resource, PUT again changes it, GET reads it back.
run "$PUT" "$U/greeting" "Hello from coapkit"
[ "$RC" -eq 0 ] || fail "example_put exited $RC"
has "2.01 Created"
run "$PUT" "$U/greeting" "Hello again"
[ "$RC" -eq 0 ] || fail "example_put exited $RC"
has "2.04 Changed"
run "$GET" "$U/greeting"
[ "$RC" -eq 0 ] || fail "example_get exited $RC"
[ "$OUT" = "2.05 Content
Hello again" ] || fail "example_get printed something else"
echo "ok 2 put and get"

# 3. Discovery now lists the new resource too.
run "$DISCOVER" "$U"
has "</greeting> rt=- ct=0 obs"
echo "ok 3 discover the new resource"

# 4. A 4.04 is an answer, not an error.
run "$GET" "$U/no/such/resource"
[ "$RC" -eq 0 ] || fail "example_get of a missing resource exited $RC"
printf '%s\n' "$OUT" | head -n 1 | grep -qx "4.04 Not Found" ||
  fail "no 4.04 Not Found"
echo "ok 4 get 4.04"

# 5. Nothing listens on port 9 (discard) here: an error and exit 1.
if ! listening 9; then
  run "$GET" "coap://127.0.0.1:9/"
  [ "$RC" -eq 1 ] || fail "example_get of a closed port exited $RC"
  printf '%s\n' "$OUT" | grep -q "unreachable" || fail "no 'unreachable'"
  echo "ok 5 get from a closed port"
fi

# 6. Observe /time (which changes every second): three notifications,
# then a proactive cancel that removes the server's observer.
run "$OBSERVE" "$U/time" 3
[ "$RC" -eq 0 ] || fail "example_observe exited $RC"
n=$(printf '%s\n' "$OUT" |
  grep -c '^notification [0-9]*: 2\.05 Content [A-Z][a-z][a-z] [0-9 ]')
[ "$n" -eq 3 ] || fail "$n notification lines, expected 3"
[ "$(printf '%s\n' "$OUT" | tail -n 1)" = "cancelled" ] ||
  fail "the last line is not 'cancelled'"
grep -a '^v:1 t:CON c:GET .*Observe:1, Uri-Path:time' "$T/server.log" \
  >/dev/null || fail "the server got no cancel (Observe:1)"
grep -aq "removed subscription" "$T/server.log" ||
  fail "the server did not remove the observer"
echo "ok 6 observe, 3 notifications, cancelled"

# 7. Observing what is not there: the 4.04 ends it, exit 1.
run "$OBSERVE" "$U/no/such/resource" 3
[ "$RC" -eq 1 ] || fail "example_observe of a missing resource exited $RC"
has "not observed: 4.04 Not Found"
echo "ok 7 observe a missing resource"

# 8. A foreign poll() loop: each "get" line sends a GET at once; between
# them libcoap's client asks the program's own resource, which counts the
# lines read. End of input: the program waits for its answers and exits.
mkfifo "$T/cmd"
timeout 30 "$POLL_LOOP" "$U/greeting" <"$T/cmd" >"$T/poll.out" 2>&1 &
PL_PID=$!
exec 3>"$T/cmd"
i=0
until grep -q '^serving ' "$T/poll.out" 2>/dev/null || [ $i -ge 50 ]; do
  sleep 0.1; i=$((i + 1))
done
PL_URI=$(sed -n 's/^serving //p' "$T/poll.out")
[ -n "$PL_URI" ] || fail "example_poll_loop did not start"
echo get >&3
echo note >&3
echo get >&3
i=0
until [ "$(grep -c '^2.05' "$T/poll.out")" -ge 2 ] || [ $i -ge 50 ]; do
  sleep 0.1; i=$((i + 1))
done
OUT=$(timeout 10 coap-client-notls -B 5 "$PL_URI" 2>&1)
[ "$OUT" = "3" ] || fail "coap-client read '$OUT' from /lines, expected 3"
exec 3>&-
wait "$PL_PID"
PL_RC=$?
OUT=$(cat "$T/poll.out")
[ "$PL_RC" -eq 0 ] || fail "example_poll_loop exited $PL_RC"
[ "$(grep -c '^2.05 Content Hello again$' "$T/poll.out")" -eq 2 ] ||
  fail "example_poll_loop did not print two answers"
echo "ok 8 a foreign poll() loop: 2 answers, served /lines"

echo "PASS"

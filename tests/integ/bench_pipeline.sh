#!/bin/sh
# coap-bench --pipeline against coapd --demo on loopback: several requests
# in flight per socket, each with its own Message ID and token.
#  1. GET /hello from 4 sockets x 8 slots: every request answered 2.05,
#     nothing lost, no errors, the line says pipeline=8 and no more than
#     32 requests were in flight at the end.
#  2. One socket with 64 slots, long enough to use up its Message IDs
#     when the machine is fast enough: nothing lost, and a socket replaced
#     whenever more than 2 x 65536 requests went out.
#  3. /separate (coapd answers a second later, in its own CON) from one
#     socket x 4 slots: more answers than one slot could get in the window,
#     so the requests really were in flight together; each CON
#     acknowledged, none lost.
#  4. coapd, stopped, saw no duplicate: no two requests of a socket
#     shared a Message ID (RFC 7252 §4.5 would have deduplicated them).
#  5. --pipeline with --observe is refused with exit 2.
# Every run is bounded by its -d and by timeout(1); coapd is stopped by
# PID on exit.
#
# Usage: bench_pipeline.sh PATH/TO/coapd PATH/TO/coap-bench
set -u
COAPD=${1:?usage: bench_pipeline.sh COAPD COAP_BENCH}
BENCH=${2:?usage: bench_pipeline.sh COAPD COAP_BENCH}
T=$(mktemp -d)
PID=
OUT=

cleanup() {
  if [ -n "$PID" ]; then
    kill "$PID" 2>/dev/null
    wait "$PID" 2>/dev/null
  fi
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
  echo "FAIL: $*"
  [ -n "$OUT" ] && printf '%s\n' "--- output:" "$OUT"
  if [ -s "$T/coapd.log" ]; then
    echo "--- coapd:"
    tail -n 5 "$T/coapd.log"
  fi
  exit 1
}

bench() {
  OUT=$(timeout 60 "$BENCH" "$@" 2>&1)
  RC=$?
}

# The value of key $1 on the machine-readable line (the last line).
val() {
  printf '%s\n' "$OUT" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$1=//p"
}

"$COAPD" --demo --listen 127.0.0.1:0 --data-dir "$T/data" --log-level info \
  2>"$T/coapd.log" &
PID=$!
PORT=
i=0
while [ -z "$PORT" ]; do
  i=$((i + 1))
  [ "$i" -le 100 ] || fail "coapd did not start"
  kill -0 "$PID" 2>/dev/null || fail "coapd exited at start"
  sleep 0.05
  PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
    "$T/coapd.log" | head -n 1)
done
URI=coap://127.0.0.1:$PORT
SENT=0

# 1. 4 sockets x 8 requests in flight.
bench -c 4 --pipeline 8 -d 2 -w 0.5 "$URI/hello"
[ "$RC" -eq 0 ] || fail "pipelined run exited $RC"
[ "$(val pipeline)" = 8 ] || fail "pipelined run: pipeline=$(val pipeline)"
[ "$(val conns)" = 4 ] || fail "pipelined run: conns=$(val conns)"
[ "$(val ok)" -gt 0 ] || fail "pipelined run: nothing answered"
[ "$(val ok)" -eq "$(val responses)" ] || fail "pipelined run: non-2.xx"
[ "$(val codes)" = "2.05:$(val ok)" ] || fail "pipelined run: codes"
[ "$(val lost)" -eq 0 ] || fail "pipelined run: losses"
[ "$(val errors)" -eq 0 ] || fail "pipelined run: errors"
[ "$(val stray)" -eq 0 ] || fail "pipelined run: stray datagrams"
[ "$(val inflight)" -le 32 ] || fail "pipelined run: over 32 in flight"
printf '%s\n' "$OUT" | grep -q '4 connections x 8 in flight' ||
  fail "pipelined run: the header does not say x 8 in flight"
SENT=$((SENT + $(val sent)))
echo "ok 1 pipelined: $(printf '%s\n' "$OUT" | tail -n 1)"

# 2. One socket, 64 slots: Message IDs run out after 65536 requests.
bench -c 1 --pipeline 64 -d 3 -w 0.2 "$URI/hello"
[ "$RC" -eq 0 ] || fail "one-socket run exited $RC"
[ "$(val lost)" -eq 0 ] || fail "one-socket run: losses"
[ "$(val errors)" -eq 0 ] || fail "one-socket run: errors"
[ "$(val ok)" -eq "$(val responses)" ] || fail "one-socket run: non-2.xx"
if [ "$(val sent)" -gt 131072 ]; then
  printf '%s\n' "$OUT" | grep -q 'sockets replaced' ||
    fail "one-socket run: $(val sent) requests and no socket replaced"
fi
SENT=$((SENT + $(val sent)))
echo "ok 2 one socket x 64: sent=$(val sent) lost=0"

# 3. Answers a second late: 4 slots get about 4 per second, 1 slot 1.
bench -c 1 --pipeline 4 -d 3 -w 0.5 --timeout 3000 "$URI/separate"
[ "$RC" -eq 0 ] || fail "separate run exited $RC"
[ "$(val lost)" -eq 0 ] || fail "separate run: losses"
[ "$(val ok)" -ge 6 ] ||
  fail "separate run: $(val ok) answers; one slot gets at most 4"
printf '%s\n' "$OUT" | grep -q 'separate responses' ||
  fail "separate run: separate responses not reported"
SENT=$((SENT + $(val sent)))
echo "ok 3 separate x 4: ok=$(val ok)"

# 4. coapd's own count at exit: no duplicates, every request received.
kill -TERM "$PID"
wait "$PID"
PID=
line=$(grep 'stopped by SIGTERM' "$T/coapd.log")
[ -n "$line" ] || fail "coapd: no exit line"
dups=$(printf '%s\n' "$line" | sed -n 's/.* duplicates \([0-9]*\).*/\1/p')
rx=$(printf '%s\n' "$line" | sed -n 's/.* rx \([0-9]*\).*/\1/p')
[ "$dups" = 0 ] || fail "coapd saw $dups duplicates"
[ "$rx" -ge "$SENT" ] || fail "coapd received $rx datagrams, we sent $SENT"
echo "ok 4 coapd: rx=$rx duplicates=0"

# 5. Not with --observe.
bench --observe 1 --pipeline 2 "$URI/obs"
[ "$RC" -eq 2 ] || fail "--observe --pipeline: exited $RC, not 2"
printf '%s\n' "$OUT" | grep -q -- '--pipeline' ||
  fail "--observe --pipeline: not named"
echo "ok 5 --pipeline with --observe: exit 2"

echo "PASS"

#!/bin/sh
# coap-bench against libcoap's coap-server on loopback: a CON run, a NON
# run, a steady --rate run, a 4.04 path counted under 4.04, a separate response, an observe
# run, --json, a closed port (exit 3) and a bad argument (exit 2). Each run
# is bounded by its -d and by timeout(1); the server started here is
# killed by PID on exit.
#
# Usage: bench_smoke.sh PATH/TO/coap-bench
# Exits 0 on success, 1 on a failure (a missing coap-server-notls too:
# scripts/install-deps installs it, and a skip would hide a broken setup).
set -u

BENCH=${1:?usage: bench_smoke.sh PATH/TO/coap-bench}
SERVER=coap-server-notls
if ! command -v "$SERVER" >/dev/null 2>&1; then
  echo "FAIL: $SERVER not installed (Debian package libcoap3-bin)"
  exit 1
fi

SRV_PID=
cleanup() {
  if [ -n "$SRV_PID" ]; then
    kill "$SRV_PID" 2>/dev/null
    wait "$SRV_PID" 2>/dev/null
  fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
  echo "FAIL: $*"
  [ -n "${OUT:-}" ] && printf '%s\n' "--- output:" "$OUT"
  exit 1
}

# Is a UDP socket bound to local port $1? (/proc, so no ss is needed.)
listening() {
  hex=$(printf '%04X' "$1")
  awk -v p=":$hex\$" '$2 ~ p { found = 1 } END { exit !found }' \
    /proc/net/udp /proc/net/udp6 2>/dev/null
}

# Runs coap-bench with a hard time limit; sets OUT and RC.
bench() {
  OUT=$(timeout 60 "$BENCH" "$@" 2>&1)
  RC=$?
}

# The value of key $1 on the machine-readable line (the last line).
val() {
  printf '%s\n' "$OUT" | tail -n 1 | tr ' ' '\n' | sed -n "s/^$1=//p"
}

# The machine-readable line must come last.
check_line() {
  printf '%s\n' "$OUT" | tail -n 1 | grep -q '^coap-bench rps=[0-9]' ||
    fail "$1: the last line is not the machine-readable line"
}

PORT=$((20000 + $$ % 10000))
tries=0
while listening "$PORT" || listening $((PORT + 1)); do
  PORT=$((PORT + 2))
  tries=$((tries + 1))
  [ "$tries" -lt 50 ] || fail "no free port found"
done
CLOSED=$((PORT + 1))

"$SERVER" -A 127.0.0.1 -p "$PORT" >/dev/null 2>&1 &
SRV_PID=$!
i=0
until listening "$PORT"; do
  i=$((i + 1))
  [ "$i" -lt 50 ] || fail "$SERVER does not listen on port $PORT"
  kill -0 "$SRV_PID" 2>/dev/null || fail "$SERVER exited"
  sleep 0.1
done
URI=coap://127.0.0.1:$PORT

# 1. CON GET / (libcoap answers 2.05): requests/s, no losses, the line.
bench -c 8 -d 2 "$URI/"
[ "$RC" -eq 0 ] || fail "CON run exited $RC"
check_line "CON run"
[ "$(val rps)" -gt 0 ] || fail "CON run: rps is not above 0"
[ "$(val lost)" -eq 0 ] || fail "CON run: losses"
[ "$(val errors)" -eq 0 ] || fail "CON run: errors"
[ "$(val ok)" -eq "$(val responses)" ] || fail "CON run: non-2.xx answers"
printf '%s\n' "$OUT" | grep -q '2\.05 Content: [1-9]' ||
  fail "CON run: no 2.05 Content in the report"
printf '%s\n' "$OUT" | grep -q 'p50.*p90.*p99.*max' ||
  fail "CON run: no latency percentiles"
echo "ok 1 CON: $(printf '%s\n' "$OUT" | tail -n 1)"

# 2. The same with Non-confirmable requests.
bench --non -c 8 -d 1 -w 0.3 "$URI/"
[ "$RC" -eq 0 ] || fail "NON run exited $RC"
check_line "NON run"
[ "$(val rps)" -gt 0 ] || fail "NON run: rps is not above 0"
[ "$(val lost)" -eq 0 ] || fail "NON run: losses"
echo "ok 2 NON: rps=$(val rps)"

# 2b. --rate 100 with 4 connections: each waits 40 ms after each answer,
# so the 2 s window holds at most 100 * 2 + 4 answers (never more, however
# fast the server), and a quarter of that even on a loaded host.
bench -c 4 -d 2 -w 0.5 --rate 100 "$URI/"
[ "$RC" -eq 0 ] || fail "--rate run exited $RC"
[ "$(val responses)" -le 204 ] || fail "--rate run: above the rate"
[ "$(val responses)" -ge 50 ] || fail "--rate run: far below the rate"
[ "$(val lost)" -eq 0 ] || fail "--rate run: losses"
echo "ok 2b --rate 100: responses=$(val responses) in 2 s"
bench --rate 10 --observe 1 "$URI/"
[ "$RC" -eq 2 ] || fail "--rate with --observe exited $RC, expected 2"

# 3. A path libcoap does not have: every answer is a 4.04.
bench -c 4 -d 1 -w 0.3 "$URI/no/such/path"
[ "$RC" -eq 0 ] || fail "4.04 run exited $RC"
[ "$(val ok)" -eq 0 ] || fail "4.04 run: 2.xx answers"
[ "$(val responses)" -gt 0 ] || fail "4.04 run: no answers"
val codes | grep -q '^4\.04:[1-9][0-9]*$' || fail "4.04 run: codes"
printf '%s\n' "$OUT" | grep -q '4\.04 Not Found: [1-9]' ||
  fail "4.04 run: no 4.04 Not Found in the report"
echo "ok 3 4.04: codes=$(val codes)"

# 4. libcoap's /async?1 answers with an empty ACK, then a separate CON
# response one second later, which coap-bench must acknowledge.
bench -c 2 -d 2 -w 0.5 --timeout 3000 "$URI/async?1"
[ "$RC" -eq 0 ] || fail "separate run exited $RC"
[ "$(val ok)" -gt 0 ] || fail "separate run: no responses"
[ "$(val lost)" -eq 0 ] || fail "separate run: losses"
printf '%s\n' "$OUT" | grep -q 'separate responses' ||
  fail "separate run: separate responses not reported"
echo "ok 4 separate: ok=$(val ok)"

# 5. Observe /time, which libcoap changes every second.
bench --observe 1 -c 2 -d 2.5 -w 0.5 "$URI/time"
[ "$RC" -eq 0 ] || fail "observe run exited $RC"
[ "$(val observers)" -eq 2 ] || fail "observe run: observers"
[ "$(val notifications)" -gt 0 ] || fail "observe run: no notifications"
echo "ok 5 observe: notifications=$(val notifications)"

# 6. --json prints one JSON object and nothing else.
bench --json -c 2 -d 0.5 -w 0 "$URI/"
[ "$RC" -eq 0 ] || fail "json run exited $RC"
[ "$(printf '%s\n' "$OUT" | wc -l)" -eq 1 ] || fail "json: not one line"
printf '%s\n' "$OUT" | grep -q '^{"rps":[0-9]*,.*"codes":{"2\.05":[0-9]*}}$' ||
  fail "json: unexpected shape"
echo "ok 6 json"

# 7. Nothing listens: ICMP port unreachable; exit 3 with a clear message.
listening "$CLOSED" && fail "port $CLOSED is in use"
bench -c 2 -d 1 -w 0 --timeout 500 "coap://127.0.0.1:$CLOSED/"
[ "$RC" -eq 3 ] || fail "closed port: exited $RC, not 3"
printf '%s\n' "$OUT" | grep -q 'no response from 127\.0\.0\.1' ||
  fail "closed port: no clear message"
echo "ok 7 closed port: exit 3"

# 8. A bad argument: one line naming it, exit 2.
bench -c zero "$URI/"
[ "$RC" -eq 2 ] || fail "bad argument: exited $RC, not 2"
[ "$(printf '%s\n' "$OUT" | wc -l)" -eq 1 ] || fail "bad argument: not one line"
printf '%s\n' "$OUT" | grep -q -- '-c' || fail "bad argument: not named"
echo "ok 8 bad argument: exit 2"

echo "PASS"

#!/bin/bash
# coapd killed with SIGKILL and started again on the same port and data
# (issue 13, part 6): what a client notices, and what survives.
#  1. Observers of our `coap observe` — of the demo's /obs (Max-Age 2)
#     and of a pub/sub topic (publishes with expiry=3, so Max-Age 3) —
#     are forgotten by the new coapd. Each registers again by itself
#     when Max-Age runs out (RFC 7641 §3.3.1), retrying while coapd is
#     still down, and then gets the next notification and the next
#     publish: each once, none twice.
#  2. Exchanges the new coapd does not know get the RFC's answers: the
#     second block of an upload begun before the kill 4.08 (RFC 7959
#     §2.9.2), an empty CON RST, an ACK or RST for an unknown Message ID
#     nothing (RFC 7252 §4.2, §4.3).
#  3. What coapd acknowledged is still there: a QoS 1 retained publish
#     answered 2.04 just before the kill, and a connection-mode session.
# It prints the times it measured (docs/RELIABILITY.md, row 6). Every
# wait is bounded; every process started here is stopped by its PID.
# Usage: coapd_restart.sh PATH_TO_COAPD
. "$(dirname "$0")/coapd_common.sh"
COAP=$(dirname "$COAPD")/../cli/coap
DOWN=${CK_RESTART_DOWN:-5} # seconds coapd stays down

OBS1=
OBS2=
stop_observers() {
  for p in $OBS1 $OBS2; do
    kill -INT "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  OBS1=
  OBS2=
}
trap 'stop_observers; cleanup' EXIT

ms_now() { echo $(($(date +%s%N) / 1000000)); }

# wait_for SECONDS CMD...: runs CMD every 0.1 s until it succeeds.
wait_for() {
  local n=$(($1 * 10))
  shift
  for _ in $(seq "$n"); do
    "$@" && return 0
    sleep 0.1
  done
  return 1
}

# registrations FILE: how many GETs with Observe the observer sent.
registrations() { grep -c '^>   Observe: 0' "$1" || true; }
at_least() { [ "$(registrations "$1")" -ge "$2" ]; }
# lines FILE: the payloads `coap observe -v` printed (time stamps cut).
lines() { cut -d' ' -f2- "$1"; }
has_line() { lines "$1" | grep -qx -- "$2"; }

# restart_same_port: SIGKILL, $DOWN seconds down, coapd again on $PORT.
restart_same_port() {
  kill -9 "$PID"
  wait "$PID" 2>/dev/null || true
  PID=
  T_KILL=$(ms_now)
  sleep "$DOWN"
  : >"$T/coapd.log"
  "$COAPD" --demo --listen "127.0.0.1:$PORT" --data-dir "$T/data" \
    --log-level debug 2>"$T/coapd.log" &
  PID=$!
  wait_for 10 grep -q "listening on 127.0.0.1:$PORT" "$T/coapd.log" ||
    fail "coapd did not start again on port $PORT"
  T_UP=$(ms_now)
}

start_coapd

# --- before: two observers, an upload begun, a session, a QoS 1 publish ---
timeout 120 "$COAP" observe -v "$U/obs" >"$T/obs1.out" 2>"$T/obs1.err" &
OBS1=$!
timeout 120 "$COAP" observe -v "$U/ps/coap/live" >"$T/obs2.out" \
  2>"$T/obs2.err" &
OBS2=$!
# The answer to the registration is a line of its own (no payload).
wait_for 10 grep -q . "$T/obs2.out" || fail "the pub/sub observer got no 2.05"
req -m post -e "m1" "$U/ps/coap/live?qos=1&expiry=3"
expect 2.04
wait_for 10 has_line "$T/obs2.out" m1 || fail "no m1: $(cat "$T/obs2.out")"
wait_for 10 grep -q . "$T/obs1.out" || fail "no notification of /obs"
ok "two observers registered: /obs and ps/coap/live"

# CON PUT /large-update, Block1 num 0, M, 16 bytes: 2.31 Continue.
PATH_OPT=bc$(printf 'large-update' | od -An -tx1 | tr -d ' \n')
BODY=ff$(printf 'a%.0s' $(seq 16) | od -An -tx1 | tr -d ' \n')
udp_open
udp_send "40031234${PATH_OPT}d10308${BODY}"
[ "$(udp_recv 4)" = "605f1234" ] || fail "block 0 was not answered 2.31"

req -m post -e "" "$U/mqtt/connection?clientid=k9"
expect 2.01
TOKEN=$(cat "$T/body")
req -m post -e "acked" "$U/ps/coap/keep?retain=true&qos=1"
expect 2.04
restart_same_port
ok "coapd killed with SIGKILL, down ${DOWN} s, up again on port $PORT"

# --- exchanges the new coapd does not know ---
udp_send "40031235${PATH_OPT}d10318${BODY}"
[ "$(udp_recv 4)" = "60881235" ] ||
  fail "block 1 of a lost upload was not answered 4.08"
udp_send "60001300"
udp_send "70001301"
[ -z "$(udp_recv 4)" ] || fail "an ACK or RST for an unknown MID was answered"
udp_send "40001302"
[ "$(udp_recv 4)" = "70001302" ] || fail "an empty CON was not answered RST"
udp_close
ok "lost upload 4.08, unknown ACK and RST silent, empty CON RST"

# --- what was acknowledged ---
req -m get "$U/ps/coap/keep"
expect 2.05
body_is acked
req -m put -e "" "$U/mqtt/connection?clientid=k9&token=$TOKEN"
expect 2.04
ok "the QoS 1 retained publish and the session survived SIGKILL"

# values_between FILE FROM TO: the payloads printed between two times.
values_between() {
  local ts v t
  while read -r ts v; do
    t=$(date -d "$ts" +%s%3N 2>/dev/null) || continue
    if [ "$t" -gt "$2" ] && [ "$t" -le "$3" ]; then echo "$v"; fi
  done <"$1"
}

# --- the observers come back by themselves ---
# first_after FILE MS: the time (ms) of the first line `coap observe -v`
# printed after MS, the answer to a registration with the new coapd.
first_after() {
  local ts t
  while read -r ts _; do
    t=$(date -d "$ts" +%s%3N 2>/dev/null) || continue
    if [ "$t" -gt "$2" ]; then
      echo "$t"
      return 0
    fi
  done <"$1"
  return 1
}
wait_for 40 first_after "$T/obs1.out" "$T_UP" >/dev/null ||
  fail "/obs: nothing after the restart ($(registrations "$T/obs1.err") GETs)"
wait_for 40 first_after "$T/obs2.out" "$T_UP" >/dev/null ||
  fail "ps/: nothing after the restart ($(registrations "$T/obs2.err") GETs)"
T_OBS1=$(first_after "$T/obs1.out" "$T_UP")
T_OBS2=$(first_after "$T/obs2.out" "$T_UP")
[ "$(registrations "$T/obs1.err")" -ge 2 ] || fail "/obs: no new GET"
[ "$(registrations "$T/obs2.err")" -ge 2 ] || fail "ps/: no new GET"
n1=$(lines "$T/obs1.out" | wc -l)
wait_for 10 eval '[ "$(lines "$T/obs1.out" | wc -l)" -ge $((n1 + 2)) ]' ||
  fail "/obs: no notifications after the new registration"
T_PUB=$(ms_now)
req -m post -e "m2" "$U/ps/coap/live?qos=1&expiry=3"
expect 2.04
wait_for 10 has_line "$T/obs2.out" m2 || fail "the pub/sub observer did not get m2"
T_M2=$(ms_now)
stop_observers
[ "$(lines "$T/obs2.out" | grep -cx m1)" = 1 ] || fail "m1 twice"
[ "$(lines "$T/obs2.out" | grep -cx m2)" = 1 ] || fail "m2 twice"
# /obs counts up once a second, so a value repeated at once would be a
# notification delivered twice. Each coapd counts from 0: the first
# value of the new one may equal the last of the old one by chance, so
# each coapd's values are looked at apart.
for seg in "0 $T_KILL" "$T_UP 9999999999999"; do
  dups=$(values_between "$T/obs1.out" $seg | uniq -d | wc -l)
  [ "$dups" = 0 ] || fail "/obs: $dups values delivered twice"
done
grep -q 'Observe: 0' "$T/obs1.err" || fail "no Observe 0"
ok "both observers registered again and got what followed, none twice"
echo "restart: down ${DOWN} s; registered again and answered" \
  "$((T_OBS1 - T_UP)) ms (/obs) and $((T_OBS2 - T_UP)) ms (ps/) after" \
  "coapd was up, $((T_OBS1 - T_KILL)) and $((T_OBS2 - T_KILL)) ms after" \
  "the kill; GETs sent: $(registrations "$T/obs1.err") and" \
  "$(registrations "$T/obs2.err"); m2 delivered $((T_M2 - T_PUB)) ms" \
  "after its publish"
stop_coapd
echo "all ok"

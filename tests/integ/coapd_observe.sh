#!/usr/bin/env bash
# Observe (RFC 7641) and separate responses (RFC 7252 §5.2.2) between
# coap-client and coapd --demo: /obs and /time notify every second with
# distinct values (and /obs with Max-Age), observers are gone once the
# client stops, and /separate acknowledges at once and answers about a
# second later as its own CON (or NON for a NON request).
# Usage: coapd_observe.sh PATH_TO_COAPD
. "$(dirname "$0")/coapd_common.sh"

start_coapd

# The last "observers of /PATH: N" debug line says N.
observers() {
  grep -a "observers of /$1: " "$T/coapd.log" | tail -n 1 | sed 's/.*: //'
}

# wait_observers PATH N: the count reaches N within 4 s (one tick + slack).
wait_observers() {
  local i
  for _ in $(seq 40); do
    [ "$(observers "$1")" = "$2" ] && return 0
    sleep 0.1
  done
  fail "observers of /$1: $(observers "$1"), expected $2"
}

req -s 4 -w "$U/obs"
n=$(grep -c . "$T/body" || true)
d=$(sort -u "$T/body" | grep -c . || true)
[ "$n" -ge 3 ] && [ "$d" -eq "$n" ] || fail "/obs: $n values, $d distinct"
[ "$(responses | grep -c 'Observe:')" -ge 3 ] || fail "no Observe option"
[ "$(responses | grep -c 'Max-Age:2')" -eq "$(responses | grep -c .)" ] ||
  fail "a notification without Max-Age"
wait_observers obs 0
ok "observe /obs: $n distinct values with Max-Age; observer removed"

req -N -s 3 -w "$U/time"
n=$(grep -c . "$T/body" || true)
d=$(sort -u "$T/body" | grep -c . || true)
[ "$n" -ge 2 ] && [ "$d" -eq "$n" ] || fail "/time: $n values, $d distinct"
[ "$(responses | grep -c 't:NON c:2.05 .*Observe:')" -ge 2 ] ||
  fail "/time notifications are not NON"
wait_observers time 0
ok "observe /time with NON: $n distinct values; observer removed"

# Two observers at once; both hear, both are removed.
timeout 20 "$CLIENT" -B 15 -s 4 -w -o "$T/a" "$U/obs" >/dev/null 2>&1 &
a=$!
timeout 20 "$CLIENT" -B 15 -s 3 -w -o "$T/b" "$U/obs" >/dev/null 2>&1 &
b=$!
wait_observers obs 2
wait "$a" || fail "first observer failed"
wait "$b" || fail "second observer failed"
[ "$(grep -c . "$T/a")" -ge 3 ] && [ "$(grep -c . "$T/b")" -ge 2 ] ||
  fail "concurrent observers missed notifications"
wait_observers obs 0
ok "two concurrent observers of /obs"

# An RST in answer to a notification cancels the observation (RFC 7641
# §3.6). By hand: CON GET /obs with Observe=0 and token 77, then the RST
# to the first NON notification.
udp_open
udp_send "410170017760536f6273"
r=$(udp_recv 64)
case "$r" in 61457001776*) ;; *) fail "raw observe: '$r'" ;; esac
note=
for _ in 1 2 3; do
  note=$(udp_recv 64)
  case "$note" in 5145????77*) break ;; esac
done
case "$note" in 5145????77*) ;; *) fail "no NON notification: '$note'" ;; esac
# coapd logs the count at the tick, before the notification goes out.
[ "$(observers obs)" = 1 ] || fail "raw observer not registered"
udp_send "7000${note:4:4}"
udp_close
wait_observers obs 0
ok "RST to a notification removes the observer"

# /separate answers 58 bytes to a 17-byte request: more than three times
# it, so coapd sends it only to a verified source (RFC 9175 §2.4), else a
# separate 4.01 with Echo. libcoap 4.3.1 repeats a request with the Echo
# of a piggybacked 4.01 but not of a separate one (it ACKs it and reports
# 4.01). So each client here sends from a fixed port (-p) and proves that
# address first with a piggybacked Echo round trip, as /.well-known/core
# makes it do; coapd then keeps the address verified for 10 minutes.
SP=$((40000 + $$ % 20000))
verify_port() {
  timeout 20 "$CLIENT" -B 10 -p "$1" -v 7 "$U/.well-known/core" \
    >"$T/verify" 2>&1 || true
  grep -aq "c:4.01 .*Echo:" "$T/verify" ||
    fail "port $1: no Echo challenge: $(grep -a "v:1\|WARN\|ERR" "$T/verify")"
  grep -aq "c:2.05" "$T/verify" || fail "port $1: no 2.05 after the Echo"
}
for i in 0 1 2 3 4 5; do verify_port $((SP + i)); done
ok "libcoap proves its source with an Echo round trip (ports $SP..$((SP + 5)))"

# /separate as CON: empty ACK first, then a CON 2.05 about a second later.
t0=$(date +%s%N)
V=7 req -p "$SP" "$U/separate"
ms=$((($(date +%s%N) - t0) / 1000000))
# The first message received is the empty ACK, the next the answer.
grep -a -A1 'received' "$T/trace" | grep -a '^v:1' | head -n 2 >"$T/rx"
grep -q '^v:1 t:ACK c:0.00 ' <(head -n 1 "$T/rx") || fail "no empty ACK first"
grep -q '^v:1 t:CON c:2.05 ' <(tail -n 1 "$T/rx") || fail "no CON 2.05 next"
expect 2.05 CON
[ "$ms" -ge 800 ] && [ "$ms" -le 2500 ] || fail "separate answer after $ms ms"
body_is "This response was sent separately, a second later."
t0=$(date +%s%N)
req -N -p "$SP" "$U/separate"
ms=$((($(date +%s%N) - t0) / 1000000))
expect 2.05 NON
[ "$ms" -ge 800 ] && [ "$ms" -le 2500 ] || fail "NON answer after $ms ms"
ok "/separate: empty ACK, then the answer after about a second"

# Several at once are all answered.
pids=()
for i in 1 2 3 4 5; do
  timeout 20 "$CLIENT" -B 15 -p $((SP + i)) -o "$T/s$i" "$U/separate" \
    >/dev/null 2>&1 &
  pids+=($!)
done
wait "${pids[@]}" || fail "a separate request failed"
for i in 1 2 3 4 5; do
  grep -q "separately" "$T/s$i" || fail "separate request $i unanswered"
done
ok "five concurrent /separate requests"

stop_coapd
grep -q 'stopped by SIGTERM: .* observers 0 ' "$T/coapd.log" ||
  fail "observers left"
ok "clean shutdown, no observers left"

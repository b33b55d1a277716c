#!/bin/bash
# coaps:// with pre-shared keys (RFC 7252 §9.1.3.1), against libcoap's
# GnuTLS build in both directions, on loopback:
#  1. coap (our client) against coap-server-gnutls -k KEY -h HINT: GET,
#     a block-wise PUT and GET of 6 KiB, an observation; a wrong key
#     exits 3 with "pre-shared key" at once, not after a timeout;
#  2. coap-client-gnutls -u ID -k KEY against integ_dtls_server
#     (ck_ctx_listen_dtls): the handler sees the PSK identity, Block2
#     and Observe work, a wrong key or identity gets an alert and no
#     answer, and the server kept no session for them;
#  3. coap against integ_dtls_server: identity, Block1, a wrong key, and
#     a handshake that times out (a plain CoAP port never answers DTLS);
#  4. coapd --dtls-listen with a device added by `coapd device add
#     --psk-identity --psk`: libcoap's client and ours get answers with
#     that key and are refused with another; --dtls-listen without any
#     credentials is a one-line error, exit 2.
# Every process started here is killed by PID; every wait is bounded.
#
# Usage: dtls_psk.sh PATH/TO/coap PATH/TO/integ_dtls_server PATH/TO/coapd
set -u
COAP=${1:?usage: $0 COAP DTLS_SERVER COAPD}
SRV=${2:?usage: $0 COAP DTLS_SERVER COAPD}
COAPD=${3:?usage: $0 COAP DTLS_SERVER COAPD}
. "$(dirname "$0")/dtls_common.sh"

for t in $LSRV $LCLI; do
  command -v $t >/dev/null || fail "$t not installed (libcoap3-bin)"
done

# run ARGS...: coap with its stdout, stderr and status in $T/out,
# $T/err, $RC; bounded.
run() {
  timeout 60 "$COAP" "$@" >"$T/out" 2>"$T/err" </dev/null
  RC=$?
}

SERVER=$LSRV
. "$(dirname "$0")/libcoap_server.sh"

# --- 1. our client against coap-server-gnutls ---
# libcoap_server.sh starts coap-server-notls's way; the GnuTLS build
# takes -k/-h too, and serves coaps on PORT + 1.
PORT=$((20000 + $$ % 10000))
for try in 1 2 3 4 5 6 7 8 9 10; do
  while port_used "$PORT" || port_used $((PORT + 1)); do PORT=$((PORT + 2)); done
  : >"$T/lserver.log"
  $LSRV -A 127.0.0.1 -p "$PORT" -d 10 -k sesame -h coapkit-hint -v 4 \
    >>"$T/lserver.log" 2>&1 &
  LPID=$!
  i=0
  while [ $i -lt 50 ] && ! listening $((PORT + 1)); do
    sleep 0.1
    i=$((i + 1))
  done
  listening $((PORT + 1)) && kill -0 $LPID 2>/dev/null && break
  kill $LPID 2>/dev/null
  wait $LPID 2>/dev/null
  PORT=$((PORT + 2))
done
PIDS="$PIDS $LPID"
LU="coaps://127.0.0.1:$((PORT + 1))"

run get "$LU/" --psk sesame --identity dev1
[ $RC -eq 0 ] || fail "GET $LU/: exit $RC: $(cat "$T/err")"
grep -q "libcoap" "$T/out" || fail "GET $LU/: no banner"
ok "coap GET against $LSRV -k"

head -c 6144 /dev/urandom | base64 >"$T/big"
run put "$LU/big" --psk sesame --identity dev1 -b 256 -f "$T/big"
[ $RC -eq 0 ] || fail "block-wise PUT: exit $RC: $(cat "$T/err")"
run get "$LU/big" --psk sesame --identity dev1 -b 128
[ $RC -eq 0 ] && cmp -s "$T/out" "$T/big" || fail "block-wise GET differs"
ok "coap block-wise PUT and GET of $(wc -c <"$T/big") bytes over DTLS"

run observe "$LU/time" --psk sesame --identity dev1 --count 2 -s 10
[ $RC -eq 0 ] && [ "$(wc -l <"$T/out")" -ge 2 ] ||
  fail "observe: exit $RC, $(wc -l <"$T/out") lines"
ok "coap observe over DTLS"

start=$(date +%s%N)
run get "$LU/" --psk wrong --identity dev1
ms=$((($(date +%s%N) - start) / 1000000))
[ $RC -eq 3 ] || fail "wrong key: exit $RC"
[ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "pre-shared key" "$T/err" ||
  fail "wrong key: $(cat "$T/err")"
[ -s "$T/out" ] && fail "wrong key: output"
# libcoap's server drops the undecryptable Finished three times before
# its alert (about 5 s); the point is that it is not the 20 s timeout.
[ $ms -lt 12000 ] || fail "wrong key took $ms ms"
ok "wrong key against $LSRV: exit 3, one line, in $ms ms"

# --- 2. libcoap's client against integ_dtls_server ---
"$SRV" --psk dev1@app:sesame --psk other:k2 --hint coapkit \
  >"$T/ports" 2>"$T/server.log" &
SPID=$!
PIDS="$PIDS $SPID"
for _ in $(seq 50); do [ -s "$T/ports" ] && break; sleep 0.1; done
read -r DP UP <"$T/ports" || fail "integ_dtls_server did not start"
SU="coaps://127.0.0.1:$DP"

out=$(timeout 30 $LCLI -u dev1@app -k sesame "$SU/whoami" 2>"$T/lclient.log")
[ "$out" = "psk dev1@app" ] || fail "$LCLI whoami: '$out'"
ok "$LCLI -u -k: the handler sees the PSK identity"

n=$(timeout 30 $LCLI -u other -k k2 "$SU/large" 2>>"$T/lclient.log" | tr -d '\n' | wc -c)
[ "$n" -eq 3000 ] || fail "$LCLI /large: $n bytes"
n=$(timeout 30 $LCLI -u other -k k2 -s 2 "$SU/obs" 2>>"$T/lclient.log" | wc -c)
[ "$n" -gt 3 ] || fail "$LCLI observe: $n bytes"
ok "$LCLI: Block2 and Observe"

for bad in "-u dev1@app -k wrong" "-u nobody -k sesame"; do
  # shellcheck disable=SC2086
  # libcoap logs to stdout: its log lines are dated, an answer is not.
  timeout 30 $LCLI $bad "$SU/whoami" >"$T/lclient.log" 2>&1
  grep -v '^[A-Z][a-z][a-z] [0-9][0-9] ' "$T/lclient.log" | grep -q . &&
    fail "$LCLI $bad: answered $(cat "$T/lclient.log")"
  grep -qi "alert" "$T/lclient.log" || fail "$LCLI $bad: no alert"
done
ok "$LCLI with a wrong key or identity: an alert, no answer"

# --- 3. our client against integ_dtls_server ---
run get "$SU/whoami" --psk 0x736573616d65 --identity dev1@app
[ $RC -eq 0 ] && [ "$(cat "$T/out")" = "psk dev1@app" ] ||
  fail "coap whoami (hex key): $RC $(cat "$T/out" "$T/err")"
run post "$SU/echo" --psk k2 --identity other -f "$T/big"
[ $RC -eq 0 ] && [ "$(cat "$T/out")" = "$(wc -c <"$T/big") bytes" ] ||
  fail "coap Block1 POST: $RC $(cat "$T/out" "$T/err")"
for bad in "--psk sesame --identity nobody" "--psk sesamf --identity dev1@app"; do
  start=$(date +%s%N)
  # shellcheck disable=SC2086
  run get "$SU/whoami" $bad
  ms=$((($(date +%s%N) - start) / 1000000))
  [ $RC -eq 3 ] && grep -q "pre-shared key" "$T/err" ||
    fail "$bad: $RC $(cat "$T/err")"
  [ $ms -lt 2000 ] || fail "$bad took $ms ms"
done
ok "coap against ck_ctx_listen_dtls: identity, Block1, refusal"

start=$(date +%s%N)
run get "coaps://127.0.0.1:$UP/whoami" --psk k2 --identity other
ms=$((($(date +%s%N) - start) / 1000000))
[ $RC -eq 3 ] && [ "$(cat "$T/err")" = \
  "coap: GET coaps://127.0.0.1:$UP/whoami: DTLS: the handshake timed out" ] ||
  fail "no DTLS peer: $RC $(cat "$T/err")"
ok "a port that never answers DTLS: handshake timeout in $ms ms, exit 3"

kill $SPID
wait $SPID 2>/dev/null
grep -q "stats: sessions 0 .* failed [4-9]" "$T/server.log" ||
  fail "server stats: $(tail -n 1 "$T/server.log")"
ok "server: failed handshakes counted, no session left"

# --- 3b. the session cap and idle expiry ---
"$SRV" --psk other:k2 --max-sessions 1 --idle 3000 >"$T/ports" \
  2>"$T/capped.log" &
SPID=$!
PIDS="$PIDS $SPID"
for _ in $(seq 50); do [ -s "$T/ports" ] && break; sleep 0.1; done
read -r DP UP <"$T/ports" || fail "capped integ_dtls_server did not start"
SU="coaps://127.0.0.1:$DP"
# An observer of a resource that never changes holds the one session;
# killed with SIGKILL it sends no close_notify, so only idleness (3 s
# without a record either way) can end its session.
"$COAP" observe "$SU/still" --psk k2 --identity other >"$T/obs.out" 2>&1 &
OPID=$!
PIDS="$PIDS $OPID"
for _ in $(seq 50); do [ -s "$T/obs.out" ] && break; sleep 0.1; done
[ -s "$T/obs.out" ] || fail "the observer got nothing"
timeout 10 $LCLI -u other -k k2 -B 2 "$SU/whoami" >"$T/lclient.log" 2>&1
grep -q "psk other" "$T/lclient.log" && fail "a second session beyond max_sessions"
grep -q "max_sessions limit" "$T/capped.log" ||
  fail "no log line at the session cap"
kill -9 $OPID
wait $OPID 2>/dev/null
sleep 3.5
out=$(timeout 10 $LCLI -u other -k k2 "$SU/whoami" 2>>"$T/lclient.log")
[ "$out" = "psk other" ] || fail "no session after the idle one expired: '$out'"
kill $SPID
wait $SPID 2>/dev/null
grep -q "expired 1 " "$T/capped.log" && grep -q "refused_full [1-9]" "$T/capped.log" ||
  fail "capped server stats: $(tail -n 1 "$T/capped.log")"
ok "max_sessions: a new peer is refused and logged; an idle session expires"

# --- 4. coapd --dtls-listen with its device registry ---
if [ "${COAPD_DTLS_READY:-1}" = 1 ]; then
  out=$(timeout 10 "$COAPD" --data-dir "$T/none" --listen 127.0.0.1:0 \
    --dtls-listen 127.0.0.1:0 2>&1)
  rc=$?
  [ $rc -eq 2 ] && [ "$(echo "$out" | wc -l)" -eq 1 ] ||
    fail "coapd --dtls-listen without credentials: exit $rc: $out"
  ok "coapd --dtls-listen without credentials: one line, exit 2"

  timeout 10 "$COAPD" device add app dev9 --data-dir "$T/data" \
    --psk-identity dev9@app --psk devkey9 >/dev/null 2>&1 ||
    fail "coapd device add --psk"
  "$COAPD" --demo --data-dir "$T/data" --listen 127.0.0.1:0 \
    --dtls-listen 127.0.0.1:0 --log-level debug 2>"$T/coapd.log" &
  CPID=$!
  PIDS="$PIDS $CPID"
  CP=
  for _ in $(seq 100); do
    CP=$(sed -n 's/.*dtls listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
      "$T/coapd.log" | head -n 1)
    [ -n "$CP" ] && break
    sleep 0.05
  done
  [ -n "$CP" ] || fail "coapd did not say where DTLS listens"
  CU="coaps://127.0.0.1:$CP"
  out=$(timeout 30 $LCLI -u dev9@app -k devkey9 "$CU/hello" 2>"$T/lclient.log")
  [ -n "$out" ] || fail "$LCLI against coapd: no answer"
  # The same key in hex: SPEC reads text and 0x-hex alike.
  run get "$CU/hello" --psk 0x6465766b657939 --identity dev9@app
  [ $RC -eq 0 ] && [ -s "$T/out" ] || fail "coap against coapd: $RC $(cat "$T/err")"
  run get "$CU/hello" --psk devkey8 --identity dev9@app
  [ $RC -eq 3 ] && grep -q "pre-shared key" "$T/err" ||
    fail "coapd wrong key: $RC $(cat "$T/err")"
  ok "coapd --dtls-listen: the registry's PSK works, another is refused"

  # The device endpoint takes the DTLS identity as the device's
  # credentials (SPEC: PSK identity device@application): telemetry
  # without option 4209 is accepted over coaps:// and refused (4.03)
  # over plain coap://.
  out=$(timeout 30 $LCLI -u dev9@app -k devkey9 -m post -t 50 \
    -e '{"t":1}' -v 6 "$CU/v1/temp" 2>&1)
  grep -aq ' c:2.04 ' <<<"$out" ||
    fail "telemetry over DTLS with the PSK identity: $out"
  UP_PLAIN=$(sed -n 's/.*coapd .* listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
    "$T/coapd.log" | head -n 1)
  out=$(timeout 30 coap-client-notls -m post -t 50 -e '{"t":1}' -v 6 \
    "coap://127.0.0.1:$UP_PLAIN/v1/temp" 2>&1)
  grep -aq ' c:4.03 ' <<<"$out" || fail "telemetry over UDP without credentials: $out"
  ok "device endpoint: the DTLS PSK identity authenticates the device (2.04); plain UDP without credentials 4.03"
fi
echo "all ok"

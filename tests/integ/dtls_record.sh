#!/bin/bash
# The server's own DTLS record layer (lib/dtls_rec.c, issue 12) with
# real peers: once a session is up, integ_dtls_server runs its records
# itself, without GnuTLS. Checked here:
#  1. every AEAD suite it runs (AES-128/256-GCM, AES-128/256-CCM,
#     AES-128-CCM-8, ChaCha20-Poly1305), each forced by GnuTLS's own
#     gnutls-cli: three requests on one session, the 2nd and 3rd and
#     their answers on our record layer, all answered;
#  2. libcoap's coap-client-gnutls (-k/-u, it picks ChaCha20-Poly1305)
#     and our coap: a block-wise GET, a POST, an observation whose
#     notifications go out on our record layer;
#  3. a client killed without close_notify and started again on the
#     same address and port: its new handshake replaces the session;
#  4. every record from a client sent twice (lossy_relay --dup-up 100):
#     the copies are dropped as replays (counted), the GET still works;
#  5. every client closed with close_notify: the server ends with no
#     session left.
# Every process started here is killed by PID; every wait is bounded.
#
# Usage: dtls_record.sh PATH/TO/coap PATH/TO/integ_dtls_server
#        PATH/TO/integ_lossy_relay
set -u
COAP=${1:?usage: $0 COAP DTLS_SERVER RELAY}
SRV=${2:?usage: $0 COAP DTLS_SERVER RELAY}
RELAY=${3:?usage: $0 COAP DTLS_SERVER RELAY}
. "$(dirname "$0")/dtls_common.sh"

"$SRV" --psk dev:sesame >"$T/ports" 2>"$T/server.log" &
SPID=$!
PIDS="$SPID"
for _ in $(seq 50); do [ -s "$T/ports" ] && break; sleep 0.1; done
read -r DP _ <"$T/ports" || fail "integ_dtls_server did not start"
HEX=$(printf sesame | od -An -tx1 | tr -d ' \n')

# 1. Each suite, forced from the client's side. gnutls-cli sends what
# it reads from stdin as one record, so each request is written only
# after the answer to the one before has come (two read at once would
# make one record).
# answers N: waits (up to 10 s) until gnutls-cli has printed N answers.
answers() {
  for _ in $(seq 100); do
    [ "$(grep -a -o 'psk dev' "$T/cli.out" | wc -l)" -ge "$1" ] && return 0
    sleep 0.1
  done
  return 1
}
for c in AES-128-GCM AES-256-GCM AES-128-CCM AES-256-CCM AES-128-CCM-8 \
  CHACHA20-POLY1305; do
  rm -f "$T/in"
  mkfifo "$T/in"
  : >"$T/cli.out"
  timeout 20 gnutls-cli --udp -p "$DP" 127.0.0.1 --pskusername dev \
    --pskkey "$HEX" --priority \
    "NORMAL:-VERS-ALL:+VERS-DTLS1.2:-KX-ALL:+PSK:-CIPHER-ALL:+$c" \
    <"$T/in" >"$T/cli.out" 2>"$T/gnutls-cli.log" &
  GPID=$!
  exec 4>"$T/in"
  for i in 1 2 3; do
    printf "\\x40\\x01\\x00\\x0$i\\xb6whoami" >&4
    answers $i || break
  done
  exec 4>&-
  wait "$GPID" 2>/dev/null
  grep -a -q "Description: (DTLS1.2[^)]*)-(PSK)-($c)" "$T/cli.out" ||
    fail "$c: not negotiated"
  n=$(grep -a -o 'psk dev' "$T/cli.out" | wc -l)
  [ "$n" = 3 ] || fail "$c: $n of 3 requests answered"
  ok "$c: 3 requests on one session answered"
done

# 2. libcoap's client and ours.
out=$(timeout 20 $LCLI -k sesame -u dev -v 0 "coaps://127.0.0.1:$DP/large")
[ "${#out}" -ge 3000 ] || fail "libcoap: /large gave ${#out} bytes"
ok "libcoap: block-wise GET of 3000 bytes"
out=$(timeout 20 $LCLI -k sesame -u dev -v 0 -m post -e hello \
  "coaps://127.0.0.1:$DP/echo")
[ "$out" = "5 bytes" ] || fail "libcoap: POST gave '$out'"
ok "libcoap: POST"
out=$(timeout 10 $LCLI -k sesame -u dev -v 0 -s 2 \
  "coaps://127.0.0.1:$DP/obs")
[ "${#out}" -ge 6 ] || fail "libcoap: observe gave '$out'"
ok "libcoap: notifications over 2 s ('$out')"
out=$(timeout 20 "$COAP" get "coaps://127.0.0.1:$DP/large" --psk sesame \
  --identity dev | wc -c)
[ "$out" -ge 3000 ] || fail "coap: /large gave $out bytes"
ok "coap: block-wise GET of 3000 bytes"

# 3. A client that dies without close_notify comes back on the same
# port: a new ClientHello from a known address (RFC 6347 §4.2.8).
LP=$((30000 + $$ % 20000))
$LCLI -k sesame -u dev -v 0 -p "$LP" -s 30 \
  "coaps://127.0.0.1:$DP/still" >/dev/null 2>&1 &
OPID=$!
PIDS="$PIDS $OPID"
sleep 1.5
kill -9 "$OPID" 2>/dev/null
wait "$OPID" 2>/dev/null
out=$(timeout 20 $LCLI -k sesame -u dev -v 0 -p "$LP" \
  "coaps://127.0.0.1:$DP/whoami")
[ "$out" = "psk dev" ] || fail "restarted client on port $LP got '$out'"
ok "a client restarted on the same port gets a new session"

# 4. Every record from the client twice: the copies are replays.
"$RELAY" --listen 127.0.0.1:0 --target "127.0.0.1:$DP" --dup-up 100 \
  --duration 60 >"$T/relay.log" 2>&1 &
RPID=$!
PIDS="$PIDS $RPID"
RP=
for _ in $(seq 100); do
  RP=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
    "$T/relay.log" | head -n 1)
  [ -n "$RP" ] && break
  sleep 0.05
done
[ -n "$RP" ] || fail "lossy_relay did not start"
out=$(timeout 20 $LCLI -k sesame -u dev -v 0 "coaps://127.0.0.1:$RP/large")
[ "${#out}" -ge 3000 ] || fail "duplicated: /large gave ${#out} bytes"
ok "every client record sent twice: block-wise GET still works"

# 5. The server's counts at its end.
sleep 0.5
kill "$SPID"
wait "$SPID" 2>/dev/null
PIDS="$RPID"
st=$(grep '^stats:' "$T/server.log")
[ -n "$st" ] || fail "no stats line from the server"
sessions=$(echo "$st" | sed -n 's/.* sessions \([0-9]*\) .*/\1/p')
dropped=$(echo "$st" | sed -n 's/.* dropped \([0-9]*\) .*/\1/p')
[ "$sessions" = 0 ] || fail "$sessions sessions left at the end ($st)"
ok "close_notify ended every session"
# /large is 3 blocks: the copies of the 2nd and 3rd requests (and of
# the close_notify) reach our record layer.
[ "$dropped" -ge 2 ] || fail "only $dropped records dropped ($st)"
ok "replayed records dropped ($dropped)"

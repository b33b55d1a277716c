#!/bin/bash
# coaps:// with X.509 certificates (RFC 7252 §9.1.3.3) and raw public
# keys (RFC 7250), against libcoap's GnuTLS build in both directions, on
# loopback. The test makes its own throw-away PKI with certtool: a CA, a
# server certificate for localhost/127.0.0.1, a client certificate
# (CN sensor-7), an expired one, one for another name, and a second CA
# nobody trusts; no private key is committed.
#  1. coap against integ_dtls_server (ck_ctx_listen_dtls): the chain and
#     the name verify (by IP and by name); the handler sees the client's
#     CN, or "" without one; each failure exits 3 with its own line:
#     untrusted, expired, name mismatch, our certificate refused;
#  2. coap against coap-server-gnutls -c/-j/-C; coap-client-gnutls
#     -c/-j/-C against integ_dtls_server;
#  3. raw public keys: the handler sees the SHA-256 fingerprint of the
#     client's key (as certtool computes it), and the client the
#     server's (integ_dtls_client); both ways with libcoap -M;
#  4. coapd with dtls_cert/dtls_key/dtls_ca from its configuration file.
# Every process started here is killed by PID; every wait is bounded.
#
# Usage: dtls_cert.sh PATH/TO/coap PATH/TO/integ_dtls_server PATH/TO/coapd
#        PATH/TO/integ_dtls_client
set -u
COAP=${1:?usage: $0 COAP DTLS_SERVER COAPD DTLS_CLIENT}
SRV=${2:?usage: $0 COAP DTLS_SERVER COAPD DTLS_CLIENT}
COAPD=${3:?usage: $0 COAP DTLS_SERVER COAPD DTLS_CLIENT}
CLI=${4:?usage: $0 COAP DTLS_SERVER COAPD DTLS_CLIENT}
. "$(dirname "$0")/dtls_common.sh"

for t in certtool $LSRV $LCLI; do
  command -v $t >/dev/null || fail "$t not installed (scripts/install-deps)"
done

# --- the PKI ---
P=$T/pki
mkdir -p "$P"
key() { certtool --generate-privkey --key-type ecdsa --outfile "$P/$1.key" 2>/dev/null; }
selfsigned() { # NAME CN
  key "$1"
  printf 'cn = "%s"\nca\ncert_signing_key\nexpiration_days = 2\n' "$2" >"$P/$1.tmpl"
  certtool --generate-self-signed --load-privkey "$P/$1.key" \
    --template "$P/$1.tmpl" --outfile "$P/$1.pem" 2>/dev/null
}
sign() { # NAME TEMPLATE
  key "$1"
  printf "$2" >"$P/$1.tmpl"
  certtool --generate-certificate --load-privkey "$P/$1.key" \
    --load-ca-certificate "$P/ca.pem" --load-ca-privkey "$P/ca.key" \
    --template "$P/$1.tmpl" --outfile "$P/$1.pem" 2>/dev/null
}
SRVT='dns_name = "localhost"\nip_address = "127.0.0.1"\ntls_www_server\nsigning_key\n'
selfsigned ca "coapkit test CA"
selfsigned other "a CA nobody trusts"
sign srv "cn = \"localhost\"\n${SRVT}expiration_days = 2\n"
sign cli 'cn = "sensor-7"\ntls_www_client\nsigning_key\nexpiration_days = 2\n'
sign old "cn = \"localhost\"\n${SRVT}activation_date = \"2020-01-01 00:00:00\"\nexpiration_date = \"2020-12-31 00:00:00\"\n"
sign wrong 'cn = "other.example"\ndns_name = "other.example"\ntls_www_server\nsigning_key\nexpiration_days = 2\n'
for f in ca other srv cli old wrong; do
  [ -s "$P/$f.pem" ] || fail "certtool did not make $f.pem"
done
ok "a throw-away PKI made with certtool"

run() {
  timeout 60 "$COAP" "$@" >"$T/out" 2>"$T/err" </dev/null
  RC=$?
}

# start_srv ARGS...: integ_dtls_server, sets SPID, DP
start_srv() {
  : >"$T/ports"
  "$SRV" "$@" >"$T/ports" 2>"$T/server.log" &
  SPID=$!
  PIDS="$PIDS $SPID"
  # Up to 30 s: a start under Valgrind (scripts/valgrind) takes seconds.
  for _ in $(seq 300); do [ -s "$T/ports" ] && break; sleep 0.1; done
  read -r DP _ <"$T/ports" || fail "integ_dtls_server $* did not start"
}
stop_srv() {
  kill "$SPID" 2>/dev/null
  wait "$SPID" 2>/dev/null
}

# expect_fail WHAT MESSAGE ARGS...: coap exits 3 with one line ending
# in MESSAGE.
expect_fail() {
  local what=$1 msg=$2
  shift 2
  run "$@"
  [ $RC -eq 3 ] && [ "$(wc -l <"$T/err")" -eq 1 ] &&
    grep -q -- "$msg\$" "$T/err" && [ ! -s "$T/out" ] ||
    fail "$what: exit $RC: $(cat "$T/err")"
  ok "$what: exit 3, '$msg'"
}

# --- 1. coap against integ_dtls_server ---
start_srv --cert "$P/srv.pem" --key "$P/srv.key" --ca "$P/ca.pem"
S="coaps://127.0.0.1:$DP"
run get "$S/whoami" --ca "$P/ca.pem"
[ $RC -eq 0 ] && [ "$(cat "$T/out")" = "cert " ] ||
  fail "verified GET: $RC $(cat "$T/out" "$T/err")"
run get "coaps://localhost:$DP/whoami" --ca "$P/ca.pem" \
  --cert "$P/cli.pem" --key "$P/cli.key"
[ $RC -eq 0 ] && [ "$(cat "$T/out")" = "cert sensor-7" ] ||
  fail "GET with a client certificate: $RC $(cat "$T/out" "$T/err")"
ok "chain and name verified (IP and name); the handler sees CN sensor-7"
expect_fail "untrusted" "the peer's certificate is not trusted" \
  get "$S/whoami" --ca "$P/other.pem"
stop_srv

start_srv --cert "$P/old.pem" --key "$P/old.key"
expect_fail "expired" "the peer's certificate has expired" \
  get "coaps://127.0.0.1:$DP/whoami" --ca "$P/ca.pem"
stop_srv
start_srv --cert "$P/wrong.pem" --key "$P/wrong.key"
expect_fail "name mismatch" "the certificate does not match the host name" \
  get "coaps://127.0.0.1:$DP/whoami" --ca "$P/ca.pem"
stop_srv

start_srv --cert "$P/srv.pem" --key "$P/srv.key" --ca "$P/ca.pem" --require
S="coaps://127.0.0.1:$DP"
expect_fail "required client certificate missing" \
  "the peer refused our certificate (or none)" get "$S/whoami" --ca "$P/ca.pem"
run get "$S/whoami" --ca "$P/ca.pem" --cert "$P/cli.pem" --key "$P/cli.key"
[ $RC -eq 0 ] && [ "$(cat "$T/out")" = "cert sensor-7" ] ||
  fail "required client certificate: $RC $(cat "$T/out" "$T/err")"
ok "a server that requires client certificates gets the CN"

# --- 2. libcoap both ways ---
out=$(timeout 30 $LCLI -c "$P/cli.pem" -j "$P/cli.key" -C "$P/ca.pem" \
  "$S/whoami" 2>"$T/lclient.log")
[ "$out" = "cert sensor-7" ] || fail "$LCLI -c/-j/-C: '$out'"
ok "$LCLI -c/-j/-C against ck_ctx_listen_dtls --require"
stop_srv

SERVER=$LSRV
. "$(dirname "$0")/libcoap_server.sh"
# start_lsrv ARGS...: coap-server-gnutls on a free pair of ports; its
# coaps port is PORT + 1. Sets LPID, LU.
start_lsrv() {
  PORT=$((20000 + ($$ + RANDOM) % 10000))
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    while port_used "$PORT" || port_used $((PORT + 1)); do
      PORT=$((PORT + 2))
    done
    $LSRV -A 127.0.0.1 -p "$PORT" "$@" -v 4 >"$T/lserver.log" 2>&1 &
    LPID=$!
    for _ in $(seq 50); do
      listening $((PORT + 1)) && break
      sleep 0.1
    done
    listening $((PORT + 1)) && kill -0 $LPID 2>/dev/null && break
    kill $LPID 2>/dev/null
    wait $LPID 2>/dev/null
    PORT=$((PORT + 2))
  done
  PIDS="$PIDS $LPID"
  LU="coaps://127.0.0.1:$((PORT + 1))"
}
start_lsrv -c "$P/srv.pem" -j "$P/srv.key" -C "$P/ca.pem"
run get "$LU/" --ca "$P/ca.pem" --cert "$P/cli.pem" --key "$P/cli.key"
[ $RC -eq 0 ] && grep -q libcoap "$T/out" ||
  fail "coap against $LSRV -c/-j/-C: $RC $(cat "$T/err")"
ok "coap with a client certificate against $LSRV -c/-j/-C"
expect_fail "$LSRV, untrusted" "the peer's certificate is not trusted" \
  get "$LU/" --ca "$P/other.pem" --cert "$P/cli.pem" --key "$P/cli.key"
expect_fail "$LSRV requires a certificate" \
  "the peer refused our certificate (or none)" get "$LU/" --ca "$P/ca.pem"
kill $LPID
wait $LPID 2>/dev/null

# --- 3. raw public keys ---
fp=$(certtool --load-privkey "$P/cli.key" --pubkey-info --outder 2>/dev/null |
  sha256sum | cut -d' ' -f1)
start_srv --rpk "$P/srv.key"
run get "coaps://127.0.0.1:$DP/whoami" --rpk "$P/cli.key"
[ $RC -eq 0 ] && [ "$(cat "$T/out")" = "rpk $fp" ] ||
  fail "RPK: $RC $(cat "$T/out" "$T/err"), want $fp"
out=$(timeout 30 $LCLI -M "$P/cli.key" "coaps://127.0.0.1:$DP/whoami" \
  2>"$T/lclient.log")
[ "$out" = "rpk $fp" ] || fail "$LCLI -M: '$out'"
# And the client learns the server's key (struct ck_client_response).
sfp=$(certtool --load-privkey "$P/srv.key" --pubkey-info --outder 2>/dev/null |
  sha256sum | cut -d' ' -f1)
out=$(printf 'get\npeer\nquit\n' |
  timeout 30 "$CLI" "coaps://127.0.0.1:$DP/whoami" --rpk "$P/cli.key")
[ "$(echo "$out" | tail -n 1)" = "peer rpk $sfp" ] ||
  fail "the server's fingerprint at the client: $out, want $sfp"
run get -v "coaps://127.0.0.1:$DP/whoami" --rpk "$P/cli.key"
grep -qx "\* DTLS server: raw public key SHA-256 $sfp" "$T/err" ||
  fail "coap -v does not show the server's key: $(grep DTLS "$T/err")"
stop_srv
start_lsrv -M "$P/srv.key"
run get "$LU/" --rpk "$P/cli.key"
[ $RC -eq 0 ] && grep -q libcoap "$T/out" ||
  fail "coap --rpk against $LSRV -M: $RC $(cat "$T/err")"
ok "raw public keys both ways; the handler sees the key's SHA-256"

# --- 4. coapd with a certificate from its configuration file ---
cat >"$T/coapd.conf" <<EOF
dtls_cert = $P/srv.pem
dtls_key = $P/srv.key
dtls_ca = $P/ca.pem
EOF
"$COAPD" --config "$T/coapd.conf" --demo --data-dir "$T/data" \
  --listen 127.0.0.1:0 --dtls-listen 127.0.0.1:0 2>"$T/coapd.log" &
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
run get "coaps://localhost:$CP/hello" --ca "$P/ca.pem"
[ $RC -eq 0 ] && [ -s "$T/out" ] || fail "coap against coapd: $RC $(cat "$T/err")"
out=$(timeout 30 $LCLI -c "$P/cli.pem" -j "$P/cli.key" -C "$P/ca.pem" \
  "coaps://127.0.0.1:$CP/hello" 2>"$T/lclient.log")
[ -n "$out" ] || fail "$LCLI against coapd: no answer"
ok "coapd --dtls-listen with dtls_cert/dtls_key/dtls_ca"
echo "all ok"

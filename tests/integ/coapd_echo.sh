#!/usr/bin/env bash
# Amplification mitigation (RFC 9175 §2.4) of coapd: raw sockets
# (integ_echo_raw) see a large answer to an unverified source replaced by
# a 4.01 with Echo no larger than three times the request, and the Echo
# round trip, forged, foreign and expired Echo values (echo_fresh_ms =
# 1000 here); libcoap's coap-client-notls repeats its request with the
# Echo on its own, for /.well-known/core and for /large (Block2).
# Usage: coapd_echo.sh PATH_TO_COAPD PATH_TO_INTEG_ECHO_RAW
. "$(dirname "$0")/coapd_common.sh"
RAW=${2:?usage: $0 COAPD INTEG_ECHO_RAW}

printf 'listen = 127.0.0.1:0\ndemo = true\ndata_dir = %s\necho_fresh_ms = 1000\n' \
  "$T/data" >"$T/conf"
start_coapd --config "$T/conf"

timeout 30 "$RAW" "$PORT" || fail "integ_echo_raw"

V=7 req "$U/.well-known/core"
grep -q 'c:4.01 .*Echo:' "$T/trace" || fail "libcoap got no 4.01 with Echo"
grep -q 'c:GET .*Echo:' "$T/trace" || fail "libcoap did not send the Echo back"
expect 2.05 ACK
grep -q '</large>' "$T/body" || fail "/.well-known/core incomplete"
ok "coap-client: /.well-known/core after an Echo round trip"

# A new coap-client is a new source port: challenged again.
V=7 req "$U/large"
grep -q 'c:4.01 .*Echo:' "$T/trace" || fail "libcoap got no 4.01 for /large"
size=$(wc -c <"$T/body")
[ "$size" -ge 2048 ] || fail "/large is $size bytes"
grep -q 'Block2:2/_/1024' "$T/trace" || fail "/large not in blocks"
ok "coap-client: /large ($size bytes, Block2) after an Echo round trip"

req "$U/hello"
grep -q 'c:4.01' "$T/trace" && fail "/hello challenged"
expect 2.05 ACK
ok "coap-client: /hello answered at once"

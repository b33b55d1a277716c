#!/usr/bin/env bash
# Malformed datagrams against coapd (RFC 7252 §3, §4.2, §4.3): a CON with
# a format error gets a Reset, anything else malformed is dropped in
# silence, an empty CON (ping) gets a Reset, an oversized request 4.13;
# after a burst of random bytes coapd is alive and serves /hello.
# Datagrams are sent with bash's /dev/udp, from a new socket each.
# Usage: coapd_malformed.sh PATH_TO_COAPD
. "$(dirname "$0")/coapd_common.sh"

start_coapd

# raw HEX: sends HEX as one datagram from a new socket and prints, in
# hex, the first four bytes of the answer within a second ("" for none).
raw() {
  udp_open
  udp_send "$1"
  udp_recv 4
  udp_close
}

# check NAME HEX EXPECTED
check() {
  local got
  got=$(raw "$2")
  [ "$got" = "$3" ] || fail "$1: answer '$got', expected '${3:-none}'"
  ok "$1 -> ${3:-no answer}"
}

check "CON with TKL 9" 49011234010203040506070809 70001234
check "NON with TKL 9" 59011235010203040506070809 ""
check "CON version 2" 89011236 ""
check "2-byte datagram" 4001 ""
check "empty CON with a token" 41001237aa 70001237
check "option delta nibble 15" 40011238f0 70001238
check "payload marker, no payload" 40011239ff 70001239
check "option past the end" 4001123ab56865 7000123a
check "option length nibble 15" 4001123b1f 7000123b
check "CON ping" 4000123c 7000123c
check "unsolicited CON response" 4045123e 7000123e
check "stray ACK" 6000123f ""
check "stray RST" 70001240 ""

# Larger than the 1600 bytes coapd reads: 4.13 in a piggybacked ACK.
{ printf '%b' '\x40\x01\x12\x41\xff'; head -c 2000 /dev/zero | tr '\0' a; } \
  >"$T/big"
udp_open
cat "$T/big" >&3
got=$(udp_recv 4)
udp_close
[ "$got" = "608d1241" ] || fail "oversized request: '$got', expected 4.13"
ok "2005-byte request -> 4.13"

for _ in $(seq 200); do
  udp_open
  head -c $((RANDOM % 64 + 1)) /dev/urandom >&3
  udp_close
done
kill -0 "$PID" || fail "coapd died"
req "$U/hello"; expect 2.05 ACK; body_is "Hello, world!"
ok "alive and serving after 200 random datagrams"

stop_coapd
m=$(sed -n 's/.*stopped by SIGTERM: .* malformed \([0-9]*\) .*/\1/p' \
  "$T/coapd.log")
[ "${m:-0}" -ge 9 ] || fail "malformed counter is '${m:-}'"
ok "clean shutdown, malformed counter $m"

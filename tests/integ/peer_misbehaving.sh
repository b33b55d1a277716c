#!/bin/bash
# A peer that answers wrongly on purpose (peer_misbehaving.c), against
# the library's client (client_misbehaving.c) and against `coap`: a
# piggybacked answer with another token is no answer (RFC 7252 §5.3.2);
# a response with an unknown critical option is rejected, with RST when
# it came on its own (§5.4.1); an ACK carrying a request code and an RST
# carrying anything are ignored (§4.2, §4.3); a 4.01 with Echo is
# answered by the same request with Echo, once, also block-wise (RFC
# 9175 §2.3). The peer's log shows what the client sent back.
#
# Usage: peer_misbehaving.sh PEER CLIENT_TEST COAP
PEER=${1:?usage: $0 PEER CLIENT_TEST COAP}
CLIENT=${2:?usage: $0 PEER CLIENT_TEST COAP}
COAP=${3:?usage: $0 PEER CLIENT_TEST COAP}
. "$(dirname "$0")/cli_common.sh"

"$PEER" >"$T/peer.log" 2>&1 &
PPID_=$!
PIDS="$PIDS $PPID_"
PORT=
for _ in $(seq 100); do
  PORT=$(sed -n 's/^port \([0-9]*\)$/\1/p' "$T/peer.log" | head -n 1)
  [ -n "$PORT" ] && break
  sleep 0.05
done
[ -n "$PORT" ] || { echo "FAIL: the peer did not start"; exit 1; }
U="coap://127.0.0.1:$PORT"

# count PATTERN: lines of the peer's log matching PATTERN.
count() { grep -c -- "$1" "$T/peer.log"; }

check "the library's client against the peer"
timeout 60 "$CLIENT" "$PORT" >"$T/out" 2>"$T/err"
RC=$?
cat "$T/out"
rc_is 0
[ "$(count '^rst-for-bad$')" -eq 2 ] ||
  fail "the client sent $(count '^rst-for-bad$') RSTs for the two bad responses"
[ "$(count '^ack-for-bad$')" -eq 0 ] || fail "the client ACKed a bad response"
[ "$(count '^ack-for-good$')" -eq 1 ] || fail "the good separate CON not ACKed"
[ "$(count '^echo-repeat same-request yes')" -eq 1 ] ||
  fail "the repeated request did not carry the first one's options"
[ "$(count '^echo-twice ')" -eq 2 ] ||
  fail "echo-twice: $(count '^echo-twice ') requests, expected 2"
[ "$(count '^echo-big block 0 no-echo')" -eq 1 ] &&
  [ "$(count '^echo-big block [12] echo')" -eq 2 ] ||
  fail "echo-big: blocks not asked for with Echo"
[ "$(count '^echo-up block [0-9]* no-echo')" -eq 1 ] &&
  [ "$(count '^echo-up block 2 echo')" -eq 1 ] ||
  fail "echo-up: blocks not sent with Echo"
ok

# coap with timers that retransmit within ~150 ms and give up in ~1 s.
FAST="--ack-timeout 100 --max-retransmit 2"

check "coap: a forged piggybacked answer (other token) is no answer: exit 3"
run $FAST get "$U/token"
rc_is 3; out_empty
grep -aq forged "$T/out" "$T/err" && fail "the forged answer was shown"
ok

check "coap: the right answer to the retransmission is taken: exit 0"
run $FAST get "$U/token-late"
rc_is 0; out_is right
ok

while read -r path flags why; do
  check "coap: $path: $why"
  [ "$flags" = - ] && flags=
  run $FAST $flags get "$U/$path"
  rc_is 0; out_is good
  ok
done <<LIST
crit - piggybacked option 9 ignored, retransmission answered
crit-sep - separate CON with option 9 rejected, the next one shown
crit-non --non NON with option 9 rejected, the next one shown
ack-req - an ACK with code 0.01 ignored
rst-full - an RST with a code ignored
LIST
[ "$(count '^rst-for-bad$')" -eq 4 ] ||
  fail "coap sent $(( $(count '^rst-for-bad$') - 2 )) RSTs for 2 bad responses"
[ "$(count '^ack-for-bad$')" -eq 0 ] || fail "coap ACKed a bad response"

check "coap: Echo is repeated once, with the request's payload"
run $FAST post -e hello "$U/echo?x=1"
rc_is 0; out_is "fresh:hello"
[ "$(count '^echo-repeat same-request yes')" -eq 2 ] ||
  fail "the repeated request did not carry the first one's options"
ok

check "coap: a second 4.01 with Echo is the answer: exit 1"
run $FAST get "$U/echo-twice"
rc_is 1; out_is again
[ "$(count '^echo-twice ')" -eq 4 ] ||
  fail "echo-twice: $(( $(count '^echo-twice ') - 2 )) requests, expected 2"
ok

check "coap: Echo and a Block2 download"
run $FAST get "$U/echo-big"
rc_is 0
[ "$(wc -c <"$T/out")" -eq 3000 ] || fail "$(wc -c <"$T/out") bytes, not 3000"
ok

if [ -n "${KEEP:-}" ]; then cat "$T/peer.log"; fi
finish

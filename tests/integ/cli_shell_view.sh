#!/bin/bash
# coap shell fed by a pipe, as a script uses it, against coapd --demo and
# a libcoap server that never answers: each response framed as CoAP Shell
# shows it (request line; code with its CoAP name, type, MID, token, RTT;
# options; payload size; the payload) and ending with a line break, so
# that answers never run together; CoAP Shell's --payload and --format;
# connect saying whether the server answers a ping; ping, also --json;
# observe --count and --duration ending by themselves (and on the
# server); and transmission options given to one request (--max-
# retransmit, --ack-timeout, --ack-random-factor, --token-size, --non,
# --block-size) applying to that request only.
#
# Usage: cli_shell_view.sh PATH/TO/coap PATH/TO/coapd
COAP=${1:?usage: $0 PATH/TO/coap PATH/TO/coapd}
COAPD=${2:?usage: $0 PATH/TO/coap PATH/TO/coapd}
. "$(dirname "$0")/cli_common.sh"
command -v jq >/dev/null || { echo "FAIL: jq not installed"; exit 1; }

start_coapd
start_libcoap -l 100% # receives, never answers
DEAF="coap://127.0.0.1:$LPORT"
export COAP_HISTORY=$T/history

# wait_observers PATH N: coapd logs N observers of PATH within 4 s.
wait_observers() {
  for _ in $(seq 40); do
    last=$(grep -a "observers of $1:" "$T/coapd.log" | tail -n 1)
    [ "${last##* }" = "$2" ] && return 0
    sleep 0.1
  done
  fail "coapd still has observers of $1: ${last:-none logged}"
}

# shell_run LINES...: pipes the lines into `coap shell $CU`.
shell_run() {
  printf '%s\n' "$@" >"$T/in"
  STDIN=$T/in run shell "$CU"
}
RULE_R='----------------------------------- Response -----------------------------------'
RULE_P='................................... Payload ....................................'
RULE_E='--------------------------------------------------------------------------------'

check "get: the response framed as CoAP Shell shows it, with CoAP's names"
shell_run 'get /hello'
rc_is 0; err_empty
sed 's/MID: [0-9]*/MID: M/; s/Token: [0-9a-f]*/Token: T/; s/RTT: [0-9]*ms/RTT: Rms/' \
  "$T/out" >"$T/norm"
cat >"$T/want" <<WANT
$RULE_R
GET $CU/hello
Status: 2.05 Content, Type: ACK, MID: M, Token: T, RTT: Rms
Options: {"Content-Format":"text/plain;charset=utf-8"}
Payload: 13B
$RULE_P
Hello, world!
$RULE_E
WANT
cmp -s "$T/norm" "$T/want" || fail "view differs: $(diff "$T/want" "$T/norm")"
grep -aq 'Token: [0-9a-f]\{8\},' "$T/out" || fail "no 4-byte token"
grep -aq $'\033' "$T/out" && fail "escape sequences on a pipe"
ok

check "answers never run together; CoAP Shell's --payload and --format"
shell_run 'get /hello' 'get /hello' \
  "put /sink --payload 'Hi From IoT' --format text/plain" 'get /sink' \
  'post /test --payload=x --format=text' 'get /nothere' 'delete /sink'
rc_is 0; err_empty
[ "$(grep -c -x -- "$RULE_R" "$T/out")" -eq 7 ] || fail "not 7 responses"
[ "$(grep -c -x -- "$RULE_E" "$T/out")" -eq 7 ] || fail "not 7 ends"
[ "$(grep -c -x 'Hello, world!' "$T/out")" -eq 2 ] || fail "bodies run together"
[ "$(tail -c 1 "$T/out" | od -An -c | tr -d ' ')" = '\n' ] ||
  fail "the output does not end with a line break"
out_has "PUT $CU/sink"; out_has "Status: 2.04 Changed, Type: ACK"
out_has "Hi From IoT"
out_has 'Options: {"Location-Path":["location1","location2","location3"]}'
out_has "Status: 2.01 Created"; out_has "Status: 4.04 Not Found"
out_has "Status: 2.02 Deleted"
grep -aq -- '-Reset Content\|205-\|204-' "$T/out" && fail "HTTP's names"
ok

check "connect says whether the server answers a ping"
DEAD=$((LPORT + 1))
while port_used "$DEAD"; do DEAD=$((DEAD + 1)); done
printf 'connect %s\nconnect coap://127.0.0.1:%s\n' "$CU" "$DEAD" >"$T/in"
STDIN=$T/in run shell
rc_is 0; [ "$(wc -l <"$T/out")" -eq 1 ] || fail "not one line on stdout"
grep -aq "^available: pong from 127.0.0.1:$CPORT in [0-9]* ms$" "$T/out" ||
  fail "no 'available' line"
err_line "unavailable: coap://127.0.0.1:$DEAD does not answer a ping"
ok

check "ping: whether and how fast the server answered; ping --json"
shell_run 'ping' "ping coap://127.0.0.1:$DEAD" 'ping --json'
rc_is 0
head -n 1 "$T/out" | grep -aq "^pong from 127.0.0.1:$CPORT in [0-9]* ms$" ||
  fail "no pong line"
sed -n 2p "$T/out" | jq -e '.ping == "pong" and (.rtt_ms | type) == "number"' \
  >/dev/null || fail "no JSON pong"
err_line "ping coap://127.0.0.1:$DEAD: the peer is unreachable"
ok

check "observe --count 2 stops by itself, cancelled on the server"
start=$(date +%s%N)
shell_run 'observe /obs --count 2' 'get /hello'
ms=$((($(date +%s%N) - start) / 1000000))
rc_is 0
[ "$(grep -c '^/obs: [0-9]*$' "$T/out")" -eq 2 ] || fail "not 2 notifications"
# A script's lines run in order: the get after the observation.
[ "$(grep -n '^/obs: ' "$T/out" | tail -n 1 | cut -d: -f1)" -lt \
  "$(grep -n 'Hello, world!' "$T/out" | cut -d: -f1)" ] ||
  fail "the get ran before the observation ended"
err_line "observation of /obs ended after 2 notifications"
[ "$ms" -lt 5000 ] || fail "took $ms ms"
wait_observers /obs 0
ok

check "observe --duration 1.5 stops by itself"
start=$(date +%s%N)
shell_run 'observe /time --duration 1.5'
ms=$((($(date +%s%N) - start) / 1000000))
rc_is 0
[ "$(grep -c '^/time: ' "$T/out")" -ge 1 ] || fail "no notification"
err_line "observation of /time ended after"
[ "$ms" -ge 1400 ] && [ "$ms" -lt 5000 ] || fail "took $ms ms"
ok

check "--max-retransmit 0 on one request: one transmission, then the default"
start=$(date +%s%N)
printf '%s\n' \
  "get $DEAF/x -v --ack-timeout 200 --ack-random-factor 1 --max-retransmit 0" \
  'set' >"$T/in"
STDIN=$T/in run shell "$CU"
ms=$((($(date +%s%N) - start) / 1000000))
rc_is 0
[ "$(grep -c '^> CON GET' "$T/err")" -eq 1 ] ||
  fail "$(grep -c '^> CON GET' "$T/err") transmissions, expected 1"
err_has "GET $DEAF/x: no response: the exchange timed out"
# ACK_TIMEOUT 200 ms, factor 1, no retransmission.
[ "$ms" -ge 150 ] && [ "$ms" -lt 1500 ] || fail "took $ms ms"
out_has "max-retransmit 4 (default)"; out_has "ack-timeout 2000 (default)"
ok

check "--max-retransmit 1 --ack-timeout 200: two transmissions 200 ms apart"
start=$(date +%s%N)
shell_run "get $DEAF/x -v --ack-timeout 200 --ack-random-factor 1 --max-retransmit 1"
ms=$((($(date +%s%N) - start) / 1000000))
rc_is 0
[ "$(grep -c '^> CON GET' "$T/err")" -eq 2 ] || fail "not 2 transmissions"
err_has "(retransmission 1)"
# 200 ms, then 400 ms after the retransmission.
[ "$ms" -ge 550 ] && [ "$ms" -lt 2000 ] || fail "took $ms ms"
ok

check "--token-size, --non and --block-size on one request"
shell_run 'get /hello --token-size 8' 'get /hello --non' \
  'get /large --block-size 64' 'get /hello'
rc_is 0; err_empty
grep -aq 'Type: ACK, MID: [0-9]*, Token: [0-9a-f]\{16\},' "$T/out" ||
  fail "no 8-byte token"
grep -aq 'Type: NON, MID: [0-9]*, Token: [0-9a-f]*,' "$T/out" ||
  fail "no NON answer"
grep -aq '"Block2":"[0-9]*/_/64"' "$T/out" || fail "not 64-byte blocks"
out_has "Payload: 2840B"
# The last get is back on the shell's own parameters.
tail -n 6 "$T/out" | grep -aq 'Type: ACK, MID: [0-9]*, Token: [0-9a-f]\{8\},' ||
  fail "the token size stuck"
ok

check "a bad argument of one command: one line, the shell goes on"
shell_run 'get /hello --max-retransmit 99' 'observe /obs --count 0' \
  'get /hello --ack-timeout x' 'ping --payload x' 'get /hello'
rc_is 0
[ "$(wc -l <"$T/err")" -eq 4 ] || fail "not 4 error lines"
err_has "--max-retransmit: '99' is not a whole number from 0 to 20"
err_has "--count: '0' is not a whole number from 1"
err_has "--ack-timeout: 'x' is not a whole number"
err_has "--data does not apply to ping"
out_has "Hello, world!"
ok

finish

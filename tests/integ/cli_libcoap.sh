#!/bin/bash
# coap, the command-line client, against libcoap's coap-server-notls on
# loopback: every method, block-wise transfers both ways, Observe with
# --count and with Ctrl-C, discovery, ping, NON, and the failures (4.04,
# 4.05). libcoap logs every PDU it sees (-v 7), which makes it a second,
# independent witness: the method, type, Message ID, token, options and
# payload that coap -v says it sent must be what the server logged.
#
# Usage: cli_libcoap.sh PATH/TO/coap
COAP=${1:?usage: $0 PATH/TO/coap}
. "$(dirname "$0")/cli_common.sh"

start_libcoap -d 20
U=$LU

# logged PATTERN: the server's log has a line matching the ERE.
logged() {
  for _ in $(seq 30); do
    grep -aEq -- "$1" "$T/libcoap.log" && return 0
    sleep 0.1
  done
  fail "the server did not log /$1/"
}

# A pattern (ERE) for the MID (4 hex digits, as libcoap prints it) and
# the token (in braces) of the first request coap -v sent.
sent_id() {
  set -- $(sed -n \
    's/^> [A-Z]* [A-Za-z]* mid=\([0-9]*\) token=\([0-9a-f-]*\) .*/\1 \2/p' \
    "$T/err" | head -n 1)
  printf '%04x [{]%s[}]' "$1" "$2"
}

check "get /: the payload alone, exit 0"
run get "$U/"
rc_is 0; err_empty; out_has "This is a test server made with libcoap"; ok

check "get -v: the server logged our MID and token"
run get -v "$U/"
rc_is 0
logged "t:CON c:GET i:$(sent_id) \[ \]"
err_has "< ACK 2.05 Content"; err_has "<   Max-Age: "; ok

check "4.04: exit 1, the diagnostic payload on stdout, one line on stderr"
run get "$U/nothing-here"
rc_is 1; out_is "Not Found"; err_line "4.04 Not Found"; ok

check "put creates (2.01), get reads, delete removes (2.02), then 4.04"
run put -v -e 'made by coap' -t text "$U/made"
rc_is 0; err_has "< ACK 2.01 Created"
logged "t:CON c:PUT i:$(sent_id) \[ Uri-Path:made, \
Content-Format:text/plain \] :: 'made by coap'"
run get "$U/made"
rc_is 0; out_is "made by coap"
run delete "$U/made"
rc_is 0; out_empty; err_empty
run get "$U/made"
rc_is 1; ok

check "post"
run post -v -e x "$U/posted"
rc_is 0; logged "t:CON c:POST i:$(sent_id) .* :: 'x'"; ok

check "fetch, patch, ipatch: sent as such (the server answers 4.05)"
for m in fetch patch ipatch; do
  run "$m" -v -e "body-$m" "$U/example_data"
  rc_is 1; err_has "4.05 Method Not Allowed"
  name=$(echo "$m" | tr a-z A-Z)
  [ "$m" = ipatch ] && name=iPATCH
  logged "t:CON c:$name i:$(sent_id) \[ Uri-Path:example_data \] :: 'body-$m'"
done
ok

check "--non: a NON request, logged as NON"
run get --non -v "$U/"
rc_is 0; logged "t:NON c:GET i:$(sent_id) "; err_has "< NON 2.05 Content"; ok

check "100 KiB up (Block1) and down (Block2 at 64 bytes), byte for byte"
head -c 102400 /dev/urandom >"$T/big"
run put -f "$T/big" "$U/example_data"
rc_is 0; err_empty
logged "Block1:99/_/1024"
run get -b 64 -o "$T/back" "$U/example_data"
rc_is 0; out_empty; err_empty
cmp -s "$T/big" "$T/back" || fail "100 KiB came back different"
logged "Block2:1599/_/64"
ok

check "--json: code, type, MID and token"
run get --json "$U/"
rc_is 0
mid=$(jq -r .mid "$T/out")
tok=$(jq -r .token "$T/out")
logged "t:ACK c:2.05 i:$(printf %04x "$mid") [{]$tok[}]"
jq -e '.type == "ACK" and .code == "2.05"' "$T/out" >/dev/null ||
  fail "unexpected JSON"
ok

check "observe --count 2: two lines, then GET with Observe:1 (RFC 7641 §3.6)"
run observe -v --count 2 "$U/time"
rc_is 0; [ "$(wc -l <"$T/out")" -eq 2 ] || fail "not two lines"
tok=$(sed -n 's/^> CON GET mid=[0-9]* token=\([0-9a-f]*\) .*/\1/p' "$T/err" |
  head -n 1)
logged "c:GET i:[0-9a-f]{4} [{]$tok[}] \[ Observe:0, Uri-Path:time \]"
logged "c:GET i:[0-9a-f]{4} [{]$tok[}] \[ Observe:1, Uri-Path:time \]"
ok

check "observe, Ctrl-C: the observation is cancelled on the server"
"$COAP" observe -v "$U/time" >"$T/out" 2>"$T/err" </dev/null &
opid=$!
PIDS="$PIDS $opid"
for _ in $(seq 50); do
  [ -s "$T/out" ] && break
  sleep 0.1
done
kill -INT "$opid"
for _ in $(seq 50); do kill -0 "$opid" 2>/dev/null || break; sleep 0.1; done
wait "$opid"
RC=$?
rc_is 0
tok=$(sed -n 's/^> CON GET mid=[0-9]* token=\([0-9a-f]*\) .*/\1/p' "$T/err" |
  head -n 1)
logged "c:GET i:[0-9a-f]{4} [{]$tok[}] \[ Observe:1, Uri-Path:time \]"
ok

check "discover: libcoap's resources in the table"
run discover "$U"
rc_is 0; err_empty
grep -aq '^/time  *ticks  *text/plain;charset=utf-8  *clock  *-  *obs$' \
  "$T/out" || fail "no /time row"
grep -aq '^/example_data ' "$T/out" || fail "no /example_data row"
ok

check "ping: libcoap answers the empty CON with RST"
run ping -v "$U"
rc_is 0; out_has "pong from 127.0.0.1:$LPORT"; err_has "< RST 0.00 Empty"; ok

finish

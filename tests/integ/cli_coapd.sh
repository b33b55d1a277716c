#!/bin/bash
# coap, the command-line client, against coapd --demo on loopback: every
# command and most options, each checked for its standard output, its
# standard error and its exit status. The observation tests also read
# coapd's log to see the observer go away after --count, --duration and
# Ctrl-C (the proactive cancel of RFC 7641 §3.6).
#
# Usage: cli_coapd.sh PATH/TO/coap PATH/TO/coapd
COAP=${1:?usage: $0 PATH/TO/coap PATH/TO/coapd}
COAPD=${2:?usage: $0 PATH/TO/coap PATH/TO/coapd}
. "$(dirname "$0")/cli_common.sh"

command -v jq >/dev/null || { echo "FAIL: jq not installed"; exit 1; }
start_coapd
U=$CU

# wait_observers PATH N: coapd logs N observers of PATH within 4 s.
wait_observers() {
  for _ in $(seq 40); do
    last=$(grep -a "observers of $1:" "$T/coapd.log" | tail -n 1)
    [ "${last##* }" = "$2" ] && return 0
    sleep 0.1
  done
  fail "coapd still has observers of $1: ${last:-none logged}"
}

check "get: the payload alone on stdout"
run get "$U/hello"
rc_is 0; out_is "Hello, world!"; err_empty; ok

check "get 4.04: exit 1, one line on stderr"
run get "$U/nope"
rc_is 1; err_line "GET $U/nope: 4.04 Not Found"; ok

check "get -v: the exchange on stderr, the payload on stdout"
run get -v "$U/hello"
rc_is 0; out_is "Hello, world!"
err_has "> CON GET mid="; err_has ">   Uri-Path: hello"
err_has "< ACK 2.05 Content mid="; err_has " rtt="
err_has "<   Content-Format: text/plain;charset=utf-8 (0)"
err_has "<   | Hello, world!"
# The request's MID and token come back in the ACK.
mid=$(sed -n 's/^> CON GET mid=\([0-9]*\) token=\([0-9a-f]*\) .*/\1 \2/p' \
  "$T/err")
grep -aq "^< ACK 2.05 Content mid=${mid% *} token=${mid#* } " "$T/err" ||
  fail "the ACK does not echo MID and token ($mid)"
ok

check "options after the command word, and clustered"
run get "$U/hello" -v
rc_is 0; out_is "Hello, world!"; err_has "< ACK 2.05 Content"
run -v get --raw "$U/hello"
rc_is 0; out_is "Hello, world!"; err_has "> CON GET"; ok

check "put -e -t text, then get shows it"
run put -e 'hello sink' -t text "$U/sink"
rc_is 0; out_empty; err_empty
run get "$U/sink"
rc_is 0; out_is "hello sink"; ok

check "put -f FILE and -f - (stdin), byte for byte"
head -c 700 /dev/urandom >"$T/bin"
run put -f "$T/bin" -t octet "$U/sink"
rc_is 0
run get -o "$T/back" "$U/sink"
rc_is 0; out_empty; cmp -s "$T/bin" "$T/back" || fail "-f FILE differs"
STDIN="$T/bin" run put -f - "$U/sink"
rc_is 0
run get "$U/sink"
cmp -s "$T/bin" "$T/out" || fail "-f - differs"
ok

check "post: 2.01 with Location-Path joined in -v"
run post -v -e x "$U/test"
rc_is 0; err_has "< ACK 2.01 Created"
err_has "<   Location-Path: location1/location2/location3"; ok

check "delete: 2.02; 4.05 where not allowed"
run delete "$U/test"
rc_is 0; err_empty
run delete "$U/hello"
rc_is 1; err_line "4.05 Method Not Allowed"; ok

check "fetch, patch, ipatch: sent, and refused by the demo (4.05)"
for m in fetch patch ipatch; do
  run "$m" -v -e '{}' -t json "$U/test"
  rc_is 1; err_has ": 4.05 Method Not Allowed"
  upper=$(echo "$m" | tr a-z A-Z)
  [ "$m" = ipatch ] && upper=iPATCH
  err_has "> CON $upper mid="
  err_has ">   Content-Format: application/json (50)"
done
ok

check "block-wise download: -b 64, Block2 in -v"
run get -b 64 -o "$T/large" -v "$U/large"
rc_is 0; out_empty
[ "$(wc -c <"$T/large")" -eq 2840 ] || fail "got $(wc -c <"$T/large") bytes"
err_has ">   Block2: 0/_/64"; err_has "<   Block2: 0/M/64"
err_has "<   Size2: 2840"; err_has "<   Block2: 44/_/64"; ok

check "block-wise upload: 5000 bytes in 256-byte blocks"
head -c 5000 /dev/urandom >"$T/up"
run put -b 256 -f "$T/up" -v "$U/large-update"
rc_is 0; err_has ">   Block1: 0/M/256"; err_has ">   Size1: 5000"
err_has ">   Block1: 19/_/256"
run get -o "$T/down" "$U/large-update"
rc_is 0; cmp -s "$T/up" "$T/down" || fail "the upload came back different"
ok

check "-A by name and by number"
run get -A json "$U/multi-format"
rc_is 0; jq -e . "$T/out" >/dev/null || fail "not JSON"
run get -A 0 -v "$U/multi-format"
rc_is 0; err_has ">   Accept: text/plain;charset=utf-8 (0)"
run get -A application/cbor "$U/multi-format"
rc_is 1; err_line "4.06 Not Acceptable"; ok

check "Uri-Query from the URI"
run get -v "$U/query?a=1&b=2"
rc_is 0; out_is "a=1&b=2"; err_has ">   Uri-Query: a=1&b=2"; ok

check "-O by number in hex (ETag: 2.03 Valid), and by name (If-None-Match)"
run get --json "$U/validate"
rc_is 0
etag=$(jq -r '.options[] | select(.name == "ETag") | .value' "$T/out")
[ -n "$etag" ] || fail "no ETag"
run get -v -O "4,0x$etag" "$U/validate"
rc_is 0; out_empty; err_has ">   ETag: 0x$etag"; err_has "< ACK 2.03 Valid"
run put -O If-None-Match -e again "$U/sink"
rc_is 1; err_line "4.12 Precondition Failed"
run get -v -O 258,0 -O Uri-Query,x=1 "$U/query"
rc_is 0; out_is "x=1"; err_has ">   No-Response: 0"; ok

check "-T: the token, both ways"
run get -v -T 0a0b0c "$U/hello"
rc_is 0
err_has "> CON GET mid="; grep -aq "^> CON GET .* token=0a0b0c " "$T/err" &&
  grep -aq "^< ACK 2.05 Content .* token=0a0b0c " "$T/err" ||
  fail "token 0a0b0c not in both"
ok

check "--token-size 8"
run get -v --token-size 8 "$U/hello"
rc_is 0
grep -aq "^> CON GET mid=[0-9]* token=[0-9a-f]\{16\} " "$T/err" ||
  fail "token not 8 bytes"
ok

check "--non: NON request, NON answer"
run get --non -v "$U/hello"
rc_is 0; out_is "Hello, world!"
err_has "> NON GET"; err_has "< NON 2.05 Content"
ok

check "separate response: empty ACK, then CON, which we ACK"
run get -v "$U/separate"
rc_is 0; out_has "sent separately"
err_has "< ACK 0.00 Empty"; err_has "< CON 2.05 Content"
err_has "> ACK 0.00 Empty"; ok

check "--json: one object with code, type, MID, token, options, payload"
run get --json "$U/hello"
rc_is 0; err_empty
[ "$(wc -l <"$T/out")" -eq 1 ] || fail "not one line"
jq -e '.code == "2.05" and .code_name == "Content" and .type == "ACK" and
  (.mid | type) == "number" and (.token | length) == 8 and
  .payload == "Hello, world!" and
  .options[0].name == "Content-Format" and .options[0].value == 0' \
  "$T/out" >/dev/null || fail "unexpected JSON"
run get --json "$U/nope"
rc_is 1; jq -e '.code == "4.04"' "$T/out" >/dev/null || fail "4.04 JSON"
ok

check "-o FILE: nothing on stdout"
run get -o "$T/hello" "$U/hello"
rc_is 0; out_empty; err_empty
[ "$(cat "$T/hello")" = "Hello, world!" ] || fail "file content"
ok

check "observe --count 3: three lines, then the observer is gone"
run observe --count 3 -v "$U/obs"
rc_is 0
[ "$(wc -l <"$T/out")" -eq 3 ] || fail "$(wc -l <"$T/out") lines"
grep -aqv '^[0-9-]*T[0-9:.]*Z [0-9]*$' "$T/out" && fail "no time stamps"
err_has ">   Observe: 0"; err_has ">   Observe: 1"
wait_observers /obs 0; ok

check "observe --json --count 2: one object per notification"
run observe --json --count 2 "$U/obs"
rc_is 0
[ "$(jq -c 'select(.observe != null and .code == "2.05")' "$T/out" | wc -l)" \
  -eq 2 ] || fail "not two notifications"
wait_observers /obs 0; ok

check "observe -s 2: ends after about two seconds"
start=$(date +%s%N)
run observe -s 2 "$U/time"
ms=$((($(date +%s%N) - start) / 1000000))
rc_is 0
[ "$ms" -ge 1900 ] && [ "$ms" -lt 6000 ] || fail "took $ms ms"
[ "$(wc -l <"$T/out")" -ge 2 ] || fail "fewer than 2 notifications"
wait_observers /time 0; ok

check "observe, Ctrl-C: cancelled on the server, exit 0"
"$COAP" observe -v "$U/obs" >"$T/out" 2>"$T/err" </dev/null &
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
rc_is 0; out_has "T"; err_has ">   Observe: 1"
wait_observers /obs 0; ok

check "observe a resource that is not observable: its answer, a note"
run observe "$U/hello"
rc_is 0; out_is "Hello, world!"; err_line "not observed"; ok

check "discover URI: the table"
run discover "$U"
rc_is 0; err_empty
head -n 1 "$T/out" | grep -aq '^path  *rt  *ct  *if  *sz  *obs$' ||
  fail "no header"
grep -aq '^/hello  *demo.hello  *text/plain;charset=utf-8  *-  *-$' \
  "$T/out" || fail "no /hello row"
grep -aq '^/obs  *demo.obs .* obs$' "$T/out" || fail "no /obs row"
grep -aq '^/large .* 2840$' "$T/out" || fail "no sz of /large"
ok

check "discover with a query filter; --raw; --json"
run discover "$U?rt=demo.obs"
rc_is 0; [ "$(wc -l <"$T/out")" -eq 2 ] || fail "not header + 1 row"
out_has "/obs"
run discover --raw "$U"
rc_is 0; out_has '</hello>;'
run discover --json "$U"
rc_is 0
jq -e '.links[] | select(.href == "/time") | .obs == true and
  .rt == "demo.time"' "$T/out" >/dev/null || fail "links in JSON"
ok

check "ping: pong, exit 0"
run ping "$U"
rc_is 0; err_empty; out_has "pong from 127.0.0.1:$CPORT in "
run ping -v "$U"
err_has "> CON 0.00 Empty"; err_has "< RST 0.00 Empty"; ok

check "discover on an answer that is not link format: said, exit 1"
run discover "$U/hello"
rc_is 1; out_is "Hello, world!"
err_line "the answer of $U/hello is not link format: it is text/plain"
run discover --json "$U/hello"
rc_is 1; err_line "is not link format"
jq -e '.code == "2.05"' "$T/out" >/dev/null || fail "no JSON object"
run discover "$U/nowhere"
rc_is 1; err_line "4.04 Not Found"; ok

check "ping --json: one JSON object with the pong and its round trip"
run ping --json "$U"
rc_is 0; err_empty
[ "$(wc -l <"$T/out")" -eq 1 ] || fail "not one line"
jq -e --arg from "127.0.0.1:$CPORT" --arg uri "$U" '.ping == "pong" and
  .type == "RST" and .from == $from and .uri == $uri and
  (.rtt_ms | type) == "number" and (.time | type) == "string"' \
  "$T/out" >/dev/null || fail "not the expected object"
ok

finish

#!/bin/bash
# coap's failures and its help: every kind of bad argument exits 2 with
# one line naming it; an unreachable port (ICMP) and a server that never
# answers exit 3, within the retransmission time the options set; an
# interrupted request exits 130; DTLS options come in pairs (--psk with
# --identity, --cert with --key) and a hex PSK must be hex. --help, COMMAND --help and the man page
# come from one table: every option is in each, docs/coap.1 is what
# `coap --man` prints, and every example they show parses.
#
# Usage: cli_errors.sh PATH/TO/coap
COAP=${1:?usage: $0 PATH/TO/coap}
. "$(dirname "$0")/cli_common.sh"
MAN="$(dirname "$0")/../../docs/coap.1"

start_libcoap -l 100% # receives, never answers
DEAF="coap://127.0.0.1:$LPORT"
# A port nobody listens on: the kernel answers with ICMP.
DEAD=$((LPORT + 1))
while port_used "$DEAD"; do DEAD=$((DEAD + 1)); done
U="coap://127.0.0.1:$DEAD"

check "usage errors: exit 2, nothing on stdout, one line naming the argument"
while IFS='|' read -r args want; do
  eval "set -- $args"
  run "$@"
  CHECK="usage error: coap $args"
  rc_is 2; out_empty; err_line "$want"
  head -c 6 "$T/err" | grep -q '^coap: ' || fail "no 'coap: ' prefix"
done <<EOF
|no command
gte $U|'gte' is not a command
get|get needs a URI
get -b 100 $U|-b: '100' is not a power of two from 16 to 1024
get --block-size=2048 $U|--block-size: '2048'
get -O 4,0xabc $U|-O: '0xabc' is not an even number of hex digits
get -O 4,0x0102030405060708090a $U|-O: ETag takes 1 to 8 bytes, not 10
get -O Frobnicate,1 $U|-O: 'Frobnicate' is neither an option number
get -O 70000,1 $U|-O: option number 70000 is over 65535
get -O 7,high $U|-O: Uri-Port takes a number
get -T xyz $U|-T: 'xyz' is not a token
get -T 0102030405060708ff $U|-T: '0102030405060708ff'
put -t nonsense -e x $U|-t: 'nonsense' is not a content format
get -A $U|-A: '$U' is not a content format
get --count 2 $U|--count does not apply to get
get -e data $U|--data does not apply to get
ping -o file $U|--output does not apply to ping
ping --raw $U|--raw does not apply to ping
observe --count 0 $U|--count: '0' is not a whole number from 1
observe -s never $U|-s: 'never' is not a number
get --ack-timeout 0 $U|--ack-timeout: '0' is not a whole number from 1 to 600000
get --ack-random-factor 0.5 $U|--ack-random-factor: '0.5' is not a number
get --max-retransmit 99 $U|--max-retransmit: '99'
get --token-size 9 $U|--token-size: '9'
get --wait $U|--wait: '$U' is not a whole number
get --nonsense $U|--nonsense: unknown option
get -Z $U|-Z: unknown option
get --verbose=yes $U|--verbose takes no value
get $U -b|-b needs a value (N)
get $U extra|unexpected argument 'extra'
put -e a -f b $U|give --data or --data-file, not both
get http://example.com/|'http://example.com/': URI scheme is not coap or coaps
get coap://[::1/x|'coap://[::1/x': URI host is missing or malformed
discover --group 10.0.0.1|--group: '10.0.0.1' is not a multicast address
discover --group ff02::fd $U|--group: give a URI or --group, not both
get --psk secret $U|--psk needs --identity
get --identity me $U|--identity needs --psk
get --cert c.pem $U|--cert needs --key
get --key k.pem $U|--key needs --cert
get --psk 0xzz --identity me $U|--psk: '0xzz' is not hex
get --psk 0x$(printf '%0130d' 0) --identity me $U|--psk: a key is 1 to 64 bytes
put -f /nonexistent/file $U|--data-file: /nonexistent/file: No such file
get -o /nonexistent/dir/file $U|--output: /nonexistent/dir/file:
EOF
CHECK="usage errors"; ok

check "unreachable port: exit 3 at once (ICMP), one line"
start=$(date +%s%N)
run get --ack-timeout 200 --max-retransmit 1 "$U/x"
ms=$((($(date +%s%N) - start) / 1000000))
rc_is 3; out_empty; err_line "GET $U/x: the peer is unreachable"
[ "$ms" -lt 1000 ] || fail "took $ms ms"
run ping "$U"
rc_is 3; err_line "unreachable"
ok

check "no answer: exit 3 after ACK_TIMEOUT and one retransmission"
start=$(date +%s%N)
run get -v --ack-timeout 200 --ack-random-factor 1 --max-retransmit 1 "$DEAF/"
ms=$((($(date +%s%N) - start) / 1000000))
rc_is 3; out_empty
err_has "coap: GET $DEAF/: no response: the exchange timed out"
[ "$(grep -c '^> CON GET' "$T/err")" -eq 2 ] || fail "not 2 transmissions"
err_has "(retransmission 1)"
# 200 ms, then 400 ms after the retransmission.
[ "$ms" -ge 550 ] && [ "$ms" -lt 2000 ] || fail "took $ms ms"
ok

check "no answer to NON: exit 3"
run get --non --ack-timeout 100 --max-retransmit 1 "$DEAF/"
rc_is 3; err_line "timed out"; ok

check "no answer to observe or ping: exit 3"
run observe --ack-timeout 100 --max-retransmit 0 "$DEAF/time"
rc_is 3; out_empty; err_line "timed out"
run ping --ack-timeout 100 --max-retransmit 0 "$DEAF"
rc_is 3; out_empty; err_line "timed out"; ok

check "Ctrl-C during a request: exit 130"
"$COAP" get "$DEAF/" >"$T/out" 2>"$T/err" </dev/null &
p=$!
PIDS="$PIDS $p"
sleep 0.3
kill -INT "$p"
wait "$p"
RC=$?
rc_is 130; out_empty; ok

check "--help: examples first, every option, exit 0"
run --help
rc_is 0; err_empty
[ "$(sed -n 3p "$T/out")" = "Examples:" ] || fail "examples do not come first"
awk 'length > 79 { bad = 1 } END { exit bad }' "$T/out" ||
  fail "lines over 79 columns"
cp "$T/out" "$T/help"
for o in data data-file content-format accept option token non block-size \
  duration count group output verbose json raw ack-timeout \
  ack-random-factor max-retransmit token-size wait psk identity cert key \
  ca rpk help version; do
  grep -q -- "--$o\b" "$T/help" || fail "--$o not in --help"
  # roff writes each '-' of an option as '\-'.
  grep -qF -- "\\fB\\-\\-$(echo "$o" | sed 's/-/\\-/g')\\fR" "$MAN" ||
    fail "--$o not in the man page"
done
grep -q -- "--man" "$T/help" && fail "the hidden --man is shown"
run get -h
rc_is 0; out_has "coap get - "; out_has "Examples:"; out_has "--accept"
grep -q -- "--count" "$T/out" && fail "get --help shows --count"
run observe --help
rc_is 0; out_has "--count"; out_has "--duration"
run --version
rc_is 0; out_has "coap "
ok

check "the man page is 'coap --man', and groff finds nothing wrong"
run --man
rc_is 0
cmp -s "$T/out" "$MAN" ||
  fail "docs/coap.1 is stale: regenerate it with 'coap --man > docs/coap.1'"
if command -v groff >/dev/null; then
  groff -man -Tutf8 -ww -z "$MAN" 2>"$T/groff" || fail "groff failed"
  [ ! -s "$T/groff" ] || fail "groff: $(cat "$T/groff")"
fi
ok

check "every example in the help parses"
{
  "$COAP" --help
  for c in get post put delete fetch patch ipatch observe discover ping; do
    "$COAP" "$c" --help
  done
} | sed -n 's/^  \(.*\)$/\1/p' | grep '^coap \|^echo ' | grep -v '\[options\]' |
  sed 's/  *#.*//; s/^echo [^|]*| //; s/ | jq \.$//; s/ > [^ ]*$//' |
  sort -u >"$T/examples"
[ "$(wc -l <"$T/examples")" -ge 15 ] || fail "too few examples found"
while read -r line; do
  eval "set -- $line"
  shift
  "$COAP" "$@" --help >/dev/null 2>"$T/err" || fail "'$line': $(cat "$T/err")"
done <"$T/examples"
ok

finish

#!/bin/bash
# coap's readable output on a terminal, against coapd --demo: /sink keeps
# a payload with its Content-Format, so each shape is put there and read
# back under a pseudo-terminal (script(1)): JSON indented, CBOR in
# diagnostic notation (RFC 8949 §8), link format as a table, text with
# control characters escaped, binary as a hex dump, and a block-wise
# download with its progress bar on standard error. The same reads into
# a pipe, or with --raw, must give the bytes unchanged, and no progress.
#
# Usage: cli_pretty.sh PATH/TO/coap PATH/TO/coapd
COAP=${1:?usage: $0 PATH/TO/coap PATH/TO/coapd}
COAPD=${2:?usage: $0 PATH/TO/coap PATH/TO/coapd}
. "$(dirname "$0")/cli_common.sh"
command -v script >/dev/null || { echo "FAIL: script(1) missing"; exit 1; }
start_coapd
U=$CU

# tty ARGS...: coap on a pseudo-terminal (stdout and stderr both); what
# it showed, without the terminal's carriage returns, in $T/tty.
tty() {
  local cmd
  cmd=$(printf '%q ' "$COAP" "$@")
  timeout 20 script -qec "$cmd" /dev/null </dev/null | tr -d '\r' >"$T/tty"
}
tty_is() {
  [ "$(cat "$T/tty")" = "$1" ] || fail "terminal showed:
$(cat "$T/tty")
expected:
$1"
}
# put_file CF FILE: stores FILE in /sink with content format CF.
put_file() {
  run put -t "$1" -f "$2" "$U/sink"
  [ "$RC" -eq 0 ] || fail "put $2: $RC"
}

check "JSON: indented on a terminal, as sent in a pipe and with --raw"
printf '{"a":[1,2,{"b":"x\\"y"}],"e":{},"n":-1.5e3}' >"$T/j"
put_file json "$T/j"
tty get "$U/sink"
tty_is '{
  "a": [
    1,
    2,
    {
      "b": "x\"y"
    }
  ],
  "e": {},
  "n": -1.5e3
}'
run get "$U/sink"
cmp -s "$T/j" "$T/out" || fail "piped JSON changed"
tty get --raw "$U/sink"
[ "$(cat "$T/tty")" = "$(cat "$T/j")" ] || fail "--raw changed JSON"
ok

check "invalid JSON declared as JSON: shown as text"
printf '{"a":' >"$T/bad"
put_file json "$T/bad"
tty get "$U/sink"
tty_is '{"a":'
ok

check "CBOR: diagnostic notation, one element per line when long"
{
  printf '\xa6\x61\x61\x82\x01\x20\x62\x62\x62\x43\x01\x02\x03\x01'
  printf '\xf9\x3c\x00\x63\x63\x22\x64\x9f\xf5\xf4\xf6\xf7\xff\xc1'
  printf '\x1a\x5f\x5e\x10\x00\x60\x3b\xff\xff\xff\xff\xff\xff\xff'
  printf '\xff\xfb\x3f\xf8\x00\x00\x00\x00\x00\x00'
} >"$T/c"
put_file cbor "$T/c"
tty get "$U/sink"
tty_is '{
  "a": [1, -1],
  "bb": h'"'"'010203'"'"',
  1: 1.0,
  "c\"d": [_ true, false, null, undefined],
  1(1600000000): "",
  -18446744073709551616: 1.5
}'
run get -o "$T/c.back" "$U/sink"
cmp -s "$T/c" "$T/c.back" || fail "CBOR changed on the way"
ok

check "CBOR: short on one line; floats; indefinite byte strings"
printf '\x83\xfa\x3f\xc0\x00\x00\xf9\x7e\x00\x5f\x41\x01\x41\x02\xff' >"$T/c"
put_file cbor "$T/c"
tty get "$U/sink"
tty_is "[1.5, NaN, (_ h'01', h'02')]"
ok

check "CBOR nested 100 deep, or malformed: a hex dump, no crash"
head -c 100 /dev/zero | tr '\0' '\201' >"$T/deep"
printf '\001' >>"$T/deep"
put_file cbor "$T/deep"
tty get "$U/sink"
head -n 1 "$T/tty" | grep -q '^00000000  81 81 81' || fail "no hex dump"
printf '\x82\x01' >"$T/short"
put_file cbor "$T/short"
tty get "$U/sink"
tty_is '00000000  82 01                                             |..|'
ok

check "link format: a table"
tty get "$U/.well-known/core?rt=demo.obs"
tty_is 'path  rt        ct                        if  sz  obs
/obs  demo.obs  text/plain;charset=utf-8  -   -   obs'
ok

check "text: as is, control characters escaped; binary: hex dump"
printf 'a\033[31mred\001\n' >"$T/t"
put_file text "$T/t"
tty get "$U/sink"
tty_is 'a\x1b[31mred\x01'
printf '\000\001\002hello\377' >"$T/b"
put_file octet "$T/b"
tty get "$U/sink"
tty_is '00000000  00 01 02 68 65 6c 6c 6f  ff                       |...hello.|'
run get "$U/sink"
cmp -s "$T/b" "$T/out" || fail "piped binary changed"
ok

check "progress of a block-wise download on a terminal, none in a pipe"
tty get -b 16 -o "$T/large" "$U/large"
grep -q ' blocks  .*/s' "$T/tty" || fail "no progress bar"
grep -q "$(printf '\033\\[K')\$" "$T/tty" || fail "the bar is not wiped"
[ "$(wc -c <"$T/large")" -eq 2840 ] || fail "download incomplete"
run get -b 16 -o "$T/large" "$U/large"
rc_is 0; err_empty; out_empty; ok

check "observe on a terminal: one line per notification"
tty observe --count 2 "$U/obs"
[ "$(wc -l <"$T/tty")" -eq 2 ] || fail "not two lines"
grep -qv '^[0-9]*$' "$T/tty" && fail "not the counter"
ok

finish

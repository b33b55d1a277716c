#!/bin/bash
# coap -v against an independent decoder, Wireshark's CoAP dissector:
# tshark captures on loopback while coap talks to coapd --demo with -v
# (GET, PUT, POST, block-wise both ways, a separate response, NON,
# Observe with its cancel, ping, 4.04, queries, an explicit token, -O
# options). Both sides are reduced to one line per message, the type,
# code, Message ID, token, every option (number and, where tshark decodes
# it, value) and the payload length, and must be equal, message by
# message: what -v says it sent is what went out, and what it says it
# received is what came in. Sent and received are compared as two
# sequences, since the order between them may differ by a datagram
# batched in the same loop iteration.
#
# Capturing needs root: the script re-runs itself under sudo -n if not.
# Usage: cli_tshark.sh PATH/TO/coap PATH/TO/coapd
if [ "$(id -u)" -ne 0 ]; then
  sudo -n true 2>/dev/null || { echo "FAIL: needs root to capture"; exit 1; }
  exec sudo -n bash "$0" "$@"
fi
COAP=${1:?usage: $0 PATH/TO/coap PATH/TO/coapd}
COAPD=${2:?usage: $0 PATH/TO/coap PATH/TO/coapd}
. "$(dirname "$0")/cli_common.sh"
command -v tshark >/dev/null || { echo "FAIL: tshark not installed"; exit 1; }
mkdir -p "$T/ws"
export WIRESHARK_CONFIG_DIR="$T/ws" # no user preferences

start_coapd
U=$CU

tshark -n -i lo -f "udp port $CPORT" -w "$T/cap.pcapng" 2>"$T/tshark.log" &
TPID=$!
PIDS="$TPID $PIDS"
for _ in $(seq 100); do
  grep -q "Capturing on" "$T/tshark.log" && break
  kill -0 "$TPID" 2>/dev/null || break
  sleep 0.1
done
grep -q "Capturing on" "$T/tshark.log" || {
  echo "FAIL: tshark did not start: $(cat "$T/tshark.log")"
  exit 1
}
# "Capturing on" comes a moment before the capture does: ping until a
# datagram shows up in the file. These pings lead the capture; they are
# dropped before the comparison.
for _ in $(seq 50); do
  "$COAP" ping "$U" >/dev/null 2>&1
  [ "$(tshark -n -r "$T/cap.pcapng" 2>/dev/null | wc -l)" -gt 0 ] && break
  sleep 0.1
done

: >"$T/verbose"
# v ARGS...: one coap -v run, its stderr added to $T/verbose.
v() {
  run -v "$@"
  [ "$RC" -le 1 ] || fail "coap $* exited with $RC"
  grep -a '^[<>] ' "$T/err" >>"$T/verbose"
}
check "the exchanges"
v get -T 0a0b0c0d -A text -O 4,0x0102 -O Uri-Query,x=y "$U/hello"
v put -t text -e 'sink me' "$U/sink"
v post -e x "$U/test"
v get -b 64 "$U/large"
head -c 3000 /dev/urandom >"$T/up"
v put -b 256 -t octet -f "$T/up" "$U/large-update"
v get "$U/separate"
v get --non "$U/hello"
v get "$U/nope"
v get "$U/query?a=1&b=2"
v get "$U/seg1/seg2/seg3"
v get --token-size 8 -A json "$U/multi-format"
v observe --count 2 "$U/obs"
v ping "$U"
ok
sleep 1 # let the last datagrams reach the capture file
kill -INT "$TPID"
wait "$TPID" 2>/dev/null

# One line per message from -v: DIR TYPE CODE MID TOKEN len=N OPTIONS.
awk '
  BEGIN {
    split("1 If-Match 3 Uri-Host 4 ETag 5 If-None-Match 6 Observe " \
      "7 Uri-Port 8 Location-Path 11 Uri-Path 12 Content-Format " \
      "14 Max-Age 15 Uri-Query 17 Accept 20 Location-Query 23 Block2 " \
      "27 Block1 28 Size2 35 Proxy-Uri 39 Proxy-Scheme 60 Size1 " \
      "252 Echo 258 No-Response 292 Request-Tag", t, " ")
    for (i = 1; i in t; i += 2)
      num[t[i + 1]] = t[i]
    split("GET 1 POST 2 PUT 3 DELETE 4 FETCH 5 PATCH 6 iPATCH 7", m, " ")
    for (i = 1; i in m; i += 2)
      method[m[i]] = m[i + 1]
  }
  function flush() {
    if (head != "")
      print head " len=" len opts
    head = ""; opts = ""; len = 0
  }
  /^[<>] [A-Z]+ / {
    flush()
    code = $3
    if (code in method)
      code = method[code]
    else {
      split(code, cd, ".")
      code = cd[1] * 32 + cd[2]
    }
    for (i = 4; i <= NF; i++) {
      if ($i ~ /^mid=/) mid = substr($i, 5)
      if ($i ~ /^token=/) tok = substr($i, 7)
    }
    if (tok == "-") tok = ""
    head = $1 " " $2 " " code " " mid " " tok
    next
  }
  /^[<>]   payload \(/ { len = substr($3, 2); next }
  /^[<>]   \| / { next }
  /^[<>]   / {
    line = substr($0, 5)
    p = index(line, ": ")
    name = p ? substr(line, 1, p - 1) : line
    val = p ? substr(line, p + 2) : ""
    if (name ~ /^Option [0-9]+$/) { opts = opts " " substr(name, 8); next }
    n = num[name]
    if (n == "") n = "?" name
    if (n == 11 || n == 8 || n == 15 || n == 20) {
      c = split(val, seg, (n == 11 || n == 8) ? "/" : "\\&")
      for (i = 1; i <= c; i++) opts = opts " " n "=" seg[i]
    } else if (n == 4) {
      opts = opts " 4=" substr(val, 3)
    } else if (n == 6 || n == 23 || n == 27) {
      opts = opts " " n "=" val
    } else if (n == 12 || n == 17) {
      sub(/ \([0-9]+\)$/, "", val); gsub(/ /, "", val)
      opts = opts " " n "=" val
    } else {
      opts = opts " " n
    }
  }
  END { flush() }
' "$T/verbose" >"$T/v.all"

# The same from the capture. Fields that repeat are joined with "~".
tshark -n -r "$T/cap.pcapng" -d "udp.port==$CPORT,coap" -T fields \
  -E separator='|' -E aggregator='~' -E occurrence=a \
  -e udp.dstport -e coap.type -e coap.code -e coap.mid -e coap.token \
  -e coap.payload_length -e coap.opt.desc -e coap.opt.uri_path \
  -e coap.opt.uri_query -e coap.opt.location_path \
  -e coap.opt.location_query -e coap.opt.etag -e coap.opt.observe \
  -e coap.opt.ctype -e coap.opt.accept -e coap.opt.block_number \
  -e coap.opt.block_mflag -e coap.opt.block_size -e coap.block_length \
  2>"$T/tshark.err" |
  awk -F'|' -v port="$CPORT" '
  BEGIN { split("CON NON ACK RST", tn, " ") }
  function take(field, k,   a) {
    split(field, a, "~")
    return a[k]
  }
  {
    dir = $1 == port ? ">" : "<"
    # A block'"'"'s own payload length is coap.block_length (the last
    # block'"'"'s coap.payload_length is that of the reassembled body).
    len = $19 != "" ? $19 : $6 != "" ? $6 : 0
    out = dir " " tn[$2 + 1] " " $3 " " $4 " " $5 " len=" len
    c = $7 == "" ? 0 : split($7, desc, "~")
    delete k
    for (i = 1; i <= c; i++) {
      split(desc[i], w, "[ ,]+")
      n = w[2]
      if (n == 11) out = out " 11=" take($8, ++k[11])
      else if (n == 15) out = out " 15=" take($9, ++k[15])
      else if (n == 8) out = out " 8=" take($10, ++k[8])
      else if (n == 20) out = out " 20=" take($11, ++k[20])
      else if (n == 4) out = out " 4=" take($12, ++k[4])
      else if (n == 6) {
        o = take($13, ++k[6])
        out = out " 6=" (o == "" ? 0 : o)
      } else if (n == 12 || n == 17) {
        v = take(n == 12 ? $14 : $15, ++k[n])
        gsub(/ /, "", v)
        if (v == "(null)") v = "text/plain;charset=utf-8"
        out = out " " n "=" v
      } else if (n == 23 || n == 27) {
        b = ++k["b"]
        out = out " " n "=" take($16, b) "/" (take($17, b) == 1 ? "M" : "_") \
          "/" 2 ^ (take($18, b) + 4)
      } else out = out " " n
    }
    # The pings that waited for the capture to start come first.
    if (!begun && out ~ /^(> CON 0 [0-9]*  len=0|< RST 0 [0-9]*  len=0)$/)
      next
    begun = 1
    print out
  }' >"$T/w.all"

check "tshark saw what -v printed: the messages we sent"
grep '^>' "$T/v.all" >"$T/v.sent"
grep '^>' "$T/w.all" >"$T/w.sent"
[ "$(wc -l <"$T/v.sent")" -ge 40 ] || fail "only $(wc -l <"$T/v.sent") sent"
diff "$T/v.sent" "$T/w.sent" >"$T/diff" ||
  fail "differ: $(head -n 20 "$T/diff")"
ok

check "tshark saw what -v printed: the messages we received"
grep '^<' "$T/v.all" >"$T/v.recv"
grep '^<' "$T/w.all" >"$T/w.recv"
[ "$(wc -l <"$T/v.recv")" -ge 40 ] || fail "only $(wc -l <"$T/v.recv") received"
diff "$T/v.recv" "$T/w.recv" >"$T/diff" ||
  fail "differ: $(head -n 20 "$T/diff")"
ok

check "every kind of message and option was compared"
for want in '^> CON 1 .* 4=0102 ' ' 15=x=y' '^> CON 3 .* 12=text/plain' \
  '^< ACK 65 .* 8=location1 8=location2 8=location3' ' 23=0/M/64' \
  ' 27=0/M/256' '^< ACK 0 ' '^< CON 69 ' '^> ACK 0 ' '^> NON 1 ' \
  '^< NON 69 ' '^< ACK 132 ' ' 15=a=1 15=b=2' ' 11=seg1 11=seg2 11=seg3' \
  '^> CON 1 .* 6=0 ' '^> CON 1 .* 6=1 ' '^> CON 0 [0-9]*  len=0$' \
  '^< RST 0 ' ' 17=application/json' '^> CON 1 [0-9]* [0-9a-f]\{16\} '; do
  grep -q -- "$want" "$T/v.all" || fail "no message matches '$want'"
done
ok

finish

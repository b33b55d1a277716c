#!/bin/sh
# wire_tshark.sh: checks our wire format with an independent decoder,
# Wireshark's CoAP dissector.
#
# wire_pcap (built from wire_pcap.c) writes a capture of messages made by
# our builder and, beside it, the field values it meant them to carry. This
# script has tshark read the capture, prints the same fields, and compares
# them one by one. It also requires that tshark finds nothing malformed:
# no malformed-packet marks, no expert info of error severity, a good IPv4
# header checksum, and no warning other than "Invalid Option Number" for
# the options that postdate tshark 4.0's table (Echo 252, No-Response 258,
# Request-Tag 292; it still shows their numbers and bytes).
#
# It only reads a file: no capture, no privileges. tshark runs with an
# empty configuration directory so that a user's preferences cannot change
# what it prints.
#
# Usage: wire_tshark.sh PATH/TO/integ_wire_pcap OUTDIR
set -eu

if [ $# -ne 2 ]; then
  echo "usage: $0 PATH/TO/integ_wire_pcap OUTDIR" >&2
  exit 2
fi
prog=$1
out=$2

if ! command -v tshark >/dev/null 2>&1; then
  echo "wire_tshark: tshark is not installed; it is a declared test" \
    "dependency: run scripts/install-deps" >&2
  exit 1
fi

mkdir -p "$out/wsconfig"
pcap=$out/wire.pcap
expected=$out/wire.expected
got=$out/wire.got
errlog=$out/tshark.stderr
: >"$errlog"
WIRESHARK_CONFIG_DIR=$out/wsconfig
export WIRESHARK_CONFIG_DIR

# A failed check is reported and counted; the others still run, and the
# script fails at the end. die() is for what stops everything.
failures=0
fail() {
  echo "wire_tshark: FAIL: $*" >&2
  failures=$((failures + 1))
}
die() {
  fail "$@"
  finish
}
finish() {
  if [ "$failures" -gt 0 ]; then
    if [ -s "$errlog" ]; then
      echo "--- tshark stderr ($errlog):" >&2
      cat "$errlog" >&2
    fi
    exit 1
  fi
  echo "wire_tshark: PASS"
  exit 0
}

# -n: no name resolution; the IPv4 checksum is verified (off by default).
ts() {
  tshark -n -r "$pcap" -o ip.check_checksum:TRUE "$@" 2>>"$errlog"
}

echo "wire_tshark: $(tshark -v 2>/dev/null | head -n 1)"
"$prog" "$pcap" "$expected" || die "$prog could not write the capture"

# The expected file's first line names the columns. "payload" is not a
# tshark field: it is computed below from udp.payload.
header=$(head -n 1 "$expected" | sed 's/^#//')
set --
old_ifs=$IFS
IFS='|'
for f in $header; do
  [ "$f" = payload ] && f=udp.payload
  set -- "$@" -e "$f"
done
IFS=$old_ifs

ts -T fields -E separator='|' -E aggregator='~' -E occurrence=a "$@" \
  >"$got.raw" || die "tshark could not read $pcap"

# payload = the last N bytes of the datagram, N being the payload length
# the dissector found after the end-of-options marker.
{
  printf '#%s\n' "$header"
  awk -F'|' -v OFS='|' -v header="$header" '
    BEGIN {
      n = split(header, names, "|")
      for (i = 1; i <= n; i++)
        col[names[i]] = i
    }
    {
      len = $col["coap.payload_length"]
      if (len == "")
        len = $col["coap.block_length"]
      p = col["payload"]
      if (len == "" || len + 0 == 0)
        $p = ""
      else
        $p = substr($p, length($p) - 2 * len + 1)
      print
    }' "$got.raw"
} >"$got"

# Field by field, so that a mismatch names the frame and the field.
if ! awk -F'|' '
  function show(s, at) {
    if (length(s) <= 120)
      return s
    return "..." substr(s, at > 20 ? at - 20 : 1, 100) "..."
  }
  NR == FNR { want[FNR] = $0; nwant = FNR; next }
  { have[FNR] = $0; nhave = FNR }
  END {
    ncol = split(substr(want[1], 2), names, "|")
    bad = 0
    if (nwant != nhave) {
      printf "expected %d frames, tshark shows %d\n", nwant - 1, nhave - 1
      bad++
    }
    for (i = 2; i <= nwant && i <= nhave; i++) {
      split(want[i], w, "|")
      split(have[i], h, "|")
      for (c = 1; c <= ncol; c++) {
        # As strings: "0102" and "102" are equal numbers.
        if (w[c] "" == h[c] "")
          continue
        at = 1
        while (substr(w[c], at, 1) == substr(h[c], at, 1))
          at++
        printf "frame %d, %s (differs at char %d):\n", i - 1, names[c], at
        printf "  intended: %s\n", show(w[c], at)
        printf "  tshark:   %s\n", show(h[c], at)
        bad++
      }
    }
    if (bad)
      exit 1
    printf "wire_tshark: %d frames x %d fields agree\n", nwant - 1, ncol
  }' "$expected" "$got"; then
  fail "tshark decodes differently from what we meant to build" \
    "(intended: $expected, tshark: $got)"
fi

# Not plain _ws.malformed: tshark 4.0 files its "Invalid Option Number"
# warnings in the Malformed group, so that matches them too. A dissection
# that threw (truncated option, bad token length) shows up as
# _ws.malformed.expert, of error severity.
malformed=$(ts -Y '_ws.malformed.expert || _ws.malformed.dissector_bug ||
    _ws.malformed.reassembly || _ws.expert.severity >= error' \
  -T fields -e frame.number -e _ws.expert.message) ||
  die "tshark could not read $pcap"
[ -z "$malformed" ] || fail "tshark reports malformed frames or errors:
$malformed"

badsum=$(ts -Y 'ip.checksum.status != 1' -T fields -e frame.number) ||
  die "tshark could not read $pcap"
[ -z "$badsum" ] || fail "bad IPv4 header checksum in frames: $badsum"

# Warnings (such as "option longer than the package"): pair each expert
# message with its severity (6291456 is Warning) and keep those we do not
# expect.
warnings=$(ts -Y '_ws.expert.severity >= warning' -T fields \
  -E aggregator='~' -E separator='|' -e frame.number \
  -e _ws.expert.severity -e _ws.expert.message) ||
  die "tshark could not read $pcap"
unexpected=$(printf '%s\n' "$warnings" | awk -F'|' '
  NF == 3 {
    n = split($2, sev, "~")
    split($3, msg, "~")
    for (i = 1; i <= n; i++)
      if (sev[i] + 0 >= 6291456 &&
          msg[i] !~ /^Invalid Option Number (252|258|292)$/)
        printf "frame %s: %s\n", $1, msg[i]
  }')
[ -z "$unexpected" ] || fail "tshark warns:
$unexpected"

finish

#!/usr/bin/env bash
# coapd --metrics-listen and `coapd stats`: coapd --demo serves /metrics
# on a port the kernel picks and names it in DATA_DIR/metrics.addr;
# requests sent with the project's `coap` show up in
# coapd_responses_total by code (2.05 and a 4.04), the scrape passes a
# text-format check (every sample under a # TYPE, valid names, one
# family's lines together), other paths are 404 and other methods 405,
# and `coapd stats` fails with one line and the documented exit status
# when nothing answers or its arguments are wrong.
# Usage: coapd_metrics.sh PATH_TO_COAPD PATH_TO_COAP
COAP=${2:?usage: $0 PATH_TO_COAPD PATH_TO_COAP}
. "$(dirname "$0")/coapd_common.sh"

start_coapd --metrics-listen 127.0.0.1:0
for _ in $(seq 50); do
  [ -s "$T/data/metrics.addr" ] && break
  sleep 0.05
done
[ -s "$T/data/metrics.addr" ] || fail "no metrics.addr in the data directory"
[ "$(stat -c %a "$T/data/metrics.addr")" = 600 ] || fail "metrics.addr not 0600"
MADDR=$(cat "$T/data/metrics.addr")
MPORT=${MADDR##*:}
case "$MADDR" in 127.0.0.1:[0-9]*) ;; *) fail "metrics.addr: '$MADDR'" ;; esac
grep -q "serving metrics at http://$MADDR/metrics" "$T/coapd.log" ||
  fail "no start line naming $MADDR"
ok "metrics.addr names $MADDR"

# stats [ARGS...]: coapd stats, stdout in $T/out, stderr in $T/err, exit
# status in $RC.
stats() {
  RC=0
  timeout 20 "$COAPD" stats "$@" >"$T/out" 2>"$T/err" || RC=$?
}

SENT=5
for _ in $(seq "$SENT"); do
  out=$(timeout 20 "$COAP" get "$U/hello") || fail "coap get /hello failed"
  [ "$out" = "Hello, world!" ] || fail "coap get /hello: '$out'"
done
rc=0
timeout 20 "$COAP" get "$U/no/such/thing" >/dev/null 2>&1 || rc=$?
[ "$rc" -eq 1 ] || fail "coap get of a missing path exited $rc, expected 1"

stats --data-dir "$T/data"
[ "$RC" -eq 0 ] || fail "coapd stats exited $RC: $(cat "$T/err")"
[ ! -s "$T/err" ] || fail "coapd stats wrote to stderr: $(cat "$T/err")"
n=$(sed -n 's/^coapd_responses_total{code="2\.05"} \([0-9]*\)$/\1/p' "$T/out")
[ -n "$n" ] && [ "$n" -ge "$SENT" ] ||
  fail "coapd_responses_total{code=\"2.05\"} is '${n:-missing}', sent $SENT"
grep -q '^coapd_responses_total{code="4\.04"} [1-9][0-9]*$' "$T/out" ||
  fail "no coapd_responses_total{code=\"4.04\"} line"
grep -q '^coapd_datagrams_received_total [1-9][0-9]*$' "$T/out" ||
  fail "no datagrams received counted"
ok "coapd stats: 2.05 >= $SENT and a 4.04"

# The text format 0.0.4, as a scraper reads it (no promtool here).
awk '
  function bad(why) { print "line " NR ": " why ": " $0; err = 1; exit 1 }
  /^# HELP / { if ($3 !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*$/) bad("HELP name"); next }
  /^# TYPE / {
    if ($3 !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*$/) bad("TYPE name")
    if ($4 !~ /^(counter|gauge|histogram|summary|untyped)$/) bad("type")
    if ($3 in typed) bad("family announced twice")
    typed[$3] = 1; cur = $3; next
  }
  /^#/ { next }
  /^$/ { bad("empty line") }
  {
    if ($0 !~ /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? [0-9.eE+-]+$/)
      bad("sample syntax")
    name = $0; sub(/[{ ].*/, "", name)
    if (!(name in typed)) bad("sample of no announced family")
    if (name != cur) bad("sample away from its family")
    samples++
  }
  END { if (!err && samples < 8) { print "only " samples " samples"; exit 1 } }
' "$T/out" >"$T/awk" || fail "not the text format: $(cat "$T/awk")"
ok "the scrape is valid text format"

# Other paths and methods, over bash's /dev/tcp (HTTP/1.0: the server
# closes after the answer, so the read ends).
http() {
  exec 4<>"/dev/tcp/127.0.0.1/$MPORT"
  printf '%s /%s HTTP/1.0\r\nHost: %s\r\n\r\n' "$1" "$2" "$MADDR" >&4
  timeout 5 cat <&4 >"$T/http" || true
  exec 4<&-
  head -n 1 "$T/http" | tr -d '\r'
}
line=$(http GET metrics)
[ "$line" = "HTTP/1.1 200 OK" ] || fail "GET /metrics: '$line'"
grep -qi '^Content-Type: text/plain; version=0.0.4' "$T/http" ||
  fail "GET /metrics: no text format content type"
line=$(http GET other)
[ "${line#* }" = "404 Not Found" ] || fail "GET /other: '$line'"
line=$(http POST metrics)
[ "${line#* }" = "405 Method Not Allowed" ] || fail "POST /metrics: '$line'"
ok "404 for other paths, 405 for other methods"

# --metrics names the address; nothing listening there is a one-line
# failure, exit 1; a bad argument is exit 2.
stats --metrics "$MADDR"
[ "$RC" -eq 0 ] && grep -q '^coapd_responses_total{code="4\.04"}' "$T/out" ||
  fail "coapd stats --metrics $MADDR: $RC $(cat "$T/err")"
stats --metrics 127.0.0.1:1
[ "$RC" -eq 1 ] || fail "--metrics 127.0.0.1:1 exited $RC, expected 1"
[ "$(wc -l <"$T/err")" -eq 1 ] || fail "not one line: $(cat "$T/err")"
[ ! -s "$T/out" ] || fail "output on failure: $(cat "$T/out")"
stats --bogus
[ "$RC" -eq 2 ] || fail "--bogus exited $RC, expected 2"
[ "$(wc -l <"$T/err")" -eq 1 ] || fail "not one line: $(cat "$T/err")"
stats --metrics 'no port'
[ "$RC" -eq 2 ] || fail "--metrics 'no port' exited $RC, expected 2"
ok "coapd stats failures: exit 1 and 2, one line each"

# Stopped, coapd removes metrics.addr, and stats says nothing serves.
stop_coapd
[ ! -e "$T/data/metrics.addr" ] || fail "metrics.addr left after exit"
stats --data-dir "$T/data"
[ "$RC" -eq 1 ] || fail "stats without a coapd exited $RC, expected 1"
[ "$(wc -l <"$T/err")" -eq 1 ] || fail "not one line: $(cat "$T/err")"
grep -q 'no running coapd serves metrics here' "$T/err" ||
  fail "stats without a coapd: $(cat "$T/err")"
ok "metrics.addr removed at exit; stats says nothing serves"

# A bad --metrics-listen is a usage error (exit 2) naming the option.
rc=0
"$COAPD" --metrics-listen 127.0.0.1 --data-dir "$T/data" 2>"$T/err" || rc=$?
[ "$rc" -eq 2 ] || fail "--metrics-listen without a port exited $rc"
grep -q -- '--metrics-listen' "$T/err" || fail "error: $(cat "$T/err")"
ok "--metrics-listen needs ADDR:PORT"

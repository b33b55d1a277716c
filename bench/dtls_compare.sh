#!/bin/sh
# DTLS side by side (issue 10): coapd --dtls-listen (a PSK device in its
# registry) and libcoap's coap-server-gnutls -k on loopback, each driven
# by coap-dtls-bench in the same run: full PSK handshakes per second
# (CONC at a time, SECONDS), then the server's memory per established
# session with SESSIONS sessions open, then requests per second over
# those sessions (CONC x 4 in flight, each on the next session in turn,
# SECONDS) with the server's CPU time per request. Machine-readable
# lines start with "bench dtls"; the last one gives the ratios.
#
# Usage: dtls_compare.sh COAPD COAP_DTLS_BENCH [SECONDS] [SESSIONS] [CONC]
set -eu

COAPD=$1
BENCH=$2
SECS=${3:-5}
SESSIONS=${4:-10000}
CONC=${5:-16}
KEY=benchkey
T=$(mktemp -d)
PID_A=
PID_B=
cleanup() {
  for p in $PID_A $PID_B; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  rm -rf "$T"
}
trap cleanup EXIT

"$COAPD" device add bench dev --data-dir "$T/data" --psk-identity bench \
  --psk $KEY >/dev/null
printf 'dtls_max_sessions = %s\n' $((SESSIONS + 1000)) >"$T/coapd.conf"
PORT_A=$((22000 + $$ % 4000))
PORT_B=$((PORT_A + 2))
"$COAPD" --config "$T/coapd.conf" --demo --data-dir "$T/data" \
  --listen 127.0.0.1:$((PORT_A + 1)) --dtls-listen 127.0.0.1:$PORT_A \
  --log-level warn &
PID_A=$!
coap-server-gnutls -A 127.0.0.1 -p $PORT_B -k $KEY -v 0 >/dev/null 2>&1 &
PID_B=$!
sleep 1

# run NAME PID URI: one server; prints its machine line.
run() {
  out=$("$BENCH" --psk $KEY --identity bench -c "$CONC" -d "$SECS" \
    --sessions "$SESSIONS" --server-pid "$2" "$3")
  echo "$out" | awk -v name="$1" '
    { v[$1] = $2 }
    END {
      printf "bench dtls server=%s handshakes_per_s=%s handshake_failures=%s " \
        "sessions_up=%s sessions_failed=%s rss_before_kb=%s rss_after_kb=%s " \
        "bytes_per_session=%s requests_per_s=%s request_failures=%s " \
        "server_cpu_us_per_request=%s\n", name, v["handshakes_per_s"],
        v["handshake_failures"], v["sessions_up"], v["sessions_failed"],
        v["server_rss_before_kb"], v["server_rss_after_kb"],
        v["bytes_per_session"], v["requests_per_s"], v["request_failures"],
        v["server_cpu_us_per_request"]
    }'
}

A=$(run coapd $PID_A "coaps://127.0.0.1:$PORT_A/hello")
echo "$A"
B=$(run libcoap $PID_B "coaps://127.0.0.1:$((PORT_B + 1))/")
echo "$B"
printf '%s\n%s\n' "$A" "$B" | awk '
  { for (i = 3; i <= NF; i++) { split($i, kv, "="); v[NR, kv[1]] = kv[2] } }
  END {
    hs = v[2, "handshakes_per_s"] > 0 ? \
      v[1, "handshakes_per_s"] / v[2, "handshakes_per_s"] : 0
    mem = v[1, "bytes_per_session"] > 0 ? \
      v[2, "bytes_per_session"] / v[1, "bytes_per_session"] : 0
    rq = v[2, "requests_per_s"] > 0 ? \
      v[1, "requests_per_s"] / v[2, "requests_per_s"] : 0
    printf "bench dtls ratio handshakes_per_s=%.2fx " \
      "libcoap_bytes_per_session_over_coapd=%.2fx requests_per_s=%.2fx\n",
      hs, mem, rq
  }'

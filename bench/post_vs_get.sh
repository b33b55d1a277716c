#!/bin/sh
# Sustained POST against GET on one coapd: a gateway that ingests
# telemetry is all POST, and every POST takes an entry in the table of
# remembered exchanges (RFC 7252 §4.5), a GET none. Starts coapd --demo on
# a loopback port and drives /sink with coap-bench (CON, 64 connections)
# in alternating GET and POST rounds on the same server, so the POST
# rounds run with the table as the earlier rounds left it (grown, then at
# its cap). Prints each round, then the mean req/s of each method, the
# ratio, any 5.03 answers, coapd's CPU per request (utime + stime from
# /proc, steadier than req/s on a busy machine) and its resident memory
# at the end.
# Machine-readable lines start with "bench post".
#
# Usage: post_vs_get.sh COAPD COAP_BENCH [ROUNDS] [SECONDS]
set -eu

COAPD=$1
BENCH=$2
ROUNDS=${3:-3}
SECS=${4:-10}

PORT=$((25000 + $$ % 4000))
"$COAPD" --demo --listen 127.0.0.1:$PORT --log-level info 2>"${COAPD_LOG:-/dev/null}" &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null' EXIT
sleep 0.5

TICK=$(getconf CLK_TCK)

cpu_ticks() { # utime + stime of coapd, in clock ticks
  awk '{print $14 + $15}' "/proc/$PID/stat"
}

# run METHOD: one round; prints rps, 2.xx and 5.03 counts, server CPU.
run() {
  t0=$(cpu_ticks)
  line=$("$BENCH" -m "$1" -c 64 -d "$SECS" -w 1 \
    "coap://127.0.0.1:$PORT/sink" | tail -n 1)
  t1=$(cpu_ticks)
  echo "$line" | awk -v m="$1" -v t0="$t0" -v t1="$t1" -v tick="$TICK" '{
      for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      n503 = 0
      k = split(v["codes"], c, ",")
      for (j = 1; j <= k; j++) { split(c[j], p, ":"); if (p[1] == "5.03") n503 = p[2] }
      # The warm-up is served too but not counted: a slight overestimate.
      cpu = (t1 - t0) / tick * 1e6 / (v["sent"] > 0 ? v["sent"] : 1)
      printf "bench post %s rps=%s ok=%s sent=%s lost=%s c503=%s srv_cpu_us=%.2f\n",
        m, v["rps"], v["ok"], v["sent"], v["lost"], n503, cpu
    }'
}

out=$(mktemp)
i=1
while [ $i -le "$ROUNDS" ]; do
  run get | tee -a "$out"
  run post | tee -a "$out"
  i=$((i + 1))
done
rss=$(awk '/VmRSS/ {print $2}' "/proc/$PID/status")
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")

awk -v rss="$rss" -v hwm="$hwm" '{
    for (i = 4; i <= NF; i++) { split($i, kv, "="); s[$3, kv[1]] += kv[2] }
    n[$3]++
    if ($3 == "post") { split($5, o, "="); ok += o[2] }
  }
  END {
    g = s["get", "rps"] / n["get"]; p = s["post", "rps"] / n["post"]
    printf "bench post summary get_rps=%.0f post_rps=%.0f ratio=%.2f post_ok=%d post_503=%d get_srv_cpu_us=%.2f post_srv_cpu_us=%.2f coapd_rss_kib=%s coapd_peak_kib=%s\n",
      g, p, p / g, ok, s["post", "c503"], s["get", "srv_cpu_us"] / n["get"],
      s["post", "srv_cpu_us"] / n["post"], rss, hwm
  }' "$out"
rm -f "$out"

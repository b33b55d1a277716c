#!/bin/sh
# How coapd scales with worker threads, beside the ceiling: starts coapd
# --demo with --workers 1 and --workers 2, and udp-echo (a bare
# recvmmsg/sendmmsg responder) with 1 and 2 SO_REUSEPORT threads, on
# loopback ports, and drives each in alternating rounds with the same
# two-thread load (coap-bench -t 2, CONNS sockets x PIPELINE requests in
# flight, 16 x 8 by default; GET, CON). Prints each server's requests/s
# and CPU per request (from /proc/PID/stat: all its threads), then the
# ratios 2/1 for coapd and for the echo. Machine-readable lines start
# with "bench workers".
#
# Usage: workers_scaling.sh COAPD COAP_BENCH [ROUNDS] [SECONDS]
# (udp-echo is taken from COAP_BENCH's directory.)
set -eu

COAPD=$1
BENCH=$2
ROUNDS=${3:-3}
SECS=${4:-5}
CONNS=${CONNS:-16}
PIPELINE=${PIPELINE:-8}
THREADS=${THREADS:-2}

P=$((25000 + $$ % 4000))
"$COAPD" --demo --listen 127.0.0.1:$P --log-level warn --workers 1 &
C1=$!
"$COAPD" --demo --listen 127.0.0.1:$((P + 1)) --log-level warn --workers 2 &
C2=$!
"$(dirname "$BENCH")/udp-echo" 127.0.0.1:$((P + 2)) 1 &
E1=$!
"$(dirname "$BENCH")/udp-echo" 127.0.0.1:$((P + 3)) 2 &
E2=$!
trap 'kill $C1 $C2 $E1 $E2 2>/dev/null; wait $C1 $C2 $E1 $E2 2>/dev/null' EXIT
sleep 0.5

TICK=$(getconf CLK_TCK)

cpu_ticks() { # utime + stime of a PID (all its threads), in clock ticks
  awk '{print $14 + $15}' "/proc/$1/stat"
}

# run NAME PID PORT: one round; prints the machine line with CPU added.
run() {
  before=$(cpu_ticks "$2")
  line=$("$BENCH" -t "$THREADS" -c "$CONNS" --pipeline "$PIPELINE" \
    -d "$SECS" -w 1 "coap://127.0.0.1:$3/hello" | tail -n 1)
  after=$(cpu_ticks "$2")
  echo "$line" | awk -v name="$1" -v t0="$before" -v t1="$after" \
    -v tick="$TICK" '{
      for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      cpu = (t1 - t0) / tick * 1e6 / (v["ok"] > 0 ? v["ok"] : 1)
      printf "bench workers %s rps=%s p99_us=%s cpu_us_per_req=%.2f lost=%s\n",
        name, v["rps"], v["p99_us"], cpu, v["lost"]
    }'
}

out=$(mktemp)
i=1
while [ $i -le "$ROUNDS" ]; do
  run coapd-1 $C1 $P | tee -a "$out"
  run coapd-2 $C2 $((P + 1)) | tee -a "$out"
  run echo-1 $E1 $((P + 2)) | tee -a "$out"
  run echo-2 $E2 $((P + 3)) | tee -a "$out"
  i=$((i + 1))
done

awk '{
    for (i = 4; i <= NF; i++) { split($i, kv, "="); s[$3, kv[1]] += kv[2] }
    n[$3]++
  }
  END {
    for (k in n) {
      rps[k] = s[k, "rps"] / n[k]; cpu[k] = s[k, "cpu_us_per_req"] / n[k]
    }
    printf "\n%-8s %10s %12s\n", "server", "req/s", "CPU us/req"
    split("coapd-1 coapd-2 echo-1 echo-2", names, " ")
    for (i = 1; i <= 4; i++)
      printf "%-8s %10.0f %12.2f\n", names[i], rps[names[i]], cpu[names[i]]
    g = rps["echo-2"] / rps["echo-1"] - 1
    printf "\n2 workers / 1: coapd %.2fx, echo %.2fx (coapd keeps %.0f %% of the echo gain)\n",
      rps["coapd-2"] / rps["coapd-1"], rps["echo-2"] / rps["echo-1"],
      (g > 0 ? 100 * (rps["coapd-2"] / rps["coapd-1"] - 1) / g : 0)
    printf "bench workers ratio coapd=%.2f echo=%.2f coapd_vs_echo_1=%.2f coapd_vs_echo_2=%.2f\n",
      rps["coapd-2"] / rps["coapd-1"], rps["echo-2"] / rps["echo-1"],
      rps["coapd-1"] / rps["echo-1"], rps["coapd-2"] / rps["echo-2"]
  }' "$out"
rm -f "$out"

#!/bin/sh
# Side-by-side server benchmark: starts coapd --demo, libcoap's
# coap-server-notls and udp-echo (a bare recvmmsg/sendmmsg responder: the
# ceiling) on loopback ports, drives each with coap-bench (GET, CON, 64
# requests in flight: CONNS sockets x PIPELINE each, 8 x 8 by default, so
# that coap-bench's own cost stays below the servers'; CONNS=64
# PIPELINE=1 in the environment gives one per socket, as before) in
# alternating rounds, and prints each server's requests/s, p50/p99
# latency, server CPU microseconds per request (from
# /proc/PID/stat) and coap-bench's own CPU per request, then the ratios.
# Machine-readable lines start with "bench server".
#
# Usage: compare_servers.sh COAPD COAP_BENCH [ROUNDS] [SECONDS]
# (udp-echo is taken from COAP_BENCH's directory.)
set -eu

COAPD=$1
BENCH=$2
ROUNDS=${3:-3}
SECS=${4:-5}
CONNS=${CONNS:-8}
PIPELINE=${PIPELINE:-8}

PORT_A=$((21000 + $$ % 4000))
PORT_B=$((PORT_A + 1))
PORT_E=$((PORT_A + 2))
"$COAPD" --demo --listen 127.0.0.1:$PORT_A --log-level warn &
PID_A=$!
coap-server-notls -A 127.0.0.1 -p $PORT_B &
PID_B=$!
"$(dirname "$BENCH")/udp-echo" 127.0.0.1:$PORT_E &
PID_E=$!
trap 'kill $PID_A $PID_B $PID_E 2>/dev/null; wait $PID_A $PID_B $PID_E 2>/dev/null' EXIT
sleep 0.5

TICK=$(getconf CLK_TCK)

cpu_ticks() { # utime + stime of a PID, in clock ticks
  awk '{print $14 + $15}' "/proc/$1/stat"
}

# run NAME PID URI: one round; prints the machine line with CPU added.
run() {
  before=$(cpu_ticks "$2")
  line=$("$BENCH" -c "$CONNS" --pipeline "$PIPELINE" -d "$SECS" -w 1 "$3" |
    tail -n 1)
  after=$(cpu_ticks "$2")
  echo "$line" | awk -v name="$1" -v t0="$before" -v t1="$after" \
    -v tick="$TICK" '{
      for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      # Warm-up requests are served too but not counted; the CPU of the
      # whole run is divided by the counted ones, a slight overestimate.
      cpu = (t1 - t0) / tick * 1e6 / (v["ok"] > 0 ? v["ok"] : 1)
      printf "bench server %s rps=%s p50_us=%s p99_us=%s cpu_us_per_req=%.2f lost=%s client_cpu_us_per_req=%s\n",
        name, v["rps"], v["p50_us"], v["p99_us"], cpu, v["lost"], v["cpu_us_per_req"]
    }'
}

out=$(mktemp)
i=1
while [ $i -le "$ROUNDS" ]; do
  run coapd $PID_A coap://127.0.0.1:$PORT_A/hello | tee -a "$out"
  run libcoap $PID_B coap://127.0.0.1:$PORT_B/ | tee -a "$out"
  run echo $PID_E coap://127.0.0.1:$PORT_E/hello | tee -a "$out"
  i=$((i + 1))
done

awk '{
    for (i = 4; i <= NF; i++) { split($i, kv, "="); s[$3, kv[1]] += kv[2] }
    n[$3]++
  }
  END {
    for (k in n) {
      rps[k] = s[k, "rps"] / n[k]; cpu[k] = s[k, "cpu_us_per_req"] / n[k]
      p50[k] = s[k, "p50_us"] / n[k]; p99[k] = s[k, "p99_us"] / n[k]
      cli[k] = s[k, "client_cpu_us_per_req"] / n[k]
    }
    printf "\n%-8s %10s %8s %8s %14s %16s\n", "server", "req/s", "p50 us", "p99 us", "CPU us/req", "client us/req"
    split("coapd libcoap echo", names, " ")
    for (i = 1; i <= 3; i++) {
      k = names[i]
      printf "%-8s %10.0f %8.0f %8.0f %14.2f %16.2f\n", k, rps[k], p50[k], p99[k], cpu[k], cli[k]
    }
    printf "\ncoapd/libcoap: %.2fx requests/s, %.2fx less CPU per request\n",
      rps["coapd"] / rps["libcoap"], cpu["libcoap"] / cpu["coapd"]
    printf "coapd/echo (the ceiling): %.2f of its requests/s, %.2fx its CPU per request\n",
      rps["coapd"] / rps["echo"], cpu["coapd"] / cpu["echo"]
    printf "bench server ratio rps=%.2f cpu=%.2f echo_rps=%.2f echo_cpu=%.2f client_cpu_us=%.2f\n",
      rps["coapd"] / rps["libcoap"], cpu["libcoap"] / cpu["coapd"],
      rps["coapd"] / rps["echo"], cpu["coapd"] / cpu["echo"], cli["coapd"]
  }' "$out"
rm -f "$out"

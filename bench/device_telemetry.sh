#!/bin/sh
# Device telemetry into Mosquitto (issue 11's benchmark): DEVICES
# simulated devices (default 1,000) POST JSON telemetry to coapd's device
# endpoint (POST /v1/telemetry, option 4209 "Basic base64(devK@bench:pw)",
# docs/devices.md), and coapd, on --bus mqtt://, publishes each message as
# a CloudEvent to a private Mosquitto on a free loopback port. A
# mosquitto_sub on app/# (QoS 1, topics only) counts what reaches the
# broker.
#
# Devices are registered with `coapd device add`, which hashes each
# password with PBKDF2 (100,000 rounds) and commits to SQLite: run one
# after the other, 1,000 take minutes, so they run four at a time in
# parallel (xargs -P 4; SQLite's busy timeout serialises the writers).
# Every device goes through the same public command a user would run.
#
# coap-bench -c DEVICES --basic-auth 'dev{i}@bench:pw' gives connection k
# the credentials of devK. coapd checks a password with PBKDF2 the first
# time it sees it and remembers it, so a first-contact run (WARMUP
# seconds, default 20, CON) comes first and is printed with type=first;
# then SECONDS (default 5) with CON requests (QoS 1: 2.04 only after the
# broker's PUBACK) and SECONDS with NON (QoS 0). Each run is its own
# coap-bench invocation with no warm-up of its own, so that everything it
# sent is counted; after it, the broker count is read once it has been
# still for a second. For CON, at_broker must be at least the number
# answered 2.04: a 2.04 promises the broker has the message.
#
# Prints one machine-readable line per run:
#   device_telemetry devices=N type=first|con|non sent=N answered_2_04=N
#     per_s=R p50_us=N p99_us=N lost=N codes=... at_broker=N
#     coapd_cpu_us_per_msg=U
# (per_s: 2.04 answers per second), then a short table. Every process
# started here is stopped by PID on exit.
#
# Usage: device_telemetry.sh COAPD COAP_BENCH [SECONDS] [DEVICES] [WARMUP]
# (TIMEOUT_MS in the environment: coap-bench --timeout, default 5000)
set -eu

COAPD=$1
BENCH=$2
SECS=${3:-5}
DEVICES=${4:-1000}
WARMUP=${5:-20}
TIMEOUT_MS=${TIMEOUT_MS:-5000}

command -v mosquitto >/dev/null || { echo "mosquitto not installed"; exit 1; }
command -v mosquitto_sub >/dev/null ||
  { echo "mosquitto_sub not installed (mosquitto-clients)"; exit 1; }

. "$(dirname "$0")/procs.sh"

MQTT_PORT=$(free_port $((34000 + $$ % 3000)))
COAP_PORT=$(free_port $((MQTT_PORT + 1)))

# No cap on what the broker queues for the counting subscriber
# (max_queued_messages 0), so that a slow mosquitto_sub delays the count
# but never lowers it.
cat >"$TMP/mosquitto.conf" <<EOF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
set_tcp_nodelay true
max_queued_messages 0
log_dest stderr
log_type error
log_type warning
EOF
mosquitto -c "$TMP/mosquitto.conf" 2>"$TMP/mosquitto.log" &
MQTT_PID=$!
PIDS="$PIDS $MQTT_PID"

mkdir "$TMP/data"
t0=$(date +%s.%N)
seq 0 $((DEVICES - 1)) | xargs -P 4 -I '{}' "$COAPD" device add bench 'dev{}' \
  --password pw --data-dir "$TMP/data" >/dev/null
t1=$(date +%s.%N)
n=$("$COAPD" device list --data-dir "$TMP/data" | grep -c .) || true
[ "$n" = "$DEVICES" ] || { echo "registered $n devices, not $DEVICES"; exit 1; }
echo "device_telemetry register devices=$DEVICES seconds=$(awk -v a="$t0" \
  -v b="$t1" 'BEGIN { printf "%.1f", b - a }') parallel=4"

await $MQTT_PID tcp "$MQTT_PORT" mosquitto "$TMP/mosquitto.log"
"$COAPD" --listen "127.0.0.1:$COAP_PORT" --data-dir "$TMP/data" \
  --bus "mqtt://127.0.0.1:$MQTT_PORT" --metrics-listen 127.0.0.1:0 \
  --log-level warn 2>"$TMP/coapd.log" &
COAP_PID=$!
PIDS="$PIDS $COAP_PID"
await $COAP_PID udp "$COAP_PORT" coapd "$TMP/coapd.log"
i=0
until "$COAPD" stats --data-dir "$TMP/data" 2>/dev/null |
  grep -q 'bus_connected 1$'; do
  i=$((i + 1))
  [ $i -lt 50 ] || { echo "coapd not connected to the broker"; exit 1; }
  sleep 0.1
done

mosquitto_sub -p "$MQTT_PORT" -q 1 -t 'app/#' -F '%t' >"$TMP/sub.out" \
  2>"$TMP/sub.err" &
SUB_PID=$!
PIDS="$PIDS $SUB_PID"
# The subscription is in place once a probe comes back.
i=0
until grep -q '^app/probe$' "$TMP/sub.out"; do
  mosquitto_pub -p "$MQTT_PORT" -t app/probe -n 2>/dev/null || true
  i=$((i + 1))
  [ $i -lt 50 ] || { echo "mosquitto_sub does not receive"; exit 1; }
  sleep 0.1
done

# Events at the broker from the devices so far.
at_broker() { grep -c '^app/bench/' "$TMP/sub.out" || true; }

# Waits until the count has not moved for a second (at most 20 s).
settle() {
  last=-1 same=0 i=0
  while [ $i -lt 100 ]; do
    now=$(at_broker)
    if [ "$now" = "$last" ]; then
      same=$((same + 1))
      [ $same -ge 5 ] && break
    else
      same=0
    fi
    last=$now
    i=$((i + 1))
    sleep 0.2
  done
  echo "$last"
}

# coapd's CPU time (user + system) in microseconds.
cpu_us() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.0f", ($14 + $15) * 1e6 / hz }' \
    "/proc/$COAP_PID/stat"
}

status=0
# run TYPE SECONDS [coap-bench options]
run() {
  type=$1 d=$2
  shift 2
  before=$(settle)
  c0=$(cpu_us)
  "$BENCH" -c "$DEVICES" -w 0 -d "$d" --timeout "$TIMEOUT_MS" -m post -f json \
    -e '{"temp":21.5}' --basic-auth 'dev{i}@bench:pw' "$@" \
    "coap://127.0.0.1:$COAP_PORT/v1/telemetry" >"$TMP/bench.out" ||
    { cat "$TMP/bench.out"; echo "coap-bench failed"; status=1; return; }
  after=$(settle)
  c1=$(cpu_us)
  tail -n 1 "$TMP/bench.out" | awk -v type="$type" -v n="$DEVICES" \
    -v got=$((after - before)) -v cpu=$((c1 - c0)) '{
      for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
      ok = 0
      if (match(v["codes"], /2\.04:[0-9]+/))
        ok = substr(v["codes"], RSTART + 5, RLENGTH - 5)
      printf "device_telemetry devices=%s type=%s sent=%s answered_2_04=%s " \
        "per_s=%.0f p50_us=%s p99_us=%s lost=%s codes=%s at_broker=%s " \
        "coapd_cpu_us_per_msg=%.1f\n", n, type, v["sent"], ok,
        ok / v["duration_s"], v["p50_us"], v["p99_us"], v["lost"],
        v["codes"], got, got ? cpu / got : 0
    }' | tee -a "$TMP/lines"
  if [ "$type" = con ]; then
    line=$(tail -n 1 "$TMP/lines")
    ok=$(echo "$line" | sed 's/.* answered_2_04=\([0-9]*\).*/\1/')
    got=$(echo "$line" | sed 's/.* at_broker=\([0-9]*\).*/\1/')
    if [ "$got" -lt "$ok" ]; then
      echo "FAIL: $ok answered 2.04 but only $got at the broker"
      status=1
    fi
  fi
}
run first "$WARMUP"
run con "$SECS"
run non "$SECS" --non

awk '$1 == "device_telemetry" && $3 ~ /^type=/ {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    printf "%-6s %9s %9s %9s %9s %9s %11s\n", v["type"], v["per_s"],
      v["answered_2_04"], v["at_broker"], v["p50_us"], v["p99_us"],
      v["coapd_cpu_us_per_msg"]
  }
  BEGIN { printf "\n%-6s %9s %9s %9s %9s %9s %11s\n", "type", "2.04/s",
      "2.04", "at broker", "p50 us", "p99 us", "coapd us/msg" }' "$TMP/lines"
exit $status

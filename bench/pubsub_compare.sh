#!/bin/sh
# Pub/sub side by side: starts coapd (its CoAP pub/sub gateway is on by
# default) and a private Mosquitto with a minimal configuration written
# to a temporary directory, each on a free loopback port, then runs
# coap-pubsub-bench for one publisher and N = 1, 100 and 10,000
# subscribers against both in the same run (QoS 0 unless QOS=1 is in
# the environment), twice per N: closed loop for the most deliveries per
# second (window=...), then open loop at a load both carry, DELIVERIES
# per second in all (default 10,000: 10,000/N messages/s, rate=...),
# for latency that is not queueing. Prints the tool's machine-readable
# lines ("pubsub system=... " per system, "pubsub n=... ratio_...=..."
# when both ran) and a table. Every process started here is stopped by
# PID on exit.
#
# Usage: pubsub_compare.sh COAPD COAP_PUBSUB_BENCH [SECONDS] [N...]
set -eu

COAPD=$1
BENCH=$2
SECS=${3:-3}
shift 2
[ $# -gt 0 ] && shift
NS=${*:-1 100 10000}
QOS=${QOS:-0}
DELIVERIES=${DELIVERIES:-10000}

. "$(dirname "$0")/procs.sh"

MQTT_PORT=$(free_port $((31000 + $$ % 3000)))
COAP_PORT=$(free_port $((MQTT_PORT + 1)))

# set_tcp_nodelay: CoAP over UDP has no Nagle delay either.
cat >"$TMP/mosquitto.conf" <<EOF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
set_tcp_nodelay true
max_queued_messages 1000
log_dest stderr
log_type error
log_type warning
EOF
mosquitto -c "$TMP/mosquitto.conf" 2>"$TMP/mosquitto.log" &
MQTT_PID=$!
PIDS="$PIDS $MQTT_PID"
mkdir "$TMP/coapd-data"
"$COAPD" --listen "127.0.0.1:$COAP_PORT" --data-dir "$TMP/coapd-data" \
  --log-level warn 2>"$TMP/coapd.log" &
COAP_PID=$!
PIDS="$PIDS $COAP_PID"
await $MQTT_PID tcp "$MQTT_PORT" mosquitto "$TMP/mosquitto.log"
await $COAP_PID udp "$COAP_PORT" coapd "$TMP/coapd.log"

status=0
run() {
  "$BENCH" -d "$SECS" --qos "$QOS" "$@" \
    --coap "127.0.0.1:$COAP_PORT" --coap-pid $COAP_PID \
    --mqtt "127.0.0.1:$MQTT_PORT" --mqtt-pid $MQTT_PID \
    >"$TMP/out" || status=1
  cat "$TMP/out"
  cat "$TMP/out" >>"$TMP/lines"
}
for n in $NS; do
  run -n "$n"
  run -n "$n" --rate "$(awk -v d="$DELIVERIES" -v n="$n" \
    'BEGIN { print d / n }')"
done

awk '$2 ~ /^system=/ {
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    if ("error" in v) { delete v; next }
    mode = ("rate" in v) ? "rate " v["rate"] : "window " v["window"]
    printf "%-10s %6s %-12s %10s %9s %9s %7s\n", v["system"], v["n"], mode,
      v["delivered_per_s"], v["p50_us"], v["p99_us"], v["lost"]
    delete v
  }
  BEGIN { printf "\n%-10s %6s %-12s %10s %9s %9s %7s\n", "system", "N",
      "load", "deliv/s", "p50 us", "p99 us", "lost" }' "$TMP/lines"
exit $status

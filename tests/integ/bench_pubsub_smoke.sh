#!/bin/sh
# coap-pubsub-bench against a private Mosquitto on loopback: 10
# subscribers for about 2 s at QoS 0 and 1 s at QoS 1, every message
# delivered to every subscriber once (delivered > 0, lost = 0, dup = 0);
# a closed port (exit 1, a clear message) and a bad argument (exit 2).
# The same against coapd's pub/sub gateway runs when COAPD_GATEWAY_READY
# is 1 or the third argument is "coapd". Every run is bounded by -d and
# timeout(1); the servers started here are stopped by PID on exit.
#
# Usage: bench_pubsub_smoke.sh PATH/TO/coap-pubsub-bench PATH/TO/coapd [coapd]
# Exits 0 on success, 1 on a failure (a missing mosquitto too: it is a
# dependency scripts/install-deps installs, and a skip would hide that).
set -u

# Set to 1 once coapd's pub/sub gateway (SPEC.md, "Publish/subscribe
# gateway") is merged, to run the coapd half of this test by default.
COAPD_GATEWAY_READY=1

BENCH=${1:?usage: bench_pubsub_smoke.sh coap-pubsub-bench coapd [coapd]}
COAPD=${2:?usage: bench_pubsub_smoke.sh coap-pubsub-bench coapd [coapd]}
[ "${3:-}" = coapd ] && COAPD_GATEWAY_READY=1

if ! command -v mosquitto >/dev/null 2>&1; then
  echo "FAIL: mosquitto not installed (Debian package mosquitto)"
  exit 1
fi

TMP=$(mktemp -d)
PIDS=
cleanup() {
  for p in $PIDS; do kill "$p" 2>/dev/null; done
  for p in $PIDS; do wait "$p" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
  echo "FAIL: $*"
  [ -n "${OUT:-}" ] && printf '%s\n' "--- output:" "$OUT"
  exit 1
}

# Is a socket bound to local port $2 in /proc/net/$1 (tcp or udp)?
bound() {
  hex=$(printf '%04X' "$2")
  awk -v p=":$hex\$" '$2 ~ p { f = 1 } END { exit !f }' \
    "/proc/net/$1" "/proc/net/${1}6" 2>/dev/null
}

free_port() {
  p=$1
  n=0
  while bound tcp "$p" || bound udp "$p"; do
    p=$((p + 1))
    n=$((n + 1))
    [ "$n" -lt 200 ] || fail "no free port found"
  done
  echo "$p"
}

# Waits up to 5 s until PID $1 binds port $3 ($2: tcp or udp).
await() {
  i=0
  until bound "$2" "$3"; do
    kill -0 "$1" 2>/dev/null || fail "$4 exited: $(cat "$5")"
    i=$((i + 1))
    [ "$i" -lt 50 ] || fail "$4 does not listen on port $3"
    sleep 0.1
  done
}

# Runs the tool with a hard time limit; sets OUT and RC.
bench() {
  OUT=$(timeout 60 "$BENCH" "$@" 2>&1)
  RC=$?
}

# The value of key $2 on the line of system $1.
val() {
  printf '%s\n' "$OUT" | grep "^pubsub system=$1 " | tr ' ' '\n' |
    sed -n "s/^$2=//p"
}

# Checks the run just made for system $1: one line, messages delivered,
# none lost or seen twice.
check() {
  [ "$RC" -eq 0 ] || fail "$1 $2: exited $RC"
  [ -n "$(val "$1" delivered)" ] || fail "$1 $2: no machine-readable line"
  [ "$(val "$1" delivered)" -gt 0 ] || fail "$1 $2: nothing delivered"
  [ "$(val "$1" lost)" -eq 0 ] || fail "$1 $2: messages lost"
  [ "$(val "$1" dup)" -eq 0 ] || fail "$1 $2: duplicates"
  [ "$(val "$1" delivered)" -eq $(($(val "$1" published) * 10)) ] ||
    fail "$1 $2: delivered is not published x 10"
  echo "ok $1 $2: delivered=$(val "$1" delivered) p99_us=$(val "$1" p99_us)"
}

MQTT_PORT=$(free_port $((20000 + $$ % 10000)))
cat >"$TMP/mosquitto.conf" <<EOF
listener $MQTT_PORT 127.0.0.1
allow_anonymous true
persistence false
set_tcp_nodelay true
log_dest stderr
EOF
mosquitto -c "$TMP/mosquitto.conf" 2>"$TMP/mosquitto.log" &
MQTT_PID=$!
PIDS="$PIDS $MQTT_PID"
await $MQTT_PID tcp "$MQTT_PORT" mosquitto "$TMP/mosquitto.log"

bench -n 10 -d 2 --mqtt "127.0.0.1:$MQTT_PORT"
check mosquitto "QoS 0"
bench -n 10 -d 1 --qos 1 --mqtt "127.0.0.1:$MQTT_PORT"
check mosquitto "QoS 1"
[ "$(val mosquitto pub_acked)" -eq "$(val mosquitto published)" ] ||
  fail "mosquitto QoS 1: not every publish acknowledged"

if [ "$COAPD_GATEWAY_READY" = 1 ]; then
  COAP_PORT=$(free_port $((MQTT_PORT + 1)))
  mkdir "$TMP/coapd-data"
  "$COAPD" --listen "127.0.0.1:$COAP_PORT" --data-dir "$TMP/coapd-data" \
    --log-level warn 2>"$TMP/coapd.log" &
  COAP_PID=$!
  PIDS="$PIDS $COAP_PID"
  await $COAP_PID udp "$COAP_PORT" coapd "$TMP/coapd.log"
  bench -n 10 -d 2 --coap "127.0.0.1:$COAP_PORT" --mqtt "127.0.0.1:$MQTT_PORT"
  check coapd "QoS 0"
  printf '%s\n' "$OUT" | grep -q '^pubsub n=10 qos=0 ratio_delivered=[0-9]' ||
    fail "no ratio line"
  bench -n 10 -d 1 --qos 1 --coap "127.0.0.1:$COAP_PORT"
  check coapd "QoS 1"
else
  echo "skip coapd: COAPD_GATEWAY_READY=0 (pass 'coapd' as the third argument)"
fi

# Nothing listens: a clear message naming the address, exit 1.
CLOSED=$(free_port $((MQTT_PORT + 2)))
bench -n 2 -d 1 --mqtt "127.0.0.1:$CLOSED"
[ "$RC" -eq 1 ] || fail "closed port: exited $RC, not 1"
printf '%s\n' "$OUT" | grep -q "nothing listens at 127\.0\.0\.1:$CLOSED" ||
  fail "closed port: no clear message"
printf '%s\n' "$OUT" | grep -q "^pubsub system=mosquitto n=2 qos=0 error=" ||
  fail "closed port: no error line"
echo "ok closed port"

# A bad argument: one line naming it, exit 2.
bench -n 0 --mqtt "127.0.0.1:$MQTT_PORT"
[ "$RC" -eq 2 ] || fail "bad argument: exited $RC, not 2"
[ "$(printf '%s\n' "$OUT" | wc -l)" -eq 1 ] || fail "bad argument: not one line"
printf '%s\n' "$OUT" | grep -q -- '-n' || fail "bad argument: not named"
echo "ok bad argument"

echo "PASS"

#!/bin/sh
# bench/device_telemetry.sh in small: 10 registered devices, 1 s per run,
# through coapd on --bus mqtt:// into a private Mosquitto. coap-bench's
# --basic-auth must authenticate every connection as its own device
# (only 2.04, no 4.03), and for CON every 2.04 must be at the broker
# (the script itself fails otherwise). The script stops what it starts.
#
# Usage: bench_device_smoke.sh PATH/TO/coapd PATH/TO/coap-bench
set -u
COAPD=${1:?usage: bench_device_smoke.sh COAPD COAP_BENCH}
BENCH=${2:?usage: bench_device_smoke.sh COAPD COAP_BENCH}
HERE=$(dirname "$0")

fail() {
  echo "FAIL: $*"
  printf '%s\n' "--- output:" "$OUT"
  exit 1
}

# The first-contact run is 5 s with a 30 s timeout: each device's first
# request costs coapd a PBKDF2 verification (100,000 iterations), and on
# a loaded machine ten of them took longer than a 1 s run, which then
# heard nothing and failed.
OUT=$(TIMEOUT_MS=30000 timeout 100 sh "$HERE/../../bench/device_telemetry.sh" \
  "$COAPD" "$BENCH" 1 10 5 2>&1)
RC=$?
[ "$RC" = 0 ] || fail "device_telemetry.sh exited $RC"
for type in first con non; do
  line=$(printf '%s\n' "$OUT" | grep "^device_telemetry devices=10 type=$type ")
  [ -n "$line" ] || fail "no line for type=$type"
  ok=$(printf '%s\n' "$line" | sed 's/.* answered_2_04=\([0-9]*\).*/\1/')
  codes=$(printf '%s\n' "$line" | sed 's/.* codes=\([^ ]*\).*/\1/')
  got=$(printf '%s\n' "$line" | sed 's/.* at_broker=\([0-9]*\).*/\1/')
  [ "$ok" -gt 0 ] || fail "$type: nothing answered 2.04"
  [ "$codes" = "2.04:$ok" ] || fail "$type: codes=$codes, expected only 2.04"
  [ "$got" -ge "$ok" ] || fail "$type: $ok answered 2.04, $got at the broker"
  echo "ok: $type: $ok x 2.04, $got at the broker"
done

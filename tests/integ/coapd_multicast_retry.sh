#!/bin/bash
# coapd --multicast on a host where the group cannot be joined at the
# start (a network namespace this test creates, with loopback up but no
# multicast route yet): coapd warns once and keeps serving unicast; when
# the route appears, its retry timer joins the group, says so, and a
# group request is answered.
#
# Needs root (ip netns; re-runs itself under sudo -n when not root).
# Usage: coapd_multicast_retry.sh PATH_TO_COAPD
set -euo pipefail

COAPD=${1:?usage: $0 PATH_TO_COAPD}
CLIENT=coap-client-notls
if [ "$(id -u)" -ne 0 ]; then
  sudo -n true 2>/dev/null || { echo "FAIL: needs root for ip netns"; exit 1; }
  exec sudo -n bash "$0" "$@"
fi
command -v "$CLIENT" >/dev/null || { echo "FAIL: $CLIENT missing"; exit 1; }

NS=ckmcr$$
T=$(mktemp -d)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  [ -s "$T/coapd.log" ] && tail -n 20 "$T/coapd.log" >&2
  exit 1
}

ip netns add "$NS"
ip -n "$NS" link set lo up
printf 'multicast_retry_ms = 200\ndefault_leisure_ms = 100\n' >"$T/coapd.conf"
ip netns exec "$NS" "$COAPD" --demo --multicast --config "$T/coapd.conf" \
  --listen "0.0.0.0:5683" --data-dir "$T/data" --log-level debug \
  2>"$T/coapd.log" &
PID=$!
for _ in $(seq 100); do
  grep -q "listening" "$T/coapd.log" 2>/dev/null && break
  kill -0 "$PID" 2>/dev/null || fail "coapd exited at start"
  sleep 0.05
done
grep -q "cannot join multicast group 224.0.1.187: .*retrying" \
  "$T/coapd.log" || fail "no warning for the group it could not join"
out=$(timeout 10 ip netns exec "$NS" "$CLIENT" -B 3 \
  "coap://127.0.0.1:5683/hello" 2>&1) || true
[ -n "$out" ] || fail "unicast not served while the group is missing"
echo "ok - the join failed, coapd warned and serves unicast"

sleep 0.5
[ "$(grep -c 'cannot join multicast group 224.0.1.187' "$T/coapd.log")" -eq 1 ] ||
  fail "the failure was logged more than once"
ip -n "$NS" route add 224.0.0.0/4 dev lo
for _ in $(seq 50); do
  grep -q "joined multicast group 224.0.1.187" "$T/coapd.log" && break
  sleep 0.1
done
grep -q "joined multicast group 224.0.1.187" "$T/coapd.log" ||
  fail "the group was not joined once it could be"
echo "ok - the retry joined the group when the route appeared"

out=$(timeout 10 ip netns exec "$NS" "$CLIENT" -N -B 2 \
  "coap://224.0.1.187:5683/.well-known/core" 2>&1) || true
echo "$out" | grep -q '</hello>' || fail "no answer to the group: $out"
echo "ok - a group request is answered"
echo PASS

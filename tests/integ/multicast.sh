#!/bin/bash
# Multicast server behaviour (RFC 7252 §8, RFC 7390), end to end with
# libcoap's coap-client as the peer, in two network namespaces this test
# creates and joins with a veth pair (the host's routes stay untouched;
# Linux's loopback does not loop IPv6 multicast back): coapd --multicast
# joins 224.0.1.187 and ff02::fd, answers a group GET of
# /.well-known/core after a random leisure, and stays silent for a group
# request that would get 4.04 (§8.2: no 4.xx/5.xx to multicast).
#
# Needs root (ip netns; re-runs itself under sudo -n when not root).
# Usage: multicast.sh PATH_TO_COAPD
set -euo pipefail

COAPD=${1:?usage: $0 PATH_TO_COAPD}
CLIENT=coap-client-notls
if [ "$(id -u)" -ne 0 ]; then
  # Network namespaces need root: re-run under sudo when it asks nothing.
  sudo -n true 2>/dev/null || { echo "FAIL: needs root for ip netns"; exit 1; }
  exec sudo -n bash "$0" "$@"
fi
command -v "$CLIENT" >/dev/null || { echo "FAIL: $CLIENT missing"; exit 1; }

SNS=ckmcs$$ # the server's namespace
NS=ckmcc$$  # the client's
T=$(mktemp -d)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  ip netns del "$SNS" 2>/dev/null || true
  ip netns del "$NS" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  [ -s "$T/coapd.log" ] && tail -n 20 "$T/coapd.log" >&2
  exit 1
}

ip netns add "$SNS"
ip netns add "$NS"
ip link add ckS$$ netns "$SNS" type veth peer name ckC$$ netns "$NS"
ip -n "$SNS" link set lo up
ip -n "$NS" link set lo up
ip -n "$SNS" addr add 192.168.77.1/24 dev ckS$$
ip -n "$NS" addr add 192.168.77.2/24 dev ckC$$
# Fixed link-local addresses without duplicate detection: usable at once.
ip -n "$SNS" addr add fe80::1/64 dev ckS$$ nodad
ip -n "$NS" addr add fe80::2/64 dev ckC$$ nodad
ip -n "$SNS" link set ckS$$ up
ip -n "$NS" link set ckC$$ up
ip -n "$SNS" route add 224.0.0.0/4 dev ckS$$
ip -n "$NS" route add 224.0.0.0/4 dev ckC$$

PORT=5683 # the namespace is ours: the well-known port is free
printf 'default_leisure_ms = 300\n' >"$T/coapd.conf"
ip netns exec "$SNS" "$COAPD" --demo --multicast --config "$T/coapd.conf" \
  --listen "0.0.0.0:$PORT" --listen "[::]:$PORT" --log-level debug \
  2>"$T/coapd.log" &
PID=$!
for _ in $(seq 100); do
  grep -q "listening" "$T/coapd.log" 2>/dev/null && break
  kill -0 "$PID" 2>/dev/null || fail "coapd exited at start"
  sleep 0.05
done

# mc URI: a multicast GET; prints what came back (coap-client -N sends
# NON, which RFC 7252 §8.1 requires for multicast; -B bounds the wait).
mc() {
  timeout 20 ip netns exec "$NS" "$CLIENT" -N -B 2 -v 6 "$1" 2>&1 || true
}

out=$(mc "coap://224.0.1.187:$PORT/.well-known/core")
echo "$out" | grep -q '</hello>' || fail "no IPv4 group answer: $out"
echo "ok - IPv4 group discovery answered"

out=$(mc "coap://[ff02::fd%ckC$$]:$PORT/.well-known/core")
echo "$out" | grep -q '</hello>' || fail "no IPv6 group answer: $out"
echo "ok - IPv6 group discovery answered"

out=$(mc "coap://224.0.1.187:$PORT/no-such-resource")
if echo "$out" | grep -q '4\.04'; then
  fail "a 4.04 went to a multicast request: $out"
fi
echo "ok - no 4.04 to a multicast request"

# Unicast still gets its 4.04.
out=$(timeout 20 ip netns exec "$NS" "$CLIENT" -B 5 -v 6 \
  "coap://192.168.77.1:$PORT/no-such-resource" 2>&1 || true)
echo "$out" | grep -q '4\.04' || fail "unicast 4.04 missing: $out"
echo "ok - unicast 4.04 still answered"

#!/bin/bash
# Multicast discovery with the client library (issue #3): two coapd
# responders and client_multicast on one link, each in a network
# namespace this test creates (Linux's loopback does not loop IPv6
# multicast back, and the host's routes stay untouched). The client's
# namespace holds a bridge with one veth pair to each responder:
#
#   client ns: br0 192.168.78.10, fe80::10
#     ├── veth ── responder A: 192.168.78.1, fe80::1
#     └── veth ── responder B: 192.168.78.2, fe80::2
#
# Both responders run coapd --demo --multicast (default_leisure_ms 300);
# a GET of /.well-known/core to 224.0.1.187 and to ff02::fd%br0 must be
# answered by both, each reported once with its own address, within the
# 1500 ms window.
#
# Needs root (ip netns; re-runs itself under sudo -n when not root).
# Usage: client_multicast.sh PATH_TO_COAPD PATH_TO_CLIENT_MULTICAST
set -euo pipefail

COAPD=${1:?usage: $0 PATH_TO_COAPD PATH_TO_CLIENT_MULTICAST}
CLIENT=${2:?usage: $0 PATH_TO_COAPD PATH_TO_CLIENT_MULTICAST}
if [ "$(id -u)" -ne 0 ]; then
  sudo -n true 2>/dev/null || { echo "FAIL: needs root for ip netns"; exit 1; }
  exec sudo -n bash "$0" "$@"
fi

NC=ckmc$$  # the client's namespace, with the bridge
NA=ckma$$  # responder A
NB=ckmb$$  # responder B
T=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do
    kill -TERM "$p" 2>/dev/null && wait "$p" 2>/dev/null
  done
  # Deleting a namespace deletes the veth pairs and the bridge in it.
  ip netns del "$NA" 2>/dev/null || true
  ip netns del "$NB" 2>/dev/null || true
  ip netns del "$NC" 2>/dev/null || true
  rm -rf "$T"
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*" >&2
  for f in "$T"/*.log; do
    [ -s "$f" ] && { echo "--- $f:" >&2; tail -n 20 "$f" >&2; }
  done
  exit 1
}

ip netns add "$NC"
ip netns add "$NA"
ip netns add "$NB"
ip -n "$NC" link set lo up
# Snooping off: with no querier on the link the bridge must flood the
# groups to every port; forwarding at once, no STP.
ip -n "$NC" link add br0 type bridge mcast_snooping 0 forward_delay 0 \
  stp_state 0
# Only the fixed link-local addresses (no EUI-64 ones beside them), so
# that each responder answers from the address the test expects.
ip -n "$NC" link set br0 addrgenmode none
ip -n "$NC" addr add 192.168.78.10/24 dev br0
ip -n "$NC" addr add fe80::10/64 dev br0 nodad
ip -n "$NC" link set br0 up
ip -n "$NC" route add 224.0.0.0/4 dev br0
i=1
for ns in "$NA" "$NB"; do
  ip link add "ckr$i$$" netns "$ns" type veth peer name "ckp$i$$" netns "$NC"
  ip -n "$NC" link set "ckp$i$$" master br0
  ip -n "$NC" link set "ckp$i$$" up
  ip -n "$ns" link set lo up
  ip -n "$ns" link set "ckr$i$$" addrgenmode none
  ip -n "$ns" addr add "192.168.78.$i/24" dev "ckr$i$$"
  ip -n "$ns" addr add "fe80::$i/64" dev "ckr$i$$" nodad
  ip -n "$ns" link set "ckr$i$$" up
  ip -n "$ns" route add 224.0.0.0/4 dev "ckr$i$$"
  i=$((i + 1))
done

printf 'default_leisure_ms = 300\n' >"$T/coapd.conf"
for ns in "$NA" "$NB"; do
  # The namespaces are ours: the well-known port is free.
  ip netns exec "$ns" "$COAPD" --demo --multicast --config "$T/coapd.conf" \
    --listen 0.0.0.0:5683 --listen "[::]:5683" --log-level debug \
    2>"$T/$ns.log" &
  PIDS+=($!)
done
for ns in "$NA" "$NB"; do
  for _ in $(seq 100); do
    grep -q "listening" "$T/$ns.log" 2>/dev/null && break
    sleep 0.05
  done
  grep -q "listening" "$T/$ns.log" || fail "coapd in $ns did not start"
done

# discover URI ADDR_A ADDR_B: both responders answer, once each, with
# the demo's links.
discover() {
  local out
  out=$(timeout 30 ip netns exec "$NC" "$CLIENT" "$1" 1500 2>&1) ||
    fail "client_multicast $1: $out"
  echo "$out" | sed 's/^/# /'
  local a n
  for a in "$2" "$3"; do
    n=$(echo "$out" | grep -c "^responder $a:5683 2.05 Content [0-9]* links$" ||
      true)
    [ "$n" = 1 ] || fail "$a reported $n times for $1"
  done
  echo "$out" | grep -q '^responders 2 distinct (2 answers)' ||
    fail "not exactly two answers for $1"
}

discover "coap://224.0.1.187/.well-known/core" 192.168.78.1 192.168.78.2
echo "ok - IPv4 group 224.0.1.187: both responders reported"

discover "coap://[ff02::fd%25br0]/.well-known/core" '\[fe80::1%br0\]' \
  '\[fe80::2%br0\]'
echo "ok - IPv6 group ff02::fd%br0: both responders reported"

#!/bin/bash
# coap discover by multicast (RFC 7252 §8, RFC 7390), in network
# namespaces of the test's own: two servers, coapd --multicast (IPv4
# 224.0.1.187 and IPv6 ff02::fd) and libcoap's coap-server-notls -g
# 224.0.1.187, sit on a bridge with the client. `coap discover` without a
# URI asks the IPv4 group and must list both responders with their
# resources; --group ff02::fd%IF asks the IPv6 group; --json gives one
# object per responder; a group nobody joined gives exit 3.
#
# Needs root (ip netns; re-runs itself under sudo -n when not root).
# Usage: cli_multicast.sh PATH/TO/coap PATH/TO/coapd
if [ "$(id -u)" -ne 0 ]; then
  sudo -n true 2>/dev/null || { echo "FAIL: needs root for ip netns"; exit 1; }
  exec sudo -n bash "$0" "$@"
fi
COAP=${1:?usage: $0 PATH/TO/coap PATH/TO/coapd}
COAPD=${2:?usage: $0 PATH/TO/coap PATH/TO/coapd}
. "$(dirname "$0")/cli_common.sh"
command -v coap-server-notls >/dev/null ||
  { echo "FAIL: coap-server-notls not installed"; exit 1; }

NS=ckcc$$  # the client's namespace, with the bridge
S1=ckc1$$  # coapd's
S2=ckc2$$  # libcoap's
BR=ckbr$$
nscleanup() {
  cleanup
  ip netns del "$S1" 2>/dev/null
  ip netns del "$S2" 2>/dev/null
  ip netns del "$NS" 2>/dev/null
}
trap nscleanup EXIT

ip netns add "$NS"
ip netns add "$S1"
ip netns add "$S2"
ip -n "$NS" link add "$BR" type bridge
ip -n "$NS" link set lo up
ip -n "$NS" addr add 192.168.78.2/24 dev "$BR"
ip -n "$NS" addr add fe80::2/64 dev "$BR" nodad
ip -n "$NS" link set "$BR" up
ip -n "$NS" route add 224.0.0.0/4 dev "$BR"
n=1
for S in "$S1" "$S2"; do
  host=$([ "$S" = "$S1" ] && echo 1 || echo 3)
  ip link add ckv$n$$ netns "$S" type veth peer name ckp$n$$ netns "$NS"
  ip -n "$NS" link set ckp$n$$ master "$BR" up
  ip -n "$S" link set lo up
  ip -n "$S" addr add 192.168.78.$host/24 dev ckv$n$$
  ip -n "$S" addr add fe80::$host/64 dev ckv$n$$ nodad
  ip -n "$S" link set ckv$n$$ up
  ip -n "$S" route add 224.0.0.0/4 dev ckv$n$$
  n=$((n + 1))
done

printf 'default_leisure_ms = 300\ndata_dir = %s\n' "$T/coapd-data" \
  >"$T/coapd.conf"
ip netns exec "$S1" "$COAPD" --demo --multicast --config "$T/coapd.conf" \
  --listen 0.0.0.0:5683 --listen "[::]:5683" 2>"$T/coapd.log" &
PIDS="$PIDS $!"
ip netns exec "$S2" stdbuf -oL coap-server-notls -g 224.0.1.187 -v 7 \
  >"$T/libcoap.log" 2>&1 &
PIDS="$PIDS $!"
for _ in $(seq 100); do
  grep -q "listening" "$T/coapd.log" &&
    grep -aq "created UDP  *endpoint" "$T/libcoap.log" && break
  sleep 0.05
done

# nrun ARGS...: coap in the client's namespace.
nrun() {
  timeout 30 ip netns exec "$NS" "$COAP" "$@" </dev/null >"$T/out" \
    2>"$T/err"
  RC=$?
}
WAIT=6000 # libcoap waits up to DEFAULT_LEISURE (5 s) before it answers

check "discover: the IPv4 group, both responders with their resources"
nrun discover --wait "$WAIT"
rc_is 0; err_empty
out_has "192.168.78.1:5683 2.05 Content"
out_has "192.168.78.3:5683 2.05 Content"
grep -aq '^  /hello  *demo.hello ' "$T/out" || fail "no /hello of coapd"
grep -aq '^  /time  *ticks .* obs$' "$T/out" || fail "no /time of libcoap"
grep -aq '^  path  *rt  *ct  *if  *sz  *obs$' "$T/out" || fail "no header"
ok

check "discover --group ff02::fd%IF: the IPv6 group"
nrun discover --group "ff02::fd%$BR" --wait 2000 -v
rc_is 0
grep -aq "^\[fe80::[0-9a-f:]*%$BR\]:5683 2.05 Content$" "$T/out" ||
  fail "no IPv6 responder"
grep -aq '^  /hello  *demo.hello ' "$T/out" || fail "no /hello"
err_has "> NON GET mid="; err_has "to [ff02::fd%$BR]:5683"
ok

check "discover --json: one object per responder"
nrun discover --json --wait "$WAIT"
rc_is 0
[ "$(jq -c 'select(.code == "2.05" and (.links | length) > 2) | .from' \
  "$T/out" | sort -u | wc -l)" -eq 2 ] || fail "not two responders"
ok

check "get from the group: 2.05 from coapd; libcoap's 4.04 is suppressed"
nrun get --wait 2000 coap://224.0.1.187/hello
rc_is 0
out_has "192.168.78.1:5683 2.05 Content"; out_has "Hello, world!"
grep -q '4\.04' "$T/out" && fail "a 4.04 answered a group request"
ok

check "a group nobody joined: exit 3 after --wait"
nrun discover --group 224.0.1.188 --wait 500
rc_is 3; out_empty; err_line "no answer within the response window"; ok

finish

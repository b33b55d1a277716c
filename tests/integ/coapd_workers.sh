#!/usr/bin/env bash
# coapd --demo --workers 2: two sockets on one port (SO_REUSEPORT), the
# second read by a worker thread, one protocol state machine behind both.
# What a peer sees must not change: GETs from many source ports (so from
# both sockets) with libcoap's coap-client and our coap; a duplicate CON
# POST from one raw socket answered identically twice, its handler run
# once; Block1 uploads and observations from many ports at once, while
# other requests keep both sockets busy.
# Usage: coapd_workers.sh PATH_TO_COAPD PATH_TO_COAP
. "$(dirname "$0")/coapd_common.sh"
COAP=${2:?usage: $0 PATH_TO_COAPD PATH_TO_COAP}

start_coapd --workers 2

# Two UDP sockets of this coapd on the port: the group exists.
n=$(ss -Huanp "sport = :$PORT" 2>/dev/null | grep -c "pid=$PID," || true)
[ "$n" -eq 2 ] || fail "$n sockets on port $PORT, expected 2"
ok "two sockets share port $PORT"

# Each client process has a port of its own; the kernel spreads peers
# over the two sockets by a hash of their addresses and ports, so 40 of
# them reach both (all on one: a chance of 2^-39).
for i in $(seq 20); do
  req "$U/hello"; expect 2.05 ACK; body_is "Hello, world!"
  out=$(timeout 20 "$COAP" get "$U/hello" 2>&1) || fail "coap get: $out"
  [ "$out" = "Hello, world!" ] || fail "coap get: '$out'"
done
ok "40 GETs from 40 source ports, coap-client and coap"

# A CON POST to /large-create and its duplicate from one socket (same
# peer, same Message ID): the same answer twice, one item created (the
# next POST gets the next number). Ver 1, CON, TKL 2, POST, MID 0x1234,
# token abcd, Uri-Path "large-create", payload "x".
post() { udp_send "4202${1}abcdbc6c617267652d637265617465ff78"; }
udp_open
post 1234; a=$(udp_recv 64)
post 1234; b=$(udp_recv 64)
post 1235; c=$(udp_recv 64)
udp_close
[ -n "$a" ] || fail "no answer to the POST"
[ "$a" = "$b" ] || fail "duplicate answered differently: $a / $b"
case "$a" in 6241123[4]abcd*) ;; *) fail "not a piggybacked 2.01: $a" ;; esac
# The Location-Path's last segment is the item number (ASCII digits).
num() { sed 's/.*6c617267652d637265617465\(..\)\(\(3[0-9]\)*\).*/\1\2/' <<<"$1"; }
na=$(num "$a" | cut -c3- | xxd -r -p)
nc=$(num "$c" | cut -c3- | xxd -r -p)
[ -n "$na" ] && [ "$nc" = $((na + 1)) ] ||
  fail "items: first $na, after the duplicate $nc (want $((na + 1)))"
ok "duplicate CON POST answered twice alike, handler ran once (item $na)"

# Load on both sockets while uploads and observations run: 8 GET loops,
# each a new source port per request, bounded in count.
load() {
  local k
  for k in $(seq 15); do
    timeout 20 "$CLIENT" -B 15 "$U/hello" >"$T/load.$1.$k" 2>&1 || true
  done
}
lp=()
for j in $(seq 8); do load "$j" & lp+=($!); done

head -c 65536 /dev/urandom >"$T/blob"
up=() ob=()
for j in $(seq 4); do
  timeout 60 "$CLIENT" -B 50 -m put -b 256 -f "$T/blob" \
    "$U/large-update" >"$T/put.$j" 2>&1 &
  up+=($!)
  timeout 30 "$CLIENT" -B 20 -s 4 -w -o "$T/obs.$j" "$U/obs" \
    >/dev/null 2>&1 &
  ob+=($!)
done
for p in "${up[@]}"; do wait "$p" || fail "a Block1 PUT failed"; done
rm -f "$T/out"
timeout 60 "$CLIENT" -B 50 -o "$T/out" "$U/large-update" ||
  fail "GET /large-update"
cmp -s "$T/blob" "$T/out" || fail "GET /large-update differs from the PUT"
ok "4 concurrent Block1 PUTs of 64 KiB under load, read back whole"

for j in $(seq 4); do
  wait "${ob[$((j - 1))]}" || true
  n=$(grep -c . "$T/obs.$j" || true)
  d=$(sort -u "$T/obs.$j" | grep -c . || true)
  [ "$n" -ge 2 ] && [ "$d" -eq "$n" ] ||
    fail "observer $j: $n values, $d distinct"
done
ok "4 observers from 4 ports under load: distinct values each"

for p in "${lp[@]}"; do wait "$p" || true; done
bad=$(cat "$T"/load.* | grep -vc '^Hello, world!$' || true)
[ "$bad" -eq 0 ] || fail "$bad of the 120 loaded GETs went wrong"
ok "120 GETs of the load, all answered"

stop_coapd
ok "coapd --workers 2 stopped cleanly"

#!/usr/bin/env bash
# Block-wise transfer (RFC 7959) between coap-client and coapd --demo:
# /large fetched with every block size from 16 to 1024 bytes is byte-for-
# byte the plain GET; 1 MiB of random bytes PUT to /large-update (Block1)
# comes back unchanged (Block2); a POST to /large-create answers 2.01 with
# a Location-Path whose GET returns the body.
# Usage: coapd_block.sh PATH_TO_COAPD
. "$(dirname "$0")/coapd_common.sh"

start_coapd

req "$U/large"; expect 2.05 ACK
cp "$T/body" "$T/large"
size=$(wc -c <"$T/large")
[ "$size" -ge 2048 ] && [ "$size" -le 4096 ] || fail "/large is $size bytes"
req "$U/.well-known/core?href=/large"
grep -q "sz=$size" "$T/body" || fail "sz of /large is not $size"
for b in 16 32 64 128 256 512 1024; do
  rm -f "$T/out"
  timeout 30 "$CLIENT" -B 20 -b "$b" -o "$T/out" "$U/large" ||
    fail "GET /large -b $b"
  cmp -s "$T/large" "$T/out" || fail "GET /large -b $b differs"
done
ok "GET /large with block sizes 16 to 1024"

head -c 1048576 /dev/urandom >"$T/mib"
req -m put -b 1024 -f "$T/mib" "$U/large-update"; expect 2.04 ACK
has "Block1:1023/_/1024"
rm -f "$T/out"
timeout 60 "$CLIENT" -B 50 -o "$T/out" "$U/large-update" ||
  fail "GET /large-update"
cmp -s "$T/mib" "$T/out" || fail "1 MiB came back different"
ok "PUT 1 MiB to /large-update, GET it back"

head -c 5000 /dev/urandom >"$T/small"
req -m put -b 16 -t 42 -f "$T/small" "$U/large-update"; expect 2.04 ACK
rm -f "$T/out"
timeout 60 "$CLIENT" -B 50 -b 64 -o "$T/out" "$U/large-update" ||
  fail "GET /large-update -b 64"
cmp -s "$T/small" "$T/out" || fail "5000 bytes in 16-byte blocks differ"
ok "PUT with 16-byte blocks, GET with 64-byte blocks"

head -c 20000 /dev/urandom >"$T/create"
req -m post -f "$T/create" "$U/large-create"; expect 2.01 ACK
loc=$(responses | tail -n 1 | grep -o 'Location-Path:[^], ]*' | cut -d: -f2 |
  paste -sd/)
case "$loc" in large-create/[0-9]*) ;; *) fail "Location-Path '$loc'" ;; esac
rm -f "$T/out"
timeout 30 "$CLIENT" -B 20 -o "$T/out" "$U/$loc" || fail "GET /$loc"
cmp -s "$T/create" "$T/out" || fail "/$loc differs from the POST"
req -m post -e "second" "$U/large-create"; expect 2.01 ACK
loc2=$(responses | tail -n 1 | grep -o 'Location-Path:[^], ]*' | cut -d: -f2 |
  paste -sd/)
[ "$loc2" != "$loc" ] || fail "two POSTs, one location"
req "$U/$loc2"; expect 2.05 ACK; body_is "second"
req "$U/large-create/999999"; expect 4.04 ACK
ok "POST /large-create, GET its location"

# Two uploads at once, with different block sizes, stay apart.
head -c 300000 /dev/urandom >"$T/up1"
head -c 200000 /dev/urandom >"$T/up2"
timeout 60 "$CLIENT" -B 50 -v 6 -m post -b 64 -f "$T/up1" "$U/large-create" \
  >"$T/t1" 2>&1 &
p1=$!
timeout 60 "$CLIENT" -B 50 -v 6 -m post -b 256 -f "$T/up2" "$U/large-create" \
  >"$T/t2" 2>&1 &
p2=$!
wait "$p1" "$p2" || fail "concurrent uploads failed"
for i in 1 2; do
  loc=$(grep -a ' c:2.01 ' "$T/t$i" | tail -n 1 |
    grep -o 'Location-Path:[0-9][0-9]*' | cut -d: -f2)
  [ -n "$loc" ] || fail "upload $i: no 2.01"
  rm -f "$T/out"
  timeout 30 "$CLIENT" -B 20 -o "$T/out" "$U/large-create/$loc" ||
    fail "GET large-create/$loc"
  cmp -s "$T/up$i" "$T/out" || fail "upload $i differs at large-create/$loc"
done
ok "two concurrent Block1 uploads"

stop_coapd
ok "clean shutdown"

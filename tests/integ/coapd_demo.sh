#!/usr/bin/env bash
# coapd --demo against libcoap's coap-client: every method of the small
# demo resources, as CON (piggybacked in the ACK) and as NON, the
# library's 4.04/4.05/4.06, discovery with filters, the ETag flow of
# /validate, /query and /location-query.
# Usage: coapd_demo.sh PATH_TO_COAPD
. "$(dirname "$0")/coapd_common.sh"

start_coapd

for mode in CON NON; do
  if [ "$mode" = CON ]; then n=(); t=ACK; else n=(-N); t=NON; fi

  req "${n[@]}" "$U/hello"
  expect 2.05 "$t"; has "Content-Format:text/plain"; body_is "Hello, world!"

  req "${n[@]}" "$U/test"; expect 2.05 "$t"
  req "${n[@]}" -m put -e x "$U/test"; expect 2.04 "$t"
  req "${n[@]}" -m post -e x "$U/test"; expect 2.01 "$t"
  has "Location-Path:location1, Location-Path:location2, "
  has "Location-Path:location2, Location-Path:location3"
  req "${n[@]}" -m delete "$U/test"; expect 2.02 "$t"

  req "${n[@]}" -m put -e "put-$mode" "$U/sink"; expect 2.04 "$t"
  req "${n[@]}" "$U/sink"; expect 2.05 "$t"; body_is "put-$mode"
  req "${n[@]}" -m post -t 50 -e "{\"m\":\"$mode\"}" "$U/sink"
  expect 2.01 "$t"
  req "${n[@]}" "$U/sink"; expect 2.05 "$t"
  has "Content-Format:application/json"; body_is "{\"m\":\"$mode\"}"
  req "${n[@]}" -m delete "$U/sink"; expect 2.02 "$t"
  req "${n[@]}" "$U/sink"; expect 2.05 "$t"; body_is ""

  req "${n[@]}" "$U/seg1/seg2/seg3"; expect 2.05 "$t"
  req "${n[@]}" "$U/query?first=1&second=x%20y&third"
  expect 2.05 "$t"; body_is "first=1&second=x y&third"
  req "${n[@]}" -m post "$U/location-query"; expect 2.01 "$t"
  has "Location-Query:first=1, Location-Query:second=2"

  req "${n[@]}" "$U/multi-format"; expect 2.05 "$t"
  has "Content-Format:text/plain"
  req "${n[@]}" -A 50 "$U/multi-format"; expect 2.05 "$t"
  has "Content-Format:application/json"
  grep -q '^{"uptime_s":[0-9]*}$' "$T/body" || fail "JSON: $(cat "$T/body")"
  req "${n[@]}" -A 0 "$U/multi-format"; expect 2.05 "$t"
  req "${n[@]}" -A 60 "$U/multi-format"; expect 4.06 "$t"

  req "${n[@]}" "$U/time"; expect 2.05 "$t"
  grep -Eq '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z$' "$T/body" ||
    fail "time: $(cat "$T/body")"
  req "${n[@]}" "$U/obs"; expect 2.05 "$t"; has "Max-Age:2"

  # What is not there, and methods a resource does not have.
  req "${n[@]}" "$U/no/such/thing"; expect 4.04 "$t"
  req "${n[@]}" -m delete "$U/hello"; expect 4.05 "$t"
  req "${n[@]}" -m post "$U/hello"; expect 4.05 "$t"
  req "${n[@]}" -m put -e x "$U/large"; expect 4.05 "$t"
  req "${n[@]}" "$U/location-query"; expect 4.05 "$t"
  req "${n[@]}" -m get "$U/large-create"; expect 4.05 "$t"
  req "${n[@]}" -m delete "$U/obs"; expect 4.05 "$t"
  ok "$mode: methods, codes and payloads"
done

# /validate (RFC 7252 §5.10.6): GET gives an ETag; sending it back gets
# 2.03 with the ETag; PUT changes the representation and its ETag.
req "$U/validate"; expect 2.05 ACK
etag=$(responses | tail -n 1 | grep -o 'ETag:0x[0-9a-f]*' | cut -d: -f2)
[ -n "$etag" ] || fail "/validate sent no ETag"
first=$(cat "$T/body")
req -O "4,$etag" "$U/validate"; expect 2.03 ACK; has "ETag:$etag"; body_is ""
req -O "4,0x0102030405060708" "$U/validate"; expect 2.05 ACK
body_is "$first"
req -m put -e "validate: version 2" "$U/validate"; expect 2.04 ACK
req -O "4,$etag" "$U/validate"; expect 2.05 ACK
body_is "validate: version 2"
etag2=$(responses | tail -n 1 | grep -o 'ETag:0x[0-9a-f]*' | cut -d: -f2)
[ -n "$etag2" ] && [ "$etag2" != "$etag" ] || fail "ETag did not change"
req -O "4,$etag2" "$U/validate"; expect 2.03 ACK
ok "/validate ETag flow"

# Conditional PUT (RFC 7252 §5.10.8): If-Match with a stale ETag fails,
# with the current one succeeds; If-None-Match only where nothing is.
req -m put -e v3 -O "1,$etag" "$U/validate"; expect 4.12 ACK
req -m put -e v3 -O "1,$etag2" "$U/validate"; expect 2.04 ACK
req -m put -e v4 -O "1,$etag2" "$U/validate"; expect 4.12 ACK
req "$U/validate"; body_is "v3"
req -m put -e new -O "5," "$U/sink"; expect 2.04 ACK
req -m put -e again -O "5," "$U/sink"; expect 4.12 ACK
req -m put -e any -O "1," "$U/sink"; expect 2.04 ACK
req -m delete "$U/sink"; expect 2.02 ACK
req -m put -e any -O "1," "$U/sink"; expect 4.12 ACK
ok "If-Match and If-None-Match"

# Discovery (RFC 6690): every demo resource with its attributes, and the
# query filters.
req "$U/.well-known/core"; expect 2.05 ACK
has "Content-Format:application/link-format"
wk=$(cat "$T/body")
for p in hello time test sink separate large large-update large-create \
  seg1/seg2/seg3 query location-query multi-format validate obs; do
  case ",$wk," in *",</$p>;"*) ;; *) fail "/$p not in $wk" ;; esac
done
case "$wk" in *'</obs>;'*'obs'*) ;; *) fail "/obs not marked obs" ;; esac
echo "$wk" | tr ',' '\n' | grep -q '^</large>;.*sz=[0-9]' ||
  fail "/large has no sz"
echo "$wk" | tr ',' '\n' | grep -q '^</time>;.*;obs' || fail "/time not obs"
req "$U/.well-known/core?rt=demo.obs"; expect 2.05 ACK
case "$(cat "$T/body")" in '</obs>;'*) ;; *) fail "rt filter" ;; esac
[ "$(tr ',' '\n' <"$T/body" | grep -c '^<')" -eq 1 ] || fail "rt filter"
req "$U/.well-known/core?href=/seg*"; expect 2.05 ACK
case "$(cat "$T/body")" in '</seg1/seg2/seg3>;'*) ;; *) fail "href" ;; esac
[ "$(tr ',' '\n' <"$T/body" | grep -c '^<')" -eq 1 ] || fail "href filter"
req "$U/.well-known/core?rt=demo.large*"; expect 2.05 ACK
[ "$(tr ',' '\n' <"$T/body" | grep -c '^<')" -eq 3 ] || fail "rt prefix"
req "$U/.well-known/core?rt=nothing-like-this"; expect 4.04 ACK
req -m post "$U/.well-known/core"; expect 4.05 ACK
ok "discovery and filters"

# Deduplication (RFC 7252 §4.5): a request sent twice with one Message ID
# from one socket gets the same answer twice, and a POST runs only once.
# (A duplicate GET may run its handler again: coapd_cli.sh checks that
# remember_idempotent = true answers it from the cache.)
hex() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
udp_open
udp_send "4101515101b5$(hex hello)"
a1=$(udp_recv 64)
udp_send "4101515101b5$(hex hello)"
a2=$(udp_recv 64)
[ "$a1" = "6145515101c0ff$(hex 'Hello, world!')" ] ||
  fail "GET /hello by hand: $a1"
[ "$a1" = "$a2" ] || fail "duplicate GET answered differently: $a2"
udp_send "4102525202bc$(hex large-create)ff78"
p1=$(udp_recv 64)
udp_send "4102525202bc$(hex large-create)ff78"
p2=$(udp_recv 64)
udp_close
case "$p1" in "6141525202"*) ;; *) fail "POST by hand: $p1" ;; esac
[ "$p1" = "$p2" ] || fail "duplicate POST answered differently: $p1 / $p2"
# The answer ends with Location-Path N: skip its option header byte.
tail=${p1#*"$(hex large-create)"}
n1=$(printf '%b' "$(sed 's/../\\x&/g' <<<"${tail:2}")")
req -m post -e y "$U/large-create"; expect 2.01 ACK
n2=$(responses | tail -n 1 | grep -o 'Location-Path:[0-9][0-9]*' | cut -d: -f2)
[ "$n2" = "$((n1 + 1))" ] || fail "POST ran twice: item $n1, then $n2"
ok "duplicates get the same answer; a duplicate POST runs once"

stop_coapd
grep -q 'info: stopped by SIGTERM: rx [0-9]' "$T/coapd.log" ||
  fail "no shutdown line"
ok "clean shutdown"

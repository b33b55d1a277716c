#!/usr/bin/env bash
# Hostile input against coapd (issue 13, part 2): integ_hostile
# (hostile.c) sends every RFC 7252 §3 format error and other nasty
# datagrams, checks the answers the RFCs fix, floods coapd with a seeded
# mix for a bounded count and time, and then checks that coapd still
# serves and that its VmRSS is back near its level before.
#
# coapd runs with --demo, the pub/sub gateway, a user and a device in its
# registry (so authentication runs), and transmission parameters that
# make EXCHANGE_LIFETIME about 3.3 s (RFC 7252 §4.8.2: 750 ms span +
# 2 x 1 s latency + 500 ms), so that the exchanges the flood leaves
# behind expire within the test's 4 s settle.
# Usage: hostile_coapd.sh PATH_TO_COAPD PATH_TO_INTEG_HOSTILE
. "$(dirname "$0")/coapd_common.sh"
HOSTILE=${2:?usage: $0 PATH_TO_COAPD PATH_TO_INTEG_HOSTILE}

"$COAPD" user add alice --password s3cret --allow-pub 'hostile/#' \
  --allow-sub 'hostile/#' --data-dir "$T/data" >/dev/null ||
  fail "coapd user add failed"
# Drogue's example credentials: "device1@example-app:hey-rodney".
"$COAPD" device add example-app device1 --password hey-rodney \
  --data-dir "$T/data" >/dev/null || fail "coapd device add failed"
AUTH="Basic ZGV2aWNlMUBleGFtcGxlLWFwcDpoZXktcm9kbmV5"

cat >"$T/coapd.conf" <<CONF
ack_timeout_ms = 500
max_retransmit = 1
max_latency_ms = 1000
processing_delay_ms = 500
CONF
start_coapd --config "$T/coapd.conf" --data-dir "$T/data" --log-level info

rc=0
timeout 120 "$HOSTILE" "$PORT" "$PID" alice s3cret "$AUTH" 4000 || rc=$?
[ "$rc" -eq 0 ] || fail "integ_hostile exited with $rc"
kill -0 "$PID" 2>/dev/null || fail "coapd died"
stop_coapd
ok "coapd survived the hostile corpus and stopped cleanly"

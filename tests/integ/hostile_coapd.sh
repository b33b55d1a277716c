#!/usr/bin/env bash
# Hostile input against coapd (issue 13, part 2): integ_hostile
# (hostile.c) sends every RFC 7252 §3 format error and other nasty
# datagrams, checks the answers the RFCs fix, floods coapd with a seeded
# mix for a bounded count and time, twice, and after each checks that
# coapd still serves; its VmRSS must hold steady over the second flood
# and be back near its level before (hostile.c says how near).
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
# Under ASan a freed block waits in a 256 MiB quarantine before its
# memory is reused, so VmRSS climbs with every allocation whatever is
# freed: a 1 MiB quarantine still catches a use right after a free and
# lets the RSS checks mean what they say. Ignored without ASan.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1"
start_coapd --config "$T/coapd.conf" --data-dir "$T/data" --log-level info

rc=0
timeout 120 "$HOSTILE" "$PORT" "$PID" alice s3cret "$AUTH" 4000 || rc=$?
[ "$rc" -eq 0 ] || fail "integ_hostile exited with $rc"
kill -0 "$PID" 2>/dev/null || fail "coapd died"
stop_coapd
m=$(sed -n 's/.*stopped by SIGTERM: .* malformed \([0-9]*\) .*/\1/p' \
  "$T/coapd.log")
[ "${m:-0}" -ge 1000 ] || fail "malformed counter is '${m:-}'"
ok "coapd survived the hostile corpus and stopped cleanly (malformed $m)"

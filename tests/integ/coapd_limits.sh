#!/usr/bin/env bash
# Limits with clear answers (issue 13, part 4): coapd --demo runs with
# small caps and /metrics on, and integ_limits (limits.c) fills each cap
# over loopback, checks the answer (5.03 with Max-Age, or a plain GET for
# an observer that cannot be added, RFC 7641 §4.1), the counter at
# /metrics, and that stalled uploads are reaped after upload_idle_ms with
# their memory given back. Afterwards `coapd stats` shows the counters,
# and coapd stops cleanly.
# Usage: coapd_limits.sh PATH_TO_COAPD PATH_TO_INTEG_LIMITS
. "$(dirname "$0")/coapd_common.sh"
LIMITS=${2:?usage: $0 PATH_TO_COAPD PATH_TO_INTEG_LIMITS}

# The numbers integ_limits expects (its enum says the same).
cat >"$T/coapd.conf" <<CONF
max_observers_per_resource = 10
max_observers_per_peer = 4
max_peers = 12
max_uploads_per_peer = 2
max_upload_bytes = 1048576
upload_idle_ms = 6000
max_sessions = 2
max_queued_notes = 5
CONF
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1"
start_coapd --config "$T/coapd.conf" --data-dir "$T/data" --log-level info \
  --metrics-listen 127.0.0.1:0
for _ in $(seq 100); do
  [ -s "$T/data/metrics.addr" ] && break
  sleep 0.05
done
MADDR=$(cat "$T/data/metrics.addr" 2>/dev/null) || fail "no metrics.addr"

rc=0
timeout 120 "$LIMITS" "$PORT" "$PID" "${MADDR##*:}" || rc=$?
[ "$rc" -eq 0 ] || fail "integ_limits exited with $rc"
kill -0 "$PID" 2>/dev/null || fail "coapd died"

"$COAPD" stats --metrics "$MADDR" >"$T/stats" || fail "coapd stats failed"
for want in 'coapd_peers_rejected_total 1' 'coapd_uploads_expired_total 25' \
  'coapd_uploads_rejected_total{cap="max_upload_bytes"} 1' \
  'coapd_observers_rejected_total{cap="max_observers_per_resource"} 1' \
  'coapd_notify_dropped_cap_total 5' 'coapd_pubsub_unavailable_total 1'; do
  grep -qxF "$want" "$T/stats" || fail "coapd stats lacks '$want'"
done
ok "coapd stats shows every cap's counter"
stop_coapd

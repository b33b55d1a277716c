#!/bin/bash
# Runs client_coapd (the library's client) against coapd --demo on a
# loopback port the kernel picks; stops only the coapd it started.
# Usage: client_coapd.sh PATH_TO_COAPD PATH_TO_CLIENT_COAPD
set -euo pipefail
COAPD=${1:?usage}
CLIENT=${2:?usage}
LOG=$(mktemp)
PID=
cleanup() {
  [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -f "$LOG"
}
trap cleanup EXIT
"$COAPD" --demo --listen 127.0.0.1:0 --log-level info 2>"$LOG" &
PID=$!
PORT=
for _ in $(seq 100); do
  PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$LOG")
  [ -n "$PORT" ] && break
  sleep 0.05
done
[ -n "$PORT" ] || { echo "FAIL: coapd did not start"; cat "$LOG"; exit 1; }
timeout 120 "$CLIENT" "$PORT"

# Sourced by the coapd_*.sh integration tests (not a test itself).
#
# Starts coapd on 127.0.0.1 with a port the kernel picks (read back from
# coapd's start line, so two tests never race for a port), stops exactly
# that process on exit, and wraps libcoap's coap-client-notls: every call
# is bounded by `timeout`, its payload lands in $T/body (-o adds nothing)
# and its message trace (-v 6: one "v:1 t:ACK c:2.05 ..." line per PDU) in
# $T/trace.

set -euo pipefail

COAPD=${1:?usage: $0 PATH_TO_COAPD}
CLIENT=${COAP_CLIENT:-coap-client-notls}
T=$(mktemp -d)
PID=
PORT=
U=

cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    wait "$PID" 2>/dev/null || true
  fi
  rm -rf "$T"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  if [ -s "$T/trace" ]; then
    echo "--- last client trace:" >&2
    tail -n 20 "$T/trace" >&2
  fi
  if [ -s "$T/coapd.log" ]; then
    echo "--- coapd log:" >&2
    tail -n 30 "$T/coapd.log" >&2
  fi
  exit 1
}

ok() { echo "ok - $*"; }

command -v "$CLIENT" >/dev/null || fail "$CLIENT not installed (libcoap3-bin)"

# start_coapd [ARGS...]: runs coapd --demo on 127.0.0.1:0 plus ARGS, with
# its log in $T/coapd.log and its data in $T/data unless ARGS name a
# --config (which may say where), and sets PID, PORT and U (the base URI).
start_coapd() {
  local dd=(--data-dir "$T/data")
  case " $* " in *" --config "*) dd=() ;; esac
  "$COAPD" --demo --listen 127.0.0.1:0 "${dd[@]}" --log-level debug "$@" \
    2>"$T/coapd.log" &
  PID=$!
  for _ in $(seq 100); do
    PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
      "$T/coapd.log" | head -n 1)
    [ -n "$PORT" ] && break
    kill -0 "$PID" 2>/dev/null || fail "coapd exited at start"
    sleep 0.05
  done
  [ -n "$PORT" ] || fail "coapd did not start"
  U="coap://127.0.0.1:$PORT"
}

# stop_coapd: SIGTERM, and the exit status must be 0.
stop_coapd() {
  kill -TERM "$PID"
  local rc=0
  wait "$PID" || rc=$?
  PID=
  [ "$rc" -eq 0 ] || fail "coapd exited with $rc after SIGTERM"
}

# req [CLIENT ARGS...] URI: one request; never fails by itself. V=7 also
# traces empty messages.
req() {
  rm -f "$T/body"
  timeout 20 "$CLIENT" -B 15 -v "${V:-6}" -o "$T/body" "$@" >"$T/trace" 2>&1 ||
    true
  touch "$T/body"
}

# The response PDUs in the trace (requests carry a method, not c:N.NN).
responses() { grep -a ' c:[1-5]\.[0-9][0-9] ' "$T/trace" || true; }

# expect CODE [TYPE]: the last response has CODE (e.g. 2.05) and, when
# given, message type TYPE (ACK, NON, CON).
expect() {
  local last
  last=$(responses | tail -n 1)
  case "$last" in
  *" c:$1 "*) ;;
  *) fail "expected $1, got: ${last:-no response}" ;;
  esac
  if [ $# -ge 2 ]; then
    case "$last" in
    *" t:$2 "*) ;;
    *) fail "expected a $2 message: $last" ;;
    esac
  fi
}

# has TEXT: the last response shows TEXT (an option, e.g. ETag:0x...).
has() {
  responses | tail -n 1 | grep -aqF -- "$1" ||
    fail "no '$1' in: $(responses | tail -n 1)"
}

# body_is TEXT: the payload is exactly TEXT.
body_is() {
  [ "$(cat "$T/body")" = "$1" ] ||
    fail "payload '$(cat "$T/body")', expected '$1'"
}

# Raw datagrams through bash's /dev/udp on descriptor 3: udp_open makes a
# socket connected to coapd, udp_send HEX sends one datagram, udp_recv N
# prints in hex the first N bytes of the next datagram within a second.
udp_open() { exec 3<>"/dev/udp/127.0.0.1/$PORT"; }
udp_close() { exec 3<&-; }
udp_send() { printf '%b' "$(sed 's/../\\x&/g' <<<"$1")" >&3; }
udp_recv() {
  # One read(2) of a UDP socket is one datagram; dd makes exactly one.
  timeout 1 dd bs=2048 count=1 status=none <&3 | head -c "$1" |
    od -An -tx1 | tr -d ' \n' || true
}

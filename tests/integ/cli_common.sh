# Sourced by the cli_*.sh integration tests (not a test itself).
#
# Runs `coap` with every call bounded by `timeout`, its standard output in
# $T/out, standard error in $T/err and exit status in $RC, and checks
# them; starts the peers the tests talk to on loopback ports the kernel
# or a free-port search picks: coapd --demo (its start line names the
# port) and libcoap's coap-server-notls. Every process started here is
# stopped by its PID on exit.
#
# Usage in a test: COAP=... COAPD=... . cli_common.sh
# With KEEP=1 in the environment the scratch directory $T is kept.

set -u

T=$(mktemp -d)
PIDS=
FAILED=0

cleanup() {
  for p in $PIDS; do
    if kill -0 "$p" 2>/dev/null; then
      kill -TERM "$p" 2>/dev/null
      wait "$p" 2>/dev/null
    fi
  done
  [ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

CHECK=
CHECK_FAILED=0
fail() {
  echo "FAIL: ${CHECK:+$CHECK: }$*"
  CHECK_FAILED=1
  for f in out err; do
    if [ -s "$T/$f" ]; then
      echo "--- std$f:"
      head -c 2000 "$T/$f"
      echo
    fi
  done
  FAILED=1
}
ok() { [ "$CHECK_FAILED" -ne 0 ] || echo "ok - $CHECK"; }

# check NAME: names the checks that follow (for messages).
check() {
  CHECK=$*
  CHECK_FAILED=0
}

# run ARGS...: runs coap; stdin from /dev/null unless STDIN names a file.
run() {
  timeout "${TMO:-20}" "$COAP" "$@" <"${STDIN:-/dev/null}" >"$T/out" \
    2>"$T/err"
  RC=$?
}

rc_is() { [ "$RC" -eq "$1" ] || fail "exit status $RC, expected $1"; }
out_is() {
  [ "$(cat "$T/out")" = "$1" ] ||
    fail "stdout '$(head -c 300 "$T/out")', expected '$1'"
}
out_has() { grep -aqF -- "$1" "$T/out" || fail "stdout lacks '$1'"; }
out_empty() { [ ! -s "$T/out" ] || fail "stdout is not empty"; }
err_empty() { [ ! -s "$T/err" ] || fail "stderr is not empty"; }
err_has() { grep -aqF -- "$1" "$T/err" || fail "stderr lacks '$1'"; }
# err_line TEXT: stderr is exactly one line and contains TEXT.
err_line() {
  [ "$(wc -l <"$T/err")" -eq 1 ] || fail "stderr is not one line"
  err_has "$1"
}

# Finishes a test: its exit status.
finish() {
  if [ "$FAILED" -ne 0 ]; then
    echo "FAILED"
    exit 1
  fi
  echo "PASS"
  exit 0
}

# start_coapd [ARGS...]: coapd --demo on 127.0.0.1:0; sets CPORT and CU.
start_coapd() {
  "$COAPD" --demo --listen 127.0.0.1:0 --log-level debug \
    --data-dir "$T/coapd-data" "$@" 2>"$T/coapd.log" &
  CPID=$!
  PIDS="$PIDS $CPID"
  CPORT=
  for _ in $(seq 100); do
    CPORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
      "$T/coapd.log" | head -n 1)
    [ -n "$CPORT" ] && break
    kill -0 "$CPID" 2>/dev/null || break
    sleep 0.05
  done
  if [ -z "$CPORT" ]; then
    echo "FAIL: coapd did not start"
    cat "$T/coapd.log"
    exit 1
  fi
  CU="coap://127.0.0.1:$CPORT"
}

# Is local port $1 taken, for UDP or TCP? (/proc: no ss needed.)
port_used() {
  hex=$(printf '%04X' "$1")
  awk -v p=":$hex\$" '$2 ~ p { found = 1 } END { exit !found }' \
    /proc/net/udp /proc/net/udp6 /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# start_libcoap [ARGS...]: coap-server-notls on a free port of 127.0.0.1,
# logging every PDU (-v 7) to $T/libcoap.log; sets LPORT and LU. libcoap
# binds UDP with SO_REUSEADDR, so its TCP bind tells whether the port is
# really ours: on a clash, try the next one.
start_libcoap() {
  command -v coap-server-notls >/dev/null || {
    echo "FAIL: coap-server-notls not installed (libcoap3-bin)"
    exit 1
  }
  LPORT=$((40000 + $$ % 10000))
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    while port_used "$LPORT"; do LPORT=$((LPORT + 1)); done
    : >"$T/libcoap.log"
    # stdbuf: each log line reaches the file at once (stdbuf execs the
    # server, so $! is the server's PID).
    stdbuf -oL -eL coap-server-notls -A 127.0.0.1 -p "$LPORT" -v 7 "$@" \
      >>"$T/libcoap.log" 2>&1 &
    LPID=$!
    for _ in $(seq 50); do
      kill -0 "$LPID" 2>/dev/null || break
      if grep -aq "created TCP  *endpoint" "$T/libcoap.log"; then
        PIDS="$PIDS $LPID"
        LU="coap://127.0.0.1:$LPORT"
        return 0
      fi
      grep -aq "cannot create TCP endpoint" "$T/libcoap.log" && break
      sleep 0.1
    done
    kill "$LPID" 2>/dev/null
    wait "$LPID" 2>/dev/null
    LPORT=$((LPORT + 1))
  done
  echo "FAIL: coap-server-notls did not start"
  exit 1
}

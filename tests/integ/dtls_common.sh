# Sourced by the dtls_*.sh integration tests (not a test itself): a
# temporary directory T, the PIDs a test starts (stopped, by PID only,
# on exit), and fail/ok, which show the tail of every log in T.

T=$(mktemp -d)
PIDS=
LSRV=coap-server-gnutls
LCLI=coap-client-gnutls

cleanup() {
  for p in $PIDS; do
    kill "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
  echo "FAIL: $*"
  for f in "$T"/*.log; do
    [ -s "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }
  done
  exit 1
}
ok() { echo "ok - $*"; }

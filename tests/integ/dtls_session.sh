#!/bin/bash
# A client's DTLS session over its life (integ_dtls_client, one client
# for all of it) against integ_dtls_server:
#  1. a GET makes a session; ck_client_disconnect closes it and the next
#     GET resumes it with the server's ticket (RFC 5077): the server
#     counts one resumption;
#  2. ck_client_disconnect with another key: the next GET is refused
#     (CK_EDTLS_PSK), no ticket of the old key resumes anything; back
#     to the right key, it works again;
#  3. the server restarts on the same port and forgets every session:
#     after a clean stop (close_notify) the client starts afresh at once;
#     after SIGKILL its records go unanswered, it starts a new handshake
#     by itself when its GET goes a third time (lib/dtls.c, "retried")
#     and the GET is still answered, within 6 s.
# Every process started here is killed by PID; every wait is bounded.
#
# Usage: dtls_session.sh PATH/TO/integ_dtls_server PATH/TO/integ_dtls_client
set -u
SRV=${1:?usage: $0 DTLS_SERVER DTLS_CLIENT}
CLI=${2:?usage: $0 DTLS_SERVER DTLS_CLIENT}
T=$(mktemp -d)
SPID=
CPID=

cleanup() {
  exec 3>&- 2>/dev/null
  for p in $CPID $SPID; do
    kill "$p" 2>/dev/null
    wait "$p" 2>/dev/null
  done
  rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
  echo "FAIL: $*"
  for f in "$T"/*.log "$T/cout"; do
    [ -s "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }
  done
  exit 1
}
ok() { echo "ok - $*"; }

# start_srv [--port N]: sets SPID and DP
start_srv() {
  : >"$T/ports"
  "$SRV" --psk dev:k1 --hint h1 "$@" >"$T/ports" 2>>"$T/server.log" &
  SPID=$!
  # Up to 30 s: a start under Valgrind (scripts/valgrind) takes seconds.
  for _ in $(seq 300); do [ -s "$T/ports" ] && break; sleep 0.1; done
  read -r DP _ <"$T/ports" || fail "integ_dtls_server did not start"
}

# cmd LINE: sends LINE to the client, waits (up to 30 s) for its answer
# and sets REPLY to it.
N=0
cmd() {
  echo "$1" >&3
  N=$((N + 1))
  for _ in $(seq 300); do
    [ "$(wc -l <"$T/cout")" -ge $N ] && break
    sleep 0.1
  done
  REPLY=$(sed -n "${N}p" "$T/cout")
  [ -n "$REPLY" ] || fail "no answer to '$1'"
}

start_srv
mkfifo "$T/in"
"$CLI" "coaps://127.0.0.1:$DP/whoami" dev k1 <"$T/in" >"$T/cout" \
  2>"$T/client.log" &
CPID=$!
exec 3>"$T/in"

cmd get
[ "$REPLY" = "get 2.05 psk dev" ] || fail "first GET: $REPLY"
cmd peer
[ "$REPLY" = "peer psk h1" ] || fail "the server's hint: $REPLY"
cmd disconnect
cmd get
[ "$REPLY" = "get 2.05 psk dev" ] || fail "GET after disconnect: $REPLY"
ok "a GET, ck_client_disconnect, a GET again"

cmd "rekey wrong"
[ "$REPLY" = "rekey 0" ] || fail "rekey: $REPLY"
cmd get
[ "$REPLY" = "get error EDTLS_PSK" ] || fail "GET with the wrong key: $REPLY"
cmd "rekey k1"
cmd get
[ "$REPLY" = "get 2.05 psk dev" ] || fail "GET with the key back: $REPLY"
ok "new credentials through ck_client_disconnect: refused, then accepted"

kill "$SPID"
wait "$SPID" 2>/dev/null
grep -q "resumed [1-9]" "$T/server.log" ||
  fail "no resumption: $(tail -n 1 "$T/server.log")"
ok "the GET after ck_client_disconnect resumed the session (RFC 5077)"

# A server that stops cleanly says close_notify and the client starts
# afresh at once; one killed with SIGKILL says nothing.
start_srv --port "$DP"
cmd get
[ "$REPLY" = "get 2.05 psk dev" ] || fail "GET to the new server: $REPLY"
{ kill -9 "$SPID" && wait "$SPID"; } 2>/dev/null
start_srv --port "$DP"
[ "$DP" = "$(cut -d' ' -f1 "$T/ports")" ] || fail "the port changed"
start=$(date +%s%N)
cmd get
ms=$((($(date +%s%N) - start) / 1000000))
[ "$REPLY" = "get 2.05 psk dev" ] || fail "GET after the server restarted: $REPLY"
# The third sending of the GET (1.5 s with ACK_TIMEOUT 500 ms) starts
# the new handshake; records unanswered for 5 s alone would take 7.5 s.
[ "$ms" -lt 6000 ] || fail "the new handshake came only after $ms ms"
ok "a restarted server: a new handshake by itself, answered in $ms ms"
echo quit >&3
echo "all ok"

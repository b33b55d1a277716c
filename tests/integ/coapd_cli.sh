#!/usr/bin/env bash
# coapd's command line and configuration file: --help and --version,
# one-line errors with exit status 2 for unknown options, bad values and
# bad file lines (naming FILE:LINE), settings from a file with the command
# line overriding them, and a clean exit 0 on SIGTERM and SIGINT with the
# shutdown line; --listen with a host name (resolved at start, every
# address listened on); --data-dir and data_dir (made 0700 at start, an
# unusable path a one-line error naming it).
# Usage: coapd_cli.sh PATH_TO_COAPD
. "$(dirname "$0")/coapd_common.sh"

# usage_error PATTERN ARGS...: exit 2, one line on stderr matching PATTERN,
# nothing on stdout.
usage_error() {
  local pat=$1 rc=0
  shift
  timeout 10 "$COAPD" "$@" >"$T/out" 2>"$T/err" || rc=$?
  [ "$rc" -eq 2 ] || fail "coapd $*: exit $rc, expected 2"
  [ "$(wc -l <"$T/err")" -eq 1 ] || fail "coapd $*: stderr: $(cat "$T/err")"
  grep -q -- "$pat" "$T/err" || fail "coapd $*: '$(cat "$T/err")' lacks $pat"
  [ ! -s "$T/out" ] || fail "coapd $*: wrote to stdout"
  ok "coapd $* -> exit 2: $(cat "$T/err")"
}

timeout 10 "$COAPD" --help >"$T/out" || fail "--help failed"
for o in --config --listen --data-dir --multicast --demo --log-level \
  --version ack_timeout_ms max_body max_observers default_leisure_ms; do
  grep -q -- "$o" "$T/out" || fail "--help does not mention $o"
done
ok "--help"
timeout 10 "$COAPD" --version | grep -q '^coapd [0-9]' || fail "--version"
ok "--version"

usage_error "'--bogus'" --bogus
usage_error "--dtls-listen: no DTLS credentials" --dtls-listen 127.0.0.1:5684 \
  --data-dir "$T/nodtls"
usage_error "--workers: '65' is not a whole number from 1 to 64" --workers 65
usage_error "--workers: '0' is not a whole number from 1 to 64" --workers 0
usage_error "'frobnicate'" frobnicate list
usage_error "'--listen' needs a value" --listen
usage_error "--listen: 'nowhere'" --listen nowhere
usage_error "--listen: '1.2.3.4:99999'" --listen 1.2.3.4:99999
usage_error "--listen: 'nowhere.invalid:5683': cannot resolve the host" \
  --listen nowhere.invalid:5683
usage_error "--listen: 'localhost:99999'" --listen localhost:99999
usage_error "--listen: 'local_host'" --listen local_host
usage_error "--data-dir: the directory's path is empty" --data-dir ''
usage_error "'--data-dir' needs a value" --data-dir
usage_error "--log-level: 'loud'" --log-level loud
usage_error "'--demo' takes no value" --demo=yes
usage_error "$T/missing" --config "$T/missing"

cfg="$T/coapd.conf"
printf '# a comment\n\nlisten = 127.0.0.1:0\nbogus_key = 1\n' >"$cfg"
usage_error "$cfg:4: unknown key 'bogus_key'" --config "$cfg"
printf 'ack_timeout_ms = 1000\nmax_retransmit = many\n' >"$cfg"
usage_error "$cfg:2: max_retransmit: 'many'" --config "$cfg"
printf 'demo = true\nack_random_factor = 0.5\n' >"$cfg"
usage_error "$cfg:2: ack_random_factor" --config "$cfg"
printf 'max_body = -5\n' >"$cfg"
usage_error "$cfg:1: max_body" --config "$cfg"
printf 'demo = maybe\n' >"$cfg"
usage_error "$cfg:1: demo: 'maybe'" --config "$cfg"
printf '\n\nlisten 127.0.0.1:5683\n' >"$cfg"
usage_error "$cfg:3: expected 'key = value'" --config "$cfg"
printf 'log_level = chatty\n' >"$cfg"
usage_error "$cfg:1: log_level" --config "$cfg"
printf 'data_dir =\n' >"$cfg"
usage_error "$cfg:1: data_dir: the directory's path is empty" --config "$cfg"
printf 'listen = nowhere.invalid\n' >"$cfg"
usage_error "$cfg:1: listen: 'nowhere.invalid': cannot resolve" --config "$cfg"

# A good file: settings apply; the command line overrides the file.
cat >"$cfg" <<CONF
# coapd test configuration
listen = 127.0.0.2:1      # replaced by --listen below
data_dir = $T/data-from-file
log_level = error
multicast = false
ack_timeout_ms = 1500
ack_random_factor = 1.25
max_retransmit = 3
nstart = 1
default_leisure_ms = 1000
max_latency_ms = 50000
processing_delay_ms = 1500
dedup_entries = 1024
remember_idempotent = yes
max_body = 65536
max_uploads = 8
max_observers = 10
separate_delay_ms = 50
rcvbuf = 262144
sndbuf = 262144
CONF
start_coapd --config "$cfg"
req "$U/hello"; expect 2.05 ACK; body_is "Hello, world!"
grep -q 'GET /hello from 127.0.0.1' "$T/coapd.log" || fail "no debug line"
# max_body = 65536 from the file: a larger upload gets 4.13.
head -c 70000 /dev/zero >"$T/big"
req -m put -b 1024 -f "$T/big" "$U/large-update"; expect 4.13 ACK
# remember_idempotent = yes: a duplicate GET is answered from the cache.
udp_open
udp_send 4101616101b568656c6c6f
a1=$(udp_recv 64)
udp_send 4101616101b568656c6c6f
a2=$(udp_recv 64)
udp_close
[ -n "$a1" ] && [ "$a1" = "$a2" ] || fail "duplicate GET: '$a1' / '$a2'"
stop_coapd
grep -q 'stopped by SIGTERM: .* duplicates 1 ' "$T/coapd.log" ||
  fail "the duplicate GET was not answered from the cache"
[ "$(grep -c 'info: stopped' "$T/coapd.log")" -eq 1 ] &&
  grep -q 'info: stopped by SIGTERM: rx [1-9][0-9]* tx [1-9][0-9]* malf' \
    "$T/coapd.log" || fail "no shutdown line with counters"
[ "$(stat -c %a "$T/data-from-file")" = 700 ] ||
  fail "data_dir from the file not made 0700"
ok "settings from a file, --listen and --log-level override it"
ok "SIGTERM -> exit 0 with the shutdown line"

# The file alone decides when the command line is silent: at log_level
# error nothing is logged. (It reuses the port of the coapd just stopped;
# a request tells when it serves, since there is no start line to read.)
printf 'listen = 127.0.0.1:%s\nlog_level = error\ndemo = on\ndata_dir = %s\n' \
  "$PORT" "$T/data" >"$cfg"
"$COAPD" --config "$cfg" 2>"$T/coapd.log" &
PID=$!
for _ in $(seq 20); do
  rm -f "$T/body"
  timeout 5 "$CLIENT" -B 1 -o "$T/body" "$U/hello" >/dev/null 2>&1 || true
  [ "$(cat "$T/body" 2>/dev/null)" = "Hello, world!" ] && break
  kill -0 "$PID" 2>/dev/null || fail "coapd from file exited"
  sleep 0.1
done
body_is "Hello, world!"
kill -INT "$PID"
rc=0
wait "$PID" || rc=$?
PID=
[ "$rc" -eq 0 ] || fail "exit $rc after SIGINT"
[ ! -s "$T/coapd.log" ] ||
  fail "log_level = error still logs: $(cat "$T/coapd.log")"
ok "SIGINT -> exit 0; listen, demo and log_level from the file"

# An address this host does not have: exit 1 with an error line. (A busy
# port would not do: the library sets SO_REUSEADDR, with which Linux lets
# a second UDP socket bind the same address and port.)
rc=0
timeout 10 "$COAPD" --listen 192.0.2.1:5683 --data-dir "$T/data" 2>"$T/err" ||
  rc=$?
[ "$rc" -eq 1 ] || fail "unusable address: exit $rc"
grep -q "error: cannot listen on 192.0.2.1:5683" "$T/err" ||
  fail "unusable address: $(cat "$T/err")"
ok "unusable address -> exit 1: $(sed 's/.*error: //' "$T/err")"

# IPv6 loopback beside IPv4, when the host has ::1.
if grep -qs '^00000000000000000000000000000001 ' /proc/net/if_inet6; then
  "$COAPD" --demo --listen '[::1]:0' --listen 127.0.0.1:0 \
    --data-dir "$T/data" 2>"$T/coapd.log" &
  PID=$!
  for _ in $(seq 100); do
    grep -q 'listening on' "$T/coapd.log" && break
    sleep 0.05
  done
  p6=$(sed -n 's/.*listening on \[::1\]:\([0-9]*\) 127.*/\1/p' "$T/coapd.log")
  p4=$(sed -n 's/.*listening on .* 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
    "$T/coapd.log")
  [ -n "$p6" ] && [ -n "$p4" ] || fail "start line: $(cat "$T/coapd.log")"
  req "coap://[::1]:$p6/hello"; expect 2.05 ACK; body_is "Hello, world!"
  req "coap://127.0.0.1:$p4/hello"; expect 2.05 ACK
  stop_coapd
  ok "--listen [::1]:0 --listen 127.0.0.1:0"
else
  ok "# skip IPv6: no ::1 on this host"
fi

# A host name: resolved at start, and coapd listens on every address it
# has (localhost: 127.0.0.1, and ::1 where the hosts file says so).
start_coapd_named() {
  "$COAPD" --demo --listen "$1" --log-level debug --data-dir "$2" \
    2>"$T/coapd.log" &
  PID=$!
  for _ in $(seq 100); do
    grep -q 'listening on' "$T/coapd.log" && break
    kill -0 "$PID" 2>/dev/null || fail "coapd exited: $(cat "$T/coapd.log")"
    sleep 0.05
  done
  PORT=$(sed -n 's/.*listening on .*127\.0\.0\.1:\([0-9]*\).*/\1/p' \
    "$T/coapd.log")
  [ -n "$PORT" ] || fail "start line: $(cat "$T/coapd.log")"
  U="coap://127.0.0.1:$PORT"
}
start_coapd_named localhost:0 "$T/named-data"
req "$U/hello"; expect 2.05 ACK; body_is "Hello, world!"
if getent ahosts localhost | grep -q '^::1 '; then
  grep -q 'listening on .*\[::1\]:[0-9]' "$T/coapd.log" ||
    fail "localhost has ::1 but coapd does not listen there"
fi
ok "--listen localhost:0 -> $(sed -n 's/.*listening on \([^,]*\).*/\1/p' \
  "$T/coapd.log")"

# --data-dir: made at start with mode 0700; an existing one is kept.
[ -d "$T/named-data" ] || fail "--data-dir not created"
[ "$(stat -c %a "$T/named-data")" = 700 ] ||
  fail "--data-dir mode $(stat -c %a "$T/named-data")"
grep -q "debug: data directory $T/named-data" "$T/coapd.log" ||
  fail "no data directory line"
stop_coapd
start_coapd --data-dir "$T/named-data"
stop_coapd
ok "--data-dir made 0700, and an existing one reused"

# A data directory that cannot be made: one line naming it, exit 1 (the
# command line is fine; serving fails, as for an address the host lacks).
data_dir_error() {
  local pat=$1 rc=0
  shift
  timeout 10 "$COAPD" --listen 127.0.0.1:0 "$@" >"$T/out" 2>"$T/err" ||
    rc=$?
  [ "$rc" -eq 1 ] || fail "coapd $*: exit $rc, expected 1"
  [ "$(wc -l <"$T/err")" -eq 1 ] || fail "coapd $*: stderr: $(cat "$T/err")"
  grep -qF -- "$pat" "$T/err" || fail "coapd $*: '$(cat "$T/err")' lacks $pat"
  ok "coapd $* -> exit 1: $(sed 's/.*error: //' "$T/err")"
}
data_dir_error "cannot create the data directory '$T/no/such'" \
  --data-dir "$T/no/such"
: >"$T/a-file"
data_dir_error "data directory '$T/a-file': not a directory" \
  --data-dir "$T/a-file"

#!/usr/bin/env bash
# The pub/sub gateway against libcoap's coap-client, with the command
# lines of EMQX's CoAP gateway documentation (only the port and the
# observe duration changed), and against our own `coap`:
# connectionless publish and observe-subscribe, retained messages,
# unsubscribe, bad input answered 4.00 with a reason, connection mode
# (create, heartbeat, close, missing and wrong tokens, heartbeat expiry),
# users and ACLs added while coapd runs, and retained messages and users
# surviving kill -9. Then the raw-socket peers of pubsub_peers.c.
# Usage: coapd_pubsub.sh PATH_TO_COAPD PATH_TO_PUBSUB_PEERS [PATH_TO_COAP]
. "$(dirname "$0")/coapd_common.sh"
PEERS=${2:?usage: $0 COAPD PUBSUB_PEERS}
COAP=${3:-$(dirname "$COAPD")/../cli/coap}

# sub_start NAME ARGS...: a coap-client subscriber in the background,
# payloads to $T/NAME.out; sub_wait NAME: waits for it to finish.
declare -A SUBS
sub_start() {
  local name=$1
  shift
  timeout 30 "$CLIENT" "$@" >"$T/$name.out" 2>"$T/$name.err" &
  SUBS[$name]=$!
  sleep 0.5 # the registration reaches coapd
}
sub_wait() { wait "${SUBS[$1]}" || true; }

# crash_restart [ARGS...]: kill -9, then a new coapd on the same data.
crash_restart() {
  kill -9 "$PID"
  wait "$PID" 2>/dev/null || true
  PID=
  : >"$T/coapd.log"
  start_coapd "$@"
}

start_coapd

# --- connectionless mode (EMQX: "Message Publish", "Topic Subscribe") ---
sub_start s1 -m get -s 4 -O 6,0x00 -o - -T "obstoken" "$U/ps/coap/test"
req -m post -e "Hi, this is libcoap" "$U/ps/coap/test"
expect 2.04
req -m post -e "second" "$U/ps/coap/test"
expect 2.04
sub_wait s1
# coap-client -o - writes the payloads one after the other.
out=$(cat "$T/s1.out")
[[ $out == *"Hi, this is libcoap"*second* ]] ||
  fail "subscriber got '$out', expected both messages in order"
ok "EMQX's publish and observe-subscribe command lines, in order"

# Retained: the message is first to a new subscriber; the legacy mqtt/
# prefix is the same namespace.
req -m post -e "kept" "$U/ps/coap/ret?retain=true"
expect 2.04
sub_start s2 -m get -s 2 -O 6,0x00 -o - -T "tok2" "$U/mqtt/coap/ret"
sub_wait s2
grep -q kept "$T/s2.out" || fail "no retained message on subscribe"
req -m get "$U/ps/coap/ret"
expect 2.05
body_is kept
ok "retained message first on subscribe (through mqtt/), and on a plain GET"

# Wildcards, and our own client with a Content-Format.
timeout 20 "$COAP" observe -s 3 "$U/ps/coap/%2B/w" >"$T/w.out" 2>&1 &
w=$!
sleep 0.5
"$COAP" post -t json -e '{"t":21}' "$U/ps/coap/x/w" >/dev/null ||
  fail "coap post failed"
wait "$w" || true
grep -q '{"t":21}' "$T/w.out" || fail "wildcard subscriber: $(cat "$T/w.out")"
ok "coap observe of a '+' filter hears coap post"

# Unsubscribe with Observe=1 answers 2.05 (not EMQX's 2.07).
req -m get -O 6,0x01 -T obstoken "$U/ps/coap/test"
expect 2.05
ok "unsubscribe with Observe=1: 2.05"

# Bad input: 4.00 with a reason, and coapd carries on.
for bad in "ps/" "ps/a/%23" "ps/a/b?qos=3" "ps/a/b?retain=maybe" \
  "ps/a/b?expiry=soon"; do
  req -m post -e x "$U/$bad"
  expect 4.00
  # coap-client prints an error answer's payload in the trace only.
  responses | tail -n 1 | grep -q " :: '..*'" ||
    fail "4.00 without a reason for $bad"
done
head -c 2000 /dev/zero | tr '\0' x >"$T/big"
req -m post -f "$T/big" "$U/ps/a/big"
expect 4.00
has "payload over 1024 bytes"
# Observe without a token (coap-client always sends one): CON GET
# ps/a, Observe=0, MID 0x1234, TKL 0; the ACK must be 4.00.
udp_open
udp_send 40011234605270730161 # header, Observe=0, Uri-Path ps, Uri-Path a
[ "$(udp_recv 4)" = 60801234 ] || fail "observe without a token: not 4.00"
udp_close
req -m get -e "" "$U/hello"
expect 2.05
ok "bad input answered 4.00 with reasons; the demo resources still answer"

# --- users and ACLs, added while coapd runs ---
"$COAPD" user add alice --password s3cret --allow-pub 'coap/#' \
  --allow-sub 'coap/#' --data-dir "$T/data" >/dev/null ||
  fail "coapd user add failed"
for _ in $(seq 30); do
  req -m post -e x "$U/ps/coap/a"
  responses | tail -n 1 | grep -q ' c:4.01 ' && break
  sleep 0.1
done
expect 4.01
req -m post -e x "$U/ps/coap/a?username=alice&password=wrong"
expect 4.01
req -m post -e x "$U/ps/coap/a?u=alice&p=s3cret"
expect 2.04
req -m post -e x "$U/ps/other/a?u=alice&p=s3cret"
expect 4.03
ok "a user added while running: anonymous 4.01, wrong password 4.01, ACL 4.03"

# --- kill -9: retained messages and users survive ---
req -m post -e "survives" "$U/ps/coap/k9?retain=true&u=alice&p=s3cret"
expect 2.04
crash_restart
req -m get "$U/ps/coap/k9?u=alice&p=s3cret"
expect 2.05
body_is survives
req -m post -e x "$U/ps/coap/a"
expect 4.01
ok "after kill -9: the retained message and the user are still there"
"$COAPD" user remove alice --data-dir "$T/data" >/dev/null ||
  fail "coapd user remove failed"
stop_coapd

# --- connection mode (EMQX: "Create Connection", "Heartbeat", ...) ---
: >"$T/coapd.log"
start_coapd --connection-required --heartbeat 2
req -m post -e "" "$U/mqtt/connection?clientid=123&username=admin&password=public"
expect 2.01
TOKEN=$(cat "$T/body")
[ -n "$TOKEN" ] || fail "no token"
req -m post -e "Hi, this is libcoap" "$U/ps/coap/test&clientid=123&token=$TOKEN"
expect 2.04
req -m post -e x "$U/ps/coap/test?clientid=123&token=$TOKEN"
expect 2.04
req -m post -e x "$U/ps/coap/test"
expect 4.00
req -m post -e x "$U/ps/coap/test?clientid=123&token=nope"
expect 4.01
req -m put -e "" "$U/mqtt/connection?clientid=123&token=$TOKEN"
expect 2.04
req -m delete -e "" "$U/mqtt/connection?clientid=123&token=$TOKEN"
expect 2.02
req -m post -e x "$U/ps/coap/test?clientid=123&token=$TOKEN"
expect 4.01
ok "connection mode: create 2.01, publish, 4.00/4.01, heartbeat, close"

req -m post -e "" "$U/mqtt/connection?clientid=hb"
expect 2.01
TOKEN=$(cat "$T/body")
sleep 3.5 # no heartbeat for more than 1.5 intervals of 2 s
req -m put -e "" "$U/mqtt/connection?clientid=hb&token=$TOKEN"
expect 4.01
ok "a session without heartbeat is removed"

# A session outlives kill -9: its token still works after the restart.
req -m post -e "" "$U/mqtt/connection?clientid=k9"
expect 2.01
TOKEN=$(cat "$T/body")
crash_restart --connection-required --heartbeat 2
req -m put -e "" "$U/mqtt/connection?clientid=k9&token=$TOKEN"
expect 2.04
ok "a connection-mode session survives kill -9"
stop_coapd

# --- peers that misbehave on purpose, and the counters they leave ---
: >"$T/coapd.log"
start_coapd --metrics-listen 127.0.0.1:0
timeout 60 "$PEERS" "$PORT" || fail "pubsub_peers failed"
"$COAPD" stats --data-dir "$T/data" >"$T/metrics" || fail "coapd stats failed"
metric() {
  sed -n "s/^$1 //p" "$T/metrics" | head -n 1
}
[ "$(metric 'coapd_pubsub_observations_ended_total{reason="reset"}')" -ge 1 ] ||
  fail "no reset counted: $(grep ended "$T/metrics")"
# The slow subscriber's queue (100) overflowed during 300 publishes.
[ "$(metric coapd_pubsub_queue_drops_total)" -ge 100 ] ||
  fail "queue drops: $(metric coapd_pubsub_queue_drops_total)"
[ "$(metric coapd_pubsub_published_total)" -ge 300 ] ||
  fail "published: $(metric coapd_pubsub_published_total)"
[ "$(metric coapd_pubsub_sessions)" -ge 1 ] || fail "no session counted"
ok "coapd stats: resets, queue drops, publishes and sessions counted"
stop_coapd

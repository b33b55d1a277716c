#!/usr/bin/env bash
# The MQTT bus (coapd/bus_mqtt.c) against a real Mosquitto broker that
# this test starts on a free loopback port, with two coapd instances A
# and B on it (--bus mqtt://...):
# 1. what libcoap's coap-client POSTs to A reaches a CoAP observer on B
#    and mosquitto_sub, with its Content-Format (user property coap-cf);
#    mosquitto_pub reaches the observer; a retained message reaches late
#    subscribers on B, a second subscriber to the same filter too, while
#    the first does not see it twice; overlapping filters on B each get a
#    message once.
# 2. broker outage: CON publishes (qos=1) at 20/s to A while Mosquitto is
#    stopped for 2 s and restarted on the same port; every publish is
#    answered, and each one answered 2.04 reaches a persistent
#    mosquitto_sub session; C, with a buffer of 5, answers 5.03 beyond it
#    and counts the refusals (bus_refused_total).
# Usage: coapd_mqtt.sh PATH_TO_COAPD
. "$(dirname "$0")/coapd_common.sh"

command -v mosquitto >/dev/null || fail "mosquitto not installed"
command -v mosquitto_sub >/dev/null || fail "mosquitto-clients not installed"

EXTRA_PIDS=
MQ_PID=
cleanup_mqtt() {
  for p in $EXTRA_PIDS $MQ_PID; do kill "$p" 2>/dev/null || true; done
  for p in $EXTRA_PIDS $MQ_PID; do wait "$p" 2>/dev/null || true; done
  cleanup
}
trap cleanup_mqtt EXIT

# A TCP port nobody listens on, from $1 up.
free_tcp() {
  local p=$1
  while awk -v h=":$(printf '%04X' "$p")\$" '$2 ~ h { f = 1 } END { exit !f }' \
    /proc/net/tcp /proc/net/tcp6 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}
MQ_PORT=$(free_tcp $((32000 + $$ % 2000)))
mkdir -p "$T/mq"
cat >"$T/mq/mosquitto.conf" <<EOF
listener $MQ_PORT 127.0.0.1
allow_anonymous true
persistence true
persistence_location $T/mq/
user $(id -un)
log_dest stderr
log_type error
log_type warning
EOF

# mq_start: the broker, up and listening within 5 s.
mq_start() {
  mosquitto -c "$T/mq/mosquitto.conf" 2>>"$T/mq/log" &
  MQ_PID=$!
  for _ in $(seq 50); do
    mosquitto_pub -p "$MQ_PORT" -t probe -n 2>/dev/null && return 0
    kill -0 "$MQ_PID" 2>/dev/null || fail "mosquitto exited: $(cat "$T/mq/log")"
    sleep 0.1
  done
  fail "mosquitto does not listen on $MQ_PORT"
}
mq_stop() {
  kill -TERM "$MQ_PID"
  wait "$MQ_PID" 2>/dev/null || true
  MQ_PID=
}
mq_start
BUS="mqtt://127.0.0.1:$MQ_PORT"

# start_named NAME ARGS...: a coapd like start_coapd, its log in
# $T/NAME.log, its base URI in U_NAME, its PID in PID_NAME; waits until
# it is connected to the broker.
start_named() {
  local name=$1
  shift
  mkdir -p "$T/$name"
  "$COAPD" --listen 127.0.0.1:0 --data-dir "$T/$name" --log-level debug \
    --bus "$BUS" "$@" 2>"$T/$name.log" &
  local pid=$! port=
  EXTRA_PIDS="$EXTRA_PIDS $pid"
  for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
      "$T/$name.log" | head -n 1)
    [ -n "$port" ] && grep -q "connected to the broker" "$T/$name.log" && break
    kill -0 "$pid" 2>/dev/null || fail "coapd $name exited: $(cat "$T/$name.log")"
    sleep 0.05
  done
  grep -q "connected to the broker" "$T/$name.log" ||
    fail "coapd $name did not connect: $(cat "$T/$name.log")"
  printf -v "U_$name" 'coap://127.0.0.1:%s' "$port"
  printf -v "PID_$name" '%s' "$pid"
}
start_named A
start_named B

# obs NAME SECONDS URI: a coap-client observer in the background; its
# payloads in $T/NAME.out, its trace in $T/NAME.trace.
declare -A OBS
obs() {
  timeout $(($2 + 10)) "$CLIENT" -m get -s "$2" -O 6,0x00 -T "$1" -v 6 \
    -o "$T/$1.out" "$3" >"$T/$1.trace" 2>&1 &
  OBS[$1]=$!
  sleep 0.5 # the subscription reaches the broker
}
obs_wait() { wait "${OBS[$1]}" || true; touch "$T/$1.out"; }
# count NAME TEXT: how often TEXT is in NAME's payloads.
count() { grep -o -- "$2" "$T/$1.out" | wc -l; }

# --- 1. two instances on one broker ---
timeout 10 mosquitto_sub -p "$MQ_PORT" -V 5 -t 'sc/#' -F '%t %p %P' -C 2 \
  >"$T/msub.out" 2>&1 &
MSUB=$!
obs o1 5 "$U_B/ps/sc/t"
req -m post -t 50 -e '{"from":"A"}' "$U_A/ps/sc/t"
expect 2.04
mosquitto_pub -p "$MQ_PORT" -t sc/t -m from-mqtt
obs_wait o1
[ "$(count o1 '{"from":"A"}')" = 1 ] ||
  fail "observer on B: '$(cat "$T/o1.out")', expected A's message once"
[ "$(count o1 from-mqtt)" = 1 ] ||
  fail "observer on B: '$(cat "$T/o1.out")', expected mosquitto_pub's"
grep -a "c:2.05 " "$T/o1.trace" | grep -a '{"from":"A"}' |
  grep -aq "Content-Format:application/json" ||
  fail "no Content-Format on B's notification: $(cat "$T/o1.trace")"
wait "$MSUB" || true
grep -q '^sc/t {"from":"A"} coap-cf:50$' "$T/msub.out" ||
  fail "mosquitto_sub: '$(cat "$T/msub.out")'"
ok "A -> broker -> observer on B and mosquitto_sub, Content-Format kept"
ok "mosquitto_pub -> observer on B"

# Retained through the broker; a second subscriber to the same filter on
# B gets it too, the first does not get it twice; overlapping filters
# each get a live message once.
req -m post -t 0 -e R1 "$U_A/ps/r/x?retain=true"
expect 2.04
obs r1 6 "$U_B/ps/r/x"
obs r2 5 "$U_B/ps/r/x"
obs r3 4 "$U_B/ps/r/%2B"
req -m post -e L1 "$U_A/ps/r/x"
expect 2.04
obs_wait r1
obs_wait r2
obs_wait r3
[ "$(count r1 R1)" = 1 ] && [ "$(count r1 L1)" = 1 ] ||
  fail "first subscriber: '$(cat "$T/r1.out")', expected R1 and L1 once"
[ "$(count r2 R1)" = 1 ] && [ "$(count r2 L1)" = 1 ] ||
  fail "second subscriber: '$(cat "$T/r2.out")', expected R1 and L1 once"
[ "$(count r3 R1)" = 1 ] && [ "$(count r3 L1)" = 1 ] ||
  fail "wildcard subscriber: '$(cat "$T/r3.out")', expected R1 and L1 once"
grep -a "c:2.05 " "$T/r1.trace" | grep -a "'R1'" |
  grep -aq "Content-Format:text/plain" ||
  fail "retained message without its Content-Format: $(cat "$T/r1.trace")"
ok "retained via the broker to late subscribers on B, each message once"

# --- 2. broker outage ---
# A persistent session (clean session off, QoS 1) that the broker keeps
# across its restart (persistence true); mosquitto_sub reconnects.
timeout 40 mosquitto_sub -p "$MQ_PORT" -c -i coapd-test-rec -q 1 \
  -t 'out/#' -v >"$T/rec.out" 2>"$T/rec.err" &
REC=$!
EXTRA_PIDS="$EXTRA_PIDS $REC"
sleep 0.3
cat >"$T/c.conf" <<EOF
mqtt_max_buffered = 5
EOF
start_named C --config "$T/c.conf" --metrics-listen 127.0.0.1:0

N=80
declare -a PUBS
for i in $(seq $N); do
  timeout 40 "$CLIENT" -B 30 -v 6 -m post -e "m$i" "$U_A/ps/out/t?qos=1" \
    >"$T/p$i.trace" 2>&1 &
  PUBS[$i]=$!
  if [ "$i" = 20 ]; then
    mq_stop
    # While the broker is away: C holds 5 and refuses the rest at once.
    for k in $(seq 10); do
      timeout 40 "$CLIENT" -B 30 -v 6 -m post -e "c$k" \
        "$U_C/ps/out/c?qos=1" >"$T/c$k.trace" 2>&1 &
      PUBS[$((N + k))]=$!
      sleep 0.05
    done
  fi
  [ "$i" = 45 ] && mq_start
  sleep 0.05
done
for p in "${PUBS[@]}"; do wait "$p" || true; done

acked=0 refused=0
for i in $(seq $N); do
  if grep -aq " c:2.04 " "$T/p$i.trace"; then
    acked=$((acked + 1))
  elif grep -aq " c:5.03 " "$T/p$i.trace"; then
    refused=$((refused + 1))
  else
    fail "publish m$i got no answer: $(tail -n 3 "$T/p$i.trace")"
  fi
done
c_acked=0 c_refused=0
for k in $(seq 10); do
  if grep -aq " c:2.04 " "$T/c$k.trace"; then
    c_acked=$((c_acked + 1))
  elif grep -aq " c:5.03 " "$T/c$k.trace"; then
    grep -aq "Max-Age" "$T/c$k.trace" || fail "5.03 without Max-Age"
    c_refused=$((c_refused + 1))
  else
    fail "publish c$k got no answer: $(tail -n 3 "$T/c$k.trace")"
  fi
done
# The recorder reconnects and gets what its session kept.
for i in $(seq $N); do
  grep -aq " c:2.04 " "$T/p$i.trace" && echo "out/t m$i"
done >"$T/acked"
for k in $(seq 10); do
  grep -aq " c:2.04 " "$T/c$k.trace" && echo "out/c c$k"
done >>"$T/acked"
sort -u "$T/acked" -o "$T/acked"
for _ in $(seq 50); do
  sort -u "$T/rec.out" >"$T/got"
  lost=$(comm -23 "$T/acked" "$T/got" | wc -l)
  [ "$lost" = 0 ] && break
  sleep 0.2
done
[ "$lost" = 0 ] ||
  fail "$lost publishes answered 2.04 never reached the broker: $(comm -23 "$T/acked" "$T/got" | head -n 5 | tr '\n' ' ')"
[ "$c_acked" = 5 ] && [ "$c_refused" = 5 ] ||
  fail "C (buffer of 5): $c_acked answered 2.04, $c_refused 5.03; expected 5 and 5"
metrics=$("$COAPD" stats --data-dir "$T/C") || fail "coapd stats on C failed"
grep -q '^coapd_bus_refused_total 5$' <<<"$metrics" ||
  grep -q 'bus_refused_total 5$' <<<"$metrics" ||
  fail "refusals not counted: $(grep bus_ <<<"$metrics")"
grep -q 'bus_connected 1$' <<<"$metrics" || fail "C not connected again"
grep -q 'bus_reconnects_total 1$' <<<"$metrics" || fail "no reconnect counted"
grep -q "connected to the broker 127.0.0.1:$MQ_PORT again" "$T/A.log" ||
  fail "A did not reconnect: $(tail -n 5 "$T/A.log")"
ok "outage: A $acked x 2.04 (all at the broker), $refused x 5.03; C 5 held and acked, 5 refused with 5.03 + Max-Age, counted"
echo "# outage: $N publishes to A: $acked acked, $refused refused"

# A plain GET on B of the topic A retained: B waits for the broker.
req -m get "$U_B/ps/r/x"
expect 2.05
body_is R1
req -m get "$U_B/ps/r/nothing-here"
expect 4.04
ok "a plain GET through the broker: the retained message, or 4.04"

# --- 3. devices across instances (Drogue's contract on a shared broker) ---
# The same device is registered with A and B (each has its own data
# directory); coapd sees the registry change within a second.
for name in A B; do
  "$COAPD" device add example-app device1 --password hey-rodney \
    --data-dir "$T/$name" >/dev/null || fail "device add on $name"
done
sleep 1.2
AUTH="Basic ZGV2aWNlMUBleGFtcGxlLWFwcDpoZXktcm9kbmV5"
timeout 10 mosquitto_sub -p "$MQ_PORT" -V 5 -t 'app/#' -C 1 -F '%t %p' \
  >"$T/evsub.out" 2>&1 &
EVSUB=$!
obs ev 4 "$U_B/ps/app/example-app/device1/foo"
req -m post "$U_A/v1/foo" -O 4209,"$AUTH" -t 50 -e '{"temp":42}'
expect 2.04
obs_wait ev
wait "$EVSUB" || true
grep -q '^app/example-app/device1/foo {.*"data":{"temp":42}' "$T/evsub.out" ||
  fail "mosquitto_sub did not get the CloudEvent: $(cat "$T/evsub.out")"
grep -q '"subject":"foo"' "$T/evsub.out" || fail "event: $(cat "$T/evsub.out")"
[ "$(count ev '"data":{"temp":42}')" = 1 ] ||
  fail "observer on B: '$(cat "$T/ev.out")'"
ok "telemetry to A: its CloudEvent at mosquitto_sub and at an observer on B"

# A device waits on B (ct=4); mosquitto_pub sends it a command.
timeout 20 "$CLIENT" -B 15 -v 6 -o "$T/cmd.body" -m post \
  "$U_B/v1/foo?ct=4" -O 4209,"$AUTH" -e x >"$T/cmd.trace" 2>&1 &
waiter=$!
sleep 0.7
mosquitto_pub -p "$MQ_PORT" -t command/example-app/device1/reboot \
  -m reboot-now || fail "mosquitto_pub of the command failed"
wait "$waiter" || true
last=$(grep -a ' c:[1-5]\.[0-9][0-9] ' "$T/cmd.trace" | tail -n 1)
[[ $last == *" c:2.05 "* ]] || fail "waiting device on B got: $last"
[ "$(cat "$T/cmd.body")" = reboot-now ] ||
  fail "command payload '$(cat "$T/cmd.body")'"
ok "mosquitto_pub's command reaches the device waiting on B: 2.05"

# Each instance stops cleanly on SIGTERM (under the sanitizers: no leak).
for name in A B C; do
  pid_var="PID_$name"
  kill -TERM "${!pid_var}"
  rc=0
  wait "${!pid_var}" || rc=$?
  [ "$rc" = 0 ] || fail "coapd $name exited with $rc: $(tail -n 20 "$T/$name.log")"
done
ok "A, B and C stop cleanly on SIGTERM"

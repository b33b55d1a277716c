#!/usr/bin/env bash
# The device endpoint (Drogue Cloud's CoAP contract) against libcoap's
# coap-client as the device, with the command lines of Drogue's
# documentation (only host and port changed), and devices added with
# `coapd device add`: telemetry accepted 2.04 and its CloudEvent heard by
# an observer of ps/app/...; a wrong password 4.03; as= with and without
# --gateway-for; a JSON content format with a body that is not JSON
# 4.06; ct=2 with a command POSTed to ps/command/... in the window (2.05,
# option 4210, the payload) and ct=1 without one (2.04 after a second);
# every Uri-Query option read; bad requests 4.00 and other methods 4.05;
# the counters in the shutdown line.
# Usage: coapd_device.sh PATH_TO_COAPD
. "$(dirname "$0")/coapd_common.sh"

# Drogue's example credentials: "device1@example-app:hey-rodney".
AUTH="Basic ZGV2aWNlMUBleGFtcGxlLWFwcDpoZXktcm9kbmV5"
b64() { printf '%s' "$1" | base64 -w0; }

dev_add() {
  "$COAPD" device add "$@" --data-dir "$T/data" >/dev/null ||
    fail "coapd device add $*"
}
dev_add example-app device1 --password hey-rodney
dev_add example-app gw1 --password gw-secret --gateway-for device2
dev_add example-app device2 --password other

# obs_start NAME PATH: a coap-client observer of ps/PATH for 4 s in the
# background, payloads to $T/NAME.out; obs_wait NAME waits for it.
declare -A OBS
obs_start() {
  timeout 20 "$CLIENT" -m get -s 4 -O 6,0x00 -o - -T "tok$1" \
    "$U/ps/$2" >"$T/$1.out" 2>"$T/$1.err" &
  OBS[$1]=$!
  sleep 0.5 # the registration reaches coapd
}
obs_wait() { wait "${OBS[$1]}" || true; }

# reason TEXT: the last response's payload (shown in the trace for an
# error answer) holds TEXT.
reason() {
  responses | tail -n 1 | grep -aqF -- "$1" ||
    fail "no reason '$1' in: $(responses | tail -n 1)"
}

start_coapd

# --- telemetry, Drogue's command line ---
obs_start o1 app/example-app/device1/foo
req -m post "$U/v1/foo" -O 4209,"$AUTH" -t 50 -e '{"temp":42}'
expect 2.04 ACK
obs_wait o1
ev=$(cat "$T/o1.out")
for want in '"specversion":"1.0"' '"type":"io.drogue.event.v1"' \
  '"source":"drogue://example-app/device1"' '"subject":"foo"' \
  '"datacontenttype":"application/json"' '"application":"example-app"' \
  '"device":"device1"' '"sender":"device1"' '"data":{"temp":42}' \
  '"time":"20'; do
  [[ $ev == *"$want"* ]] || fail "event lacks $want: $ev"
done
[[ $ev =~ \"id\":\"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\" ]] ||
  fail "event id is not a UUID v4: $ev"
if command -v python3 >/dev/null; then
  python3 -c 'import json,sys; json.loads(sys.argv[1])' "$ev" ||
    fail "event is not JSON: $ev"
fi
ok "Drogue's coap-client line: 2.04, and the CloudEvent reaches ps/app/..."

# Without a content format, bytes that are not JSON go as data_base64;
# a subject path after the channel is kept apart; PUT works too.
obs_start o2 app/example-app/device1/+
req -m put "$U/v1/bin/a/b?data_schema=urn%3Aschema" -O 4209,"$AUTH" -e hello
expect 2.04
obs_wait o2
ev=$(cat "$T/o2.out")
for want in '"subject":"bin"' '"suffix":"a/b"' '"data_base64":"aGVsbG8="' \
  '"datacontenttype":"application/octet-stream"' '"dataschema":"urn:schema"'; do
  [[ $ev == *"$want"* ]] || fail "event lacks $want: $ev"
done
ok "PUT of bytes: data_base64, dataschema, the subject path as suffix"

# --- authentication ---
req -m post "$U/v1/foo" -O 4209,"Basic $(b64 device1@example-app:wrong)" -e x
expect 4.03
reason "bad device, application or password"
req -m post "$U/v1/foo" -e x
expect 4.03
reason "credentials needed"
req -m post "$U/v1/foo" -O 4209,"Basic not*base64" -e x
expect 4.03
req -m post "$U/v1/foo" -O 4209,"Basic $(b64 device1:hey-rodney)" -e x
expect 4.00
reason "application"
req -m post "$U/v1/foo?application=example-app" \
  -O 4209,"Basic $(b64 device1:hey-rodney)" -e x
expect 2.04
req -m post "$U/v1/foo?application=other-app" -O 4209,"$AUTH" -e x
expect 4.03
ok "wrong password, no credentials, bad base64: 4.03; device:password" \
  "needs ?application="

# Every Uri-Query option is read: the application in the second one
# (Drogue's endpoint reads only the first).
req -m post "$U/v1/foo?device=device1&application=example-app" \
  -O 4209,"Basic $(b64 device1:hey-rodney)" -e x
expect 2.04
ok "the application in the second Uri-Query option"

# --- as= ---
# Drogue's example URI verbatim: device1 is no gateway for device#2.
req -m post "$U/v1/foo?application=example-app&device=device1&data_schema=application%2Foctet-stream&as=device%232&ct=30" \
  -O 4209,"$AUTH" -e x
expect 4.03
reason "not a gateway for that device"
obs_start o3 app/example-app/device2/foo
req -m post "$U/v1/foo?as=device2" \
  -O 4209,"Basic $(b64 gw1@example-app:gw-secret)" -t 50 -e '[1,2]'
expect 2.04
obs_wait o3
ev=$(cat "$T/o3.out")
[[ $ev == *'"device":"device2"'*'"sender":"gw1"'*'"data":[1,2]'* ]] ||
  fail "as= event: $ev"
req -m post "$U/v1/foo?as=device1" \
  -O 4209,"Basic $(b64 gw1@example-app:gw-secret)" -e x
expect 4.03
ok "as= with --gateway-for: device2 sent by gw1; without: 4.03"

# --- JSON content format, body not JSON: 4.06 ---
req -m post "$U/v1/foo" -O 4209,"$AUTH" -t 50 -e '{"temp":'
expect 4.06
reason "not"
req -m post "$U/v1/foo" -O 4209,"$AUTH" -t 110 -e '01'
expect 4.06
ok "JSON content formats with bodies that are not JSON: 4.06"

# --- commands ---
# ct=2: the device waits; a command POSTed through the gateway within
# the window comes back as 2.05 with option 4210 = its name.
timeout 20 "$CLIENT" -B 15 -v 6 -o "$T/cmd.body" -m post "$U/v1/foo?ct=2" \
  -O 4209,"$AUTH" -e x >"$T/cmd.trace" 2>&1 &
waiter=$!
sleep 0.5
req -m post -e 'reboot-now' "$U/ps/command/example-app/device1/reboot"
expect 2.04
wait "$waiter" || true
last=$(grep -a ' c:[1-5]\.[0-9][0-9] ' "$T/cmd.trace" | tail -n 1)
[[ $last == *" c:2.05 "* ]] || fail "waiting device got: $last"
# "reboot" in hex, as coap-client shows an option it does not know.
[[ $last == *'4210:\x72\x65\x62\x6F\x6F\x74'* ]] ||
  fail "no option 4210 = reboot: $last"
[ "$(cat "$T/cmd.body")" = reboot-now ] ||
  fail "command payload '$(cat "$T/cmd.body")'"
ok "ct=2 and a command in the window: 2.05, 4210 = reboot, its payload"

# ct=1 (as commandTimeout) without a command: 2.04 after about a second.
t0=$(date +%s%N)
req -m post "$U/v1/foo?commandTimeout=1" -O 4209,"$AUTH" -e x
t1=$(date +%s%N)
expect 2.04
ms=$(((t1 - t0) / 1000000))
((ms >= 900 && ms < 3000)) || fail "ct=1 answered after $ms ms"
ok "commandTimeout=1 without a command: 2.04 after $ms ms"

# The gateway waits for its device2: the command for device2 reaches it.
timeout 20 "$CLIENT" -B 15 -v 6 -o "$T/gw.body" -m post \
  "$U/v1/foo?as=device2&ct=3" \
  -O 4209,"Basic $(b64 gw1@example-app:gw-secret)" -e x >"$T/gw.trace" 2>&1 &
waiter=$!
sleep 0.5
req -m post -e 'on' "$U/ps/command/example-app/device2/light"
expect 2.04
wait "$waiter" || true
grep -a ' c:2.05 ' "$T/gw.trace" | grep -aqF '4210:\x6C\x69\x67\x68\x74' ||
  fail "gateway did not get device2's command: $(tail -n 1 "$T/gw.trace")"
ok "a gateway waiting as device2 gets device2's command"

# A command with nobody waiting is dropped (and counted, below).
req -m post -e 'lost' "$U/ps/command/example-app/device1/reboot"
expect 2.04

# --- bad requests, other methods ---
req -m post "$U/v1" -O 4209,"$AUTH" -e x
expect 4.00
reason "empty channel"
req -m post "$U/v1/foo?ct=soon" -O 4209,"$AUTH" -e x
expect 4.00
req -m get "$U/v1/foo" -O 4209,"$AUTH"
expect 4.05
req -m post -N "$U/v1/foo" -O 4209,"$AUTH" -e x
expect 2.04 NON
ok "empty channel and bad ct 4.00, GET 4.05, NON 2.04 as NON"

stop_coapd
line=$(grep -a 'devices: accepted' "$T/coapd.log") || fail "no counters"
for want in "commands_delivered 2" "commands_dropped 1" "waits_expired 1"; do
  [[ $line == *"$want"* ]] || fail "shutdown counters lack $want: $line"
done
ok "counters: $line"

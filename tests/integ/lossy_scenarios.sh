#!/usr/bin/env bash
# Issue 13, part 1: loss, duplication and reordering. coapd --demo behind
# lossy_relay on loopback, one relay per scenario (each with the same
# seed, so that each scenario's datagrams meet the same fates whatever
# runs beside it), at 30 % loss, 10 % duplication and 10 % reordering
# each way (a held datagram goes out after the next one, or after 20 ms):
#  gets    1,000 CON GETs, 8 in flight, each with its own body;
#  block   a 1 MiB PUT to /large-update (Block1) and GET back (Block2),
#          compared byte for byte;
#  obs     60 notifications of /obs (one a second, NON), in the background
#          while the others run: none twice, none backwards, the latest
#          state arrives;
#  pubsub  a subscriber with qos=1 (CON notifications) and a publisher
#          POSTing 100 numbered messages as CON: every POST 2.04, no
#          message twice, order kept, every message missed counted by
#          coapd's queue_drops.
#
# The parameters. A CON exchange through 30 % loss each way succeeds with
# p = 0.49 per transmission; MAX_RETRANSMIT = 20 leaves 0.51^21 = 7e-7
# per exchange (about 3e-3 over a run's ~4,500 exchanges). RFC 7252's
# ACK_TIMEOUT of 2 s would make a run last hours, so the client uses
# ACK_TIMEOUT 2 ms (loopback answers in well under a millisecond) and
# coapd 5 ms for its CON notifications, both with ACK_RANDOM_FACTOR 1.5.
# The 4 MiB transfer the issue asks for takes about 220 s at these
# shares (1 MiB: 55 s measured, the 2,048 block exchanges one after
# another), more than this test's budget of three minutes; 1 MiB it is,
# and --bytes in the driver runs 4 MiB by hand (docs/RELIABILITY.md).
# 100 notifications of /obs would take about 140 s (30 % of NON
# notifications are lost); 60 fit beside the rest.
#
# Usage: lossy_scenarios.sh COAPD LOSSY_RELAY LOSSY_SCENARIOS [SEED]
set -euo pipefail

COAPD=${1:?usage: $0 COAPD LOSSY_RELAY LOSSY_SCENARIOS [SEED]}
RELAY=${2:?usage: $0 COAPD LOSSY_RELAY LOSSY_SCENARIOS [SEED]}
DRIVER=${3:?usage: $0 COAPD LOSSY_RELAY LOSSY_SCENARIOS [SEED]}
SEED=${4:-${CK_LOSSY_SEED:-1}}
BYTES=${CK_LOSSY_BYTES:-1048576}
NOTES=${CK_LOSSY_NOTES:-60}
SHARES=(--loss 30 --dup 10 --reorder 10 --reorder-ms 20)
T=$(mktemp -d)
PIDS=()

# Stops exactly the processes this script started.
cleanup() {
  for p in "${PIDS[@]}"; do
    if kill -0 "$p" 2>/dev/null; then
      kill -TERM "$p" 2>/dev/null || true
      wait "$p" 2>/dev/null || true
    fi
  done
  rm -rf "$T"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  for f in coapd.log obs.out relay_*.out; do
    for g in "$T"/$f; do
      [ -s "$g" ] && { echo "--- ${g##*/}:" >&2; tail -n 20 "$g" >&2; }
    done
  done
  exit 1
}

# port_of FILE PID: the port in the "listening on 127.0.0.1:PORT" line
# that the process PID writes to FILE when it has started.
port_of() {
  local v
  for _ in $(seq 200); do
    v=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$1" \
      2>/dev/null | head -n 1)
    [ -n "$v" ] && { echo "$v"; return 0; }
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

cat >"$T/coapd.conf" <<'CONF'
ack_timeout_ms = 5
max_retransmit = 20
max_body = 16777216
CONF
"$COAPD" --demo --config "$T/coapd.conf" --listen 127.0.0.1:0 \
  --log-level info 2>"$T/coapd.log" &
PIDS+=($!)
CPID=${PIDS[-1]}
PORT=$(port_of "$T/coapd.log" "$CPID") || fail "coapd did not start"

declare -A RPID RPORT
for s in gets block obs pubsub; do
  "$RELAY" --listen 127.0.0.1:0 --target "127.0.0.1:$PORT" "${SHARES[@]}" \
    --seed "$SEED" --duration 600 >"$T/relay_$s.out" &
  PIDS+=($!)
  RPID[$s]=${PIDS[-1]}
  RPORT[$s]=$(port_of "$T/relay_$s.out" "${RPID[$s]}") ||
    fail "the relay for $s did not start"
done
echo "# coapd on $PORT; relays (${SHARES[*]}, seed $SEED):" \
  "gets ${RPORT[gets]} block ${RPORT[block]} obs ${RPORT[obs]}" \
  "pubsub ${RPORT[pubsub]}"

drv() {
  local s=$1
  shift
  timeout 200 "$DRIVER" --uri "coap://127.0.0.1:${RPORT[$s]}" --scenario "$s" \
    --seed "$SEED" --ack-timeout 2 --max-retransmit 20 "$@"
}

# The observation runs beside the others: it waits on coapd's clock.
drv obs --n "$NOTES" --deadline 150 >"$T/obs.out" 2>&1 &
PIDS+=($!)
OPID=${PIDS[-1]}

drv gets --n 1000 --window 8 --deadline 60 | tee "$T/gets.out" ||
  fail "gets (status $?)"
drv block --bytes "$BYTES" --deadline 170 | tee "$T/block.out" ||
  fail "block (status $?)"
drv pubsub --n 100 --topic lossy/t --deadline 60 | tee "$T/pubsub.out" ||
  fail "pubsub (status $?)"
wait "$OPID" || { cat "$T/obs.out"; fail "obs (status $?)"; }
cat "$T/obs.out"

# Stop the relays and coapd; each prints its counts on the way out.
N='\([0-9]*\)'
for s in gets block obs pubsub; do
  kill -TERM "${RPID[$s]}"
  wait "${RPID[$s]}" || fail "the relay for $s exited with $?"
  stats=$(tail -n 1 "$T/relay_$s.out")
  echo "# relay $s: ${stats#lossy_relay: }"
  read -r upf upd downf downd < <(echo "$stats" |
    sed -n "s/.*up fwd $N drop $N; down fwd $N drop $N.*/\\1 \\2 \\3 \\4/p")
  read -r dupu dupd heldu heldd < <(echo "$stats" |
    sed -n "s/.*dup up $N down $N; held up $N down $N.*/\\1 \\2 \\3 \\4/p")
  [ -n "${heldd:-}" ] || fail "no counts from the relay for $s: $stats"
  # The realised shares must be near the ones asked for (where there are
  # datagrams enough to tell): a relay that did nothing would make the
  # scenario pass without testing anything.
  if [ "$s" != obs ]; then
    for q in "up loss $upd $((upf + upd)) 250 350" \
      "down loss $downd $((downf + downd)) 250 350" \
      "up dup $dupu $upf 60 140" "down dup $dupd $downf 60 140" \
      "up reorder $heldu $upf 60 140" "down reorder $heldd $downf 60 140"; do
      set -- $q
      pm=$((1000 * $3 / $4))
      [ "$pm" -ge "$5" ] && [ "$pm" -le "$6" ] ||
        fail "relay $s: $1 $2 $pm per mille of $4"
    done
  fi
  [ $((dupu + dupd)) -gt 0 ] && [ $((heldu + heldd)) -gt 0 ] ||
    fail "relay $s duplicated or reordered nothing"
done
kill -TERM "$CPID"
wait "$CPID" || fail "coapd exited with $? after SIGTERM"
PIDS=()

line=$(grep 'stopped by' "$T/coapd.log" | tail -n 1)
echo "# coapd: ${line#*: stopped by SIGTERM: }"
ps=$(grep 'pub/sub: published' "$T/coapd.log" | tail -n 1)
echo "# coapd ${ps#*: pub/sub: }"
dups=$(echo "$line" | sed -n 's/.* duplicates \([0-9]*\).*/\1/p')
[ "${dups:-0}" -gt 0 ] || fail "coapd answered no duplicate from its cache"
published=$(echo "$ps" | sed -n 's/.*published \([0-9]*\).*/\1/p')
qdrops=$(echo "$ps" | sed -n 's/.*queue_drops \([0-9]*\).*/\1/p')
missed=$(sed -n 's/^result pubsub .* missed=\([0-9]*\).*/\1/p' \
  "$T/pubsub.out")
# Every POST answered 2.04 published once: a retransmitted or duplicated
# POST must come from coapd's dedup cache, not publish again.
[ "$published" = 100 ] || fail "coapd published $published messages, not 100"
[ "$missed" = "$qdrops" ] ||
  fail "the subscriber missed $missed messages, coapd's queue dropped $qdrops"
echo "ok - coapd published each of the 100 messages once; the subscriber" \
  "missed $missed, coapd's observer queue dropped $qdrops;" \
  "$dups retransmitted requests answered from coapd's dedup cache"

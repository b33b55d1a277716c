#!/usr/bin/env bash
# The soak (issue 13, part 7): coapd --demo with its pub/sub gateway under
# steady mixed traffic for SECONDS (default 600), its memory watched.
#
# Traffic, all on loopback, each stream from coap-bench at a steady rate
# (--rate): CON GET /hello, CON PUT /sink, CON POST publishing to the
# gateway's topic ps/soak/t; 1,000 observers that stay the whole run
# (500 of /obs, which changes once a second, and 500 subscribers of
# ps/soak/t, each published message a notification to each); and peers
# that come and go (soak-churn: RATE new sockets a second, each
# observes, subscribes, publishes or GETs once and vanishes without
# deregistering, so that coapd must forget it by itself).
#
# coapd's VmRSS is printed every INTERVAL seconds (default 30). The soak
# fails (exit 1) when any sample after the warm-up (WARMUP seconds,
# default 120) is more than 10 % above the sample taken at the end of the
# warm-up, when a stream fails (coap-bench's losses stay in its own
# report), or when coapd does not stop cleanly at the end (so an ASan
# build's report fails the soak too). It prints coapd's gauges (`coapd
# stats`) before the end and its counters at the end.
#
# Usage: bench/soak.sh COAPD COAP_BENCH SOAK_CHURN [SECONDS]
#   e.g. bench/soak.sh build/bench/coapd/coapd build/bench/bench/coap-bench \
#          build/bench/bench/soak-churn 600
# Environment: WARMUP, INTERVAL (seconds), GET_RATE (200), PUT_RATE (50),
# PUB_RATE (5), CHURN_RATE (20 peers/s).
set -euo pipefail

COAPD=${1:?usage: $0 COAPD COAP_BENCH SOAK_CHURN [SECONDS]}
BENCH=${2:?usage: $0 COAPD COAP_BENCH SOAK_CHURN [SECONDS]}
CHURN=${3:?usage: $0 COAPD COAP_BENCH SOAK_CHURN [SECONDS]}
SECONDS_RUN=${4:-600}
INTERVAL=${INTERVAL:-30}
WARMUP=${WARMUP:-120}
if [ "$WARMUP" -ge "$SECONDS_RUN" ]; then
  WARMUP=$((SECONDS_RUN / 5))
fi
GET_RATE=${GET_RATE:-200}
PUT_RATE=${PUT_RATE:-50}
PUB_RATE=${PUB_RATE:-5}
CHURN_RATE=${CHURN_RATE:-20}

T=$(mktemp -d)
PIDS=()
CPID=

cleanup() {
  for p in "${PIDS[@]}" $CPID; do
    if kill -0 "$p" 2>/dev/null; then
      kill -TERM "$p" 2>/dev/null || true
      wait "$p" 2>/dev/null || true
    fi
  done
  [ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() {
  echo "soak: FAIL: $*" >&2
  [ -s "$T/coapd.log" ] && tail -n 20 "$T/coapd.log" >&2
  exit 1
}

rss_kib() {
  sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$CPID/status"
}

# coapd on a port the kernel picks, read back from its start line; the
# metrics server too, for `coapd stats` at the end.
"$COAPD" --demo --listen 127.0.0.1:0 --data-dir "$T/data" \
  --metrics-listen 127.0.0.1:0 2>"$T/coapd.log" &
CPID=$!
PORT=
for _ in $(seq 100); do
  PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
    "$T/coapd.log" | head -n 1)
  [ -n "$PORT" ] && break
  kill -0 "$CPID" 2>/dev/null || fail "coapd exited at start"
  sleep 0.1
done
[ -n "$PORT" ] || fail "no start line from coapd"
U="coap://127.0.0.1:$PORT"
echo "soak: coapd pid $CPID at $U, ${SECONDS_RUN} s, warm-up ${WARMUP} s," \
  "a sample every ${INTERVAL} s"

# The streams; every one ends by itself after SECONDS_RUN.
D=$SECONDS_RUN
"$BENCH" -w 0 -d "$D" -c 20 --rate "$GET_RATE" "$U/hello" >"$T/get.out" &
PIDS+=($!)
"$BENCH" -w 0 -d "$D" -c 10 --rate "$PUT_RATE" -m put -e soak \
  "$U/sink" >"$T/put.out" &
PIDS+=($!)
# Subscribers first, so that the publications have someone to reach.
"$BENCH" -w 0 -d "$D" -c 50 --observe 10 --timeout 10000 "$U/obs" \
  >"$T/obs.out" &
PIDS+=($!)
"$BENCH" -w 0 -d "$D" -c 50 --observe 10 --timeout 10000 \
  "$U/ps/soak/t?qos=0" >"$T/sub.out" &
PIDS+=($!)
sleep 2
"$BENCH" -w 0 -d "$((D - 2))" -c 2 --rate "$PUB_RATE" -m post -e soak \
  "$U/ps/soak/t" >"$T/pub.out" &
PIDS+=($!)
"$CHURN" 127.0.0.1 "$PORT" "$((D - 2))" "$CHURN_RATE" soak/t \
  >"$T/churn.out" &
PIDS+=($!)

# The samples: bounded in count; coapd must live through all of them.
start=$(date +%s)
base=
peak=0
first=$(rss_kib)
echo "soak: t=0 s VmRSS ${first} KiB"
n=$((SECONDS_RUN / INTERVAL))
for i in $(seq "$n"); do
  sleep $((start + i * INTERVAL - $(date +%s) > 0 ?
    start + i * INTERVAL - $(date +%s) : 0))
  kill -0 "$CPID" 2>/dev/null || fail "coapd died"
  r=$(rss_kib)
  t=$((i * INTERVAL))
  echo "soak: t=$t s VmRSS $r KiB"
  if [ "$t" -ge "$WARMUP" ] && [ -z "$base" ]; then
    base=$r
    echo "soak: after the warm-up: $base KiB (limit $((base * 110 / 100)))"
  elif [ -n "$base" ] && [ "$r" -gt "$peak" ]; then
    peak=$r
  fi
  # coapd's gauges while everything still runs, for the record.
  if [ "$i" -eq $((n - 1)) ]; then
    timeout 20 "$COAPD" stats --data-dir "$T/data" 2>/dev/null |
      grep -v -e '^#' -e '_total' -e ' 0$' | sed 's/^/soak:   /' || true
  fi
done

# The streams end by themselves; wait for each, bounded by timeout.
rc=0
for p in "${PIDS[@]}"; do
  if ! timeout 60 tail --pid="$p" -f /dev/null; then
    kill -TERM "$p" 2>/dev/null || true
  fi
  wait "$p" || rc=$?
done
PIDS=()
last=$(rss_kib)
echo "soak: end VmRSS $last KiB"

for s in get put pub obs sub; do
  echo "soak: $s: $(tail -n 1 "$T/$s.out")"
done
echo "soak: churn: $(cat "$T/churn.out")"
echo "soak: coapd's counters at the end (those not 0):"
timeout 20 "$COAPD" stats --data-dir "$T/data" | grep -v -e '^#' -e ' 0$' |
  sed 's/^/soak:   /' || echo "soak:   (coapd stats failed)"

# coapd stops cleanly on SIGTERM; a sanitizer's report (an ASan build)
# or a crash on the way out shows in its status.
kill -TERM "$CPID"
crc=0
wait "$CPID" || crc=$?
CPID=
[ "$crc" -eq 0 ] || fail "coapd exited with status $crc when stopped"
[ "$rc" -eq 0 ] || fail "a traffic stream failed (exit $rc)"
[ -n "$base" ] || fail "the run ended before the warm-up"
[ "$peak" -eq 0 ] && peak=$base
echo "soak: VmRSS start $first, after warm-up $base, peak after it $peak," \
  "end $last KiB"
if [ "$peak" -gt $((base * 110 / 100)) ]; then
  fail "VmRSS grew from $base to $peak KiB after the warm-up (> 10 %)"
fi
echo "soak: ok"

#!/usr/bin/env bash
# `coapd user ...` and `coapd device ...` against a data directory that a
# running coapd also uses: exit statuses (0 done, 1 failed, 2 usage) and
# one-line outputs; lists that never show a password or a PSK; a database
# where the sqlite3 shell finds no password either; files of mode 600 in
# a directory of mode 700; and writes that go through while another
# process reads the database (WAL) or briefly holds its write lock (the
# busy timeout), with coapd still answering afterwards.
. "$(dirname "$0")/coapd_common.sh"

D=$T/data
DB=$D/coapd.db
HOLDER=
trap '[ -z "$HOLDER" ] || kill "$HOLDER" 2>/dev/null || true; cleanup' EXIT

command -v sqlite3 >/dev/null || fail "sqlite3 not installed"

# admin RC OBJECT VERB ARGS...: runs `coapd OBJECT VERB --data-dir $D
# ARGS`, expects exit RC; on 0 nothing on stderr, otherwise one line on
# stderr and nothing on stdout.
admin() {
  local want=$1 obj=$2 verb=$3 rc=0
  shift 3
  timeout 20 "$COAPD" "$obj" "$verb" --data-dir "$D" "$@" >"$T/out" \
    2>"$T/err" || rc=$?
  set -- "$obj" "$verb" "$@"
  [ "$rc" -eq "$want" ] ||
    fail "coapd $*: exit $rc, expected $want: $(cat "$T/err")"
  if [ "$want" -eq 0 ]; then
    [ ! -s "$T/err" ] || fail "coapd $*: stderr: $(cat "$T/err")"
  else
    [ "$(wc -l <"$T/err")" -eq 1 ] || fail "coapd $*: stderr: $(cat "$T/err")"
    [ ! -s "$T/out" ] || fail "coapd $*: wrote to stdout: $(cat "$T/out")"
  fi
}
out_is() { [ "$(cat "$T/out")" = "$1" ] || fail "stdout '$(cat "$T/out")', expected '$1'"; }
err_has() { grep -q -- "$1" "$T/err" || fail "stderr '$(cat "$T/err")' lacks '$1'"; }
mode_is() {
  local m
  m=$(stat -c %a "$1")
  [ "$m" = "$2" ] || fail "$1 has mode $m, expected $2"
}

start_coapd
[ -d "$D" ] || fail "coapd did not make its data directory"

admin 0 user add alice --password 'Pa55-w0rd' --allow-pub 'sensors/%u/#' \
  --allow-sub 'sensors/#' --allow-sub 'cmd/%u/+'
out_is "user alice added"
admin 0 user add bob --password=hunter2-bob
out_is "user bob added"
ok "user add"
admin 1 user add alice --password other
err_has "exists"
admin 1 user remove carol
err_has "does not exist"
ok "user add/remove failures exit 1"

admin 2 user add dave --password x --bogus
err_has "unknown option '--bogus'"
admin 2 user add dave --password
err_has "needs a value"
admin 2 user add dave
err_has "needs --password"
admin 2 user add dave --password x --allow-pub 'a/#/b'
err_has "not a valid topic filter"
admin 2 user add dave --password x extra
admin 2 user list now
admin 2 device add app d9 --password x --psk-identity i --psk k
err_has "exactly one"
admin 2 device add app d9 --psk k
admin 2 device add app d9 --cert-cn cn --psk-identity i
admin 2 device add app
err_has "missing"
admin 2 device frob
ok "usage errors exit 2 with one line"

admin 0 user list
[ "$(wc -l <"$T/out")" -eq 2 ] || fail "user list: $(cat "$T/out")"
grep -q '^alice .*pub: sensors/%u/#.*sub: cmd/%u/+, sensors/#$' "$T/out" ||
  fail "user list: $(cat "$T/out")"
grep -q '^bob .*pub: -  sub: -$' "$T/out" || fail "user list: $(cat "$T/out")"
! grep -q -e 'Pa55' -e hunter2 -e pbkdf2 "$T/out" || fail "list shows a secret"
! grep -q "$(printf '\t')" "$T/out" || fail "user list has tabs"
ok "user list: $(head -n 1 "$T/out")"

admin 0 device add app gw --password 'GwPass-1' --gateway-for d1 \
  --gateway-for d2
out_is "device app/gw added"
admin 0 device add app d1 --psk-identity d1@app --psk 0xa1b2c3d4e5f6
admin 0 device add app d2 --psk-identity d2@app --psk 'text-psk-99'
admin 0 device add app d3 --cert-cn d3.example.com
admin 1 device add app d1 --cert-cn other
err_has "exists"
admin 1 device add app d4 --psk-identity d1@app --psk 0x01
admin 0 device list
[ "$(wc -l <"$T/out")" -eq 4 ] || fail "device list: $(cat "$T/out")"
grep -q '^app/d1 .*psk identity d1@app$' "$T/out" ||
  fail "device list: $(cat "$T/out")"
grep -q '^app/d3 .*cert cn d3.example.com$' "$T/out" ||
  fail "device list: $(cat "$T/out")"
grep -q '^app/gw .*password  gateway for: d1, d2$' "$T/out" ||
  fail "device list: $(cat "$T/out")"
! grep -qi -e GwPass -e a1b2c3 -e text-psk -e 746578 "$T/out" ||
  fail "device list shows a secret"
ok "device add and list"

# The stored form: hashes, not passwords; the PSK as raw bytes.
users=$(sqlite3 "$DB" 'select * from users')
grep -q 'pbkdf2-sha256\$' <<<"$users" || fail "users: $users"
! grep -q -e 'Pa55-w0rd' -e 'hunter2-bob' <<<"$users" ||
  fail "users table holds a password"
devices=$(sqlite3 "$DB" 'select application, device, hash from devices')
! grep -q 'GwPass' <<<"$devices" || fail "devices table holds a password"
[ "$(sqlite3 "$DB" "select hex(psk) from devices where device='d1'")" = \
  A1B2C3D4E5F6 ] || fail "PSK not stored as its bytes"
[ "$(sqlite3 "$DB" "select psk from devices where device='d2'")" = \
  text-psk-99 ] || fail "a text PSK is not stored as its bytes"
ok "sqlite3 finds hashes, not passwords"

# A reader holds a transaction open: in WAL mode writers go on.
mkfifo "$T/fifo"
timeout 60 stdbuf -o0 sqlite3 "$DB" <"$T/fifo" >"$T/reader" 2>&1 &
HOLDER=$!
exec 4>"$T/fifo"
echo "BEGIN; SELECT 'count', count(*) FROM users;" >&4
for _ in $(seq 100); do
  grep -q '^count|2$' "$T/reader" && break
  sleep 0.05
done
grep -q '^count|2$' "$T/reader" || fail "reader: $(cat "$T/reader")"
admin 0 user add erin --password erin-pw
admin 0 user remove bob
echo "SELECT 'again', count(*) FROM users; COMMIT;" >&4
echo "SELECT 'after', count(*) FROM users;" >&4
for _ in $(seq 100); do
  grep -q '^after|' "$T/reader" && break
  sleep 0.05
done
grep -q '^again|2$' "$T/reader" || fail "reader's snapshot: $(cat "$T/reader")"
grep -q '^after|2$' "$T/reader" || fail "reader after: $(cat "$T/reader")"
# While the reader is open, -wal and -shm exist.
mode_is "$D" 700
mode_is "$DB" 600
mode_is "$DB-wal" 600
mode_is "$DB-shm" 600
exec 4>&-
wait "$HOLDER" || fail "the reader failed: $(cat "$T/reader")"
HOLDER=
ok "writes beside an open reader; modes 700/600/600/600"

# A writer holds the lock for a second: the command waits, then succeeds.
{
  echo "BEGIN IMMEDIATE; SELECT 'locked';"
  sleep 1
  echo "INSERT INTO sessions VALUES('c1', 't', NULL, 1); COMMIT;"
} | timeout 30 stdbuf -o0 sqlite3 "$DB" >"$T/writer" 2>&1 &
HOLDER=$!
for _ in $(seq 100); do
  grep -q locked "$T/writer" && break
  sleep 0.02
done
grep -q locked "$T/writer" || fail "writer: $(cat "$T/writer")"
t0=$(date +%s%N)
admin 0 user add frank --password frank-pw
ms=$((($(date +%s%N) - t0) / 1000000))
wait "$HOLDER" || fail "the writer failed: $(cat "$T/writer")"
HOLDER=
[ "$(sqlite3 "$DB" 'select count(*) from sessions')" = 1 ] ||
  fail "the writer's row is missing"
ok "a write waits for another writer's lock (${ms} ms) and succeeds"

admin 0 user list
[ "$(cut -d' ' -f1 "$T/out" | tr '\n' ' ')" = "alice erin frank " ] ||
  fail "user list: $(cat "$T/out")"
admin 0 device remove app gw
out_is "device app/gw removed"
admin 1 device remove app gw
[ "$(sqlite3 "$DB" 'select count(*) from gateway_for')" = 0 ] ||
  fail "gateway_for rows outlive their device"
ok "device remove"

# coapd ran beside all this and still answers.
kill -0 "$PID" || fail "coapd died"
req "$U/hello"
expect 2.05
stop_coapd
ok "coapd answered throughout and stopped cleanly"

# Without --data-dir: ./coapd-data, made 0700.
mkdir "$T/cwd"
(cd "$T/cwd" && timeout 20 "$COAPD" user list >"$T/out" 2>"$T/err") ||
  fail "user list in a fresh directory: $(cat "$T/err")"
[ ! -s "$T/out" ] || fail "an empty registry lists: $(cat "$T/out")"
mode_is "$T/cwd/coapd-data" 700
mode_is "$T/cwd/coapd-data/coapd.db" 600
ok "default data directory ./coapd-data"

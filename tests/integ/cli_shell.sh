#!/bin/bash
# coap shell as a person uses it: in a terminal (a detached tmux session
# on a private server socket), keys sent with send-keys and the screen
# read back with capture-pane, against coapd --demo. The session
# connects (the prompt names the server), discovers (/hello listed), gets
# /hello after completing "/he" with TAB, changes a transmission
# parameter, observes /obs (notifications appear while a half-typed
# line stays on the prompt and can be finished), unobserves, drops a
# line with Ctrl-C, observes with --count (it ends by itself, and the
# first notification comes at once: the request leaves before the shell
# sleeps), connects again (a ping says the server is available) and quits;
# the history file holds the commands, and a second run finds them with
# the Up key. Every wait on the screen is bounded.
#
# Usage: cli_shell.sh PATH/TO/coap PATH/TO/coapd
COAP=${1:?usage: $0 PATH/TO/coap PATH/TO/coapd}
COAPD=${2:?usage: $0 PATH/TO/coap PATH/TO/coapd}
. "$(dirname "$0")/cli_common.sh"
command -v tmux >/dev/null || { echo "FAIL: tmux missing"; exit 1; }

TM="tmux -L ckshell$$ -f /dev/null"
stop_tmux() {
  $TM kill-server 2>/dev/null
  cleanup
}
trap stop_tmux EXIT

start_coapd
export COAP_HISTORY=$T/history

# screen: what the terminal shows, scroll-back included, wrapped lines
# joined.
screen() { $TM capture-pane -p -J -S - -t "$S" 2>/dev/null; }
# wait_for TEXT [N]: waits (at most 10 s) until TEXT is on the screen at
# least N times (default 1).
wait_for() {
  local n=${2:-1}
  for _ in $(seq 200); do
    [ "$(screen | grep -cF -- "$1")" -ge "$n" ] && return 0
    sleep 0.05
  done
  fail "the screen never showed '$1' ($n times); it shows:
$(screen | tail -n 25)"
  return 1
}
# last_line: the last line of the screen that is not blank.
last_line() { screen | sed 's/ *$//; /^$/d' | tail -n 1; }
keys() { $TM send-keys -t "$S" "$@"; }
# shell NAME ARGS...: starts coap shell ARGS in a new terminal, the
# tmux session NAME that screen and keys use; it says how it ended.
shell() {
  S=$1
  shift
  $TM new-session -d -s "$S" -x 120 -y 50 \
    "$(printf '%q ' "$COAP" shell "$@"); echo \"SHELL-EXIT=\$?\"; sleep 60"
}

P="coap://127.0.0.1:$CPORT> "

check "the prompt names the server"
shell one "$CU/ignored/path"
wait_for "$P" && ok

check "discover lists the demo's resources"
keys 'discover' Enter
wait_for "/hello           demo.hello" &&
  wait_for "/obs             demo.obs" && wait_for "$P" 2 && ok

check "TAB completes a discovered path, and get prints the payload"
keys 'get /he' Tab
wait_for "${P}get /hello" && keys Enter && wait_for "Hello, world!" &&
  wait_for "Status: 2.05 Content, Type: ACK, MID: " && wait_for "$P" 3 && ok

check "help lists the commands; set changes a transmission parameter"
keys 'help' Enter
wait_for "unobserve" && keys 'set ack-timeout 500' Enter && keys 'set' Enter &&
  wait_for "ack-timeout 500" && ok

check "observe prints notifications while typing goes on"
keys 'observe /obs' Enter
wait_for "/obs: " 2 && keys 'get /hel'
n=$(screen | grep -c '^/obs: ')
wait_for "/obs: " $((n + 1))
case $(last_line) in
"${P}get /hel") ;;
*) fail "the half-typed line is not on the prompt: '$(last_line)'" ;;
esac
keys 'lo' Enter
wait_for "Hello, world!" 2 && ok

check "unobserve ends the notifications"
keys 'unobserve' Enter
wait_for "observation of /obs ended" && {
  n=$(screen | grep -c '^/obs: ')
  sleep 2.5
  [ "$(screen | grep -c '^/obs: ')" -eq "$n" ] ||
    fail "notifications after unobserve"
  ok
}

check "Ctrl-C drops the line being typed"
keys 'abc'
wait_for "${P}abc" && keys C-c && wait_for "${P}abc^C" && {
  [ "$(last_line)" = "${P% }" ] || fail "after Ctrl-C: '$(last_line)'"
  ok
}

check "observe --count 2 ends by itself; the first notification at once"
keys 'set ack-timeout 3000' Enter
start=$(date +%s%N)
keys 'observe /obs --count 2' Enter
wait_for "observation of /obs ended after 2 notifications" && {
  ms=$((($(date +%s%N) - start) / 1000000))
  # The first notification at once, the second a second later; a request
  # left waiting for the retransmission timer would take 3 s more.
  [ "$ms" -lt 1900 ] || fail "took $ms ms"
  ok
}

check "connect says the server is available"
keys "connect $CU" Enter
wait_for "available: pong from 127.0.0.1:$CPORT in " && ok

check "quit ends the shell with status 0"
keys 'quit' Enter
wait_for "SHELL-EXIT=0" && ok

check "the history file holds the commands"
for c in discover 'get /hello' help 'set ack-timeout 500' 'observe /obs' \
  unobserve quit; do
  grep -qxF -- "$c" "$COAP_HISTORY" || fail "history lacks '$c':
$(cat "$COAP_HISTORY")"
done
ok

check "a second run finds the history (Up), and Ctrl-D quits"
shell two "$CU"
wait_for "$P" && keys Up && wait_for "${P}quit" && keys C-u C-d &&
  wait_for "SHELL-EXIT=0" && ok

check "piped commands run without a terminal"
printf 'get /hello\nbogus\nquit\n' >"$T/in"
STDIN=$T/in run shell "$CU"
rc_is 0; out_has "Hello, world!"; err_has "bogus: unknown command"; ok

finish

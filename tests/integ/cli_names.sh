#!/bin/bash
# coap with host names (issue 8): names are resolved without blocking
# (c-ares), and every address of a name is tried in turn. Against
# libcoap's coap-server-notls on 127.0.0.1: "localhost" from the hosts
# file; names from a DNS server of the test's own (dns_server.c, through
# CK_DNS_SERVERS) whose first address refuses (ICMP) or stays silent, and
# which then answer from the second; names whose every address fails, and
# a name that does not exist: exit 3 with one line, as docs/coap.md says.
#
# Usage: cli_names.sh PATH/TO/coap PATH/TO/dns_server
COAP=${1:?usage: $0 PATH/TO/coap PATH/TO/dns_server}
DNS=${2:?usage: $0 PATH/TO/coap PATH/TO/dns_server}
. "$(dirname "$0")/cli_common.sh"

start_libcoap
# The DNS server also holds a socket on 127.0.0.3 with libcoap's port,
# which reads and never answers.
"$DNS" --silent "127.0.0.3:$LPORT" two.test=127.0.0.2,127.0.0.1 \
  silent.test=127.0.0.3,127.0.0.1 dead.test=127.0.0.2,127.0.0.4 dual.test=::1,127.0.0.1 \
  >"$T/dns.out" 2>&1 &
PIDS="$PIDS $!"
DPORT=
for _ in $(seq 50); do
  DPORT=$(sed -n 's/^port \([0-9]*\)$/\1/p' "$T/dns.out")
  [ -n "$DPORT" ] && break
  sleep 0.05
done
[ -n "$DPORT" ] || { echo "FAIL: dns_server did not start"; exit 1; }
export CK_DNS_SERVERS="127.0.0.1:$DPORT"
# What libcoap's default resource says.
HELLO="This is a test server made with libcoap"

check "localhost from the hosts file"
run get "coap://localhost:$LPORT/"
rc_is 0; out_has "$HELLO"; err_empty
run ping "coap://localhost:$LPORT"
rc_is 0; out_has "pong from 127.0.0.1:$LPORT"; ok

check "first address refused: the second answers at once"
start=$(date +%s%N)
run get -v "coap://two.test:$LPORT/"
ms=$((($(date +%s%N) - start) / 1000000))
rc_is 0; out_has "$HELLO"
err_has "to 127.0.0.2:$LPORT"
err_has "to 127.0.0.1:$LPORT"
[ "$ms" -lt 1000 ] || fail "took $ms ms"
ok

check "first address silent: the second answers after one ACK_TIMEOUT"
start=$(date +%s%N)
run get -v --ack-timeout 300 --ack-random-factor 1 "coap://silent.test:$LPORT/"
ms=$((($(date +%s%N) - start) / 1000000))
rc_is 0; out_has "$HELLO"
[ "$(grep -c "^> CON GET.* to 127.0.0.3:$LPORT" "$T/err")" -eq 1 ] ||
  fail "not one transmission to the silent address"
err_has "to 127.0.0.1:$LPORT"
[ "$ms" -ge 280 ] && [ "$ms" -lt 1500 ] || fail "took $ms ms"
ok

check "both families: the server's answers"
run get "coap://dual.test:$LPORT/"
rc_is 0; out_has "$HELLO"; ok

check "every address refused: exit 3, one line, the last one's error"
run get "coap://dead.test:$LPORT/x"
rc_is 3; out_empty
err_line "coap: GET coap://dead.test:$LPORT/x: the peer is unreachable"
ok

check "no such name: exit 3, one line"
start=$(date +%s%N)
run get "coap://nx.test:$LPORT/"
ms=$((($(date +%s%N) - start) / 1000000))
rc_is 3; out_empty
err_line "coap: GET coap://nx.test:$LPORT/: cannot resolve the host"
[ "$ms" -lt 2000 ] || fail "took $ms ms"
# The system's DNS servers, whatever they are: still one line, exit 3.
CK_DNS_SERVERS= run get "coap://no-such-host.invalid/"
rc_is 3; out_empty; err_line "coap: GET coap://no-such-host.invalid/: "
ok

finish

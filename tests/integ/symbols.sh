#!/bin/sh
# The library's shared object exports only the public API: every dynamic
# symbol it defines is a ck_ function or object declared CK_EXPORT, none
# is internal (ck__) or foreign. And the tools (cli/, coapd/, bench/,
# examples/) use only public headers: no include reaches into lib/ and no
# code names an internal ck__ function.
#
# Usage: symbols.sh LIBCOAPKIT.so SOURCE_DIR
set -u
LIB=$1 SRC=$2
fail() {
  echo "FAIL: $*"
  exit 1
}
case "$LIB" in *.so*) ;; *)
  echo "SKIP: static build, no dynamic symbol table"
  exit 0 ;;
esac
syms=$(nm -D --defined-only "$LIB" | awk '$2 ~ /[TDRB]/ {print $3}')
[ -n "$syms" ] || fail "no exported symbols in $LIB"
bad=$(printf '%s\n' "$syms" | grep -v '^ck_' || true)
[ -z "$bad" ] || fail "foreign symbols exported: $(echo $bad)"
internal=$(printf '%s\n' "$syms" | grep '^ck__' || true)
[ -z "$internal" ] || fail "internal symbols exported: $(echo $internal)"
n=$(printf '%s\n' "$syms" | grep -c .)
# Each exported symbol is declared in a public header.
for s in $syms; do
  grep -qw "$s" "$SRC"/include/coapkit/*.h "$SRC"/include/coapkit/*.h.in ||
    fail "$s is exported but in no public header"
done
echo "ok 1 $n exported symbols, all public ck_ API"

leaks=$(grep -rnE '#include "(\.\./)+lib/|\bck__[a-z]' "$SRC"/cli "$SRC"/coapd \
  "$SRC"/bench "$SRC"/examples || true)
[ -z "$leaks" ] || fail "tools use internals:
$leaks"
echo "ok 2 the tools use only public headers"
echo PASS

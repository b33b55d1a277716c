# Runs one of our programs under Valgrind's memcheck (not a test itself;
# the wrappers RUN/NAME of tests/integ/CMakeLists.txt exec it when
# CK_VALGRIND is set). Usage: sh valgrind.sh PROGRAM [ARGS...]
#
# exec keeps the PID, so a test that stops coapd by its PID stops it
# under Valgrind the same way. Each process writes its report to
# $CK_VALGRIND/NAME.PID.log; scripts/valgrind reads them all at the end,
# since a daemon's exit status is often not what a test looks at. A
# program the test waits for fails by itself: --error-exitcode makes any
# error, a definite leak included, its exit status 99.
set -eu
prog=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
exec valgrind --tool=memcheck --error-exitcode=99 --leak-check=full \
  --errors-for-leak-kinds=definite --show-leak-kinds=definite \
  --num-callers=30 --suppressions="$here/../valgrind.supp" \
  --log-file="$CK_VALGRIND/$(basename "$prog").%p.log" "$prog" "$@"

#!/bin/sh
# tests/run.sh - run each test binary, show its cmocka summary, and fail if
# any case failed. Every binary gets a time limit, so a hung test stops.
#
#   sh tests/run.sh build/tests/test_tcp build/tests/test_io ...
#
# TEST_TIMEOUT (seconds, default 120) and TEST_WRAPPER (e.g. "valgrind ...")
# can be set in the environment.

limit=${TEST_TIMEOUT:-120}
failed=""
total=0
for bin in "$@"; do
    total=$((total + 1))
    echo "== ${bin##*/}"
    if command -v timeout >/dev/null 2>&1; then
        timeout "$limit" ${TEST_WRAPPER:-} "$bin"
    else
        ${TEST_WRAPPER:-} "$bin"
    fi
    rc=$?
    if [ "$rc" -ne 0 ]; then
        [ "$rc" -eq 124 ] && echo "${bin##*/}: did not finish within $limit s" >&2
        failed="$failed ${bin##*/}"
    fi
done
if [ -n "$failed" ]; then
    echo "FAILED:$failed" >&2
    exit 1
fi
echo "all $total test programs passed"

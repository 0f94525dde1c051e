#!/bin/sh
# tests/valgrind-examples.sh - run the demo's walk through every example
# with each program under valgrind memcheck, then check what valgrind saw:
# no memory errors, no definite leaks, and no descriptor the program opened
# itself still open when it exits. Run by `make valgrind-examples` (and CI).
#
#   sh tests/valgrind-examples.sh [DIR]     DIR: the built examples
set -u
dir=${1:-build/examples}
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT

if ! command -v valgrind >/dev/null 2>&1; then
    echo "valgrind-examples: valgrind is not installed" >&2
    exit 1
fi

NETX_DEMO_WRAP="valgrind -q --error-exitcode=1 --leak-check=full \
--errors-for-leak-kinds=definite --track-fds=yes --log-file=$logs/%p.log" \
    bash examples/demo.sh "$dir" > "$logs/demo.out" 2>&1
status=$?
if [ "$status" != 0 ]; then
    echo "valgrind-examples: the demo failed under valgrind (status $status):" >&2
    tail -n 30 "$logs/demo.out" >&2
    cat "$logs"/*.log >&2
    exit 1
fi

# Each log holds one program's report. With -q it is silent unless there
# was an error, except for --track-fds, which always lists what is open at
# exit: the three standard streams, what the program inherited (marked so),
# the pipes of netx_stop_on() (made once, they live as long as the process,
# as the signal handler that writes to them does) and anything the program
# forgot to close - which is what we look for.
bad=0
runs=0
for log in "$logs"/*.log; do
    runs=$((runs + 1))
    leaked=$(awk '
        /Open (file descriptor|AF_[A-Z0-9]+ socket) [0-9]+/ { fd = $0; pending = 1; next }
        pending && /inherited from parent/ { pending = 0; next }
        pending && /by 0x[0-9A-F]+: netx_stop_on \(/ { pending = 0; next }
        pending && /^==[0-9]+== *$/ { print fd; pending = 0 }
        END { if (pending) print fd }' "$log")
    if [ -n "$leaked" ] || grep -q -E "ERROR SUMMARY: [1-9]|definitely lost|Invalid|uninitialised" "$log"; then
        echo "valgrind-examples: $(basename "$log"):" >&2
        cat "$log" >&2
        bad=1
    fi
done
if [ "$runs" -lt 10 ]; then
    echo "valgrind-examples: only $runs programs ran under valgrind; expected every example" >&2
    exit 1
fi
if [ "$bad" != 0 ]; then
    exit 1
fi
echo "valgrind-examples: $runs program runs, no errors, no leaks, no descriptor left open"

#!/usr/bin/env bash
# tools/diagrams.sh - the tutorial's pictures, drawn from real runs.
#
#   bash tools/diagrams.sh BUILD IMGDIR           make diagrams: write them
#   bash tools/diagrams.sh --check BUILD IMGDIR   make test: compare them
#
# Each picture comes from running examples from BUILD/examples on loopback
# with NETX_TRACE=1 and giving their traces to BUILD/tools/timeline:
#
#   tcp-timeline.svg  hello_client and hello_server: the connection, the two
#                     messages and the two FINs
#   event-loop.svg    event_server and three echo_clients: one wait on the
#                     poller reports three ready sockets
#
# Without --check the pictures are written into IMGDIR. With --check each
# fresh picture must be byte for byte the one in IMGDIR, or the check fails
# and says to run `make diagrams` and commit: a library change that changes
# what the programs do is then seen in the tutorial's pictures too.
#
# So a picture must come out the same from every run. timeline orders calls
# by what waited for what, never by the clock, and hides port numbers; this
# script makes the runs themselves the same: the address is 127.0.0.1
# ("localhost" may be ::1 too), no descriptor is inherited (the programs'
# descriptor numbers are in the pictures), and where several clients meet
# one server, SIGSTOP and SIGCONT fix the order in which things reach it.
set -u -o pipefail

check=0
if [ "${1:-}" = --check ]; then
    check=1
    shift
fi
if [ $# -ne 2 ]; then
    echo "usage: bash tools/diagrams.sh [--check] BUILD IMGDIR" >&2
    exit 2
fi
bin=$1/examples
timeline=$1/tools/timeline
img=$2
tmp=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill -CONT "$pid" 2>/dev/null
        kill "$pid" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

# Descriptors 3 and up, inherited from make or a terminal, would shift the
# numbers the programs' sockets get. (Not 255: bash reads this script
# through it, and marks it close-on-exec.) Standard input is /dev/null, so
# that a closed one cannot lend its number 0 to a socket either.
for fd in $(seq 3 254); do
    eval "exec $fd>&-"
done
exec </dev/null
unset NETX_POLLER # event_server on its default, epoll; poll(2) draws differently
export NETX_TRACE=1

fail() {
    echo "diagrams: $*" >&2
    exit 1
}

# await FILE PATTERN N: wait, at most 10 s, until N lines of FILE match.
await() {
    local i
    for i in $(seq 200); do
        [ "$(grep -c -- "$2" "$1" 2>/dev/null)" -ge "$3" ] 2>/dev/null && return 0
        sleep 0.05
    done
    fail "$1: waited 10 s for $3 lines matching \"$2\"; it holds: $(cat "$1" 2>&1)"
}

# pause PID: stop it with SIGSTOP, and wait until it has stopped. kill
# returns before the signal takes effect, and a process still running
# could take what was meant to wait for it: a server in epoll_wait() that
# is woken by a FIN and by SIGSTOP at once returns the FIN first.
pause() {
    local i stat
    kill -STOP "$1"
    for i in $(seq 500); do
        # /proc/PID/stat: "PID (NAME) STATE ..."; T is stopped.
        stat=$(cat "/proc/$1/stat" 2>/dev/null)
        stat=${stat##*) }
        [ "${stat%% *}" = T ] && return 0
        sleep 0.01
    done
    fail "process $1 did not stop"
}

# await_fins PORT N: wait, at most 10 s, until N connections to PORT on
# this host have had their FIN: TCP state CLOSE_WAIT, 08 in /proc/net/tcp.
await_fins() {
    local i
    for i in $(seq 200); do
        [ "$(awk -v port="$(printf ':%04X' "$1")" \
            'substr($2, length($2) - 4) == port && $4 == "08"' /proc/net/tcp | wc -l)" -ge "$2" ] &&
            return 0
        sleep 0.05
    done
    fail "waited 10 s for $2 FINs to reach port $1"
}

# start NAME ARGS...: a server in the background, its trace in
# $tmp/NAME.trace; sets $server to its PID and $port to the port it says
# it listens on (it was started on -p 0, any free port).
start() {
    local name=$1
    shift
    "$bin/$name" "$@" > "$tmp/$name.out" 2> "$tmp/$name.trace" &
    server=$!
    pids+=("$server")
    await "$tmp/$name.out" '^listening on ' 1
    port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$tmp/$name.out")
}

# finish PID: it must exit 0. Once it is waited for, its PID is no longer
# ours to signal.
finish() {
    local status=0 pid left=()
    wait "$1" || status=$?
    for pid in "${pids[@]}"; do
        [ "$pid" = "$1" ] || left+=("$pid")
    done
    pids=("${left[@]}")
    [ "$status" = 0 ] || fail "a program exited with status $status"
}

# Workflow steps 1-5 on both sides: hello_client and hello_server.
hello() {
    start hello_server -H 127.0.0.1 -p 0
    "$bin/hello_client" -H 127.0.0.1 -p "$port" > "$tmp/hello_client.out" \
        2> "$tmp/hello_client.trace" || fail "hello_client failed: $(cat "$tmp/hello_client.trace")"
    finish "$server"
    "$timeline" -t "A TCP connection, call by call: hello_client and hello_server" \
        -d "The calls of the article's first client and server, from the server's socket to both closes." \
        hello_client="$tmp/hello_client.trace" hello_server="$tmp/hello_server.trace"
}

# One wait, three ready sockets. The server is paused (SIGSTOP) while the
# three clients connect and send, one after the other, so that all three
# messages are waiting when it next asks the poller; each client is paused
# once it has sent, until the server has answered all three and waits
# again; then the server is paused while the clients read their echo and
# close, so that the three FINs too are read after one wait.
event_loop() {
    local c
    local -A client
    start event_server -H 127.0.0.1 -p 0
    pause "$server"
    for c in A B C; do
        "$bin/echo_client" -H 127.0.0.1 -p "$port" "client $c" > "$tmp/$c.out" 2> "$tmp/$c.trace" &
        client[$c]=$!
        pids+=("${client[$c]}")
        await "$tmp/$c.trace" '^netx: send(' 1
        pause "${client[$c]}"
    done
    kill -CONT "$server"
    await "$tmp/event_server.trace" '^netx: send(' 3
    pause "$server"
    local n=0
    for c in A B C; do
        kill -CONT "${client[$c]}"
        finish "${client[$c]}"
        # Its FIN must reach the server's socket before the next client
        # sends one: the poller reports them in the order they came.
        n=$((n + 1))
        await_fins "$port" "$n"
    done
    kill -CONT "$server"
    await "$tmp/event_server.trace" '^netx: close(' 3
    kill -TERM "$server"
    finish "$server"
    "$timeline" -t "An event loop: one wait on the poller, three ready sockets" \
        -d "event_server serves three echo_clients in one thread: one epoll_wait reports all three clients' messages, and a later one their three FINs." \
        "echo_client:A=$tmp/A.trace" "echo_client:B=$tmp/B.trace" "echo_client:C=$tmp/C.trace" \
        event_server="$tmp/event_server.trace"
}

# The event loop is drawn on Linux only: event_server waits with epoll
# there (poll elsewhere, another picture), and /proc shows when a process
# has stopped and when a FIN has come.
pictures="tcp-timeline:hello"
if [ -r /proc/net/tcp ]; then
    pictures="$pictures event-loop:event_loop"
else
    echo "diagrams: event-loop.svg skipped: it is drawn on Linux only"
fi
stale=""
for picture in $pictures; do
    name=${picture%%:*}.svg
    "${picture#*:}" > "$tmp/$name" || fail "$name: timeline failed"
    if [ "$check" = 0 ]; then
        mkdir -p "$img" && cp "$tmp/$name" "$img/$name" || fail "cannot write $img/$name"
        echo "diagrams: wrote $img/$name"
    elif cmp -s "$tmp/$name" "$img/$name"; then
        echo "diagrams: $img/$name is what a fresh run draws"
    else
        echo "diagrams: $img/$name is not what a fresh run draws:" >&2
        diff -u "$img/$name" "$tmp/$name" 2>&1 | head -n 30 >&2
        stale="$stale $img/$name"
    fi
done
if [ -n "$stale" ]; then
    echo "diagrams: stale:$stale" >&2
    echo "diagrams: run \`make diagrams\` and commit the pictures it writes" >&2
    exit 1
fi

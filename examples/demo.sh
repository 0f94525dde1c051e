#!/usr/bin/env bash
# examples/demo.sh - `make demo`: walk through the article's steps live on
# loopback, with NETX_TRACE=1 so every socket call shows as it happens.
#
#   bash examples/demo.sh [DIR]    DIR holds the built examples (build/examples)
#
# NETX_DEMO_WRAP, if set, is put in front of every program (tests use it to
# run each example under valgrind). Every program must exit 0, the servers
# too when SIGTERM stops them; otherwise the demo fails.
#
# Every server is started on a free port (-p 0), stopped by its own PID, and
# every wait is bounded, so the demo ends by itself in a few seconds.
set -u -o pipefail
dir=${1:-build/examples}
wrap=${NETX_DEMO_WRAP:-}
export NETX_TRACE=1
tmp=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null
    done
    rm -rf "$tmp"
}
trap cleanup EXIT

# Headings in bold on a terminal, plain in a file or a pipe.
if [ -t 1 ]; then
    part() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
    part() { printf '\n== %s\n' "$*"; }
fi
say() { printf '   (%s)\n' "$*"; }

# start NAME ARGS... : run a server in the background, its output (stdout and
# the trace on stderr) shown live with a "server |" prefix, and set $port
# from its "listening on ADDR:PORT" line.
start() {
    local name=$1 log="$tmp/$1.log"
    shift
    : > "$log"
    $wrap "$dir/$name" "$@" > >(tee -a "$log" | sed -u "s/^/   $name | /") 2>&1 &
    server_pid=$!
    pids+=("$server_pid")
    port=""
    for _ in $(seq 200); do
        port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$log")
        [ -n "$port" ] && return 0
        sleep 0.05
    done
    echo "demo: $name did not start listening; its output:" >&2
    cat "$log" >&2
    exit 1
}

# client NAME ARGS... : run a client to completion, output prefixed.
client() {
    local name=$1
    shift
    $wrap "$dir/$name" "$@" 2>&1 | sed -u "s/^/   $name | /"
    local status=${PIPESTATUS[0]}
    if [ "$status" != 0 ]; then
        echo "demo: $name exited with status $status" >&2
    fi
    return "$status"
}

# stop: end the current server with SIGTERM, as Ctrl-C would, and wait.
stop() {
    kill -TERM "$server_pid" 2>/dev/null
    finish
}

# finish: wait for the current server to end by itself; it must exit 0.
finish() {
    local status
    wait "$server_pid"
    status=$?
    sleep 0.1 # let the last lines of its output through
    if [ "$status" != 0 ]; then
        echo "demo: the server exited with status $status" >&2
        exit 1
    fi
}

part "Guide steps 1-4: hello_server and hello_client (server.py and client.py in C)"
say "the server creates a socket, binds, listens and accepts; the client connects"
start hello_server -p 0
client hello_client -p "$port" || exit 1
finish

part "Workflow step 4, exchange data: echo_server and echo_client"
say "every line the client sends comes back; the server serves one client at a time"
start echo_server -p 0
client echo_client -p "$port" "Hello, echo!" "one more line" || exit 1
stop

part "Guide step 5, enhance with threads: threaded_server with three clients at once"
say "a thread per client, so the three are served together"
start threaded_server -p 0 -n 8
NETX_TRACE=0 client echo_client -p "$port" "client A" &
a=$!
NETX_TRACE=0 client echo_client -p "$port" "client B" &
b=$!
NETX_TRACE=0 client echo_client -p "$port" "client C" &
c=$!
wait "$a" && wait "$b" && wait "$c" || exit 1
stop

part "Guide step 6, switch to UDP: udp_server and udp_client"
say "no listen, no accept: recvfrom tells the server where to send each reply"
start udp_server -p 0
client udp_client -p "$port" "a datagram" "another one" || exit 1
stop

part "Architecture 4, event-driven systems: poll_server, one thread for many clients"
say "non-blocking sockets and poll(): the same echo, for thousands of clients"
start poll_server -p 0
NETX_TRACE=0 client echo_client -p "$port" "served by poll()" || exit 1
stop

part "Architecture 4, event-driven at scale: event_server, on netx_poller (epoll)"
say "the same echo on the library's readiness API and output buffer: each wait"
say "reports only the ready sockets, so idle clients cost nothing"
start event_server -p 0
NETX_TRACE=0 client echo_client -p "$port" "served by epoll" "and a second line" || exit 1
stop

part "Stopping gracefully: Ctrl-C lets a client finish what it asked for"
say "SIGTERM while a client is connected: the server stops accepting, and the"
say "client still gets its echo before the server exits (a second signal would"
say "stop it at once)"
start event_server -p 0 -g 5
exec 3<>"/dev/tcp/127.0.0.1/$port"
kill -TERM "$server_pid"
sleep 0.2
printf 'sent after the stop signal\n' >&3
IFS= read -r -t 5 line <&3 && echo "   (client) | got back: $line"
exec 3>&-
finish

# Guide step 7 needs a certificate: a throwaway CA and a certificate for
# localhost, made here with the openssl command, valid for a day.
make_certs() {
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
        -subj "/CN=libnetx demo CA" -keyout "$tmp/ca-key.pem" -out "$tmp/ca.pem" 2>/dev/null &&
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -subj "/CN=localhost" -keyout "$tmp/server-key.pem" -out "$tmp/server.csr" \
            2>/dev/null &&
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' > "$tmp/san.ext" &&
        openssl x509 -req -in "$tmp/server.csr" -CA "$tmp/ca.pem" -CAkey "$tmp/ca-key.pem" \
            -CAcreateserial -days 1 -extfile "$tmp/san.ext" -out "$tmp/server.pem" 2>/dev/null
}

if [ -x "$dir/tls_server" ] && [ -x "$dir/tls_client" ]; then
    part "Guide step 7, secure your connection: tls_server and tls_client"
    if command -v openssl >/dev/null 2>&1 && make_certs; then
        say "the client checks the server's certificate against our throwaway CA"
        say "and its name, then everything goes encrypted; the trace shows the handshake"
        start tls_server -p 0 -c "$tmp/server.pem" -k "$tmp/server-key.pem"
        client tls_client -p "$port" -C "$tmp/ca.pem" "Hello over TLS!" || exit 1
        say "without -C the system's CAs do not know our CA: refused, and it says why"
        NETX_TRACE=0 $wrap "$dir/tls_client" -p "$port" "not sent" 2>&1 |
            sed -u "s/^/   tls_client | /"
        stop
    else
        say "skipped: the openssl command is needed to make a certificate"
    fi
fi

part "Use case 1, the web: http_server, files over HTTP/1.1, and curl as its client"
say "GET and HEAD of the files under a directory, on the event loop; curl, a"
say "browser or http_client all speak to it"
mkdir -p "$tmp/www"
printf '<!doctype html>\n<title>libnetx</title>\n<p>Hello, web!</p>\n' > "$tmp/www/index.html"
NETX_TRACE=0 start http_server -p 0 -r "$tmp/www" -l
if command -v curl >/dev/null 2>&1; then
    say "curl -i http://127.0.0.1:$port/"
    curl -sS -i --max-time 5 "http://127.0.0.1:$port/" 2>&1 | sed -u 's/^/   curl | /'
    [ "${PIPESTATUS[0]}" = 0 ] || exit 1
else
    say "curl is not installed: http_client alone"
fi
say "http_client, libnetx's own client: a missing file is a 404 and exit 1"
NETX_TRACE=0 client http_client "http://127.0.0.1:$port/index.html" || exit 1
NETX_TRACE=0 $wrap "$dir/http_client" "http://127.0.0.1:$port/missing.html" 2>&1 |
    sed -u 's/^/   http_client | /'
[ "${PIPESTATUS[0]}" = 1 ] || exit 1
stop

part "Use case 2, real-time chat: chat_server, and two chat_clients talking"
say "every line goes to everyone else with its sender's name; each client"
say "waits on its keyboard and the socket at once (netx_poller)"
NETX_TRACE=0 start chat_server -p 0
mkfifo "$tmp/alice.in"
NETX_TRACE=0 $wrap "$dir/chat_client" -p "$port" -n alice < "$tmp/alice.in" 2>&1 |
    sed -u 's/^/   alice | /' &
alice=$!
exec 4> "$tmp/alice.in"
sleep 0.3
{ sleep 0.3; echo "hi alice, bob here"; sleep 0.3; } |
    NETX_TRACE=0 $wrap "$dir/chat_client" -p "$port" -n bob 2>&1 | sed -u 's/^/   bob   | /' &
bob=$!
sleep 0.5
echo "hello bob!" >&4
wait "$bob" || exit 1
exec 4>&-
wait "$alice" || exit 1
stop

part "Architecture 6, load balancing with failover: tcp_proxy in front of two echo servers"
say "each client goes to the next backend that is up; when one dies, the"
say "health checks mark it DOWN and the clients never notice"
NETX_TRACE=0 start event_server -p 0
backend_a=$server_pid
port_a=$port
NETX_TRACE=0 start event_server -p 0
backend_b=$server_pid
port_b=$port
NETX_TRACE=0 start tcp_proxy -p 0 -b "127.0.0.1:$port_a" -b "127.0.0.1:$port_b" --check-ms 100
proxy=$server_pid
NETX_TRACE=0 client echo_client -p "$port" "to the first backend" || exit 1
NETX_TRACE=0 client echo_client -p "$port" "to the second backend" || exit 1
say "stopping one backend: the proxy says DOWN, and still every client is served"
server_pid=$backend_a
stop
sleep 0.5
NETX_TRACE=0 client echo_client -p "$port" "failed over" || exit 1
NETX_TRACE=0 client echo_client -p "$port" "and again" || exit 1
server_pid=$proxy
stop
server_pid=$backend_b
stop

part "Workflow step 5, close: every connection closed; the demo is over"

#!/usr/bin/env bash
# bench/run.sh - the benchmark behind `make bench` (docs/performance.md says
# what every figure means).
#
#   bash bench/run.sh TREE OUT
#
# TREE is a build tree holding examples/ (built with -O2 by `make bench`);
# OUT holds the bench programs (loadgen, raw_*_echo, rtt_insns) and receives
# the results: results.csv (the table), checks.csv (each target, met or
# not), runs.csv (every single run), ratios.svg (the chart), machine.txt,
# and logs/ with every program's output.
#
# Each example server is measured against a baseline doing the same job on
# raw system calls, and the two are interleaved finely: in every round both
# are started fresh and one load generator run drives them in turns - raw,
# libnetx, raw, libnetx, ... - in 100 ms slices (pingpong, udp), 32 MiB
# transfers (bulk) or single round trips (latency). Whatever the machine is
# doing meanwhile then lands on both alike; two runs one after the other
# would each meet a different machine, and on a shared or virtual machine
# that difference is larger than the few percent being measured. Every
# ratio is taken within one round, and the median over the rounds is
# reported with its spread.
#
# The servers run on CPU 0 and the load generator on CPU 1 when taskset is
# there, so they never queue behind each other. When the system allows it,
# both run at nice -10 too, so that other work on the machine (a build, a
# fuzzer) disturbs them less; BENCH_NICE=0 turns that off.
#
# Environment: BENCH (which parts to run, below; unset: all), BENCH_MS
# (measuring time per round, default 2000), BENCH_ROUNDS (default 5),
# BENCH_ROUNDS_MANY (rounds of the 10,000-connection scenarios, default 3),
# BENCH_CONNS_MANY (default 10000), BENCH_RTT_K (round trips counted by
# callgrind, default 20000), BENCH_NICE (default -10), BENCH_PIN (default
# 1), BENCH_STRICT (1: exit 1 when a target is missed; by default the run
# succeeds and the table says what was missed), BENCH_TLS (1 when the TLS
# programs were built: `make bench TLS=1` sets it).
#
# BENCH names the parts to run, separated by spaces or commas:
#   poll    poll_server: 50 connections, and latency on one
#   thread  threaded_server: 50 connections, latency, bulk
#   udp     udp_server
#   many    10,000 connections at once, then 50 busy beside them idle:
#           poll_server, and event_server on epoll and on poll
#   event   event_server on epoll and on poll: 50 connections, and its
#           10,000-connection scenarios (the same as in many)
#   insns   instructions per round trip (callgrind)
#   http    http_server against nginx, a 1 KiB and a 1 MiB file, load from
#           wrk (skipped, in one line, when nginx or wrk is missing)
#   tls     tls_server against raw_tls_echo (on OpenSSL directly):
#           handshakes per second and bulk echo (skipped, in one line,
#           without BENCH_TLS=1)
#   proxy   tcp_proxy against HAProxy (mode tcp, one thread), the same
#           echo backend behind both: 50 connections kept open, a new
#           connection per request, and the latency each adds (skipped,
#           in one line, when haproxy is missing)
# A scenario in two parts runs once. An unknown name: exit status 2.
#
# Every wait is bounded, and only processes started here are ever
# signalled, each by its own PID.

set -u

tree=${1:-build/bench/tree}
out=${2:-build/bench}
here=$(dirname "$0")
ex=$tree/examples
bin=$out
logs=$out/logs
ms=${BENCH_MS:-2000}
rounds=${BENCH_ROUNDS:-5}
many_rounds=${BENCH_ROUNDS_MANY:-3}
many=${BENCH_CONNS_MANY:-10000}
rtt_k=${BENCH_RTT_K:-20000}
want_nice=${BENCH_NICE:--10}
want_pin=${BENCH_PIN:-1}

# The parts to run (BENCH): " poll many " and so on, spaces around each.
all_parts="poll thread udp many event insns http tls proxy"
selected=" "
for p in $(echo "${BENCH:-$all_parts}" | tr ',' ' '); do
    case " $all_parts " in
    *" $p "*) selected="$selected$p " ;;
    *)
        echo "bench: BENCH=\"${BENCH:-}\": no part \"$p\"; the parts are: $all_parts (unset: all)" >&2
        exit 2
        ;;
    esac
done
if [ "$selected" = " " ]; then
    selected=" $all_parts "
fi

# part NAME...: does BENCH ask for any of these parts?
part() {
    local p
    for p in "$@"; do
        case $selected in
        *" $p "*) return 0 ;;
        esac
    done
    return 1
}

for f in "$ex/poll_server" "$ex/threaded_server" "$ex/udp_server" "$ex/event_server" \
    "$bin/loadgen" "$bin/raw_epoll_echo" "$bin/raw_thread_echo" "$bin/raw_udp_echo" \
    "$bin/rtt_insns"; do
    if [ ! -x "$f" ]; then
        echo "bench: $f is missing; run 'make bench'" >&2
        exit 1
    fi
done
if part http; then
    [ -x "$ex/http_server" ] || {
        echo "bench: $ex/http_server is missing; run 'make bench'" >&2
        exit 1
    }
fi
if part proxy; then
    [ -x "$ex/tcp_proxy" ] || {
        echo "bench: $ex/tcp_proxy is missing; run 'make bench'" >&2
        exit 1
    }
fi
if part tls && [ "${BENCH_TLS:-}" = 1 ]; then
    for f in "$ex/tls_server" "$bin/raw_tls_echo" "$bin/tls_loadgen"; do
        if [ ! -x "$f" ]; then
            echo "bench: $f is missing; run 'make bench TLS=1'" >&2
            exit 1
        fi
    done
fi
mkdir -p "$logs"
rm -f "$logs"/*
runs=$out/runs.csv
echo "scenario,server,round,unit,value,p50_us,p99_us,cpu_us_per_op,mem_B_per_conn,seconds" >"$runs"

# --------------------------------------------------------------------------
# Processes: every PID started here is remembered, and only those are ever
# signalled.
# --------------------------------------------------------------------------
started=()
# shellcheck disable=SC2317 # called through trap
cleanup() {
    local pid
    for pid in "${started[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null
        fi
    done
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

ncpu=$(nproc 2>/dev/null || echo 1)
srv_run=()
lg_run=()
setup=""
if [ "$want_nice" != 0 ] && nice -n "$want_nice" true 2>/dev/null &&
    [ "$(nice -n "$want_nice" nice)" -lt "$(nice)" ]; then
    srv_run=(nice -n "$want_nice")
    lg_run=(nice -n "$want_nice")
    setup="nice $want_nice"
else
    setup="normal priority"
fi
if [ "$want_pin" = 1 ] && command -v taskset >/dev/null 2>&1 && [ "$ncpu" -ge 2 ]; then
    srv_run+=(taskset -c 0)
    lg_run+=(taskset -c 1)
    setup="$setup, servers on CPU 0, load generator on CPU 1"
else
    setup="$setup, not pinned"
fi
limit=()
if command -v timeout >/dev/null 2>&1; then
    limit=(timeout -k 5 90)
fi
hz=$(getconf CLK_TCK 2>/dev/null || echo 100)

# utime + stime of a process, all its threads (ended ones included), in
# clock ticks.
cpu_ticks() {
    awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

rss_kb() {
    awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0
}

slab_kb() {
    awk '/^Slab:/ { print $2 }' /proc/meminfo
}

# The value of KEY=... in a load generator's result line (on stdin).
field() {
    awk -v k="$1" '{
        for (i = 1; i <= NF; i++) {
            n = index($i, "=")
            if (n > 0 && substr($i, 1, n - 1) == k) {
                v = substr($i, n + 1); gsub(/"/, "", v); print v; exit
            }
        }
    }'
}

# start_server LOGNAME PROGRAM [ARGS...]: start it on 127.0.0.1, port 0,
# wait (up to 5 s) for its "listening on ADDR:PORT"; sets SRV_PID, SRV_PORT.
start_server() {
    local name=$1
    shift
    local log=$logs/$name.out
    : >"$log"
    "${srv_run[@]}" "$@" -H 127.0.0.1 -p 0 >"$log" 2>>"$logs/$name.err" &
    SRV_PID=$!
    started+=("$SRV_PID")
    SRV_PORT=""
    local line
    for _ in $(seq 200); do
        line=$(grep -m1 '^listening on ' "$log" 2>/dev/null)
        if [ -n "$line" ]; then
            SRV_PORT=${line##*:}
            return 0
        fi
        if ! kill -0 "$SRV_PID" 2>/dev/null; then
            break
        fi
        sleep 0.025
    done
    echo "bench: $name did not start (see $logs/$name.err)" >&2
    stop_server "$SRV_PID"
    return 1
}

# stop_server PID [SIGNAL]: SIGNAL (default SIGTERM), up to 5 s to finish,
# SIGKILL only if it hangs.
stop_server() {
    local pid=$1 sig=${2:-TERM} rc
    kill -"$sig" "$pid" 2>/dev/null
    for _ in $(seq 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    if kill -0 "$pid" 2>/dev/null; then
        echo "bench: PID $pid ignored SIG$sig for 5 s; killing it" >&2
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "bench: server PID $pid exited with status $rc" >&2
    fi
}

failures=0

# One value of a result line: KEY with the suffix of a side (_a, _b).
side_field() {
    echo "$1" | field "$2$3"
}

# pair SCENARIO UNIT RAWNAME "RAWCMD" NETXNAME "NETXCMD" LOADGEN-ARGS...
#
# $rounds rounds. In each, both servers are started fresh, side by side on
# the server CPU, and one load generator run drives them in turns (raw =
# A, libnetx = B): 100 ms slices for pingpong and udp, 32 MiB transfers
# for bulk, single round trips for abping. Each server's CPU time is read
# before and after, and one line per server goes to runs.csv.
pair() {
    local scen=$1 unit=$2 rname=$3 rcmd=$4 nname=$5 ncmd=$6
    shift 6
    local r
    for r in $(seq "$rounds"); do
        # shellcheck disable=SC2086 # the commands are split into words on purpose
        ab_round "$scen" "$unit" "$r" "$rname" "$rcmd" "$nname" "$ncmd" "$@"
    done
}

ab_round() {
    local scen=$1 unit=$2 round=$3 rname=$4 rcmd=$5 nname=$6 ncmd=$7
    shift 7
    local mode=$1
    shift
    local tag=$scen.$round
    local pa pb porta portb
    # shellcheck disable=SC2086
    start_server "$tag.$rname" $rcmd || {
        failures=$((failures + 1))
        return
    }
    pa=$SRV_PID
    porta=$SRV_PORT
    # shellcheck disable=SC2086
    start_server "$tag.$nname" $ncmd || {
        failures=$((failures + 1))
        stop_server "$pa"
        return
    }
    pb=$SRV_PID
    portb=$SRV_PORT
    local a0 b0 a1 b1 line rc
    a0=$(ab_cpu "$pa")
    b0=$(ab_cpu "$pb")
    line=$("${limit[@]}" "${lg_run[@]}" "${AB_LG:-$bin/loadgen}" "$mode" -p "$porta" -q "$portb" \
        "$@" 2>>"$logs/$tag.loadgen.err")
    rc=$?
    a1=$(ab_cpu "$pa")
    b1=$(ab_cpu "$pb")
    stop_server "$pa"
    stop_server "$pb"
    echo "$tag: $line" >>"$logs/loadgen.out"
    if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
        echo "bench: $scen round $round: the load generator failed (status $rc):" >&2
        sed 's/^/  /' "$logs/$tag.loadgen.err" >&2
        failures=$((failures + 1))
        return
    fi
    local k name t0 t1 value total p50 p99 cpu
    for k in a b; do
        if [ "$k" = a ]; then
            name=$rname t0=$a0 t1=$a1
        else
            name=$nname t0=$b0 t1=$b1
        fi
        p50=$(side_field "$line" p50_"$k" _us)
        p99=$(side_field "$line" p99_"$k" _us)
        case $mode in
        bulk)
            value=$(side_field "$line" mb_s _$k)
            total=$(side_field "$line" total _$k)
            # CPU per megabyte echoed.
            cpu=$(awk -v a="$t0" -v b="$t1" -v n="$total" \
                'BEGIN { printf "%.1f", (b - a) / (n / 1e6) }')
            ;;
        abping)
            # The figure is the median latency itself.
            value=$p50
            total=$(echo "$line" | field total)
            cpu=$(awk -v a="$t0" -v b="$t1" -v n="$total" 'BEGIN { printf "%.3f", (b - a) / n }')
            ;;
        *)
            value=$(side_field "$line" rps _$k)
            total=$(side_field "$line" total _$k)
            # CPU per request (per handshake), every one of the run counted
            # (warm-up and slice ends too).
            cpu=$(awk -v a="$t0" -v b="$t1" -v n="$total" 'BEGIN { printf "%.3f", (b - a) / n }')
            ;;
        esac
        echo "$scen,$name,$round,$unit,$value,$p50,$p99,$cpu,,$(echo "$line" | field seconds)" \
            >>"$runs"
        printf '  %-14s %-17s #%d  %9s %-6s p50 %8s p99 %9s us  cpu %7s us/op\n' \
            "$scen" "$name" "$round" "$value" "$unit" "${p50:--}" "${p99:--}" "$cpu"
    done
}

# A server's CPU time in microseconds as ab_round() reads it: utime +
# stime in clock ticks (every thread, ended ones included), or with
# AB_CPU=ns the kernel's exact count (cpu_us, below), for servers of one
# thread whose rounds take only tens of ticks (a TLS handshake is ~0.4 ms).
ab_cpu() {
    if [ "${AB_CPU:-ticks}" = ns ]; then
        cpu_us "$1"
    else
        awk -v t="$(cpu_ticks "$1")" -v hz="$hz" 'BEGIN { printf "%.0f", t * 1e6 / hz }'
    fi
}

# CPU time of a process in microseconds, every thread that is still
# running: the kernel's exact count (/proc/PID/task/*/schedstat, in ns)
# where there is one, else utime + stime in clock ticks. The servers of the
# 10,000-connection rounds have one thread, and setting up 10,000
# connections takes only 15 to 30 ticks: too few to compare by.
cpu_us() {
    local us
    us=$(cat /proc/"$1"/task/*/schedstat 2>/dev/null |
        awk '{ s += $1 } END { if (NR > 0) printf "%.0f", s / 1000 }')
    if [ -z "$us" ]; then
        us=$(awk -v t="$(cpu_ticks "$1")" -v hz="$hz" 'BEGIN { printf "%.0f", t * 1e6 / hz }')
    fi
    echo "$us"
}

# hold_many TAG PID PORT: a load generator opens $many connections to the
# server PID at PORT, makes one round trip on each and holds them all open
# and idle. Waits (up to 60 s) until they are held, then sets MANY_LG (its
# PID, still holding), MANY_LINE (its result line), and the server's
# VmRSS growth per connection (MANY_MEM), CPU per connection (MANY_CPU) and
# the growth of the kernel's slab per connection (MANY_SLAB).
hold_many() {
    local tag=$1 pid=$2 port=$3
    local lgout=$logs/$tag.loadgen.out
    local rss0 rss1 c0 c1 slab0 slab1 ok
    sleep 0.1
    rss0=$(rss_kb "$pid")
    slab0=$(slab_kb)
    c0=$(cpu_us "$pid")
    : >"$lgout"
    "${limit[@]}" "${lg_run[@]}" "$bin/loadgen" many -p "$port" -c "$many" -k 80 \
        >"$lgout" 2>"$logs/$tag.loadgen.err" </dev/null &
    MANY_LG=$!
    started+=("$MANY_LG")
    for _ in $(seq 1200); do
        grep -q '^holding' "$lgout" 2>/dev/null && break
        kill -0 "$MANY_LG" 2>/dev/null || break
        sleep 0.05
    done
    sleep 0.2 # the server's last bookkeeping after the last echo
    rss1=$(rss_kb "$pid")
    slab1=$(slab_kb)
    c1=$(cpu_us "$pid")
    MANY_LINE=$(grep '^mode=many' "$lgout")
    ok=$(echo "$MANY_LINE" | field ok)
    MANY_MEM=$(awk -v a="$rss0" -v b="$rss1" -v n="$ok" \
        'BEGIN { printf "%.0f", (n > 0 ? (b - a) * 1024 / n : 0) }')
    MANY_CPU=$(awk -v a="$c0" -v b="$c1" -v n="$ok" \
        'BEGIN { printf "%.2f", (n > 0 ? (b - a) / n : 0) }')
    # Kernel memory (slab) per connection, both ends of each: context only,
    # the same whichever server holds the connections.
    MANY_SLAB=$(awk -v a="$slab0" -v b="$slab1" -v n="$ok" \
        'BEGIN { printf "%.0f", (n > 0 ? (b - a) * 1024 / n : 0) }')
    MANY_RSS="$rss0 -> $rss1"
}

# many_round SCEN_CONNS SCEN_BUSY RAWNAME "RAWCMD" NETXNAME "NETXCMD" ROUND
#
# Both servers are started side by side, and each gets $many connections
# that make one round trip and then stay open and idle (raw first in odd
# rounds, libnetx first in even ones): CPU and memory per connection, to
# SCEN_CONNS. Then, with all of them still open on both servers, 50 busy
# connections drive the two in turns, as pair() does: SCEN_BUSY.
many_round() {
    local sconn=$1 sbusy=$2 rname=$3 rcmd=$4 nname=$5 ncmd=$6 round=$7
    local pid=() port=() name=("$rname" "$nname") cmd=("$rcmd" "$ncmd")
    local k
    for k in 0 1; do
        # shellcheck disable=SC2086 # the commands are split into words on purpose
        if ! start_server "$sconn.$round.${name[k]}" ${cmd[k]}; then
            failures=$((failures + 1))
            [ "$k" = 1 ] && stop_server "${pid[0]}"
            return
        fi
        pid[k]=$SRV_PID
        port[k]=$SRV_PORT
    done
    local order="0 1" lg=() line=() mem=() cpu=() slab=() rss=()
    if [ $((round % 2)) = 0 ]; then
        order="1 0"
    fi
    for k in $order; do
        hold_many "$sconn.$round.${name[k]}" "${pid[k]}" "${port[k]}"
        lg[k]=$MANY_LG line[k]=$MANY_LINE mem[k]=$MANY_MEM cpu[k]=$MANY_CPU
        slab[k]=$MANY_SLAB rss[k]=$MANY_RSS
    done
    # With every connection still open and idle, 50 busy ones on top, the
    # two servers in turns: what the idle crowd costs the clients that are
    # talking.
    local held=1
    for k in 0 1; do
        grep -q '^holding' "$logs/$sconn.$round.${name[k]}.loadgen.out" 2>/dev/null || held=0
    done
    if [ "$held" = 1 ]; then
        local a0 b0 a1 b1 busy rc
        a0=$(cpu_us "${pid[0]}")
        b0=$(cpu_us "${pid[1]}")
        busy=$("${limit[@]}" "${lg_run[@]}" "$bin/loadgen" pingpong -p "${port[0]}" \
            -q "${port[1]}" -c 50 -s 64 -d "$ms" 2>>"$logs/$sbusy.$round.loadgen.err")
        rc=$?
        a1=$(cpu_us "${pid[0]}")
        b1=$(cpu_us "${pid[1]}")
        echo "$sbusy.$round: $busy" >>"$logs/loadgen.out"
        if [ "$rc" -ne 0 ] || [ -z "$busy" ]; then
            echo "bench: $sbusy round $round: the load generator failed (status $rc):" >&2
            sed 's/^/  /' "$logs/$sbusy.$round.loadgen.err" >&2
            failures=$((failures + 1))
        else
            local s t0 t1 bv bp bq bt bc
            for k in 0 1; do
                if [ "$k" = 0 ]; then
                    s=_a t0=$a0 t1=$a1
                else
                    s=_b t0=$b0 t1=$b1
                fi
                bv=$(side_field "$busy" rps "$s")
                bp=$(side_field "$busy" p50"$s" _us)
                bq=$(side_field "$busy" p99"$s" _us)
                bt=$(side_field "$busy" total "$s")
                bc=$(awk -v a="$t0" -v b="$t1" -v n="$bt" 'BEGIN { printf "%.3f", (b - a) / n }')
                echo "$sbusy,${name[k]},$round,req/s,$bv,$bp,$bq,$bc,,$ms" >>"$runs"
                printf '  %-14s %-17s #%d  %9s req/s p50 %8s p99 %9s us  cpu %7s us/op (50 busy + %s idle)\n' \
                    "$sbusy" "${name[k]}" "$round" "$bv" "$bp" "$bq" "$bc" "$many"
            done
        fi
    fi
    for k in 0 1; do
        kill -TERM "${lg[k]}" 2>/dev/null
        wait "${lg[k]}" 2>/dev/null
    done
    stop_server "${pid[0]}"
    stop_server "${pid[1]}"
    local ok secs
    for k in 0 1; do
        echo "$sconn.$round.${name[k]}: ${line[k]}" >>"$logs/loadgen.out"
        ok=$(echo "${line[k]}" | field ok)
        secs=$(echo "${line[k]}" | field seconds)
        if [ -z "$ok" ]; then
            echo "bench: $sconn ${name[k]} round $round: no result from the load generator" >&2
            sed 's/^/  /' "$logs/$sconn.$round.${name[k]}.loadgen.err" >&2
            failures=$((failures + 1))
            continue
        fi
        echo "$sconn,${name[k]},$round,conns,$ok,,,${cpu[k]},${mem[k]},$secs" >>"$runs"
        printf '  %-14s %-17s #%d  %s/%s served in %s s; VmRSS %s KiB = %s B per idle connection; cpu %s us/conn; kernel slab %s B/conn (both ends)\n' \
            "$sconn" "${name[k]}" "$round" "$ok" "$many" "$secs" "${rss[k]}" "${mem[k]}" \
            "${cpu[k]}" "${slab[k]}"
    done
}

# --------------------------------------------------------------------------
# http: http_server against nginx, load from wrk
# --------------------------------------------------------------------------

# cpu_us_all PID...: the CPU time of several processes (nginx's master and
# its worker), in microseconds.
cpu_us_all() {
    local pid sum=0
    for pid in "$@"; do
        sum=$((sum + $(cpu_us "$pid")))
    done
    echo "$sum"
}

# The nginx configuration of one round, in DIR: one worker, sendfile,
# keep-alive, no access log, listening on 127.0.0.1:PORT only, serving
# ROOT; its pid file, error log and temporary directories all in DIR.
# keepalive_requests is raised from nginx's default of 1000, after which it
# would close each connection and wrk reconnect: http_server keeps a
# connection for as many requests as the client sends.
nginx_conf() {
    local dir=$1 listen_port=$2 root=$3 m
    mkdir -p "$dir/logs" "$dir/tmp"
    {
        echo "# Written by bench/run.sh for one round of BENCH=http."
        echo "worker_processes 1;"
        echo "pid $dir/nginx.pid;"
        echo "error_log $dir/logs/error.log;"
        if [ "$(id -u)" = 0 ]; then
            # Started by root, nginx would hand its worker to "nobody", who
            # may not be allowed to read the tree: it stays who runs the
            # bench, as http_server does.
            echo "user $(id -un) $(id -gn);"
        fi
        echo "events { worker_connections 1024; }"
        echo "http {"
        echo "    access_log off;"
        echo "    sendfile on;"
        echo "    keepalive_timeout 65;"
        echo "    keepalive_requests 1000000;"
        echo "    default_type application/octet-stream;"
        echo "    client_body_temp_path $dir/tmp/client_body;"
        for m in proxy fastcgi uwsgi scgi; do
            if ! echo "$nginx_v" | grep -q -- "--without-http_${m}_module"; then
                echo "    ${m}_temp_path $dir/tmp/$m;"
            fi
        done
        echo "    server {"
        echo "        listen 127.0.0.1:$listen_port;"
        echo "        root $root;"
        echo "    }"
        echo "}"
    } >"$dir/nginx.conf"
}

# http_ready PORT PATH FILE LOG: wait (up to 5 s) until the server on PORT
# answers PATH with every byte of FILE.
http_ready() {
    local _
    for _ in $(seq 100); do
        if "$bin/loadgen" httpget -p "$1" -u "$2" -f "$3" >/dev/null 2>"$4"; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# start_nginx TAG ROOT: nginx on a free port of 127.0.0.1 (three tries,
# should another program take the port first); sets NGX_PID (the master,
# the child we started), NGX_PIDS (it and its worker) and NGX_PORT.
start_nginx() {
    local tag=$1 root=$2 dir=$out_abs/http/nginx try port pid w
    for try in 1 2 3; do
        port=$("$bin/loadgen" freeport) || return 1
        nginx_conf "$dir" "$port" "$root"
        "${srv_run[@]}" nginx -c "$dir/nginx.conf" -p "$dir" "${nginx_e[@]}" -g 'daemon off;' \
            >>"$logs/$tag.nginx.out" 2>>"$logs/$tag.nginx.err" </dev/null &
        pid=$!
        started+=("$pid")
        if http_ready "$port" /f1k.bin "$www/f1k.bin" "$logs/$tag.nginx.check"; then
            w=$(cat "/proc/$pid/task/$pid/children" 2>/dev/null || pgrep -P "$pid")
            NGX_PID=$pid
            NGX_PIDS="$pid $w"
            NGX_PORT=$port
            return 0
        fi
        stop_server "$pid"
        echo "bench: nginx did not start on port $port (try $try; see $logs/$tag.nginx.err)" >&2
    done
    return 1
}

# wrk_slice TAG PORT PATH: one wrk run of $http_s seconds, 50 connections
# kept alive, one thread, on the load generator's CPU. Sets W_REQ (answers),
# W_SECS, W_P50 and W_P99 (us), W_BYTES (bytes read per answer); returns 1
# (and says why) if wrk failed or saw an answer other than 2xx/3xx.
wrk_slice() {
    local tag=$1 port=$2 path=$3 f=$logs/$1.wrk
    "${limit[@]}" "${lg_run[@]}" wrk -t1 -c50 -d"${http_s}s" --latency \
        "http://127.0.0.1:$port$path" >"$f" 2>&1
    local rc=$?
    if [ "$rc" -ne 0 ] || grep -q 'Non-2xx' "$f"; then
        echo "bench: $tag: wrk failed (status $rc):" >&2
        sed 's/^/  /' "$f" >&2
        return 1
    fi
    # "  45682 requests in 2.00s, 55.68MB read", and the latency
    # percentiles "     50%    1.20ms" in us, ms or s.
    eval "$(awk '
        function us(t) {
            if (t ~ /us$/) return t + 0
            if (t ~ /ms$/) return (t + 0) * 1000
            if (t ~ /m$/) return (t + 0) * 60e6
            return (t + 0) * 1e6
        }
        function bytes(t,    u) {
            u = t; sub(/^[0-9.]+/, "", u)
            return (t + 0) * (u == "KB" ? 1024 : u == "MB" ? 1048576 : u == "GB" ? 1073741824 : \
                u == "TB" ? 1099511627776 : 1)
        }
        $2 == "requests" && $3 == "in" {
            req = $1; secs = $4; sub(/s,$/, "", secs); rd = bytes($5)
        }
        $1 == "50%" { p50 = us($2) }
        $1 == "99%" { p99 = us($2) }
        END {
            printf "W_REQ=%d W_SECS=%s W_P50=%.1f W_P99=%.1f W_BYTES=%.0f\n", req, secs, p50, p99,
                (req > 0 ? rd / req : 0)
        }' "$f")"
    if [ "$W_REQ" -le 0 ]; then
        echo "bench: $tag: wrk made no request (see $f)" >&2
        return 1
    fi
}

# http_round ROUND: nginx and http_server started side by side, serving the
# same directory; for each file, wrk drives them in turns, two slices each
# (nginx, http_server, http_server, nginx in odd rounds, the other way round
# in even ones), so that drift over the round lands on both. One line per
# server and file to runs.csv: req/s, the mean p50 and p99 of its slices,
# and its CPU (schedstat: nginx's worker and master) per request.
http_round() {
    local round=$1 k f scen size
    if ! start_nginx "s12_http.$round" "$www"; then
        failures=$((failures + 1))
        return
    fi
    if ! start_server "s12_http.$round.http_server" "$ex/http_server" -r "$www" -g 0; then
        failures=$((failures + 1))
        stop_server "$NGX_PID"
        return
    fi
    local hpid=$SRV_PID hport=$SRV_PORT
    local pids=("$NGX_PIDS" "$hpid") ports=("$NGX_PORT" "$hport")
    local names=(nginx http_server) order="0 1 1 0"
    if [ $((round % 2)) = 0 ]; then
        order="1 0 0 1"
    fi
    for size in 1k 1m; do
        scen=s12_http_$size
        f=/f$size.bin
        for k in 0 1; do
            if ! http_ready "${ports[k]}" "$f" "$www$f" "$logs/$scen.$round.${names[k]}.check"; then
                echo "bench: $scen round $round: ${names[k]} does not serve $f right:" >&2
                sed 's/^/  /' "$logs/$scen.$round.${names[k]}.check" >&2
                failures=$((failures + 1))
                continue 2
            fi
        done
        local req=(0 0) secs=(0 0) cpu=(0 0) p50=("" "") p99=("" "") bper=(0 0) c0 c1 n=0 ok=1
        for k in $order; do
            n=$((n + 1))
            # shellcheck disable=SC2086 # NGX_PIDS is a list
            c0=$(cpu_us_all ${pids[k]})
            if ! wrk_slice "$scen.$round.$n.${names[k]}" "${ports[k]}" "$f"; then
                ok=0
                break
            fi
            # shellcheck disable=SC2086
            c1=$(cpu_us_all ${pids[k]})
            req[k]=$((req[k] + W_REQ))
            secs[k]=$(awk -v a="${secs[k]}" -v b="$W_SECS" 'BEGIN { print a + b }')
            cpu[k]=$((cpu[k] + c1 - c0))
            p50[k]="${p50[k]} $W_P50"
            p99[k]="${p99[k]} $W_P99"
            bper[k]=$W_BYTES
            echo "$scen.$round.$n ${names[k]}: $W_REQ answers in $W_SECS s, $W_BYTES B each," \
                "p50 $W_P50 us, p99 $W_P99 us, cpu $((c1 - c0)) us" >>"$logs/loadgen.out"
        done
        if [ "$ok" = 0 ]; then
            failures=$((failures + 1))
            continue
        fi
        for k in 0 1; do
            local v m50 m99 c
            v=$(awk -v n="${req[k]}" -v s="${secs[k]}" 'BEGIN { printf "%.1f", n / s }')
            m50=$(echo "${p50[k]}" | awk '{ for (i = 1; i <= NF; i++) s += $i; printf "%.1f", s / NF }')
            m99=$(echo "${p99[k]}" | awk '{ for (i = 1; i <= NF; i++) s += $i; printf "%.1f", s / NF }')
            c=$(awk -v a="${cpu[k]}" -v n="${req[k]}" 'BEGIN { printf "%.3f", a / n }')
            echo "$scen,${names[k]},$round,req/s,$v,$m50,$m99,$c,,${secs[k]}" >>"$runs"
            printf '  %-14s %-17s #%d  %9s req/s  p50 %8s p99 %9s us  cpu %7s us/req  (%s B read per answer)\n' \
                "$scen" "${names[k]}" "$round" "$v" "$m50" "$m99" "$c" "${bper[k]}"
        done
    done
    stop_server "$NGX_PID"
    stop_server "$hpid"
}

# --------------------------------------------------------------------------
# proxy: tcp_proxy against HAProxy, the same echo backend behind both
# --------------------------------------------------------------------------

# The HAProxy configuration of one round, in DIR: one thread, mode tcp,
# listening on 127.0.0.1:PORT only, one server (the backend on
# 127.0.0.1:BPORT) checked as tcp_proxy checks its backends by default (a
# TCP connect every 2 s, UP after 2 good checks, DOWN after 3 failed), the
# same 1 s for a connect, the same 1,000 clients at most, and the idle
# timeout tcp_proxy is given (-t 60). No log, no stats socket.
haproxy_conf() {
    local dir=$1 listen_port=$2 bport=$3
    mkdir -p "$dir"
    {
        echo "# Written by bench/run.sh for one round of BENCH=proxy."
        echo "global"
        echo "    nbthread 1"
        echo "    maxconn 1000"
        echo "defaults"
        echo "    mode tcp"
        echo "    timeout connect 1s"
        echo "    timeout client 60s"
        echo "    timeout server 60s"
        echo "frontend fe"
        echo "    bind 127.0.0.1:$listen_port"
        echo "    default_backend be"
        echo "backend be"
        echo "    server backend 127.0.0.1:$bport check inter 2000 rise 2 fall 3"
    } >"$dir/haproxy.cfg"
}

# echo_ready PORT LOG: wait (up to 5 s) until one message sent to PORT
# comes back whole: the proxy is up, and so is its way to the backend.
echo_ready() {
    local _
    for _ in $(seq 100); do
        if "${limit[@]}" "$bin/loadgen" pingpong -p "$1" -c 1 -s 16 -d 1 -w 0 -n 1 \
            >/dev/null 2>"$2"; then
            return 0
        fi
        sleep 0.05
    done
    return 1
}

# start_haproxy TAG BPORT: HAProxy in the foreground (-db) on a free port of
# 127.0.0.1 (three tries, should another program take the port first),
# the backend on BPORT; sets HAP_PID (the process we started: one thread,
# no master) and HAP_PORT. It is stopped with SIGUSR1, its graceful stop
# (on SIGTERM it dies of the signal, exit status 143).
start_haproxy() {
    local tag=$1 bport=$2 dir=$out/proxy/haproxy try port pid
    for try in 1 2 3; do
        port=$("$bin/loadgen" freeport) || return 1
        haproxy_conf "$dir" "$port" "$bport"
        "${srv_run[@]}" haproxy -f "$dir/haproxy.cfg" -db \
            >>"$logs/$tag.haproxy.out" 2>>"$logs/$tag.haproxy.err" </dev/null &
        pid=$!
        started+=("$pid")
        if echo_ready "$port" "$logs/$tag.haproxy.check"; then
            HAP_PID=$pid
            HAP_PORT=$port
            return 0
        fi
        stop_server "$pid" USR1
        echo "bench: haproxy did not start on port $port (try $try; see $logs/$tag.haproxy.err)" >&2
    done
    return 1
}

# proxy_round ROUND: the backend (raw_epoll_echo), tcp_proxy and HAProxy
# started fresh, both proxies in front of that one backend. One load
# generator run drives the two proxies in turns, 100 ms slices, as pair()
# does (HAProxy first in odd rounds, tcp_proxy first in even ones): 50
# connections kept open (s14_proxy_50), then 50 clients that each open a
# new connection per request (s14_proxy_conn). Each proxy's CPU is the
# kernel's exact count (schedstat) over the run, divided by the requests
# it passed. Then one connection to each of the three - the backend
# directly and each proxy - round trips in turns (s14_proxy_lat): what a
# proxy adds is its p50 minus the backend's.
proxy_round() {
    local round=$1 k
    local tag=s14_proxy.$round
    if ! start_server "$tag.backend" "$bin/raw_epoll_echo"; then
        failures=$((failures + 1))
        return
    fi
    local bpid=$SRV_PID bport=$SRV_PORT
    if ! start_server "$tag.tcp_proxy" "$ex/tcp_proxy" -b "127.0.0.1:$bport" -t 60 -g 0; then
        failures=$((failures + 1))
        stop_server "$bpid"
        return
    fi
    local tpid=$SRV_PID tport=$SRV_PORT
    if ! echo_ready "$tport" "$logs/$tag.tcp_proxy.check" ||
        ! start_haproxy "$tag" "$bport"; then
        echo "bench: s14_proxy round $round: a proxy does not pass the echo on" \
            "(see $logs/$tag.*)" >&2
        failures=$((failures + 1))
        stop_server "$tpid"
        stop_server "$bpid"
        return
    fi
    local pids=("$HAP_PID" "$tpid") ports=("$HAP_PORT" "$tport") names=(haproxy tcp_proxy)
    local a=0 b=1
    if [ $((round % 2)) = 0 ]; then
        a=1 b=0
    fi
    local mode scen line rc c0=() c1=() s v p50 p99 tot cpu
    for mode in pingpong connect; do
        scen=s14_proxy_50
        [ "$mode" = connect ] && scen=s14_proxy_conn
        for k in 0 1; do
            c0[k]=$(cpu_us "${pids[k]}")
        done
        line=$("${limit[@]}" "${lg_run[@]}" "$bin/loadgen" "$mode" -p "${ports[a]}" \
            -q "${ports[b]}" -c 50 -s 64 -d "$ms" 2>>"$logs/$scen.$round.loadgen.err")
        rc=$?
        for k in 0 1; do
            c1[k]=$(cpu_us "${pids[k]}")
        done
        echo "$scen.$round (A ${names[a]}, B ${names[b]}): $line" >>"$logs/loadgen.out"
        if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
            echo "bench: $scen round $round: the load generator failed (status $rc):" >&2
            sed 's/^/  /' "$logs/$scen.$round.loadgen.err" >&2
            failures=$((failures + 1))
            continue
        fi
        for k in 0 1; do
            s=_a
            [ "$k" = "$b" ] && s=_b
            v=$(side_field "$line" rps "$s")
            p50=$(side_field "$line" p50"$s" _us)
            p99=$(side_field "$line" p99"$s" _us)
            tot=$(side_field "$line" total "$s")
            cpu=$(awk -v a="${c0[k]}" -v b="${c1[k]}" -v n="$tot" 'BEGIN { printf "%.3f", (b - a) / n }')
            echo "$scen,${names[k]},$round,req/s,$v,$p50,$p99,$cpu,,$ms" >>"$runs"
            printf '  %-14s %-17s #%d  %9s req/s  p50 %8s p99 %9s us  cpu %7s us/req\n' \
                "$scen" "${names[k]}" "$round" "$v" "$p50" "$p99" "$cpu"
        done
    done
    scen=s14_proxy_lat
    line=$("${limit[@]}" "${lg_run[@]}" "$bin/loadgen" abping -p "$bport" -q "${ports[a]}" \
        -r "${ports[b]}" -s 64 -d "$lat_ms" 2>>"$logs/$scen.$round.loadgen.err")
    rc=$?
    echo "$scen.$round (A backend, B ${names[a]}, C ${names[b]}): $line" >>"$logs/loadgen.out"
    if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
        echo "bench: $scen round $round: the load generator failed (status $rc):" >&2
        sed 's/^/  /' "$logs/$scen.$round.loadgen.err" >&2
        failures=$((failures + 1))
    else
        local d50 d99
        d50=$(side_field "$line" p50_a _us)
        d99=$(side_field "$line" p99_a _us)
        echo "$scen,direct,$round,added_us,,$d50,$d99,,,$lat_ms" >>"$runs"
        for k in 0 1; do
            s=_b
            [ "$k" = "$b" ] && s=_c
            p50=$(side_field "$line" p50"$s" _us)
            p99=$(side_field "$line" p99"$s" _us)
            v=$(awk -v p="$p50" -v d="$d50" 'BEGIN { printf "%.2f", p - d }')
            echo "$scen,${names[k]},$round,added_us,$v,$p50,$p99,,,$lat_ms" >>"$runs"
            printf '  %-14s %-17s #%d  p50 %8s us (direct %s us): adds %s us; p99 %s us\n' \
                "$scen" "${names[k]}" "$round" "$p50" "$d50" "$v" "$p99"
        done
    fi
    stop_server "$HAP_PID" USR1
    stop_server "$tpid"
    stop_server "$bpid"
}

start_time=$(date +%s)
{
    echo "cpus: $ncpu"
    echo "cpu model: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
    echo "kernel: $(uname -sr)"
    echo "setup: $setup; $rounds rounds of $ms ms per pair, raw and libnetx in turns;" \
        "$many_rounds rounds of $many connections"
    echo "parts:$selected(BENCH=${BENCH:-})"
    echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
    if part http && command -v nginx >/dev/null 2>&1 && command -v wrk >/dev/null 2>&1; then
        echo "http: $(nginx -v 2>&1 | sed 's/^nginx version: //'), $(wrk -v 2>&1 | awk 'NR == 1 { print $1, $2 }')"
    fi
    if part tls && [ "${BENCH_TLS:-}" = 1 ] && command -v openssl >/dev/null 2>&1; then
        echo "tls: $(openssl version)"
    fi
    if part proxy && command -v haproxy >/dev/null 2>&1; then
        echo "proxy: $(haproxy -v 2>&1 | awk 'NR == 1 { print $1, $2, $3 }')"
    fi
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    if command -v git >/dev/null 2>&1 && git rev-parse --git-dir >/dev/null 2>&1; then
        # Other work may be in progress: say which sources were measured.
        echo "source: commit $(git rev-parse --short HEAD), files changed since in src/ and" \
            "examples/: $(git status --porcelain -- src examples | awk '{ printf "%s ", $2 }')"
    fi
} >"$out/machine.txt"
sed 's/^/bench: /' "$out/machine.txt"

ev="$ex/event_server -n 15000"
evpoll="env NETX_POLLER=poll $ex/event_server -n 15000"

if part poll; then
    echo "== 1. poll_server vs raw epoll, 50 connections, 64-byte messages"
    pair s1_poll_50 req/s raw_epoll_echo "$bin/raw_epoll_echo" poll_server "$ex/poll_server" \
        pingpong -c 50 -s 64 -d "$ms"
fi
if part thread; then
    echo "== 2. threaded_server vs raw threads, 50 connections, 64-byte messages"
    pair s2_thread_50 req/s raw_thread_echo "$bin/raw_thread_echo" threaded_server \
        "$ex/threaded_server -n 64" pingpong -c 50 -s 64 -d "$ms"
fi
if part poll thread; then
    echo "== 3. one connection, 64-byte messages: latency, round trips alternating between the two"
fi
if part poll; then
    pair s3_lat_poll p50_us raw_epoll_echo "$bin/raw_epoll_echo" poll_server "$ex/poll_server" \
        abping -s 64 -d "$ms"
fi
if part thread; then
    pair s3_lat_thread p50_us raw_thread_echo "$bin/raw_thread_echo" threaded_server \
        "$ex/threaded_server -n 64" abping -s 64 -d "$ms"
    echo "== 4. bulk echo, one connection: threaded_server (netx_recv + netx_send_all) vs raw threads"
    pair s4_bulk MB/s raw_thread_echo "$bin/raw_thread_echo" threaded_server \
        "$ex/threaded_server -n 64" bulk -s 65536 -d "$ms"
fi
if part udp; then
    echo "== 5. UDP echo, 50 sockets, 64-byte datagrams"
    pair s5_udp req/s raw_udp_echo "$bin/raw_udp_echo" udp_server "$ex/udp_server" \
        udp -c 50 -s 64 -d "$ms"
fi
if part many; then
    echo "== 6. $many connections at once on poll_server -n 20000 and on raw epoll, side by side;"
    echo "   then 50 busy connections on each, in turns, while those $many stay open and idle"
    for r in $(seq "$many_rounds"); do
        many_round s6_10k s6_busy_idle raw_epoll_echo "$bin/raw_epoll_echo" poll_server \
            "$ex/poll_server -n 20000" "$r"
    done
fi
if part insns; then
    echo "== 7. instructions per round trip: netx_send + netx_recv vs send + recv (callgrind)"
    if command -v valgrind >/dev/null 2>&1; then
        for m in raw netx; do
            cg=$logs/callgrind.$m.out
            "${limit[@]}" valgrind --tool=callgrind --callgrind-out-file="$cg" \
                --toggle-collect="rtt_measured_$m" "$bin/rtt_insns" "$m" -k "$rtt_k" \
                >"$logs/rtt_insns.$m.out" 2>"$logs/rtt_insns.$m.err"
            total=$(awk '/^totals:/ { print $2; exit }' "$cg" 2>/dev/null)
            if [ -z "$total" ]; then
                echo "bench: callgrind of rtt_insns $m failed (see $logs/rtt_insns.$m.err)" >&2
                failures=$((failures + 1))
                continue
            fi
            per=$(awk -v t="$total" -v k="$rtt_k" 'BEGIN { printf "%.1f", t / k }')
            printf '  %-5s %s instructions in %s round trips = %s per round trip\n' "$m" "$total" \
                "$rtt_k" "$per"
            echo "s7_insns,$m,1,insns/rtt,$per,,,,," >>"$runs"
        done
    else
        echo "  valgrind not found: skipped"
    fi
    wall=$("${limit[@]}" "${lg_run[@]}" "$bin/rtt_insns" both -k 60000 2>>"$logs/rtt_insns.both.err")
    echo "  the same loops timed without valgrind: $wall"
    echo "$wall" >"$logs/rtt_insns.both.out"
fi
if part event; then
    echo "== 8. event_server (netx_poller + netx_writer) vs raw epoll, 50 connections, 64-byte messages:"
    echo "   on epoll, then on poll (NETX_POLLER=poll)"
    pair s8_ev_50 req/s raw_epoll_echo "$bin/raw_epoll_echo" event_server "$ev" \
        pingpong -c 50 -s 64 -d "$ms"
    pair s8_evpoll_50 req/s raw_epoll_echo "$bin/raw_epoll_echo" event_server_poll "$evpoll" \
        pingpong -c 50 -s 64 -d "$ms"
fi
if part event many; then
    echo "== 9. $many connections at once on event_server -n 15000 and on raw epoll, side by side;"
    echo "   then 50 busy on each, in turns, beside those $many idle: on epoll, then on poll"
    for r in $(seq "$many_rounds"); do
        many_round s9_ev_10k s9_ev_idle raw_epoll_echo "$bin/raw_epoll_echo" event_server "$ev" "$r"
    done
    for r in $(seq "$many_rounds"); do
        many_round s9_evpoll_10k s9_evpoll_idle raw_epoll_echo "$bin/raw_epoll_echo" \
            event_server_poll "$evpoll" "$r"
    done
fi

if part http; then
    if ! command -v nginx >/dev/null 2>&1 || ! command -v wrk >/dev/null 2>&1; then
        echo "== 12. http: skipped, it needs nginx and wrk (Debian: apt-get install nginx-light wrk)"
    else
        echo "== 12. http_server vs nginx (one worker, sendfile): a 1 KiB and a 1 MiB file, wrk -t1 -c50"
        # Absolute paths: nginx takes relative ones from its prefix.
        mkdir -p "$out/http/www"
        www=$(cd "$out/http/www" && pwd)
        out_abs=$(cd "$out" && pwd)
        nginx_v=$(nginx -V 2>&1)
        # -e puts even the first error messages in our directory (nginx
        # 1.19.5 and later), before it has read the configuration.
        nginx_e=()
        if nginx -h 2>&1 | grep -q -- ' -e '; then
            nginx_e=(-e "$out_abs/http/nginx/logs/error.log")
        fi
        mkdir -p "$out_abs/http/nginx/logs"
        head -c 1024 /dev/urandom >"$www/f1k.bin"
        head -c 1048576 /dev/urandom >"$www/f1m.bin"
        http_s=$(awk -v ms="$ms" 'BEGIN { s = int(ms / 2000 + 0.5); print s < 1 ? 1 : s }')
        echo "  $rounds rounds; in each, two wrk runs of $http_s s per server and file, in turns"
        for r in $(seq "$rounds"); do
            http_round "$r"
        done
    fi
fi
if part tls; then
    if [ "${BENCH_TLS:-}" != 1 ]; then
        echo "== 13. tls: skipped, it needs the TLS build: make bench TLS=1"
    elif ! command -v openssl >/dev/null 2>&1; then
        echo "== 13. tls: skipped, it needs the openssl command (to make the certificate)"
    else
        echo "== 13. tls_server vs raw_tls_echo (OpenSSL directly): full handshakes, bulk echo"
        # One EC P-256 certificate for both servers, made for this run.
        tlsdir=$out/tls
        mkdir -p "$tlsdir"
        if openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
            -keyout "$tlsdir/key.pem" -out "$tlsdir/cert.pem" -days 2 -subj /CN=localhost \
            -addext "subjectAltName=DNS:localhost,IP:127.0.0.1" \
            >"$logs/openssl.out" 2>&1; then
            tls_args="-c $tlsdir/cert.pem -k $tlsdir/key.pem"
            echo "   full handshakes: 16 connections at a time, each new, one 16-byte echo, close"
            AB_LG=$bin/tls_loadgen AB_CPU=ns pair s13_tls_hs hs/s raw_tls_echo \
                "$bin/raw_tls_echo $tls_args" tls_server "$ex/tls_server $tls_args" \
                handshake -c 16 -s 16 -d "$ms"
            echo "   bulk echo, one connection: 16 MiB transfers in 16 KiB writes, in turns"
            AB_LG=$bin/tls_loadgen AB_CPU=ns pair s13_tls_bulk MB/s raw_tls_echo \
                "$bin/raw_tls_echo $tls_args" tls_server "$ex/tls_server $tls_args" \
                bulk -s 16384 -d "$ms"
        else
            echo "bench: openssl could not make the certificate:" >&2
            sed 's/^/  /' "$logs/openssl.out" >&2
            failures=$((failures + 1))
        fi
    fi
fi

if part proxy; then
    if ! command -v haproxy >/dev/null 2>&1; then
        echo "== 14. proxy: skipped, it needs haproxy (Debian: apt-get install haproxy)"
    else
        echo "== 14. tcp_proxy vs HAProxy (mode tcp, one thread), raw_epoll_echo behind both:"
        echo "   50 connections kept open, a new connection per request, 64-byte messages;"
        echo "   then the latency each adds, one connection, round trips in turns with the backend"
        mkdir -p "$out/proxy/haproxy"
        lat_ms=$(awk -v ms="$ms" 'BEGIN { s = int(ms / 2); print s < 200 ? 200 : s }')
        for r in $(seq "$rounds"); do
            proxy_round "$r"
        done
    fi
fi

awk -F, -v out="$out" -v many="$many" -f "$here/report.awk" "$runs"
verdict=$?

echo
echo "bench: $out/results.csv, $out/checks.csv, $out/ratios.svg; every run in $runs"
echo "bench: took $(($(date +%s) - start_time)) s"
if [ "$failures" -gt 0 ]; then
    echo "bench: $failures run(s) failed; see $logs" >&2
    exit 1
fi
if [ "$verdict" -eq 3 ]; then
    echo "bench: some targets were missed; docs/performance.md explains why"
    if [ "${BENCH_STRICT:-0}" = 1 ]; then
        exit 1
    fi
elif [ "$verdict" -ne 0 ]; then
    echo "bench: the report could not be made" >&2
    exit 1
fi
exit 0

# bench/report.awk - turn bench/run.sh's runs.csv into the table, the CSV
# files and the chart.
#
#   awk -F, -v out=DIR -v many=N -f bench/report.awk DIR/runs.csv
#
# runs.csv has one line per run: scenario, server, round, unit, value, p50,
# p99, CPU per operation, memory per connection, seconds. A server whose
# name starts with "raw" - or nginx, http_server's baseline, or haproxy,
# tcp_proxy's - is the baseline of its scenario (the "raw" columns); the
# other one is the libnetx program. A line of the server "direct" is the
# backend behind the proxies, reached without one: its p50 is what the
# proxies' added latency (s14_proxy_lat) is measured from, and it is
# shown under the table, not as a side. Every ratio is libnetx /
# baseline, taken round by round (the two runs of a round are
# interleaved), and the median over the rounds is reported with its
# smallest and largest value.
#
# Writes DIR/results.csv, DIR/checks.csv and DIR/ratios.svg, prints the
# table and the targets, and exits 3 when a target is missed. Figures shown
# for comparison without a target of their own (event_server on poll, the
# price of portability; TLS CPU; the latency a proxy adds) are listed as
# "info": grey bars on the chart, never a miss.

function sort_list(list, a,    n, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) {   # insertion sort: a handful of values
        t = a[i] + 0
        j = i - 1
        while (j >= 1 && a[j] + 0 > t) {
            a[j + 1] = a[j]
            j--
        }
        a[j + 1] = t
    }
    return n
}

function median(list,    a, n) {
    n = sort_list(list, a)
    if (n == 0) return ""
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}

function least(list,    a, n) {
    n = sort_list(list, a)
    return n == 0 ? "" : a[1]
}

function most(list,    a, n) {
    n = sort_list(list, a)
    return n == 0 ? "" : a[n]
}

# "s12_http_1k" -> "0012 s12_http_1k": numbers compare as numbers.
function sort_key(s,    n) {
    n = substr(s, 2) + 0
    return sprintf("%04d %s", n, s)
}

function fmt(v, d) {
    return v == "" ? "" : sprintf("%." d "f", v)
}

# The ratios libnetx / raw of metric k in scenario s, one per round that
# has both.
function ratios(s, k,    r, list) {
    list = ""
    for (r = 1; r <= maxround[s]; r++) {
        if ((s, "raw", r, k) in val && (s, "netx", r, k) in val && val[s, "raw", r, k] + 0 != 0)
            list = list " " val[s, "netx", r, k] / val[s, "raw", r, k]
    }
    return list
}

function values(s, side, k,    r, list) {
    list = ""
    for (r = 1; r <= maxround[s]; r++)
        if ((s, side, r, k) in val) list = list " " val[s, side, r, k]
    return list
}

function check(name, measured, lo, hi, target, higher) {
    nc++
    cname[nc] = name
    cval[nc] = measured
    clo[nc] = lo
    chi[nc] = hi
    ctarget[nc] = target
    chigher[nc] = higher
    cinfo[nc] = 0
    cok[nc] = measured == "" ? 0 : (higher ? measured + 0 >= target : measured + 0 <= target)
}

# A figure shown beside the targets, with no target of its own.
function info(name, measured, lo, hi) {
    check(name, measured, lo, hi, "", 1)
    cinfo[nc] = 1
    cok[nc] = 1
}

# The median ratio of metric k in scenario s and its spread, as a check.
function ratio_check(name, s, k, target, higher,    l) {
    l = ratios(s, k)
    check(name, fmt(median(l), 3), fmt(least(l), 3), fmt(most(l), 3), target, higher)
}

function ratio_info(name, s, k,    l) {
    l = ratios(s, k)
    info(name, fmt(median(l), 3), fmt(least(l), 3), fmt(most(l), 3))
}

# Every one of the many connections served, in every round: the worst
# round counts.
function served_check(name, s,    n, a, f) {
    n = sort_list(values(s, "netx", "v"), a)
    f = n > 0 ? fmt(a[1] / many, 3) : ""
    check(name, f, f, fmt(n > 0 ? a[n] / many : "", 3), 1.0, 1)
}

# Memory per idle connection (the median over the rounds) against a budget
# in bytes: measured / budget, so 1.0 is the budget.
function memory_ratio(s, budget,    l, m) {
    m = median(values(s, "netx", "mem"))
    return m == "" ? "" : fmt(m / budget, 3)
}

NR == 1 { next }

$2 == "direct" {
    if ($6 != "") direct_p50[$1] = direct_p50[$1] " " $6
    next
}

{
    s = $1
    side = ($2 ~ /^(raw|nginx|haproxy)/) ? "raw" : "netx"
    r = $3 + 0
    if (!(s in known)) {
        known[s] = 1
        order[++ns] = s
    }
    server[s, side] = $2
    unit[s] = $4
    if (r > maxround[s]) maxround[s] = r
    if ($5 != "") val[s, side, r, "v"] = $5
    if ($6 != "") val[s, side, r, "p50"] = $6
    if ($7 != "") val[s, side, r, "p99"] = $7
    if ($8 != "") val[s, side, r, "cpu"] = $8
    if ($9 != "") val[s, side, r, "mem"] = $9
}

END {
    # Scenarios in the order of their numbers, then of their names (s1_...,
    # s2_..., s6_10k before s6_busy_idle, s12_... after s9_...), whatever
    # order the runs came in.
    for (i = 2; i <= ns; i++) {
        t = order[i]
        j = i - 1
        while (j >= 1 && sort_key(order[j]) > sort_key(t)) {
            order[j + 1] = order[j]
            j--
        }
        order[j + 1] = t
    }
    csv = out "/results.csv"
    print "scenario,unit,raw_server,netx_server,rounds,raw_value,netx_value,value_ratio," \
          "value_ratio_min,value_ratio_max,raw_p50_us,netx_p50_us,p50_ratio,raw_p99_us," \
          "netx_p99_us,p99_ratio,raw_cpu_us_per_op,netx_cpu_us_per_op,cpu_ratio," \
          "raw_mem_B_per_conn,netx_mem_B_per_conn" > csv

    printf "\nEach ratio is libnetx / raw within a round; the median of the rounds, [lowest-highest].\n"
    printf "%-14s %-17s %-9s %10s %10s %-19s %7s %7s %5s %8s %8s %5s %7s %7s %5s\n",
        "scenario", "libnetx server", "unit", "raw", "libnetx", "ratio [spread]",
        "p50 raw", "netx", "ratio", "p99 raw", "netx", "ratio", "cpu raw", "netx", "ratio"
    for (i = 1; i <= ns; i++) {
        s = order[i]
        rv = median(values(s, "raw", "v"));     xv = median(values(s, "netx", "v"))
        rp = median(values(s, "raw", "p50"));   xp = median(values(s, "netx", "p50"))
        rq = median(values(s, "raw", "p99"));   xq = median(values(s, "netx", "p99"))
        rc = median(values(s, "raw", "cpu"));   xc = median(values(s, "netx", "cpu"))
        rm = median(values(s, "raw", "mem"));   xm = median(values(s, "netx", "mem"))
        vl = ratios(s, "v")
        vr = fmt(median(vl), 3); vlo = fmt(least(vl), 3); vhi = fmt(most(vl), 3)
        pl = ratios(s, "p50"); pr = fmt(median(pl), 3)
        ql = ratios(s, "p99"); qr = fmt(median(ql), 3)
        cl = ratios(s, "cpu"); cr = fmt(median(cl), 3)
        d = (unit[s] == "req/s" || unit[s] == "MB/s") ? 1 : (unit[s] == "conns" ? 0 : 1)
        print s "," unit[s] "," server[s, "raw"] "," server[s, "netx"] "," maxround[s] "," \
              fmt(rv, d) "," fmt(xv, d) "," vr "," vlo "," vhi "," fmt(rp, 2) "," fmt(xp, 2) "," \
              pr "," fmt(rq, 2) "," fmt(xq, 2) "," qr "," fmt(rc, 3) "," fmt(xc, 3) "," cr "," \
              fmt(rm, 0) "," fmt(xm, 0) > csv
        spread = vr == "" ? "" : vr " [" vlo "-" vhi "]"
        printf "%-14s %-17s %-9s %10s %10s %-19s %7s %7s %5s %8s %8s %5s %7s %7s %5s\n",
            s, server[s, "netx"], unit[s], fmt(rv, d), fmt(xv, d), spread,
            fmt(rp, 1), fmt(xp, 1), fmt(pr, 2), fmt(rq, 0), fmt(xq, 0), fmt(qr, 2),
            fmt(rc, 2), fmt(xc, 2), fmt(cr, 2)
        if (s ~ /_10k$/) {
            # Memory per idle connection, for the lines under the table.
            mem_lines = mem_lines sprintf("  %-17s %5s B   raw epoll beside it %5s B\n",
                server[s, "netx"], fmt(xm, 0), fmt(rm, 0))
        }
    }

    # The targets. The last argument says whether higher is better.
    if ("s1_poll_50" in known) {
        ratio_check("1 poll_server req/s", "s1_poll_50", "v", 0.95, 1)
        ratio_check("1 poll_server CPU/req", "s1_poll_50", "cpu", 1.05, 0)
    }
    if ("s2_thread_50" in known)
        ratio_check("2 threaded_server req/s", "s2_thread_50", "v", 0.95, 1)
    if ("s3_lat_poll" in known)
        ratio_check("3 p50 latency (poll)", "s3_lat_poll", "p50", 1.05, 0)
    if ("s3_lat_thread" in known)
        ratio_check("3 p50 latency (threaded)", "s3_lat_thread", "p50", 1.05, 0)
    if ("s4_bulk" in known)
        ratio_check("4 bulk MB/s", "s4_bulk", "v", 0.90, 1)
    if ("s5_udp" in known)
        ratio_check("5 udp_server req/s", "s5_udp", "v", 0.95, 1)
    if ("s6_10k" in known) {
        served_check("6 " many " conns all served", "s6_10k")
        m = memory_ratio("s6_10k", 2048)
        check("6 idle conn memory / 2 KiB", m, m, m, 1.0, 0)
    }
    if ("s7_insns" in known)
        ratio_check("7 instructions/round trip", "s7_insns", "v", 1.05, 0)
    # event_server (netx_poller + netx_writer) on epoll against raw epoll.
    if ("s8_ev_50" in known) {
        ratio_check("8 event_server req/s", "s8_ev_50", "v", 0.95, 1)
        ratio_check("8 event_server CPU/req", "s8_ev_50", "cpu", 1.05, 0)
    }
    if ("s9_ev_idle" in known)
        ratio_check("9 event: busy beside idle req/s", "s9_ev_idle", "v", 0.90, 1)
    if ("s9_ev_10k" in known) {
        served_check("10 event: " many " conns served", "s9_ev_10k")
        ratio_check("10 event: CPU per connection", "s9_ev_10k", "cpu", 1.30, 0)
        m = memory_ratio("s9_ev_10k", 256)
        check("11 event: idle conn mem / 256 B", m, m, m, 1.0, 0)
    }
    # The same on the poll backend: the price of portability, no targets.
    if ("s8_evpoll_50" in known) {
        ratio_info("8 (poll) req/s", "s8_evpoll_50", "v")
        ratio_info("8 (poll) CPU/req", "s8_evpoll_50", "cpu")
    }
    if ("s9_evpoll_idle" in known)
        ratio_info("9 (poll) busy beside idle req/s", "s9_evpoll_idle", "v")
    if ("s9_evpoll_10k" in known) {
        ratio_info("10 (poll) CPU per connection", "s9_evpoll_10k", "cpu")
        m = memory_ratio("s9_evpoll_10k", 256)
        info("11 (poll) idle conn mem / 256 B", m, m, m)
    }
    # http_server against nginx (target 12), on a small and a large file.
    if ("s12_http_1k" in known) {
        ratio_check("12 http 1 KiB req/s vs nginx", "s12_http_1k", "v", 0.80, 1)
        ratio_check("12 http 1 KiB CPU/req", "s12_http_1k", "cpu", 1.25, 0)
    }
    if ("s12_http_1m" in known) {
        ratio_check("12 http 1 MiB req/s vs nginx", "s12_http_1m", "v", 0.80, 1)
        ratio_check("12 http 1 MiB CPU/req", "s12_http_1m", "cpu", 1.25, 0)
    }
    # tls_server against the same echo written on OpenSSL (target 13); the
    # CPU per handshake and per MB beside them, without targets.
    if ("s13_tls_hs" in known) {
        ratio_check("13 tls handshakes/s", "s13_tls_hs", "v", 0.95, 1)
        ratio_info("13 tls CPU/handshake", "s13_tls_hs", "cpu")
    }
    if ("s13_tls_bulk" in known) {
        ratio_check("13 tls bulk MB/s", "s13_tls_bulk", "v", 0.95, 1)
        ratio_info("13 tls CPU/MB", "s13_tls_bulk", "cpu")
    }

    # tcp_proxy against HAProxy (target 14), the same backend behind both:
    # 50 connections kept open, and a new connection per request. The
    # latency each adds is shown beside them, without a target.
    if ("s14_proxy_50" in known) {
        ratio_check("14 proxy req/s vs HAProxy", "s14_proxy_50", "v", 0.90, 1)
        ratio_check("14 proxy CPU/req", "s14_proxy_50", "cpu", 1.15, 0)
    }
    if ("s14_proxy_conn" in known) {
        ratio_check("14 proxy new-conn req/s", "s14_proxy_conn", "v", 0.90, 1)
        ratio_check("14 proxy CPU/new-conn req", "s14_proxy_conn", "cpu", 1.15, 0)
    }
    if ("s14_proxy_lat" in known)
        ratio_info("14 proxy added p50 latency", "s14_proxy_lat", "v")

    chk = out "/checks.csv"
    print "check,measured,lowest,highest,target,met" > chk
    printf "\n%-32s %9s %15s %9s  %s\n", "target (libnetx / raw)", "measured", "[spread]", "target",
        "verdict"
    missed = 0
    for (i = 1; i <= nc; i++) {
        t = cinfo[i] ? "-" : (chigher[i] ? ">=" : "<=") sprintf("%.2f", ctarget[i])
        if (!cok[i]) missed++
        v = cinfo[i] ? "info" : cok[i] ? "met" : "MISSED"
        printf "%-32s %9s %15s %9s  %s\n", cname[i], cval[i], "[" clo[i] "-" chi[i] "]", t, v
        print cname[i] "," cval[i] "," clo[i] "," chi[i] "," t "," \
              (cinfo[i] ? "info" : cok[i] ? "yes" : "no") > chk
    }
    if (("s12_http_1k" in known) || ("s12_http_1m" in known))
        printf "\ns12_http_*: the baseline (the \"raw\" columns) is nginx, not raw system calls.\n"
    if (("s14_proxy_50" in known) || ("s14_proxy_conn" in known) || ("s14_proxy_lat" in known))
        printf "\ns14_proxy_*: the baseline (the \"raw\" columns) is HAProxy, not raw system calls.\n"
    if ("s14_proxy_lat" in known)
        printf "s14_proxy_lat: the value is the p50 added by the proxy: its p50 minus the p50 of\n" \
               "  the backend reached directly (%s us, median of the rounds), in the same run.\n",
            fmt(median(direct_p50["s14_proxy_lat"]), 1)
    if (mem_lines != "")
        printf "\nmemory per idle connection (VmRSS growth / connections, median of the rounds):\n%s",
            mem_lines

    draw_chart(out "/ratios.svg")
    exit missed > 0 ? 3 : 0
}

# One bar per target: its median ratio, a whisker from the lowest to the
# highest round, the target as a dashed orange mark, and a line at 1.0.
# A figure without a target is a grey bar with no mark.
function draw_chart(svg,    W, left, right, top, bh, gap, H, maxv, scale, t, x, y, w, i, x1) {
    W = 780; left = 240; right = 60; top = 56; bh = 20; gap = 12
    H = top + nc * (bh + gap) + 56
    maxv = 1.3
    for (i = 1; i <= nc; i++) {
        if (chi[i] + 0 > maxv) maxv = chi[i] + 0
        if (cval[i] + 0 > maxv) maxv = cval[i] + 0
    }
    maxv = int(maxv * 5 + 1) / 5
    scale = (W - left - right) / maxv
    printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" " \
           "font-family=\"sans-serif\" font-size=\"12\">\n", W, H > svg
    printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n" > svg
    printf "<text x=\"10\" y=\"20\" font-size=\"15\">libnetx / raw baseline: median of the " \
           "rounds, whisker = lowest to highest</text>\n" > svg
    printf "<text x=\"10\" y=\"38\" fill=\"#555\">green: target met; red: missed; dashed " \
           "orange: the target; grey: no target (for comparison)</text>\n" > svg
    for (t = 0; t <= maxv + 1e-9; t += 0.1) {
        x = left + t * scale
        printf "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e4e4e4\"/>\n",
            x, top - 6, x, H - 44 > svg
        if (int(t * 10 + 0.5) % 2 == 0)
            printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%.1f</text>\n",
                x, H - 30, t > svg
    }
    for (i = 1; i <= nc; i++) {
        y = top + (i - 1) * (bh + gap)
        w = (cval[i] == "" ? 0 : cval[i]) * scale
        printf "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n",
            left - 8, y + bh - 5, cname[i] > svg
        printf "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"/>\n",
            left, y, w, bh, cinfo[i] ? "#9e9e9e" : cok[i] ? "#43a047" : "#e53935" > svg
        if (clo[i] != "" && chi[i] != "" && chi[i] != clo[i]) {
            printf "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#222\"/>\n",
                left + clo[i] * scale, y + bh / 2, left + chi[i] * scale, y + bh / 2 > svg
            printf "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#222\"/>\n",
                left + clo[i] * scale, y + 5, left + clo[i] * scale, y + bh - 5 > svg
            printf "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#222\"/>\n",
                left + chi[i] * scale, y + 5, left + chi[i] * scale, y + bh - 5 > svg
        }
        x = left + (chi[i] + 0 > cval[i] + 0 ? chi[i] : cval[i]) * scale
        printf "<text x=\"%.1f\" y=\"%d\">%s</text>\n", x + 9, y + bh - 5, cval[i] > svg
        if (cinfo[i])
            continue
        x = left + ctarget[i] * scale
        printf "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#fb8c00\" " \
               "stroke-width=\"3\" stroke-dasharray=\"4,2\"><title>target %s %.2f</title></line>\n",
            x, y - 4, x, y + bh + 4, chigher[i] ? "&gt;=" : "&lt;=", ctarget[i] > svg
    }
    x1 = left + scale
    printf "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"black\" stroke-width=\"1.5\"/>\n",
        x1, top - 10, x1, H - 44 > svg
    printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">1.0 = raw</text>\n", x1, H - 14 > svg
    print "</svg>" > svg
    close(svg)
}

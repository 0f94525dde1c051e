/*
 * timeline.c - draw a TCP conversation as an SVG picture, from the
 * NETX_TRACE=1 output of the programs that held it. `make diagrams` draws
 * the tutorial's pictures with it (tools/diagrams.sh).
 *
 *   timeline [-t TITLE] [-d DESCRIPTION] COLUMN[:LABEL]=TRACE ... > picture.svg
 *
 * Each TRACE is one program's standard error, taken with NETX_TRACE=1.
 * There are two columns, left and right in the order first named; traces
 * with the same COLUMN share it, each of their calls marked with its
 * trace's LABEL (three clients: "echo_client:A=...", "echo_client:B=..."). Every "netx: " line is a
 * call, drawn as the trace shows it, and time goes down. Arrows between the columns show what
 * crossed the network:
 *
 *   connect -> accept            the connection: the three-way handshake
 *   send -> recv                 bytes: as many of that send as that recv took
 *   close or shutdown -> recv 0  the FIN: the end of the stream
 *
 * The rows do not come from the clock. Two runs never share a timestamp,
 * and a picture kept in git must come out the same from every run, so a
 * call is drawn below each call it had to wait for: the call before it in
 * its own program, and the call on the other side that sent what it took.
 * That order is cause and effect, the same in every run; calls that did
 * not wait for each other may share a row.
 *
 * Port numbers change every run, so each one (but 0, which a server asks
 * for to get any free port) is drawn as PORT. The steps that are not the
 * connection - the signal set-up (stop_on, stop_drain) and name resolution
 * (resolve) - are left out.
 *
 * The trace does not say which client's connect an accept took (accept
 * names its peer's port, connect does not name its own), so connects are
 * paired with accepts in the order the traces are given. Whoever runs the
 * programs must start the clients in that order, one after the other;
 * tools/diagrams.sh does.
 *
 * It needs nothing but the C library: no libm, so no sqrt() either.
 */
#define _POSIX_C_SOURCE 200809L
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Two columns: a client side and a server side, with every arrow in the
 * open between them. Several programs on one side share a column. */
#define MAX_COLS   2
#define MAX_TRACES 8
#define MAX_CALLS  400
#define MAX_FD     256 /* the descriptors one program may use */
#define TEXT_MAX   200
#define MAX_LINES  4 /* lines a call's text may wrap into */

/* Geometry, in pixels. The picture is 700 wide: a page's text column. */
#define WIDTH     700
#define MARGIN    12
#define GAP       140 /* between two columns' text: where the arrows run */
#define FONT      12  /* the calls, in a monospace font */
#define CHAR_W    7.2 /* the width of one monospace character at FONT */
#define LABEL     11  /* arrow labels and the note, in a sans-serif font */
#define LABEL_W   6.1 /* the width of an average sans-serif character at LABEL */
#define LINE_H    15  /* one line of a call's text */
#define ROW_PAD   7   /* above and below the calls of a row */
#define STACK_GAP 8   /* between calls of one row and column */
#define BOX_GAP   6   /* between a lifeline and the box of text beside it */
#define BOX_PAD   5   /* between a box's edge and its text */
#define HEADER_H  34
#define HEAD_LEN  9 /* the arrowhead: its length, and half its width */
#define HEAD_HALF 4

#define MONO "DejaVu Sans Mono, Menlo, Consolas, monospace"
#define SANS "DejaVu Sans, Helvetica, Arial, sans-serif"

/* What a call does to a connection; OTHER calls are drawn and no more. */
enum kind { OTHER, LISTEN, CONNECT, ACCEPT, SEND, RECV, SHUTDOWN, CLOSE, WAIT };

struct call {
    int trace;
    enum kind kind;
    char text[TEXT_MAX]; /* as drawn: the trace line after "netx: " */
    int fd;              /* its first argument, the socket it acts on */
    long rc;             /* what it returned */
    int end;             /* the end of a connection it acts on, or -1 */
    long long first;     /* SEND and RECV: where its bytes start in the stream */
    int row;
    int y; /* the top of its text */
    int lines;
    char line[MAX_LINES][TEXT_MAX];
};

struct trace {
    int col;
    const char *label; /* "" when it has its column to itself */
};

/* One end of a TCP connection, as one program held it. */
struct end {
    int call;   /* the connect or accept that made it */
    int listen; /* ACCEPT: the listen() of its listening socket, or -1 */
    int peer;   /* the other end, or -1 */
    long long sent, got;
    int fin; /* the call that sent its FIN, or -1 */
};

enum arrow_kind { ORDER, HANDSHAKE, DATA, FIN };

/* "from must happen before to". ORDER arrows are not drawn; to is -1 for
 * bytes or a FIN that no call on the other side took. */
struct arrow {
    enum arrow_kind kind;
    int from, to;
    long long bytes;
};

struct picture {
    int ncols, ntraces, ncalls, nends, narrows, nrows;
    const char *col_name[MAX_COLS];
    struct trace trace[MAX_TRACES];
    struct call call[MAX_CALLS];
    struct end end[MAX_CALLS];
    struct arrow arrow[4 * MAX_CALLS];
    int row_y[MAX_CALLS + 1]; /* the top of each row; row_y[nrows] is the bottom */
    int lifeline[MAX_COLS];   /* x of each column's line */
    int text_w;               /* the width of each column's text */
    /* While following the sockets: the connection end each descriptor of
     * each program holds, and the listen() of each listening one. */
    int open_end[MAX_TRACES][MAX_FD];
    int listening[MAX_TRACES][MAX_FD];
    /* While drawing: the arrow labels drawn so far, as x, y, width, height. */
    int nplaced;
    double placed[4 * MAX_CALLS][4];
};

static const char *prog = "timeline";

static void die(const char *what)
{
    fprintf(stderr, "%s: %s\n", prog, what);
    exit(1);
}

static int col_of(const struct picture *p, int call)
{
    return p->trace[p->call[call].trace].col;
}

/* Port numbers change every run: "127.0.0.1:41234" becomes
 * "127.0.0.1:PORT". Only a port after an IPv4 address or "]" (IPv6) is one;
 * port 0 is what a program asked for, and stays. */
static void hide_ports(char *s)
{
    char out[TEXT_MAX];
    size_t o = 0;
    for (size_t i = 0; s[i] != '\0' && o + 5 < sizeof out; i++) {
        out[o++] = s[i];
        if (s[i] != ':' || !isdigit((unsigned char)s[i + 1]) || s[i + 1] == '0') {
            continue;
        }
        size_t j = i;
        int dots = 0;
        while (j > 0 && (isdigit((unsigned char)s[j - 1]) || s[j - 1] == '.')) {
            dots += s[--j] == '.';
        }
        int ipv4 = dots == 3 && (j == 0 || !isalnum((unsigned char)s[j - 1]));
        if (ipv4 || (i > 0 && s[i - 1] == ']')) {
            memcpy(out + o, "PORT", 4);
            o += 4;
            while (isdigit((unsigned char)s[i + 1])) {
                i++;
            }
        }
    }
    out[o] = '\0';
    memcpy(s, out, o + 1);
}

/* Not the connection: left out of the picture. */
static int left_out(const char *text)
{
    static const char *const skip[] = {"stop_on(", "stop_drain(", "resolve("};
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++) {
        if (strncmp(text, skip[i], strlen(skip[i])) == 0) {
            return 1;
        }
    }
    return 0;
}

/* "send(8, 18 bytes) = 18": the kind, the socket and the result. A line
 * without " = N" after its arguments ("connect(3, ...) started") did not
 * finish a call, and is drawn as OTHER. */
static void classify(struct call *c)
{
    static const struct {
        const char *name;
        enum kind kind;
    } names[] = {{"listen(", LISTEN}, {"connect(", CONNECT}, {"accept(", ACCEPT},
                 {"send(", SEND},     {"recv(", RECV},       {"shutdown(", SHUTDOWN},
                 {"close(", CLOSE},   {"epoll_wait(", WAIT}, {"poll(", WAIT}};
    const char *paren = strchr(c->text, ')');
    char *after;
    c->kind = OTHER;
    c->fd = -1;
    c->end = -1;
    if (paren == NULL || strncmp(paren, ") = ", 4) != 0) {
        return;
    }
    c->rc = strtol(paren + 4, &after, 10);
    if (after == paren + 4) {
        return; /* "poller_new() = epoll" */
    }
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        size_t len = strlen(names[i].name);
        if (strncmp(c->text, names[i].name, len) == 0) {
            c->kind = names[i].kind;
            c->fd = atoi(c->text + len);
        }
    }
    if (c->kind != OTHER &&
        (c->fd < 0 || c->fd >= MAX_FD || (c->kind == ACCEPT && c->rc >= MAX_FD))) {
        die("a descriptor number too large to follow");
    }
}

/* Read one program's trace, as trace number t. */
static void read_trace(struct picture *p, int t, const char *path)
{
    char buf[1024];
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "%s: open %s: ", prog, path);
        perror(NULL);
        exit(1);
    }
    while (fgets(buf, sizeof buf, f) != NULL) {
        buf[strcspn(buf, "\n")] = '\0';
        /* Anything else on standard error is the program's own. */
        if (strncmp(buf, "netx: ", 6) != 0 || left_out(buf + 6)) {
            continue;
        }
        if (p->ncalls == MAX_CALLS) {
            die("too many calls to draw");
        }
        struct call *c = &p->call[p->ncalls++];
        c->trace = t;
        /* A longer line is cut: it would not fit in a column anyway. */
        size_t len = strlen(buf + 6);
        len = len < sizeof c->text ? len : sizeof c->text - 1;
        memcpy(c->text, buf + 6, len);
        c->text[len] = '\0';
        hide_ports(c->text);
        classify(c);
    }
    fclose(f);
}

static void add_arrow(struct picture *p, enum arrow_kind kind, int from, int to, long long bytes)
{
    if (p->narrows == (int)(sizeof p->arrow / sizeof p->arrow[0])) {
        die("too many arrows");
    }
    p->arrow[p->narrows++] = (struct arrow){kind, from, to, bytes};
}

static int new_end(struct picture *p, int call, int listen)
{
    p->end[p->nends] = (struct end){call, listen, -1, 0, 0, -1};
    return p->nends++;
}

/*
 * Follow each program's sockets through its calls, as the kernel would:
 * which connection each call acts on, and where in that connection's byte
 * stream each send and recv falls. Descriptor numbers are reused after a
 * close, so a number names a connection only from its connect or accept to
 * its close. Fills connects[] and accepts[] with the ends they made, in
 * the order of the traces.
 */
static void follow_sockets(struct picture *p, int connects[], int *nconnects, int accepts[],
                           int *naccepts)
{
    memset(p->open_end, -1, sizeof p->open_end);
    memset(p->listening, -1, sizeof p->listening);
    *nconnects = *naccepts = 0;
    for (int i = 0; i < p->ncalls; i++) {
        struct call *c = &p->call[i];
        if (c->kind == OTHER || c->kind == WAIT) {
            continue;
        }
        int *open = &p->open_end[c->trace][c->fd];
        int *listening = &p->listening[c->trace][c->fd];
        if (c->kind == LISTEN && c->rc == 0) {
            *listening = i;
        } else if (c->kind == CONNECT && c->rc == 0) {
            *open = new_end(p, i, -1);
            connects[(*nconnects)++] = *open;
        } else if (c->kind == ACCEPT && c->rc >= 0) {
            int e = new_end(p, i, *listening);
            p->open_end[c->trace][c->rc] = e;
            accepts[(*naccepts)++] = e;
        } else if (*open >= 0) {
            struct end *e = &p->end[*open];
            c->end = *open;
            if (c->kind == SEND && c->rc > 0) {
                c->first = e->sent;
                e->sent += c->rc;
            } else if (c->kind == RECV && c->rc > 0) {
                c->first = e->got;
                e->got += c->rc;
            }
            /* shutdown(SHUT_WR or SHUT_RDWR) sends the FIN; a close
             * sends it unless a shutdown did. */
            int sends_fin =
                c->kind == CLOSE ||
                (c->kind == SHUTDOWN && c->rc == 0 &&
                 (strstr(c->text, "SHUT_WR") != NULL || strstr(c->text, "SHUT_RDWR") != NULL));
            if (sends_fin && e->fin < 0) {
                e->fin = i;
            }
        }
        if (c->kind == CLOSE) {
            *open = -1;
            *listening = -1;
        }
    }
}

/* The first recv = 0 on end e: where its peer's FIN was read. */
static int fin_reader(const struct picture *p, int e)
{
    for (int j = 0; j < p->ncalls; j++) {
        if (p->call[j].end == e && p->call[j].kind == RECV && p->call[j].rc == 0) {
            return j;
        }
    }
    return -1;
}

/* The arrows: what crossed the network, and what it made wait. */
static void find_arrows(struct picture *p)
{
    int connects[MAX_CALLS], accepts[MAX_CALLS];
    int nc, na;
    follow_sockets(p, connects, &nc, accepts, &na);
    if (nc != na) {
        fprintf(stderr, "%s: %d connects but %d accepts: are these traces of one run?\n", prog, nc,
                na);
        exit(1);
    }
    for (int k = 0; k < nc; k++) {
        struct end *c = &p->end[connects[k]], *a = &p->end[accepts[k]];
        c->peer = accepts[k];
        a->peer = connects[k];
        add_arrow(p, HANDSHAKE, c->call, a->call, 0);
        /* The SYN needs a listening socket to answer it. */
        if (a->listen >= 0) {
            add_arrow(p, ORDER, a->listen, c->call, 0);
        }
    }
    /* Each recv took a stretch of its connection's byte stream, which
     * sends on the other end put there: an arrow for each send and recv
     * whose stretches overlap, with the bytes they share. */
    for (int i = 0; i < p->ncalls; i++) {
        const struct call *s = &p->call[i];
        if (s->end < 0 || p->end[s->end].peer < 0) {
            continue;
        }
        int peer = p->end[s->end].peer;
        if (s->kind == SEND && s->rc > 0) {
            int taken = 0;
            for (int j = 0; j < p->ncalls; j++) {
                const struct call *r = &p->call[j];
                if (r->end != peer || r->kind != RECV || r->rc <= 0) {
                    continue;
                }
                long long lo = s->first > r->first ? s->first : r->first;
                long long s_hi = s->first + s->rc, r_hi = r->first + r->rc;
                long long hi = s_hi < r_hi ? s_hi : r_hi;
                if (lo < hi) {
                    add_arrow(p, DATA, i, j, hi - lo);
                    taken = 1;
                }
            }
            if (!taken) {
                add_arrow(p, DATA, i, -1, s->rc);
            }
        }
        if (p->end[s->end].fin == i) {
            add_arrow(p, FIN, i, fin_reader(p, peer), 0);
        }
    }
    /*
     * A wait on a poller (epoll_wait, poll) that returned N > 0 ended
     * because N sockets became ready, and the calls after it take what
     * made them ready. So whatever those calls waited for, the wait
     * waited for too.
     */
    int n = p->narrows;
    for (int w = 0; w < p->ncalls; w++) {
        if (p->call[w].kind != WAIT || p->call[w].rc <= 0) {
            continue;
        }
        for (int i = w + 1; i < p->ncalls && p->call[i].trace == p->call[w].trace; i++) {
            if (p->call[i].kind == WAIT) {
                break;
            }
            for (int a = 0; a < n; a++) {
                if (p->arrow[a].to == i) {
                    add_arrow(p, ORDER, p->arrow[a].from, w, 0);
                }
            }
        }
    }
}

/* Does call i wait for anything in another program? */
static int waits_for_other(const struct picture *p, int i)
{
    for (int a = 0; a < p->narrows; a++) {
        if (p->arrow[a].to == i) {
            return 1;
        }
    }
    return 0;
}

/*
 * The rows: each call goes on the first row below every call it waited
 * for (the longest path to it). Then a program's first calls, which waited
 * for no other program, move down to just above the call they lead to:
 * the trace does not say when a program started, only what it waited for.
 */
static void place_rows(struct picture *p)
{
    int changed = 1;
    for (int pass = 0; changed; pass++) {
        if (pass > p->ncalls) {
            die("the calls wait for each other in a circle: are these traces of one run?");
        }
        changed = 0;
        for (int i = 0; i < p->ncalls; i++) {
            int row =
                i > 0 && p->call[i - 1].trace == p->call[i].trace ? p->call[i - 1].row + 1 : 0;
            for (int a = 0; a < p->narrows; a++) {
                const struct arrow *w = &p->arrow[a];
                if (w->to == i && p->call[w->from].row + 1 > row) {
                    row = p->call[w->from].row + 1;
                }
            }
            if (row != p->call[i].row) {
                p->call[i].row = row;
                changed = 1;
            }
        }
    }
    for (int i = 0; i < p->ncalls; i++) {
        /* A trace's first call: find its first arrival, then walk back. */
        if (i > 0 && p->call[i - 1].trace == p->call[i].trace) {
            continue;
        }
        int arrival = i;
        while (arrival < p->ncalls && p->call[arrival].trace == p->call[i].trace &&
               !waits_for_other(p, arrival)) {
            arrival++;
        }
        if (arrival == p->ncalls || p->call[arrival].trace != p->call[i].trace) {
            continue; /* waits for nobody at all: leave it at the top */
        }
        for (int k = arrival - 1; k >= i; k--) {
            int row = p->call[k + 1].row - 1;
            for (int a = 0; a < p->narrows; a++) {
                const struct arrow *w = &p->arrow[a];
                if (w->from == k && w->to >= 0 && p->call[w->to].row - 1 < row) {
                    row = p->call[w->to].row - 1;
                }
            }
            p->call[k].row = row;
        }
    }
    /* Drop the rows that moving emptied, keeping the order. */
    int used[MAX_CALLS] = {0}, renumber[MAX_CALLS];
    for (int i = 0; i < p->ncalls; i++) {
        used[p->call[i].row] = 1;
    }
    p->nrows = 0;
    for (int r = 0; r < MAX_CALLS; r++) {
        renumber[r] = p->nrows;
        p->nrows += used[r];
    }
    for (int i = 0; i < p->ncalls; i++) {
        p->call[i].row = renumber[p->call[i].row];
    }
}

/* Break text into lines of at most width characters, at spaces where it
 * can. The lines after the first are drawn indented by two, so they have
 * two less. Text beyond MAX_LINES lines is cut, and "..." says so. */
static int wrap(const char *text, int width, char line[][TEXT_MAX])
{
    int n = 0;
    const char *s = text;
    while (*s != '\0') {
        if (n == MAX_LINES) {
            size_t len = strlen(line[n - 1]);
            snprintf(line[n - 1] + (len > 3 ? len - 3 : 0), 4, "...");
            break;
        }
        int room = n == 0 ? width : width - 2;
        int len = (int)strlen(s);
        if (len > room) {
            len = room;
            while (len > 0 && s[len] != ' ') {
                len--;
            }
            if (len == 0) {
                len = room; /* one long word: cut it */
            }
        }
        snprintf(line[n++], TEXT_MAX, "%.*s", len, s);
        s += len;
        while (*s == ' ') {
            s++;
        }
    }
    return n;
}

/*
 * Where everything goes. The first column's text is on the left of its
 * line and the others' on the right, so that between two columns every
 * arrow runs in the open. Calls of one row and column (several programs
 * in one column) stand one under the other, in the order of the traces.
 */
static void place_calls(struct picture *p)
{
    p->text_w = (WIDTH - 2 * MARGIN - (p->ncols - 1) * GAP) / p->ncols;
    for (int col = 0; col < p->ncols; col++) {
        int left = MARGIN + col * (p->text_w + GAP);
        p->lifeline[col] = col == 0 ? left + p->text_w : left;
    }
    int chars = (int)((p->text_w - BOX_GAP - 2 * BOX_PAD) / CHAR_W);
    p->row_y[0] = MARGIN + HEADER_H;
    for (int r = 0; r < p->nrows; r++) {
        int bottom = p->row_y[r] + 2 * ROW_PAD;
        for (int col = 0; col < p->ncols; col++) {
            int y = p->row_y[r] + ROW_PAD;
            for (int i = 0; i < p->ncalls; i++) {
                struct call *c = &p->call[i];
                if (c->row != r || col_of(p, i) != col) {
                    continue;
                }
                /* "A send(3, 9 bytes) = 9": the trace's label first. */
                char text[TEXT_MAX + 16];
                const char *label = p->trace[c->trace].label;
                snprintf(text, sizeof text, "%s%s%s", label, label[0] ? " " : "", c->text);
                c->lines = wrap(text, chars, c->line);
                c->y = y;
                y += c->lines * LINE_H + STACK_GAP;
            }
            if (y - STACK_GAP + ROW_PAD > bottom) {
                bottom = y - STACK_GAP + ROW_PAD;
            }
        }
        p->row_y[r + 1] = bottom;
    }
}

/* The y at which arrows meet a call: the middle of its first line. */
static int anchor_y(const struct call *c)
{
    return c->y + LINE_H / 2;
}

/* Text for SVG: the five characters XML reserves, escaped. */
static void put_text(FILE *out, const char *s)
{
    for (; *s != '\0'; s++) {
        switch (*s) {
        case '&':
            fputs("&amp;", out);
            break;
        case '<':
            fputs("&lt;", out);
            break;
        case '>':
            fputs("&gt;", out);
            break;
        case '"':
            fputs("&quot;", out);
            break;
        case '\'':
            fputs("&apos;", out);
            break;
        default:
            fputc(*s, out);
        }
    }
}

static void label_of(const struct arrow *a, char *buf, size_t cap)
{
    const char *unread = a->to < 0 ? " (not read)" : "";
    if (a->kind == HANDSHAKE) {
        snprintf(buf, cap, "handshake");
    } else if (a->kind == FIN) {
        snprintf(buf, cap, "FIN%s", unread);
    } else {
        snprintf(buf, cap, "%lld byte%s%s", a->bytes, a->bytes == 1 ? "" : "s", unread);
    }
}

static const char *color_of(enum arrow_kind kind)
{
    return kind == HANDSHAKE ? "#1d5fa8" : kind == FIN ? "#a3322b" : "#222222";
}

/* The square root, by Newton's method, for v >= 1. */
static double root(double v)
{
    double r = v;
    for (int i = 0; i < 30; i++) {
        r = (r + v / r) / 2;
    }
    return r;
}

/* Where an arrow starts and ends: lifeline to lifeline. One that no call
 * took ends a line lower, between calls. */
static void arrow_ends(const struct picture *p, const struct arrow *a, double *x1, double *y1,
                       double *x2, double *y2)
{
    const struct call *from = &p->call[a->from];
    /* Not taken: it still went to the column of the connection's other end. */
    int to = a->to >= 0 ? a->to : p->end[p->end[from->end].peer].call;
    *x1 = p->lifeline[col_of(p, a->from)];
    *y1 = anchor_y(from);
    *x2 = p->lifeline[col_of(p, to)];
    *y2 = a->to >= 0 ? anchor_y(&p->call[a->to]) : *y1 + LINE_H;
}

static void draw_arrow(FILE *out, const struct picture *p, const struct arrow *a)
{
    double x1, y1, x2, y2;
    arrow_ends(p, a, &x1, &y1, &x2, &y2);
    /* (ux, uy): one pixel along the arrow. */
    double len = root((x2 - x1) * (x2 - x1) + (y2 - y1) * (y2 - y1));
    double ux = (x2 - x1) / len, uy = (y2 - y1) / len;
    double bx = x2 - HEAD_LEN * ux, by = y2 - HEAD_LEN * uy;
    const char *color = color_of(a->kind);
    fprintf(out,
            "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" "
            "stroke-width=\"%s\"%s/>\n",
            x1, y1, bx, by, color, a->kind == HANDSHAKE ? "2" : "1.3",
            a->kind == FIN ? " stroke-dasharray=\"5 3\"" : "");
    fprintf(out, "<polygon points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f\" fill=\"%s\"/>\n", x2, y2,
            bx - HEAD_HALF * uy, by + HEAD_HALF * ux, bx + HEAD_HALF * uy, by - HEAD_HALF * ux,
            color);
}

/* How much of the rectangle (x, y, w, h) the labels placed so far cover. */
static double covered(double x, double y, double w, double h, double placed[][4], int nplaced)
{
    double sum = 0;
    for (int j = 0; j < nplaced; j++) {
        const double *o = placed[j];
        double dx = (x + w < o[0] + o[2] ? x + w : o[0] + o[2]) - (x > o[0] ? x : o[0]);
        double dy = (y + h < o[1] + o[3] ? y + h : o[1] + o[3]) - (y > o[1] ? y : o[1]);
        if (dx > 0 && dy > 0) {
            sum += dx * dy;
        }
    }
    return sum;
}

/*
 * An arrow's label, on its line on a white ground: halfway, or if labels
 * drawn before are there, a little towards either end, or just off the
 * line - wherever they cover it least, and always between the two
 * lifelines.
 */
static void draw_label(FILE *out, struct picture *p, const struct arrow *a)
{
    static const double along[] = {0.5, 0.35, 0.65, 0.2, 0.8};
    static const double off[] = {0, 1, -1}; /* on the line, below it, above it */
    double x1, y1, x2, y2;
    arrow_ends(p, a, &x1, &y1, &x2, &y2);
    char label[64];
    label_of(a, label, sizeof label);
    double w = (double)strlen(label) * LABEL_W + 6, h = LABEL + 3;
    double left = (x1 < x2 ? x1 : x2) + 4, right = (x1 < x2 ? x2 : x1) - 4 - w;
    double x = 0, y = 0, least = -1;
    for (size_t j = 0; j < sizeof off / sizeof off[0]; j++) {
        for (size_t k = 0; k < sizeof along / sizeof along[0] && least != 0; k++) {
            double tx = x1 + (x2 - x1) * along[k] - w / 2;
            double ty = y1 + (y2 - y1) * along[k] - h / 2 + off[j] * (h / 2 + 2);
            tx = tx < left ? left : tx > right ? right : tx;
            double c = covered(tx, ty, w, h, p->placed, p->nplaced);
            if (least < 0 || c < least) {
                least = c;
                x = tx;
                y = ty;
            }
        }
    }
    double *box = p->placed[p->nplaced++];
    box[0] = x;
    box[1] = y;
    box[2] = w;
    box[3] = h;
    fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.0f\" fill=\"#ffffff\"/>\n",
            x, y, w, h);
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"%d\" fill=\"%s\">",
            x + w / 2, y + h - 4, LABEL, color_of(a->kind));
    put_text(out, label);
    fputs("</text>\n", out);
}

static void draw_call(FILE *out, const struct picture *p, int i)
{
    const struct call *c = &p->call[i];
    int l = p->lifeline[col_of(p, i)];
    int longest = 0;
    for (int k = 0; k < c->lines; k++) {
        int n = (int)strlen(c->line[k]) + (k > 0 ? 2 : 0);
        longest = n > longest ? n : longest;
    }
    int w = (int)(longest * CHAR_W) + 2 * BOX_PAD;
    int x = col_of(p, i) == 0 ? l - BOX_GAP - w : l + BOX_GAP;
    /* The waits of an event loop stand out: each ends a turn of the loop. */
    int wait = c->kind == WAIT;
    fprintf(out,
            "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" rx=\"3\" fill=\"%s\" "
            "stroke=\"%s\"/>\n",
            x, c->y - 3, w, c->lines * LINE_H + 6, wait ? "#fdf1c7" : "#f4f4f4",
            wait ? "#c9a227" : "#c4c4c4");
    fprintf(out, "<circle cx=\"%d\" cy=\"%d\" r=\"3\" fill=\"#555555\"/>\n", l, anchor_y(c));
    /* A call that failed says so in red as well as in words. */
    const char *color = c->kind != OTHER && c->rc == -1 ? "#a3322b" : "#111111";
    size_t label = strlen(p->trace[c->trace].label);
    for (int k = 0; k < c->lines; k++) {
        fprintf(out, "<text x=\"%d\" y=\"%d\" font-size=\"%d\" fill=\"%s\">",
                x + BOX_PAD + (k > 0 ? (int)(2 * CHAR_W) : 0), c->y + (k + 1) * LINE_H - 4, FONT,
                color);
        const char *s = c->line[k];
        if (k == 0 && label > 0) {
            /* The program's label in bold: whose call this is. */
            fputs("<tspan font-weight=\"bold\">", out);
            put_text(out, p->trace[c->trace].label);
            fputs("</tspan>", out);
            s += label;
        }
        put_text(out, s);
        fputs("</text>\n", out);
    }
}

/* "echo_client A", the program a trace is of. */
static void put_program(FILE *out, const struct picture *p, int t)
{
    put_text(out, p->col_name[p->trace[t].col]);
    fputs(p->trace[t].label[0] ? " " : "", out);
    put_text(out, p->trace[t].label);
}

/* "echo_client A send(3, 9 bytes) = 9", for the description. */
static void put_call(FILE *out, const struct picture *p, int i)
{
    put_program(out, p, p->call[i].trace);
    fputs(" ", out);
    put_text(out, p->call[i].text);
}

/* The words for a reader who cannot see the picture: what crossed the
 * network, in the order drawn. */
static void describe(FILE *out, const struct picture *p, const char *desc)
{
    int said = 0;
    fputs("<desc>", out);
    if (desc != NULL) {
        put_text(out, desc);
        fputs(" ", out);
    }
    /* "Time goes down; on the left the calls of A, B and C, on the right..." */
    fputs("Time goes down;", out);
    for (int col = 0; col < p->ncols; col++) {
        fputs(col == 0 ? " on the left the calls of " : ", on the right those of ", out);
        int named = 0, last = -1;
        for (int t = 0; t < p->ntraces; t++) {
            last = p->trace[t].col == col ? t : last;
        }
        for (int t = 0; t < p->ntraces; t++) {
            if (p->trace[t].col == col) {
                fputs(named++ == 0 ? "" : t == last ? " and " : ", ", out);
                put_program(out, p, t);
            }
        }
    }
    fputs(".", out);
    for (int r = 0; r < p->nrows; r++) {
        for (int a = 0; a < p->narrows; a++) {
            const struct arrow *w = &p->arrow[a];
            if (w->kind == ORDER || p->call[w->from].row != r) {
                continue;
            }
            char label[64];
            label_of(w, label, sizeof label);
            fputs(said++ == 0 ? " Across the network: " : "; ", out);
            put_text(out, label);
            fputs(" from ", out);
            put_call(out, p, w->from);
            if (w->to >= 0) {
                fputs(" to ", out);
                put_call(out, p, w->to);
            }
        }
    }
    fputs(said > 0 ? ".</desc>\n" : "</desc>\n", out);
}

static void draw(FILE *out, struct picture *p, const char *title, const char *desc)
{
    static const char *const note[] = {
        "Drawn by tools/timeline from a real run with NETX_TRACE=1. Each call is drawn",
        "below every call it had to wait for; PORT is a port number, new every run.",
    };
    int bottom = p->row_y[p->nrows];
    int height = bottom + 2 * (LABEL + 4) + MARGIN;
    fprintf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
            "viewBox=\"0 0 %d %d\" role=\"img\" font-family=\"%s\">\n",
            WIDTH, height, WIDTH, height, MONO);
    fputs("<title>", out);
    put_text(out, title);
    fputs("</title>\n", out);
    describe(out, p, desc);
    fprintf(out, "<rect width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", WIDTH, height);
    for (int col = 0; col < p->ncols; col++) {
        int l = p->lifeline[col];
        fprintf(out,
                "<text x=\"%d\" y=\"%d\" font-size=\"14\" font-weight=\"bold\" "
                "text-anchor=\"%s\" fill=\"#111111\">",
                col == 0 ? l - BOX_GAP : l + BOX_GAP, MARGIN + 16, col == 0 ? "end" : "start");
        put_text(out, p->col_name[col]);
        fputs("</text>\n", out);
        fprintf(out,
                "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#8a8a8a\" "
                "stroke-width=\"1.5\"/>\n",
                l, MARGIN + 24, l, bottom);
    }
    /* The arrows' lines, then their labels over them, then the calls: an
     * arrow that passes a column passes behind its calls. */
    for (int a = 0; a < p->narrows; a++) {
        if (p->arrow[a].kind != ORDER) {
            draw_arrow(out, p, &p->arrow[a]);
        }
    }
    fprintf(out, "<g font-family=\"%s\">\n", SANS);
    for (int a = 0; a < p->narrows; a++) {
        if (p->arrow[a].kind != ORDER) {
            draw_label(out, p, &p->arrow[a]);
        }
    }
    fputs("</g>\n", out);
    for (int i = 0; i < p->ncalls; i++) {
        draw_call(out, p, i);
    }
    for (size_t k = 0; k < sizeof note / sizeof note[0]; k++) {
        fprintf(out,
                "<text x=\"%d\" y=\"%d\" font-size=\"%d\" fill=\"#555555\" font-family=\"%s\">",
                MARGIN, bottom + (int)(k + 1) * (LABEL + 4), LABEL, SANS);
        put_text(out, note[k]);
        fputs("</text>\n", out);
    }
    fputs("</svg>\n", out);
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: %s [-t TITLE] [-d DESCRIPTION] COLUMN[:LABEL]=TRACE ...\n"
            "  Draw, as SVG on standard output, the calls in the NETX_TRACE=1 output of\n"
            "  programs that talked TCP to each other, in two COLUMNs, and the\n"
            "  handshakes, bytes and FINs that went between them. Traces that share a\n"
            "  COLUMN are told apart by their LABEL. Clients must be given in the order\n"
            "  they connected.\n"
            "  -t TITLE        the picture's title (its accessible name)\n"
            "  -d DESCRIPTION  what it shows, to begin its description\n",
            prog);
}

/* "echo_client:A=a.trace": the trace goes into the column named
 * echo_client, a new one if it is the first of that name. */
static void add_trace(struct picture *p, char *arg)
{
    char *eq = strchr(arg, '=');
    if (eq == NULL || eq == arg || p->ntraces == MAX_TRACES) {
        usage(stderr);
        exit(2);
    }
    *eq = '\0';
    char *colon = strchr(arg, ':');
    struct trace *t = &p->trace[p->ntraces];
    t->label = "";
    if (colon != NULL) {
        *colon = '\0';
        t->label = colon + 1;
    }
    for (t->col = 0; t->col < p->ncols && strcmp(p->col_name[t->col], arg) != 0; t->col++) {
    }
    if (t->col == p->ncols) {
        if (p->ncols == MAX_COLS) {
            die("too many columns");
        }
        p->col_name[p->ncols++] = arg;
    }
    read_trace(p, p->ntraces++, eq + 1);
}

int main(int argc, char **argv)
{
    const char *title = "A TCP connection, call by call";
    const char *desc = NULL;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i += 2) {
        if (strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (i + 1 == argc || (strcmp(argv[i], "-t") != 0 && strcmp(argv[i], "-d") != 0)) {
            usage(stderr);
            return 2;
        }
        if (argv[i][1] == 't') {
            title = argv[i + 1];
        } else {
            desc = argv[i + 1];
        }
    }
    if (i == argc) {
        usage(stderr);
        return 2;
    }
    struct picture *p = calloc(1, sizeof *p);
    if (p == NULL) {
        die("out of memory");
    }
    for (; i < argc; i++) {
        add_trace(p, argv[i]);
    }
    find_arrows(p);
    place_rows(p);
    place_calls(p);
    draw(stdout, p, title, desc);
    free(p);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        die("writing the picture failed");
    }
    return 0;
}

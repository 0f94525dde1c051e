#!/bin/sh
# mkman.sh - write the section 3 man pages of libnetx from include/netx.h
# (and of libnetx_tls from include/netx_tls.h).
#
#   sh docs/mkman.sh [-d DOCDIR] OUTDIR [HEADER]
#
# HEADER defaults to include/netx.h beside this script. DOCDIR is where
# `make install` puts the documentation (README.md, docs/); the overview
# page says so. The header is the API reference: each public function (a
# NETX_API prototype) and each public typedef has a comment above it in the
# form of a man page:
#
#   /*
#    * netx_name - one-line summary, ending with a full stop.
#    *
#    *   param  what it is (a tagged list, continued deeper)
#    *
#    * Prose paragraphs. Indented lines that are not a tagged list are
#    * examples, printed as they are.
#    *
#    * RETURN VALUE          (also ERRORS, BLOCKING, THREAD SAFETY,
#    *   ...                  "BLOCKING, THREAD SAFETY" and COST)
#    *
#    * EXAMPLE
#    *   Optional prose, at the heading's indent plus two.
#    *
#    *     int code(void)     C, two columns deeper: it must compile as it
#    *     {                  is, after #include <netx.h> (make test
#    *         ...            checks that, with tests/man.sh)
#    *     }
#    */
#
# A function whose example is another's says "EXAMPLE: see netx_other()"
# instead, and its page shows that example (which must then use it).
# EXAMPLE becomes the EXAMPLES section, written last, before SEE ALSO.
#
# One page is written per function and per typedef (OUTDIR/netx_name.3),
# plus an overview named after the header (netx.3 for netx.h, netx_tls.3
# for netx_tls.h), made from the header's opening comment (with its own
# ENVIRONMENT and EXAMPLE headings), its "Workflow step" and "Guide step"
# groups, and DOCDIR. Only POSIX sh, awk, date and mkdir are used, so the
# pages can be built wherever the library builds; the output is the same
# with mawk, gawk, the one true awk and busybox awk. The date on the pages
# is today's, or SOURCE_DATE_EPOCH's when that is set (reproducible builds).

set -u

docdir=
if [ $# -ge 2 ] && [ "$1" = -d ]; then
    docdir=$2
    shift 2
fi
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "usage: sh docs/mkman.sh [-d DOCDIR] OUTDIR [HEADER]" >&2
    exit 2
fi
outdir=$1
case $0 in
*/*) here=${0%/*} ;;
*) here=. ;;
esac
header=${2:-$here/../include/netx.h}

if [ ! -r "$header" ]; then
    echo "mkman.sh: cannot read $header" >&2
    exit 1
fi
mkdir -p "$outdir" || exit 1
# The header's name without ".h": the overview page's name, and what the
# pages say to include; the libraries to link, for the overview.
base=${header##*/}
base=${base%.h}
case $base in
netx) libs="-lnetx" ;;
*) libs="-l${base#lib} -lnetx" ;;
esac
# The version: the header's own, or netx.h's beside it.
version=$(awk '/^#define NETX_VERSION_(MAJOR|MINOR|PATCH) / { v = v (v == "" ? "" : ".") $3 }
               END { print v }' "$header")
if [ -z "$version" ]; then
    version=$(awk '/^#define NETX_VERSION_(MAJOR|MINOR|PATCH) / { v = v (v == "" ? "" : ".") $3 }
                   END { print v }' "${header%/*}/netx.h" 2>/dev/null)
fi

# The date of the pages (ISO 8601, which groff and mandoc both take).
if [ -n "${SOURCE_DATE_EPOCH:-}" ]; then
    date=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d 2>/dev/null ||
        date -u -r "$SOURCE_DATE_EPOCH" +%Y-%m-%d)
else
    date=$(date -u +%Y-%m-%d)
fi

# The directories go through the environment: awk -v would turn any
# backslash in them into an escape sequence.
MKMAN_OUTDIR=$outdir MKMAN_BASE=$base MKMAN_LIBS=$libs MKMAN_VERSION=$version \
MKMAN_DATE=$date MKMAN_DOCDIR=$docdir awk '
# --------------------------------------------------------------------------
# Text helpers
# --------------------------------------------------------------------------

# Replace every occurrence of the literal string from by to. index() and
# substr() rather than gsub(), whose handling of backslashes in the
# replacement differs between awks.
function replace(s, from, to,    out, i) {
    out = ""
    while ((i = index(s, from)) > 0) {
        out = out (i > 1 ? substr(s, 1, i - 1) : "") to
        s = substr(s, i + length(from))
    }
    return out s
}

# Make text safe for roff: a backslash is \e, a hyphen is \- (so "-1" and
# "close-on-exec" survive copy and paste as ASCII), and a line that would
# start with a control character (. or apostrophe) is protected with \&.
function esc(s) {
    s = replace(s, "\\", "\\e")
    s = replace(s, "-", "\\-")
    if (s ~ /^[.\047]/) {
        s = "\\&" s
    }
    return s
}

# Bold the names of functions and pages: "netx_recv()" and "socket(2)".
# Applied to text that esc() has already made safe.
function fonts(s,    out, name, paren) {
    out = ""
    while (match(s, /[A-Za-z_][A-Za-z0-9_]*\([0-9]?\)/)) {
        name = substr(s, RSTART, RLENGTH)
        paren = index(name, "(")
        out = out (RSTART > 1 ? substr(s, 1, RSTART - 1) : "") "\\fB" substr(name, 1, paren - 1) "\\fP" \
              substr(name, paren)
        s = substr(s, RSTART + RLENGTH)
    }
    return out s
}

function text_line(s) {
    return fonts(esc(s))
}

function trim(s) {
    sub(/^[ \t]+/, "", s)
    sub(/[ \t]+$/, "", s)
    return s
}

function indent_of(s) {
    match(s, /^ */)
    return RLENGTH
}

function upper_first(s) {
    return toupper(substr(s, 1, 1)) substr(s, 2)
}

# --------------------------------------------------------------------------
# Reading the header
# --------------------------------------------------------------------------

# A comment line without its " * " prefix: " *   host  ..." -> "  host  ...".
function strip_star(s) {
    if (s ~ /^ \* /) {
        return substr(s, 4)
    }
    if (s ~ /^ \*$/) {
        return ""
    }
    return s
}

BEGIN {
    outdir = ENVIRON["MKMAN_OUTDIR"]
    hbase = ENVIRON["MKMAN_BASE"]  # "netx" for netx.h
    ncomment = 0    # lines of the comment just read
    nentry = 0      # documented functions and typedefs
    group = ""      # the header section ("Workflow step 1: create a socket")
    ngroups = 0
    intro_n = 0     # the opening comment, for netx.3
    seen_code = 0   # any code yet (the opening comment comes before it)
    problems = 0
    written = 0
    state = "code"
}


state == "comment" {
    if ($0 ~ /\*\/[ \t]*$/) {
        state = "after_comment"
        line = $0
        sub(/[ \t]*\*\/[ \t]*$/, "", line)
        line = strip_star(line)
        if (trim(line) != "") {
            comment[++ncomment] = line
        }
        if (banner) {
            # "/* ----\n * Step 1: create a socket\n * ---- */"
            for (ci = 1; ci <= ncomment; ci++) {
                if (comment[ci] !~ /^-+$/ && trim(comment[ci]) != "") {
                    group = trim(comment[ci])
                    groups[++ngroups] = group
                }
            }
            state = "code"
        } else if (intro_n == 0 && nentry == 0 && !seen_code) {
            for (ci = 1; ci <= ncomment; ci++) {
                intro[++intro_n] = comment[ci]
            }
            state = "code"
        }
        next
    }
    comment[++ncomment] = strip_star($0)
    next
}

/^\/\*/ {
    # A new comment; a one-line comment is not documentation.
    if ($0 ~ /\*\/[ \t]*$/) {
        next
    }
    banner = ($0 ~ /^\/\* -+/)
    ncomment = 0
    state = "comment"
    next
}

state == "after_comment" && /^[ \t]*$/ {
    next
}

state == "after_comment" && /^NETX_API / {
    # The prototype up to its ";", without what only the compiler reads:
    # the #if lines around a printf format attribute, and the attribute.
    proto = $0
    while (proto !~ /;/ && (getline more) > 0) {
        if (trim(more) !~ /^#/) {
            proto = proto " " trim(more)
        }
    }
    sub(/[ \t]*__attribute__\(\(.*\)\)[ \t]*/, "", proto)
    sub(/[ \t]+;/, ";", proto)
    add_entry("function", proto)
    state = "code"
    next
}

/^NETX_API / {
    # A public function without its documentation: the page would be
    # missing, and the header would not be the reference it promises.
    undoc = $0
    sub(/\(.*/, "", undoc)
    sub(/.*[ *]/, "", undoc)
    printf("mkman.sh: %s: no comment above it\n", undoc) > "/dev/stderr"
    problems++
    state = "code"
    next
}

state == "after_comment" && /^typedef struct / {
    ndef = 1
    def[1] = $0
    # An opaque type is one line ("typedef struct netx_poller netx_poller;");
    # a struct with fields ends at the line that starts with "}".
    opaque = ($0 ~ /;[ \t]*$/)
    while (!opaque && $0 !~ /^}/ && (getline) > 0) {
        def[++ndef] = $0
    }
    body = def[1]
    for (ci = 2; ci <= ndef; ci++) {
        body = body "\n" def[ci]
    }
    add_entry("typedef", body)
    state = "code"
    next
}

{
    # Any other code: the comment above it (if any) documents nothing we
    # make a page for (NETX_ADDRSTRLEN, the include guard, ...).
    if ($0 !~ /^[ \t]*$/) {
        seen_code = 1
    }
    state = "code"
}

function add_entry(kind, decl,    name, n, i, first, s, nl, nx, inex) {
    if (kind == "function") {
        decl = replace(decl, "NETX_API ", "")
        gsub(/[ \t]+/, " ", decl)
        # The name is the identifier right before the first "(".
        n = substr(decl, 1, index(decl, "(") - 1)
        sub(/.*[ *]/, "", n)
        name = n
    } else {
        n = decl
        sub(/.*\n} */, "", n)
        sub(/;.*/, "", n)
        sub(/.*[ *]/, "", n) # the last word: the name of an opaque type too
        name = trim(n)
    }
    first = comment[1]
    if (index(first, name " - ") != 1) {
        printf("mkman.sh: %s: the comment above it does not start with \"%s - \"\n",
               name, name) > "/dev/stderr"
        problems++
    }
    nentry++
    e_name[nentry] = name
    e_index[name] = nentry
    e_kind[nentry] = kind
    e_decl[nentry] = decl
    e_group[nentry] = group
    # The EXAMPLE section goes apart: it is written last, and may be shared.
    nl = 0
    nx = 0
    inex = 0
    e_exsee[nentry] = ""
    for (i = 1; i <= ncomment; i++) {
        s = comment[i]
        if (is_heading(s)) {
            inex = is_example_heading(s)
            if (inex) {
                e_exsee[nentry] = example_see(s)
                continue
            }
        }
        if (inex) {
            e_ex[nentry, ++nx] = s
        } else {
            e_line[nentry, ++nl] = s
        }
    }
    e_nlines[nentry] = nl
    e_nex[nentry] = nx
}

# --------------------------------------------------------------------------
# Writing a page
# --------------------------------------------------------------------------

# Write a line of filled text, broken at spaces so that no source line is
# much longer than 80 bytes (the width is for the reader to choose; this is for those
# who read the roff). A piece that would start with a control character
# is protected with \&.
function put(out, s,    w, nw, i, word, line) {
    nw = split(s, w, " ")
    line = ""
    for (i = 1; i <= nw; i++) {
        word = w[i]
        if (line != "" && length(line) + 1 + length(word) > 79) {
            print line > out
            line = ""
        }
        if (line == "" && word ~ /^[.\047]/) {
            word = "\\&" word
        }
        line = (line == "" ? word : line " " word)
    }
    if (line != "") {
        print line > out
    }
}

# Start a paragraph, except right after a heading (where it would be an
# empty paragraph: mandoc -T lint says so).
function para_break(out) {
    if (!FRESH) {
        print ".PP" > out
    }
    FRESH = 0
}

function heading(out, name) {
    if (name ~ / /) {
        printf(".SH \"%s\"\n", name) > out
    } else {
        print ".SH " name > out
    }
    FRESH = 1
}

# A tagged list item: "  name   text" (a tag, two or more spaces, text).
# Sets TAG and BODY. In ERRORS a line that starts with an errno name and one
# space ("EADDRNOTAVAIL no local port left.") is an item too.
function is_item(s, in_errors,    t) {
    t = trim(s)
    if (match(t, /  +/) && RSTART > 1 && RSTART <= 28) {
        TAG = substr(t, 1, RSTART - 1)
        BODY = substr(t, RSTART + RLENGTH)
        if (TAG !~ /  / && BODY != "") {
            return 1
        }
    }
    if (in_errors && match(t, /^E[A-Z0-9]+ [a-z(]/)) {
        TAG = substr(t, 1, RLENGTH - 2)
        BODY = substr(t, RLENGTH)
        return 1
    }
    return 0
}

# Write the lines SEC[1..n] of one section. base is the indent of the
# section text (0 for DESCRIPTION, 2 under a heading). A line at base is
# prose; a tagged item or a bullet may be indented up to base + 2, and the
# deeper lines after it continue it; any other indented line is an example,
# written unfilled.
function section(out, n, base, in_errors,    i, s, ind, mode, item_ind) {
    mode = ""       # "", "gap", "prose", "item" or "verbatim"
    for (i = 1; i <= n; i++) {
        s = SEC[i]
        if (trim(s) == "") {
            mode = end_verbatim(out, mode)
            mode = (mode == "" ? "" : "gap")
            continue
        }
        ind = indent_of(s)
        if (mode == "item" && ind > item_ind) {
            put(out, text_line(trim(s)))
        } else if (ind > base && ind <= base + 2 && substr(trim(s), 1, 2) == "- ") {
            end_verbatim(out, mode)
            print ".IP \\(bu 2" > out
            put(out, text_line(substr(trim(s), 3)))
            mode = "item"
            item_ind = ind
            FRESH = 0
        } else if (ind <= base + 2 && is_item(s, in_errors)) {
            end_verbatim(out, mode)
            print ".TP" > out
            print (in_errors ? "\\fB" : "\\fI") esc(TAG) "\\fP" > out
            put(out, text_line(BODY))
            mode = "item"
            item_ind = ind
            FRESH = 0
        } else if (ind <= base) {
            if (mode != "prose") {
                end_verbatim(out, mode)
                para_break(out)
            }
            put(out, text_line(trim(s)))
            mode = "prose"
        } else {
            if (mode != "verbatim") {
                para_break(out)
                print ".RS 4" > out
                print ".nf" > out
            }
            print esc(substr(s, (ind < base + 2 ? ind : base + 2) + 1)) > out
            mode = "verbatim"
        }
    }
    end_verbatim(out, mode)
}

# Close an example block if one is open; returns the mode that follows.
function end_verbatim(out, mode) {
    if (mode == "verbatim") {
        print ".fi" > out
        print ".RE" > out
        return "gap"
    }
    return mode
}

# The EXAMPLES section from the lines EX[1..n] of an EXAMPLE: prose at the
# indent of the heading plus two (filled), C two columns deeper (unfilled, as
# it is, so that it can be copied; tests/man.sh compiles it). A blank line
# inside the C stays in it.
function examples(out, n, from,    i, j, s, ind, mode, base) {
    for (i = 1; i <= n && trim(EX[i]) == ""; i++) {
    }
    if (i > n) {
        return
    }
    heading(out, "EXAMPLES")
    # Where the example is written, for tests/man.sh to say.
    printf(".\\\" From the EXAMPLE of %s in include/%s.h.\n", from, hbase) > out
    base = 2
    mode = ""       # "", "gap", "prose" or "code"
    for (; i <= n; i++) {
        s = EX[i]
        if (trim(s) == "") {
            if (mode == "code") {
                for (j = i + 1; j <= n && trim(EX[j]) == ""; j++) {
                }
                if (j <= n && indent_of(EX[j]) > base) {
                    print "" > out
                    continue
                }
                print ".fi" > out
                print ".RE" > out
            }
            mode = (mode == "" ? "" : "gap")
            continue
        }
        ind = indent_of(s)
        if (ind > base) {
            if (mode != "code") {
                para_break(out)
                print ".RS 2" > out
                print ".nf" > out
                mode = "code"
            }
            print esc(substr(s, (ind < base + 2 ? ind : base + 2) + 1)) > out
        } else {
            if (mode == "code") {
                print ".fi" > out
                print ".RE" > out
            }
            if (mode != "prose") {
                para_break(out)
            }
            put(out, text_line(trim(s)))
            mode = "prose"
        }
    }
    if (mode == "code") {
        print ".fi" > out
        print ".RE" > out
    }
}

# The prototype, broken after a comma when it is long and continued under
# the opening parenthesis (SYNOPSIS is not filled), with the name in bold.
function synopsis_proto(out, decl, name,    open, pad, rest, cut, i, nl, width, s) {
    width = 66
    open = index(decl, "(")
    pad = sprintf("%" open "s", "")
    nl = 0
    rest = decl
    while (length(rest) > width) {
        cut = 0
        for (i = 1; i <= width; i++) {
            if (substr(rest, i, 2) == ", ") {
                cut = i
            }
        }
        if (cut == 0) {
            break
        }
        PROTO[++nl] = substr(rest, 1, cut)
        rest = pad substr(rest, cut + 2)
    }
    PROTO[++nl] = rest
    for (i = 1; i <= nl; i++) {
        s = esc(PROTO[i])
        if (i == 1) {
            s = replace(s, name "(", "\\fB" name "\\fP(")
        }
        print s > out
    }
}

function page_head(out, title) {
    printf(".\\\" Generated by docs/mkman.sh from include/%s.h; do not edit.\n", hbase) > out
    printf(".TH %s 3 %s \"libnetx %s\" \"libnetx Manual\"\n", title, date, version) > out
    print ".nh" > out
    print ".ad l" > out
}

function write_page(k,    name, out, n, i, s, first, summary, para, p, np, heads,
                    secname, j, m, word) {
    name = e_name[k]
    out = outdir "/" name ".3"
    n = e_nlines[k]

    # The first paragraph: from "name - " to a blank line, a heading or an
    # indented line.
    first = e_line[k, 1]
    sub(/^[A-Za-z0-9_]+ - /, "", first)
    para = first
    for (i = 2; i <= n; i++) {
        s = e_line[k, i]
        if (trim(s) == "" || indent_of(s) > 0 || is_heading(s)) {
            break
        }
        para = para " " trim(s)
    }
    p = i

    # Its first sentence is the summary: up to ". " or the end, without
    # the final full stop or colon.
    summary = para
    if ((j = index(summary, ". ")) > 0) {
        summary = substr(summary, 1, j - 1)
    }
    sub(/[.:]$/, "", summary)
    e_summary[k] = summary
    # A type named after its header (netx_tls in netx_tls.h) is described
    # on the overview page, which has its name.
    if (name == hbase) {
        merged = k
        merged_p = p
        return
    }

    page_head(out, toupper(name))
    heading(out, "NAME")
    put(out, name " \\- " esc(summary))

    heading(out, "SYNOPSIS")
    print ".nf" > out
    print ".B #include <" hbase ".h>" > out
    print ".PP" > out
    if (e_kind[k] == "function") {
        synopsis_proto(out, e_decl[k], name)
    } else {
        np = split(e_decl[k], heads, "\n")
        for (i = 1; i <= np; i++) {
            print esc(heads[i]) > out
        }
    }
    print ".fi" > out

    # DESCRIPTION: the first paragraph as a sentence, then everything up to
    # the first heading.
    heading(out, "DESCRIPTION")
    put(out, text_line(upper_first(para)))
    FRESH = 0
    split("", SEC)
    secname = "DESCRIPTION"
    m = 0
    for (i = p; i <= n; i++) {
        s = e_line[k, i]
        if (is_heading(s)) {
            flush_section(out, secname, m)
            secname = trim(s)
            m = 0
            split("", SEC)
            continue
        }
        SEC[++m] = s
    }
    flush_section(out, secname, m)

    split("", EX)
    for (i = 1; i <= e_nex[k]; i++) {
        EX[i] = e_ex[k, i]
    }
    examples(out, e_nex[k], e_exsee[k] != "" ? e_exsee[k] : name)

    # SEE ALSO: the functions and pages the comment names, the other
    # functions of the same group, and the overview.
    nsee = 0
    split("", SEEN)
    SEEN[name] = 1
    for (i = 1; i <= n; i++) {
        see_refs(e_line[k, i])
    }
    for (j = 1; j <= nentry; j++) {
        if (e_group[j] == e_group[k]) {
            add_see(e_name[j] "(3)")
        }
    }
    add_see(hbase "(3)")
    write_see(out)
    close(out)
    written++
}

# Add the pages that the text s names: "socket(2)", and "netx_recv()" as
# netx_recv(3).
function see_refs(s,    word) {
    while (match(s, /[A-Za-z_][A-Za-z0-9_]*\([0-9]?\)/)) {
        word = substr(s, RSTART, RLENGTH)
        s = substr(s, RSTART + RLENGTH)
        if (word ~ /\(\)$/) {
            if (word !~ /^netx_/) {
                continue
            }
            word = substr(word, 1, length(word) - 2) "(3)"
        }
        add_see(word)
    }
}

function add_see(word,    base) {
    base = substr(word, 1, index(word, "(") - 1)
    if (base in SEEN) {
        return
    }
    SEEN[base] = 1
    SEE[++nsee] = word
}

function write_see(out,    i, j, word) {
    heading(out, "SEE ALSO")
    for (i = 1; i <= nsee; i++) {
        word = SEE[i]
        j = index(word, "(")
        print "\\fB" esc(substr(word, 1, j - 1)) "\\fP" substr(word, j) (i < nsee ? "," : "") > out
    }
}

function is_heading(s) {
    return s ~ /^(RETURN VALUE|ERRORS|RETURN VALUE, ERRORS|BLOCKING|THREAD SAFETY|BLOCKING, THREAD SAFETY|COST|ENVIRONMENT|SEE ALSO)[ \t]*$/ ||
           is_example_heading(s)
}

# "EXAMPLE", or "EXAMPLE: see netx_other()" for an example kept with
# another function.
function is_example_heading(s) {
    return s ~ /^EXAMPLES?[ \t]*$/ || s ~ /^EXAMPLES?: see [A-Za-z_][A-Za-z0-9_]*\(\)[ \t]*$/
}

function example_see(s) {
    if (s !~ /: see /) {
        return ""
    }
    sub(/.*: see /, "", s)
    sub(/\(\).*/, "", s)
    return s
}

function flush_section(out, secname, m,    i, base, got) {
    got = 0
    for (i = 1; i <= m; i++) {
        if (trim(SEC[i]) != "") {
            got = 1
            break
        }
    }
    # A SEE ALSO of its own adds its pages to the one SEE ALSO written last.
    if (!got || secname == "SEE ALSO") {
        return
    }
    if (secname != "DESCRIPTION") {
        heading(out, secname)
        base = indent_of(SEC[i])
    } else {
        base = 0
    }
    section(out, m, base, secname == "ERRORS")
}

# The overview page: the opening comment of the header (its ENVIRONMENT and
# EXAMPLE too), the functions by group, where the documentation is, and
# every page.
function write_overview(    out, i, g, j, n, first, p, s, para, secname, nx, nsec, docdir) {
    out = outdir "/" hbase ".3"
    page_head(out, toupper(hbase))
    heading(out, "NAME")
    first = intro[1]
    sub(/^[^ ]+ - /, "", first)
    para = first
    for (i = 2; i <= intro_n; i++) {
        s = intro[i]
        if (trim(s) == "" || indent_of(s) > 0 || is_heading(s)) {
            break
        }
        para = para " " trim(s)
    }
    p = i
    s = para
    if ((j = index(s, ". ")) > 0) {
        s = substr(s, 1, j - 1)
    }
    sub(/[.:]$/, "", s)
    put(out, esc(hbase) " \\- " esc(s))
    heading(out, "SYNOPSIS")
    print ".nf" > out
    print ".B #include <" hbase ".h>" > out
    print ".PP" > out
    print "cc ... " esc(ENVIRONMENT_LIBS) > out
    if (merged) {
        print ".PP" > out
        print esc(e_decl[merged]) > out
    }
    print ".fi" > out

    # The opening comment: the description up to its first heading, then
    # its ENVIRONMENT and SEE ALSO sections, kept for their places below.
    secname = "DESCRIPTION"
    n = 0
    nx = 0
    nenv = 0
    split("", SEC)
    split("", EX)
    split("", ENVL)
    split("", SEEL)
    nseel = 0
    for (i = p; i <= intro_n; i++) {
        s = intro[i]
        if (is_heading(s)) {
            secname = is_example_heading(s) ? "EXAMPLES" : trim(s)
            continue
        }
        if (secname == "DESCRIPTION") {
            SEC[++n] = s
        } else if (secname == "EXAMPLES") {
            EX[++nx] = s
        } else if (secname == "ENVIRONMENT") {
            ENVL[++nenv] = s
        } else {
            SEEL[++nseel] = s
        }
    }
    # NAME has said what the library is; the description goes on from there.
    heading(out, "DESCRIPTION")
    section(out, n, 0, 0)
    if (merged) {
        # The type of the same name: its summary and description.
        split("", SEC)
        n = 0
        for (i = 1; i < merged_p; i++) {
            SEC[++n] = e_line[merged, i]
        }
        sub(/^[A-Za-z0-9_]+ - /, "", SEC[1])
        SEC[1] = "The type " hbase ": " SEC[1]
        SEC[++n] = ""
        for (i = merged_p; i <= e_nlines[merged]; i++) {
            SEC[++n] = e_line[merged, i]
        }
        section(out, n, 0, 0)
    }

    heading(out, "FUNCTIONS")
    for (g = 0; g <= ngroups; g++) {
        nsec = 0
        for (j = 1; j <= nentry; j++) {
            if (e_group[j] == (g == 0 ? "" : groups[g])) {
                if (nsec++ == 0) {
                    printf(".SS \"%s\"\n", esc(g == 0 ? "Types" : groups[g])) > out
                }
                print ".TP" > out
                printf("\\fB%s\\fP(3)\n", esc(e_name[j])) > out
                put(out, esc(e_summary[j]) ".")
            }
        }
    }

    if (nenv > 0) {
        heading(out, "ENVIRONMENT")
        split("", SEC)
        for (i = 1; i <= nenv; i++) {
            SEC[i] = ENVL[i]
        }
        section(out, nenv, 2, 0)
    }

    heading(out, "FILES")
    docdir = ENVIRON["MKMAN_DOCDIR"]
    if (docdir == "") {
        put(out, "The documentation is in the source tree: README.md, docs/*.md, and the " \
            "tutorial in docs/tutorial/. \\fBmake install\\fP installs it.")
    } else {
        sub(/\/+$/, "", docdir)
        print ".TP" > out
        print "\\fI" esc(docdir) "/README.md\\fP" > out
        put(out, "Start here: what libnetx is, how to build, test and install it, and its " \
            "source files in the order the article teaches them.")
        print ".TP" > out
        print "\\fI" esc(docdir) "/docs/tutorial/README.md\\fP" > out
        put(out, "The tutorial: the article\047s workflow and guide one step a chapter, each " \
            "in Python, plain C and libnetx, with programs to run and mistakes to make.")
        print ".TP" > out
        print "\\fI" esc(docdir) "/docs/errors.md\\fP" > out
        put(out, "Every error a call can report: its errno, when it happens, and the " \
            "sentence \\fBnetx_last_error\\fP() gives.")
        print ".TP" > out
        print "\\fI" esc(docdir) "/docs/\\fP" > out
        put(out, "The rest: design.md (why the library is as it is), performance.md, " \
            "reliability.md.")
    }

    examples(out, nx, "the opening comment")

    nsee = 0
    split("", SEEN)
    SEEN[hbase] = 1
    for (j = 1; j <= nentry; j++) {
        add_see(e_name[j] "(3)")
    }
    if (merged) {
        for (i = 1; i <= e_nlines[merged]; i++) {
            see_refs(e_line[merged, i])
        }
    }
    for (i = 1; i <= nseel; i++) {
        see_refs(SEEL[i])
    }
    write_see(out)
    close(out)
    written++
}

# An "EXAMPLE: see netx_other()" takes the example of netx_other, which must be
# its own.
function resolve_examples(    k, j, i, other) {
    for (k = 1; k <= nentry; k++) {
        other = e_exsee[k]
        if (other == "") {
            continue
        }
        j = (other in e_index) ? e_index[other] : 0
        if (j == 0 || e_nex[j] == 0 || e_exsee[j] != "") {
            printf("mkman.sh: %s: \"EXAMPLE: see %s()\": %s has no example of its own\n",
                   e_name[k], other, other) > "/dev/stderr"
            problems++
            continue
        }
        if (e_nex[k] > 0) {
            printf("mkman.sh: %s: an example of its own after \"EXAMPLE: see %s()\"\n",
                   e_name[k], other) > "/dev/stderr"
            problems++
            continue
        }
        for (i = 1; i <= e_nex[j]; i++) {
            e_ex[k, i] = e_ex[j, i]
        }
        e_nex[k] = e_nex[j]
    }
}

END {
    version = ENVIRON["MKMAN_VERSION"]
    date = ENVIRON["MKMAN_DATE"]
    ENVIRONMENT_LIBS = ENVIRON["MKMAN_LIBS"]
    if (nentry == 0) {
        print "mkman.sh: no documented NETX_API function found" > "/dev/stderr"
        exit 1
    }
    resolve_examples()
    for (ek = 1; ek <= nentry; ek++) {
        write_page(ek)
    }
    write_overview()
    printf("mkman.sh: %d pages in %s\n", written, outdir)
    exit(problems > 0 ? 1 : 0)
}
' "$header"

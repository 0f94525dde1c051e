#!/bin/sh
# tests/man.sh - the man pages, checked on every `make test`:
#
#   - every public function (each NETX_API line of include/netx.h and
#     include/netx_tls.h) has its page;
#   - every page reads without a warning in `groff -man -ww -z` (and in
#     `mandoc -T lint -W warning`, where mandoc is installed);
#   - every page has an EXAMPLES section, and the example on a function's
#     or a type's page uses that function or type;
#   - the C of every EXAMPLES section compiles as the page prints it, after
#     #include <netx.h> (or <netx_tls.h>), with $CC -std=c11 -Wall -Wextra
#     -Wpedantic -Werror: an example that the header no longer agrees with
#     fails the test, so none can rot.
#
#   sh tests/man.sh DIR                  make the pages in DIR/man3, check them
#   sh tests/man.sh --no-generate DIR    check the pages already in DIR/man3
#
# The netx_tls pages are checked in every build: they are only text, and
# their examples need netx_tls.h, not OpenSSL. CC (default cc) compiles
# the examples; DOCDIR is handed to docs/mkman.sh.
set -u

here=$(cd "$(dirname "$0")/.." && pwd)
generate=1
if [ "${1:-}" = --no-generate ]; then
    generate=0
    shift
fi
if [ $# -ne 1 ]; then
    echo "usage: sh tests/man.sh [--no-generate] DIR" >&2
    exit 2
fi
dir=$1
pages=$dir/man3
examples=$dir/examples
cc=${CC:-cc}
headers="$here/include/netx.h $here/include/netx_tls.h"

if ! command -v groff >/dev/null 2>&1; then
    echo "man: the pages are checked with groff, which is not installed. Install it:" >&2
    echo "man:   apt-get install groff-base   (Debian, Ubuntu; dnf: groff-base; brew: groff)" >&2
    exit 1
fi

failed=0
fail() {
    echo "man: $*" >&2
    failed=$((failed + 1))
}

if [ "$generate" = 1 ]; then
    rm -rf "$pages"
    for h in $headers; do
        sh "$here/docs/mkman.sh" -d "${DOCDIR:-/usr/local/share/doc/libnetx}" "$pages" "$h" \
            >/dev/null || fail "docs/mkman.sh failed on ${h##*/}"
    done
fi
rm -rf "$examples"
mkdir -p "$examples" || exit 1

# Every public function has a page.
funcs=$(awk '/^NETX_API / { s = $0; sub(/\(.*/, "", s); sub(/.*[ *]/, "", s); print s }' $headers)
nfuncs=0
for f in $funcs; do
    nfuncs=$((nfuncs + 1))
    [ -f "$pages/$f.3" ] || fail "$f: no man page ($pages/$f.3)"
done
[ "$nfuncs" -gt 0 ] || fail "no NETX_API function found in the headers"

have_mandoc=0
command -v mandoc >/dev/null 2>&1 && have_mandoc=1

npages=0
nexamples=0
sums=" "
for page in "$pages"/*.3; do
    [ -f "$page" ] || continue
    npages=$((npages + 1))
    name=${page##*/}
    name=${name%.3}

    out=$(groff -man -ww -z "$page" 2>&1)
    if [ $? -ne 0 ] || [ -n "$out" ]; then
        fail "$name.3: groff -man -ww -z: ${out:-exit status not 0}"
    fi
    if [ "$have_mandoc" = 1 ]; then
        out=$(mandoc -T lint -W warning "$page" 2>&1)
        if [ $? -ne 0 ] || [ -n "$out" ]; then
            fail "$name.3: mandoc -T lint: ${out:-exit status not 0}"
        fi
    fi

    # The C of the EXAMPLES section: its unfilled blocks, with the roff
    # escapes mkman.sh puts in (\e \- \&) taken out again, after the
    # #include the page's SYNOPSIS shows.
    src=$examples/$name.c
    awk '
        function unescape(s,    out, i, c) {
            out = ""
            while ((i = index(s, "\\")) > 0) {
                c = substr(s, i + 1, 1)
                out = out substr(s, 1, i - 1)
                if (c == "e") {
                    out = out "\\"
                } else if (c == "-") {
                    out = out "-"
                } else if (c != "&") {
                    bad = bad " \\" c
                    out = out "\\" c
                }
                s = substr(s, i + 2)
            }
            return out s
        }
        /^\.B #include </ && include == "" {
            include = substr($0, 4)
        }
        /^\.SH/ {
            inex = ($0 ~ /^\.SH "?EXAMPLES"?$/)
            seen += inex
            next
        }
        !inex {
            next
        }
        /^\.nf$/ {
            code = 1
            next
        }
        /^\.fi$/ {
            code = 0
            next
        }
        code {
            lines[++n] = unescape($0)
        }
        END {
            if (!seen) {
                exit 3
            }
            if (n == 0) {
                exit 4
            }
            if (bad != "") {
                print "unexpected roff escapes in the example:" bad > "/dev/stderr"
                exit 5
            }
            print include
            print ""
            for (i = 1; i <= n; i++) {
                print lines[i]
            }
        }
    ' "$page" >"$src"
    case $? in
    0) ;;
    3)
        fail "$name.3: no EXAMPLES section (add an EXAMPLE to its comment in the header)"
        continue
        ;;
    4)
        fail "$name.3: its EXAMPLES section has no code"
        continue
        ;;
    *)
        fail "$name.3: its EXAMPLES section cannot be read back as C"
        continue
        ;;
    esac
    nexamples=$((nexamples + 1))
    # Where it is written: mkman.sh says so in a comment ("From the EXAMPLE
    # of netx_tcp_listen in include/netx.h.").
    from=$(sed -n 's/^\.\\" From the \(EXAMPLE of .*\)\.$/\1/p' "$page" | head -n 1)

    # A function's or a type's page shows an example that uses it (an
    # overview page, named after its header, shows a whole program).
    if [ ! -f "$here/include/$name.h" ] &&
        ! grep -q -E "(^|[^A-Za-z0-9_])$name([^A-Za-z0-9_]|\$)" "$src"; then
        fail "$name.3: its example (the ${from:-EXAMPLE}) does not use $name"
    fi

    # Compile each different example once (a shared one is on many pages).
    sum=$(sed 1d "$src" | cksum | tr ' ' '-')
    case $sums in
    *" $sum "*) continue ;;
    esac
    sums="$sums$sum "
    if ! "$cc" -std=c11 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Wpedantic -Werror \
        -fsyntax-only -I"$here/include" "$src" 2>"$src.err"; then
        fail "$name.3: its example (the ${from:-EXAMPLE}) does not compile ($src):"
        sed 's/^/    /' "$src.err" >&2
    fi
done

if [ "$failed" -gt 0 ]; then
    echo "man: FAILED: $failed problem(s) in the man pages in $pages" >&2
    exit 1
fi
linters="groff -ww finds"
[ "$have_mandoc" = 1 ] && linters="groff -ww and mandoc -T lint find"
ndistinct=$(echo "$sums" | wc -w)
echo "man: $npages pages, $nfuncs public functions among them; $linters nothing;" \
    "every page has EXAMPLES ($ndistinct different ones), which compile with $cc"

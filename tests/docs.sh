#!/bin/sh
# tests/docs.sh - keep the pages true. Reads README.md and every *.md under
# docs/, compiles each program in them, runs each checked transcript and
# compares what it prints with what the page says, and checks that every
# relative link leads to a file. The specification is the section "How the
# pages are tested" of docs/tutorial/README.md; `make test` runs this.
#
#   sh tests/docs.sh                   README.md and docs/**/*.md
#   sh tests/docs.sh FILE.md ...       only these pages (while writing one)
#   sh tests/docs.sh --self-test       the harness against tests/docs/*.md
#
# What it reads in a page:
#
#   <!-- program: NAME -->     on the line just before a ```c fence (no blank
#   ```c                       line between): the block is a program, NAME.
#   ...int main(...            A ```c block with a line matching `int main(`
#   ```                        must be named; one without is a fragment, and
#                              is not compiled. NAME is letters, digits, _
#                              and -, unique over all the pages, and not the
#                              name of an example.
#
#   <!-- check -->             on the line just before a ```console fence:
#   ```console                 each "$ " line is run by sh, in a scratch
#   $ command                  directory of the block's own, and must print
#   what it prints             (standard output and error together) the
#   ```                        lines after it, up to the next "$ " line,
#                              exactly (a blank line there is a line of
#                              output). The exit status is not compared; a
#                              command that does not end within
#                              DOCS_TIMEOUT is a failure.
#
#   [text](path), [ref]: path  a relative path must name a file or directory
#                              (from the page's directory; /path from the
#                              top of the repository). URLs, #anchors and
#                              paths into build/ (files make writes) are
#                              not checked.
#
# Fences are ``` or ~~~ (a longer one closes only with one as long), and may
# be indented, in a list item, with their marker indented alike.
#
# Programs are compiled, in parallel, with
#   $CC -std=c11 -Wall -Wextra -Wpedantic -Werror -Iinclude $DOCS_CFLAGS \
#       NAME.c $BUILD/libnetx.a -lpthread
# and a program that includes <netx_tls.h> also with OpenSSL and
# $BUILD/libnetx_tls.a when TLS=1; without TLS=1 it is skipped, and so is a
# transcript whose commands name it or a TLS example (tls_*). A transcript
# whose commands name one of the outside programs in DOCS_TOOLS that is not
# installed is skipped too, and the summary says so.
#
# A command runs with `sh -c` in a new session under timeout(1) (a command
# left in the background is killed when the command ends), standard input
# from /dev/null, and an environment of its own: PATH = the programs, then
# $BUILD/examples, then the PATH this script was given; HOME = the scratch
# directory; LC_ALL=C; TZ=UTC0; nothing else (no NETX_TRACE unless the
# command sets it).
#
# Environment (`make test` sets CC, BUILD, TLS, DOCS_CFLAGS and OPENSSL_*):
#   CC            the compiler (cc)
#   BUILD         where libnetx.a and examples/ are (build)
#   TLS           1: compile and run the TLS programs too
#   DOCS_CFLAGS   added to every compile; make passes the sanitizer flags the
#                 library was built with, so the programs link with it
#   OPENSSL_CFLAGS, OPENSSL_LIBS   (pkg-config openssl)
#   DOCS_TIMEOUT  seconds a command may take (10)
#   DOCS_JOBS     compilers run at once (the number of CPUs)
#   DOCS_TOOLS    outside programs a transcript may need
#                 ("python3 nc curl openssl")
#
# Exit status: 0 when all is as the pages say; 1 when a page is wrong, each
# problem printed as FILE:LINE: and a sentence; 2 when the harness itself
# cannot run.

set -u

me=$0
top=$(cd "$(dirname "$0")/.." && pwd) || exit 2
tab=$(printf '\t')
# The compilers and the tools speak plain ASCII, the same on every machine.
LC_ALL=C
export LC_ALL

CC=${CC:-cc}
BUILD=${BUILD:-build}
TLS=${TLS:-}
DOCS_CFLAGS=${DOCS_CFLAGS:-}
DOCS_TIMEOUT=${DOCS_TIMEOUT:-10}
DOCS_TOOLS=${DOCS_TOOLS:-python3 nc curl openssl}
if [ -z "${DOCS_JOBS:-}" ]; then
    DOCS_JOBS=$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)
fi
if [ "$TLS" = 1 ]; then
    if [ -z "${OPENSSL_CFLAGS+set}" ]; then
        OPENSSL_CFLAGS=$(pkg-config --cflags openssl 2>/dev/null)
    fi
    if [ -z "${OPENSSL_LIBS:-}" ]; then
        OPENSSL_LIBS=$(pkg-config --libs openssl 2>/dev/null || echo -lssl -lcrypto)
    fi
fi

# --self-test: tests/docs/good.md must pass, with the summary it implies;
# each tests/docs/bad-*.md must fail with exit status 1 and print every
# line that its "<!-- expect: TEXT -->" comments give. A fixture that
# expects nothing is itself an error, so no part of this can pass idly.
self_test() {
    cd "$top" || exit 2
    st_failed=0
    st_bad=0
    st_msgs=0
    st_tmp=$(mktemp -d "${TMPDIR:-/tmp}/netx-docs-self.XXXXXX") || exit 2
    trap 'rm -rf "$st_tmp"' EXIT
    trap 'exit 2' HUP INT TERM

    # The good page. NETX_TRACE is set here to show that the runs unset it;
    # netx-absent-tool stands for an outside program that is not installed.
    NETX_TRACE=1 DOCS_TOOLS=netx-absent-tool sh "$me" tests/docs/good.md \
        >"$st_tmp/out" 2>&1
    rc=$?
    if [ "$TLS" = 1 ]; then
        want='docs: 2 programs compiled, 3 checked transcripts (10 commands) (1 skipped: needs netx-absent-tool), 4 links (1 more into build/, not checked): all as the pages say'
    else
        want='docs: 1 program compiled (1 skipped: needs TLS=1), 2 checked transcripts (9 commands) (2 skipped: needs TLS=1, needs netx-absent-tool), 4 links (1 more into build/, not checked): all as the pages say'
    fi
    if [ "$rc" -ne 0 ] || [ "$(cat "$st_tmp/out")" != "$want" ]; then
        echo "docs self-test: tests/docs/good.md: exit status $rc (0 expected), and it printed:" >&2
        cat "$st_tmp/out" >&2
        echo "docs self-test: instead of:" >&2
        echo "$want" >&2
        st_failed=1
    fi

    for f in tests/docs/bad-*.md; do
        [ -f "$f" ] || continue
        st_bad=$((st_bad + 1))
        DOCS_TIMEOUT=1 sh "$me" "$f" >"$st_tmp/out" 2>&1
        rc=$?
        if [ "$rc" -ne 1 ]; then
            echo "docs self-test: $f: exit status $rc (1 expected); it printed:" >&2
            cat "$st_tmp/out" >&2
            st_failed=1
        fi
        sed -n 's/^<!-- expect: \(.*\) -->$/\1/p' "$f" >"$st_tmp/expect"
        if [ ! -s "$st_tmp/expect" ]; then
            echo "docs self-test: $f expects nothing (<!-- expect: TEXT --> lines)" >&2
            st_failed=1
        fi
        while IFS= read -r want; do
            st_msgs=$((st_msgs + 1))
            if ! grep -qF -- "$want" "$st_tmp/out"; then
                printf 'docs self-test: %s: no line with: %s\n' "$f" "$want" >&2
                st_missing=1
            fi
        done <"$st_tmp/expect"
        if [ -n "${st_missing:-}" ]; then
            echo "docs self-test: $f printed:" >&2
            cat "$st_tmp/out" >&2
            st_failed=1
            st_missing=
        fi
    done
    if [ "$st_bad" -eq 0 ]; then
        echo "docs self-test: no tests/docs/bad-*.md" >&2
        st_failed=1
    fi
    if [ "$st_failed" -ne 0 ]; then
        echo "docs self-test: FAILED: tests/docs.sh does not report the pages as it should" >&2
        exit 1
    fi
    echo "docs self-test: tests/docs/good.md passes; $st_bad broken pages fail with the $st_msgs messages they expect"
    exit 0
}

if [ "${1:-}" = --self-test ]; then
    self_test
fi

# The pages, named from the top of the repository.
orig=$PWD
if [ $# -eq 0 ]; then
    cd "$top" || exit 2
    # shellcheck disable=SC2046 # no page name holds a space
    set -- README.md $(find docs -name '*.md' | LC_ALL=C sort)
else
    n=$#
    while [ "$n" -gt 0 ]; do
        f=$1
        shift
        case $f in /*) ;; *) f=$orig/$f ;; esac
        case $f in "$top"/*) f=${f#"$top"/} ;; esac
        set -- "$@" "$f"
        n=$((n - 1))
    done
    cd "$top" || exit 2
fi
for f in "$@"; do
    if [ ! -f "$f" ]; then
        echo "docs: $f: no such page" >&2
        exit 2
    fi
done

case $BUILD in /*) ;; *) BUILD=$top/$BUILD ;; esac
if [ ! -f "$BUILD/libnetx.a" ]; then
    echo "docs: no $BUILD/libnetx.a: build the library first (make)" >&2
    exit 2
fi
if [ "$TLS" = 1 ] && [ ! -f "$BUILD/libnetx_tls.a" ]; then
    echo "docs: TLS=1 but no $BUILD/libnetx_tls.a: build it first (make TLS=1)" >&2
    exit 2
fi

scratch=$(mktemp -d "${TMPDIR:-/tmp}/netx-docs.XXXXXX") || exit 2
# A command runs in a session of its own, which Ctrl-C does not reach: when
# this script ends, its session ends too.
group=
trap '[ -n "$group" ] && kill -KILL "-$group" 2>/dev/null; rm -rf "$scratch"' EXIT
trap 'exit 2' HUP INT TERM
mkdir "$scratch/src" "$scratch/bin" "$scratch/c" "$scratch/run" || exit 2
: >"$scratch/errors"
: >"$scratch/programs"
: >"$scratch/checks"
: >"$scratch/links"

problems=0
problem() {
    printf '%s\n' "$*" >&2
    problems=$((problems + 1))
}

# Read the pages: one pass of awk writes each program to src/N.c (a #line
# directive first, so the compiler names the page and its line) and lists
# it in `programs`; each checked command to c/K.cmd with what it must print
# in c/K.exp, listed in `checks`; each relative link in `links`; and each
# mistake in the markup to `errors`.
awk -v out="$scratch" '
function trim(s) {
    sub(/^[ \t]+/, "", s)
    sub(/[ \t]+$/, "", s)
    return s
}
function err(file, line, msg) {
    printf "%s:%d: %s\n", file, line, msg >> (out "/errors")
}
# Lines inside a fence lose as many leading spaces as the fence has.
function unindent(s,    i) {
    for (i = 0; i < findent && substr(s, 1, 1) == " "; i++)
        s = substr(s, 2)
    return s
}
# Called at the start of each page and at the end: what the last page left
# open is an error.
function end_page() {
    if (cur == "")
        return
    if (infence)
        err(cur, fstart, "this fence is never closed")
    if (mk != "")
        err(cur, mkline, "the marker is the last line of the page: it must be the line just before a fence")
    infence = 0
    mk = ""
}
function open_fence(s,    t, run, info, w) {
    match(s, /^ */)
    t = substr(s, RLENGTH + 1)
    if (!match(t, /^(```+|~~~+)/))
        return 0
    run = substr(t, 1, RLENGTH)
    info = substr(t, RLENGTH + 1)
    if (substr(run, 1, 1) == "`" && index(info, "`"))
        return 0
    findent = length(s) - length(t)
    fchar = substr(run, 1, 1)
    flen = length(run)
    split(trim(info), w, /[ \t]+/)
    lang = tolower(w[1])
    return 1
}
function close_fence(s,    t) {
    t = s
    sub(/^ */, "", t)
    if (!match(t, /^(`+|~+)/))
        return 0
    return substr(t, 1, 1) == fchar && RLENGTH >= flen && substr(t, RLENGTH + 1) ~ /^[ \t]*$/
}
function marker(t,    name) {
    if (t ~ /^<!--[ \t]*check[ \t]*-->$/) {
        mk = "check"
        mkline = FNR
        return
    }
    if (t ~ /^<!--[ \t]*program[ \t]*:/) {
        name = t
        sub(/^<!--[ \t]*program[ \t]*:[ \t]*/, "", name)
        if (name ~ /-->$/)
            sub(/[ \t]*-->$/, "", name)
        else
            name = ""
        if (name !~ /^[A-Za-z0-9_][A-Za-z0-9_-]*$/) {
            err(FILENAME, FNR, "a program marker is <!-- program: NAME -->, NAME of letters, digits, _ and - (not: " t ")")
            return
        }
        mk = "program"
        mkname = name
        mkline = FNR
        return
    }
    if (t ~ /^<!--[ \t]*(program|check)([^A-Za-z0-9_-]|$)/)
        err(FILENAME, FNR, "not a marker: write <!-- program: NAME --> or <!-- check --> (not: " t ")")
}
# The path a link leads to, from the top of the repository: from the
# directory of the page, or from the top for /path; "." and ".." taken out.
function resolve(file, target,    p, n, i, seg, st, k, res) {
    if (substr(target, 1, 1) == "/")
        p = substr(target, 2)
    else if (file ~ /\//)
        p = substr(file, 1, match(file, /\/[^\/]*$/)) target
    else
        p = target
    n = split(p, seg, "/")
    k = 0
    for (i = 1; i <= n; i++) {
        if (seg[i] == "" || seg[i] == ".")
            continue
        if (seg[i] == ".." && k > 0 && st[k] != "..") {
            k--
            continue
        }
        st[++k] = seg[i]
    }
    res = substr(p, 1, 1) == "/" ? "/" : ""
    for (i = 1; i <= k; i++)
        res = res (i > 1 ? "/" : "") st[i]
    return res == "" ? "." : res
}
function link(target, line) {
    target = trim(target)
    if (substr(target, 1, 1) == "<") {
        sub(/^</, "", target)
        sub(/>.*$/, "", target)
    } else {
        sub(/[ \t].*$/, "", target)
    }
    if (target == "" || target ~ /^#/ || target ~ /^[A-Za-z][A-Za-z0-9+.-]*:/ || target ~ /^\/\//)
        return
    sub(/[#?].*$/, "", target)
    printf "%s\t%d\t%s\t%s\n", FILENAME, line, target, resolve(FILENAME, target) >> (out "/links")
}
function links(s,    t) {
    gsub(/`[^`]*`/, "", s)
    if (match(s, /^ *\[[^]]*\]:[ \t]/)) {
        link(substr(s, RLENGTH + 1), FNR)
        return
    }
    while (match(s, /\]\([^)]*\)/)) {
        t = substr(s, RSTART + 2, RLENGTH - 3)
        s = substr(s, RSTART + RLENGTH)
        link(t, FNR)
    }
}
function end_block(    i, main, tls, src, cf, ef, ncmd, orphan) {
    if (lang == "c") {
        main = 0
        tls = 0
        for (i = 1; i <= nbody; i++) {
            if (body[i] ~ /(^|[^A-Za-z0-9_])int[ \t]+main[ \t]*\(/)
                main = 1
            if (body[i] ~ /^[ \t]*#[ \t]*include[ \t]*[<"]netx_tls\.h[>"]/)
                tls = 1
        }
        if (main && pname == "") {
            err(FILENAME, fstart, "this ```c block has a main(), so it is a program and needs a name: put <!-- program: NAME --> on the line just before the fence (no blank line between)")
        } else if (!main && pname != "") {
            err(FILENAME, pline, "program " pname " has no main(): a ```c block without one is a fragment and is not compiled; complete the program or remove the marker")
        } else if (main) {
            if (pname in seen) {
                err(FILENAME, pline, "a second program named " pname " (the first is at " seen[pname] ")")
            } else {
                seen[pname] = FILENAME ":" pline
                nprog++
                src = out "/src/" nprog ".c"
                printf "#line %d \"%s\"\n", fstart + 1, FILENAME > src
                for (i = 1; i <= nbody; i++)
                    print body[i] > src
                close(src)
                printf "%d\t%s\t%s\t%d\t%d\n", nprog, pname, FILENAME, fstart, tls >> (out "/programs")
            }
        }
    } else if (pname != "") {
        err(FILENAME, pline, "<!-- program: " pname " --> must be followed by a ```c fence, not ```" lang)
    }
    if (chk && lang != "console") {
        err(FILENAME, chkline, "<!-- check --> must be followed by a ```console fence, not ```" lang)
    } else if (chk) {
        nblock++
        ncmd = 0
        for (i = 1; i <= nbody; i++) {
            if (substr(body[i], 1, 2) == "$ ") {
                ncmd++
                nchk++
                if (ef != "")
                    close(ef)
                cf = out "/c/" nchk ".cmd"
                ef = out "/c/" nchk ".exp"
                print substr(body[i], 3) > cf
                close(cf)
                printf "" > ef
                printf "%d\t%s\t%d\t%d\n", nblock, FILENAME, fstart + i, nchk >> (out "/checks")
                print substr(body[i], 3) >> (out "/c/block" nblock)
            } else if (ncmd == 0) {
                if (!orphan)
                    orphan = fstart + i
            } else {
                print body[i] >> ef
            }
        }
        if (ef != "")
            close(ef)
        close(out "/c/block" nblock)
        if (ncmd == 0)
            err(FILENAME, fstart, "this checked transcript has no command (a line \"$ ...\")")
        else if (orphan)
            err(FILENAME, orphan, "a checked transcript starts with a command (a line \"$ ...\"); this line is the output of none")
    }
}
FNR == 1 {
    end_page()
    cur = FILENAME
}
infence {
    if (close_fence($0)) {
        end_block()
        infence = 0
        next
    }
    body[++nbody] = unindent($0)
    next
}
{
    t = trim($0)
    if (open_fence($0)) {
        pname = ""
        chk = 0
        if (mk == "program") {
            pname = mkname
            pline = mkline
        } else if (mk == "check") {
            chk = 1
            chkline = mkline
        }
        mk = ""
        infence = 1
        fstart = FNR
        nbody = 0
        next
    }
    if (mk != "") {
        if (t == "")
            err(FILENAME, mkline, "a blank line follows the marker: it must be the line just before its fence")
        else
            err(FILENAME, mkline, "the marker is not followed by a fence: it must be the line just before one")
        mk = ""
    }
    marker(t)
    links($0)
}
END {
    end_page()
}
' "$@" || exit 2

# Markup errors first: they say why a program or a transcript is missing.
while IFS= read -r line; do
    problem "$line"
done <"$scratch/errors"

# The examples, and the names a transcript uses only with TLS=1.
examples=
for f in examples/*.c; do
    [ -f "$f" ] || continue
    f=${f##*/}
    examples="$examples ${f%.c}"
done
tls_names=
for f in examples/tls_*.c; do
    [ -f "$f" ] || continue
    f=${f##*/}
    tls_names="$tls_names ${f%.c}"
done

# Compile the programs, DOCS_JOBS at a time, each into src/N.log and src/N.rc.
compile() { # N NAME TLS
    if [ "$3" = 1 ]; then
        # shellcheck disable=SC2086 # the flags are words
        $CC -std=c11 -Wall -Wextra -Wpedantic -Werror -Iinclude $DOCS_CFLAGS $OPENSSL_CFLAGS \
            -o "$scratch/bin/$2" "$scratch/src/$1.c" "$BUILD/libnetx_tls.a" "$BUILD/libnetx.a" \
            $OPENSSL_LIBS -lpthread >"$scratch/src/$1.log" 2>&1 </dev/null
    else
        # shellcheck disable=SC2086
        $CC -std=c11 -Wall -Wextra -Wpedantic -Werror -Iinclude $DOCS_CFLAGS \
            -o "$scratch/bin/$2" "$scratch/src/$1.c" "$BUILD/libnetx.a" -lpthread \
            >"$scratch/src/$1.log" 2>&1 </dev/null
    fi
    echo $? >"$scratch/src/$1.rc"
}
running=0
while IFS=$tab read -r n name file line tls; do
    case " $examples " in
    *" $name "*)
        problem "$file:$line: program $name has the name of an example, which it would hide on the PATH of the transcripts: name it otherwise"
        continue
        ;;
    esac
    if [ "$tls" = 1 ]; then
        tls_names="$tls_names $name"
        [ "$TLS" = 1 ] || continue
    fi
    compile "$n" "$name" "$tls" &
    running=$((running + 1))
    if [ "$running" -ge "$DOCS_JOBS" ]; then
        wait
        running=0
    fi
done <"$scratch/programs"
wait

compiled=0
skipped_programs=0
while IFS=$tab read -r n name file line tls; do
    if [ ! -f "$scratch/src/$n.rc" ]; then
        [ "$tls" = 1 ] && [ "$TLS" != 1 ] && skipped_programs=$((skipped_programs + 1))
        continue
    fi
    if [ "$(cat "$scratch/src/$n.rc")" = 0 ] && [ ! -s "$scratch/src/$n.log" ]; then
        compiled=$((compiled + 1))
    elif [ "$(cat "$scratch/src/$n.rc")" = 0 ]; then
        # The linker's warnings are not errors under -Werror; here they are.
        problem "$file:$line: program $name compiles, but not silently:"
        cat "$scratch/src/$n.log" >&2
    else
        problem "$file:$line: program $name does not compile:"
        cat "$scratch/src/$n.log" >&2
    fi
done <"$scratch/programs"

# Run the transcripts, one block after another (they may use the same port).
limit_cmd=
if command -v timeout >/dev/null 2>&1; then
    limit_cmd="$(command -v timeout) -k 2 $DOCS_TIMEOUT"
else
    echo "docs: no timeout(1): the commands run without a time limit" >&2
fi
session=
command -v setsid >/dev/null 2>&1 && session=$(command -v setsid)
# Under AddressSanitizer, no leak check at a program's exit: a page may
# run a program out of descriptors on purpose (chapter 1), and the leak
# checker needs one to read /proc. The unit tests check for leaks.
san_env=
case " ${DOCS_CFLAGS:-} " in
*-fsanitize=address*) san_env=ASAN_OPTIONS=detect_leaks=0 ;;
esac
run_path=$scratch/bin:$BUILD/examples:$PATH

checked=0
commands=0
skipped_checks=0
skip_reasons=
block=
skip=
while IFS=$tab read -r b file line k; do
    if [ "$b" != "$block" ]; then
        block=$b
        skip=
        mkdir "$scratch/run/$b" || exit 2
        if [ "$TLS" != 1 ] && [ -n "$tls_names" ]; then
            # shellcheck disable=SC2086
            if grep -qwF "$(printf '%s\n' $tls_names)" "$scratch/c/block$b"; then
                skip="needs TLS=1"
            fi
        fi
        if [ -z "$skip" ]; then
            for tool in $DOCS_TOOLS; do
                if grep -qwF -- "$tool" "$scratch/c/block$b" && ! command -v "$tool" >/dev/null 2>&1; then
                    skip="needs $tool"
                    break
                fi
            done
        fi
        if [ -n "$skip" ]; then
            skipped_checks=$((skipped_checks + 1))
            case ", $skip_reasons, " in
            *", $skip, "*) ;;
            *) skip_reasons=${skip_reasons:+$skip_reasons, }$skip ;;
            esac
        else
            checked=$((checked + 1))
        fi
    fi
    [ -z "$skip" ] || continue
    commands=$((commands + 1))
    cmd=$(cat "$scratch/c/$k.cmd")
    dir=$scratch/run/$b
    out=$scratch/c/$k.out
    # shellcheck disable=SC2086 # $session and $limit_cmd are words
    (cd "$dir" && exec $session env -i PATH="$run_path" HOME="$dir" LC_ALL=C TZ=UTC0 \
        $san_env $limit_cmd /bin/sh -c "$cmd") </dev/null >"$out" 2>&1 &
    pid=$!
    [ -n "$session" ] && group=$pid
    wait "$pid"
    rc=$?
    # What the command left running in the background ends with it.
    [ -n "$group" ] && kill -KILL "-$group" 2>/dev/null
    group=
    # Line by line: a last line without its newline is still that line.
    awk '{ print }' "$out" >"$out.lines"
    late=
    [ -n "$limit_cmd" ] && [ "$rc" -eq 124 ] && late=1
    if [ -n "$late" ] && cmp -s "$scratch/c/$k.exp" "$out.lines"; then
        problem "$file:$line: \$ $cmd"
        echo "  did not finish within $DOCS_TIMEOUT s (DOCS_TIMEOUT), though it printed what the page says" >&2
    elif ! cmp -s "$scratch/c/$k.exp" "$out.lines"; then
        problem "$file:$line: \$ $cmd"
        if [ -n "$late" ]; then
            echo "  did not finish within $DOCS_TIMEOUT s (DOCS_TIMEOUT), and printed other than the page says (-):" >&2
        else
            echo "  printed other than the page says (-):" >&2
        fi
        diff -u --label "$file:$line (the page)" --label "the run" "$scratch/c/$k.exp" "$out.lines" >&2
    fi
done <"$scratch/checks"

# A link into build/ is to a file that make writes (make bench's pictures),
# which a fresh clone does not have yet: counted, not checked.
links=0
build_links=0
while IFS=$tab read -r file line target path; do
    case $path in
    build | build/*)
        build_links=$((build_links + 1))
        continue
        ;;
    esac
    links=$((links + 1))
    [ -e "$path" ] || problem "$file:$line: a link to $target, and there is no $path"
done <"$scratch/links"

plural() { # N WORD
    if [ "$1" -eq 1 ]; then echo "$1 $2"; else echo "$1 $2s"; fi
}
summary="$(plural "$compiled" program) compiled"
[ "$skipped_programs" -gt 0 ] && summary="$summary ($skipped_programs skipped: needs TLS=1)"
summary="$summary, $(plural "$checked" "checked transcript") ($(plural "$commands" command))"
[ "$skipped_checks" -gt 0 ] && summary="$summary ($skipped_checks skipped: $skip_reasons)"
summary="$summary, $(plural "$links" link)"
[ "$build_links" -gt 0 ] && summary="$summary ($build_links more into build/, not checked)"
if [ "$problems" -gt 0 ]; then
    echo "docs: $(plural "$problems" problem) in the pages ($summary)" >&2
    exit 1
fi
echo "docs: $summary: all as the pages say"

#!/bin/sh
# tests/install.sh - `make installcheck`: do what README.md's "Using it"
# says, in a scratch home, and check each step; then install the way a
# package is made (DESTDIR) and check that too.
#
#   1. make install PREFIX=$HOME/.local, with HOME a scratch directory.
#   2. The README's hello.c, cut out of README.md, built with
#      PKG_CONFIG_PATH, pkg-config and -Wl,-rpath exactly as the README
#      shows, and run as it shows: echo_server in the background, then
#      ./hello, which must print "server says: hello". The two need
#      localhost:12345, so they run in a network namespace of their own
#      where one can be made (port 12345 is free there by construction);
#      elsewhere on this machine's loopback if 12345 is free, and if it is
#      taken, the run is skipped, saying so.
#   3. The README's reason for -rpath: built without it, the program does
#      not start ("libnetx.so.0: cannot open shared object file"), and
#      with LD_LIBRARY_PATH it does. MANPATH finds the man pages.
#   4. tests/install/consumer.c (and tls_consumer.c with TLS=1): the
#      library's promises, from a program outside the tree.
#   5. make uninstall leaves nothing behind; the same with DESTDIR.
#
# Environment: MAKE, CC, TLS, and EXAMPLES (the directory of the built
# examples, for echo_server; build/examples by default).
set -eu

make=${MAKE:-make}
cc=${CC:-cc}
examples=$(cd "${EXAMPLES:-build/examples}" && pwd)
tree=$(pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
# Nothing from the caller's environment may help the loader or pkg-config
# find a copy the README did not say how to find.
unset LD_LIBRARY_PATH PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_LIBDIR || true

fail() {
    echo "install: $*" >&2
    exit 1
}

# The README's commands that this script carries out, line for line. If the
# README changes them, this script must change with it.
for line in \
    'make install PREFIX=$HOME/.local' \
    'export PKG_CONFIG_PATH=$HOME/.local/lib/pkgconfig' \
    'cc -o hello hello.c $(pkg-config --cflags --libs netx) -Wl,-rpath,$HOME/.local/lib' \
    'build/examples/echo_server &' \
    './hello                                           # prints: server says: hello' \
    'LD_LIBRARY_PATH=$HOME/.local/lib ./hello' \
    'export MANPATH=$HOME/.local/share/man:' \
    'man netx_tcp_connect'; do
    grep -qF -- "$line" README.md || fail "README.md no longer says: $line"
done

# The docs in DIR (README.md, docs/*.md, the tutorial) are the tree's, and
# the netx(3) in MAN3 says they are in DOCDIR (DIR without DESTDIR); the
# TLS pages are there with TLS=1 only.
check_docs() {
    (cd "$tree" && for f in README.md docs/*.md docs/tutorial/*.md docs/tutorial/img/*.svg; do
        [ -f "$f" ] || continue
        cmp -s "$f" "$1/$f" || fail "$f is not installed as $1/$f"
    done) || exit 1
    want=$(printf '%s/README.md' "$2" | sed 's/-/\\-/g')
    grep -qF "$want" "$3/netx.3" || fail "netx(3) does not say the docs are in $2"
    if [ "${TLS:-}" = 1 ]; then
        [ -f "$3/netx_tls_connect.3" ] || fail "TLS=1 installed no netx_tls pages"
    elif ls "$3" | grep -q '^netx_tls'; then
        fail "the netx_tls pages were installed without TLS=1 (and without libnetx_tls)"
    fi
    echo "install: $(cd "$1" && find . -type f | wc -l) docs in $1; netx(3) says they are in $2"
}

# 1. Install into a scratch home ---------------------------------------------
HOME=$scratch/home
mkdir -p "$HOME/work"
work=$HOME/work
$make -s install PREFIX="$HOME/.local" TLS="${TLS:-}"
prefix=$HOME/.local
[ -f "$prefix/share/man/man3/netx_tcp_listen.3" ] || fail "the man pages were not installed"
pages=$(ls "$prefix/share/man/man3" | grep -c '^netx')
echo "install: $pages man pages installed"
check_docs "$prefix/share/doc/libnetx" "$prefix/share/doc/libnetx" "$prefix/share/man/man3"

# 2. The README's program, built and run as the README says ------------------
awk '/^## Using it/ { using = 1 }
     using && /^```c$/ { inside = 1; next }
     inside && /^```$/ { exit }
     inside { print }' README.md > "$work/hello.c"
grep -q 'int main' "$work/hello.c" || fail "no program under \"Using it\" in README.md"

export PKG_CONFIG_PATH="$HOME/.local/lib/pkgconfig"
(cd "$work" && $cc -o hello hello.c $(pkg-config --cflags --libs netx) -Wl,-rpath,$HOME/.local/lib)
(cd "$work" && $cc -o hello-without-rpath hello.c $(pkg-config --cflags --libs netx))

# Run the README's two commands in $work: the echo server in the
# background, then the client(s) given; stop the server by its PID.
# Exit 90: no loopback in the namespace; 91: no server on localhost:12345.
cat > "$work/run.sh" <<'EOF'
set -u
if [ "$1" = netns ]; then
    ip link set lo up || exit 90
fi
"$2" > server.out 2>&1 &
server=$!
tries=0
until grep -q '^listening on' server.out; do
    if ! kill -0 "$server" 2>/dev/null || [ "$tries" -ge 100 ]; then
        kill "$server" 2>/dev/null
        wait "$server" 2>/dev/null
        exit 91
    fi
    sleep 0.1
    tries=$((tries + 1))
done
./hello > hello.out 2>&1
rc=$?
LD_LIBRARY_PATH=$3 ./hello-without-rpath > hello-ld.out 2>&1
rc2=$?
kill "$server"
wait "$server" 2>/dev/null
[ "$rc" -eq 0 ] && exit "$rc2"
exit "$rc"
EOF

# A network of its own: as root, or in a user namespace as anyone else.
how=
if command -v unshare >/dev/null 2>&1 && command -v ip >/dev/null 2>&1; then
    if unshare -n true 2>/dev/null; then
        how="unshare -n"
    elif unshare -rn true 2>/dev/null; then
        how="unshare -rn"
    fi
fi
rc=0
where="a network namespace of its own"
if [ -n "$how" ]; then
    (cd "$work" && $how sh run.sh netns "$examples/echo_server" "$prefix/lib") || rc=$?
fi
if [ -z "$how" ] || [ "$rc" -eq 90 ]; then
    # Here the echo server finds 12345 free, or says it is taken and
    # exits: the client never meets a program of someone else's.
    where="this machine's loopback"
    rc=0
    (cd "$work" && sh run.sh loopback "$examples/echo_server" "$prefix/lib") || rc=$?
fi
if [ "$rc" -eq 91 ] && [ "$where" = "this machine's loopback" ]; then
    echo "install: skipped running the README's program: no network namespace can be" \
        "made here, and localhost:12345 is taken ($(cat "$work/server.out"))"
elif [ "$rc" -ne 0 ]; then
    for f in server.out hello.out hello-ld.out; do
        [ -f "$work/$f" ] && sed "s/^/  $f: /" "$work/$f" >&2
    done
    fail "the README's program failed in $where (status $rc)"
else
    [ "$(cat "$work/hello.out")" = "server says: hello" ] ||
        fail "./hello printed \"$(cat "$work/hello.out")\", not \"server says: hello\""
    [ "$(cat "$work/hello-ld.out")" = "server says: hello" ] ||
        fail "with LD_LIBRARY_PATH, hello printed \"$(cat "$work/hello-ld.out")\""
    echo "install: the README's hello.c, built with pkg-config and -rpath, says" \
        "\"server says: hello\" to echo_server (in $where); so does it with LD_LIBRARY_PATH"
fi

# 3. Without -rpath the loader does not find libnetx: the README's reason.
#    ldd says so without running it; then, found nowhere, it cannot start
#    (and so cannot reach any server).
if ldd "$work/hello-without-rpath" | grep -q 'libnetx.so.0 => not found'; then
    status=0
    "$work/hello-without-rpath" > "$work/plain.out" 2>&1 || status=$?
    [ "$status" -ne 0 ] && grep -q 'libnetx.so.0: cannot open shared object file' "$work/plain.out" ||
        fail "built without -rpath, hello said: $(cat "$work/plain.out")"
    echo "install: without -rpath, as the README says: $(cat "$work/plain.out")"
else
    echo "install: a libnetx.so.0 is installed where the loader looks (ldconfig -p);" \
        "the failure without -rpath cannot be shown here"
fi

# The man pages, through MANPATH as the README says.
if command -v man >/dev/null 2>&1; then
    found=$(MANPATH="$HOME/.local/share/man:" man -w netx_tcp_connect 2>/dev/null) || true
    [ "$found" = "$prefix/share/man/man3/netx_tcp_connect.3" ] ||
        fail "MANPATH=\$HOME/.local/share/man: man -w netx_tcp_connect says \"$found\""
    echo "install: man finds netx_tcp_connect(3) through MANPATH"
else
    echo "install: no man here; the man pages were not looked up"
fi

# 4. The library's promises, from a program outside the tree --------------
cp "$tree/tests/install/consumer.c" "$work/"
(cd "$work" && $cc -std=c11 -Wall -Wextra -o consumer consumer.c \
    $(pkg-config --cflags --libs netx) -Wl,-rpath,"$prefix/lib")
"$work/consumer"
ldd "$work/consumer" | grep -q "$prefix/lib/libnetx.so.0" ||
    fail "the consumer did not load the installed libnetx.so.0"

# With TLS=1: the TLS library, through netx-tls.pc alone (which brings in
# netx and OpenSSL), from a program outside the tree.
if [ "${TLS:-}" = 1 ]; then
    cp "$tree/tests/install/tls_consumer.c" "$work/"
    (cd "$work" && $cc -std=c11 -Wall -Wextra -o tls_consumer tls_consumer.c \
        $(pkg-config --cflags --libs netx-tls) -Wl,-rpath,"$prefix/lib")
    "$work/tls_consumer"
    ldd "$work/tls_consumer" | grep -q "$prefix/lib/libnetx_tls.so.0" ||
        fail "the TLS consumer did not load the installed libnetx_tls.so.0"
fi

# The core library links no OpenSSL, TLS or not: a program that does not
# use TLS never carries it.
if ldd "$prefix/lib/libnetx.so.0" | grep -q -E 'libssl|libcrypto'; then
    fail "libnetx.so links OpenSSL; only libnetx_tls may"
fi

# 5. Uninstall, then the same with DESTDIR, as packages are made -----------
check_empty() {
    left=$(find "$1" -type f -o -type l)
    if [ -n "$left" ]; then
        echo "install: 'make uninstall' left these behind:" >&2
        echo "$left" >&2
        exit 1
    fi
}
$make -s uninstall PREFIX="$prefix"
check_empty "$prefix"

dest=$scratch/dest
$make -s install DESTDIR="$dest" PREFIX=/usr/local TLS="${TLS:-}"
check_docs "$dest/usr/local/share/doc/libnetx" /usr/local/share/doc/libnetx \
    "$dest/usr/local/share/man/man3"
# pkg-config finds the .pc under DESTDIR; the sysroot variable puts DESTDIR
# in front of the -I and -L paths it prints.
(cd "$work" && PKG_CONFIG_PATH="$dest/usr/local/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$dest" \
    $cc -std=c11 -Wall -Wextra -o staged consumer.c \
    $(PKG_CONFIG_PATH="$dest/usr/local/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$dest" \
        pkg-config --cflags --libs netx))
$make -s uninstall DESTDIR="$dest" PREFIX=/usr/local
check_empty "$dest"
echo "install: installed, used from outside the tree as the README says, and uninstalled" \
    "cleanly (with PREFIX, and with DESTDIR)"

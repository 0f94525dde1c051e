#!/bin/sh
# tests/install.sh - install libnetx into a scratch DESTDIR, build a program
# outside the tree against it with pkg-config, run it, then uninstall and
# check that nothing is left behind. Run by `make installcheck`.
set -eu

make=${MAKE:-make}
dest=$(mktemp -d)
work=$(mktemp -d)
trap 'rm -rf "$dest" "$work"' EXIT
prefix=/usr/local

$make -s install DESTDIR="$dest" PREFIX="$prefix" TLS="${TLS:-}"

# The man pages: one per public function.
pages=$(ls "$dest$prefix/share/man/man3" | grep -c '^netx')
[ -f "$dest$prefix/share/man/man3/netx_tcp_listen.3" ] || {
    echo "install: the man pages were not installed" >&2
    exit 1
}
echo "install: $pages man pages installed"

# pkg-config finds the .pc under DESTDIR; the sysroot variable puts DESTDIR
# in front of the -I and -L paths it prints.
export PKG_CONFIG_PATH="$dest$prefix/lib/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$dest"
cp tests/install/consumer.c "$work/"
(cd "$work" && ${CC:-cc} -std=c11 -Wall -Wextra -o consumer consumer.c \
    $(pkg-config --cflags --libs netx))
LD_LIBRARY_PATH="$dest$prefix/lib" "$work/consumer"

# The program must have used the shared library from the install.
LD_LIBRARY_PATH="$dest$prefix/lib" ldd "$work/consumer" | grep -q "$dest$prefix/lib/libnetx.so.0" || {
    echo "install: the consumer did not load the installed libnetx.so.0" >&2
    exit 1
}

# With TLS=1: the TLS library, through netx-tls.pc alone (which brings in
# netx and OpenSSL), from a program outside the tree.
if [ "${TLS:-}" = 1 ]; then
    cp tests/install/tls_consumer.c "$work/"
    (cd "$work" && ${CC:-cc} -std=c11 -Wall -Wextra -o tls_consumer tls_consumer.c \
        $(pkg-config --cflags --libs netx-tls))
    LD_LIBRARY_PATH="$dest$prefix/lib" "$work/tls_consumer"
    LD_LIBRARY_PATH="$dest$prefix/lib" ldd "$work/tls_consumer" |
        grep -q "$dest$prefix/lib/libnetx_tls.so.0" || {
        echo "install: the TLS consumer did not load the installed libnetx_tls.so.0" >&2
        exit 1
    }
fi

# The core library links no OpenSSL, TLS or not: a program that does not
# use TLS never carries it.
if LD_LIBRARY_PATH="$dest$prefix/lib" ldd "$dest$prefix/lib/libnetx.so.0" | grep -q -E 'libssl|libcrypto'; then
    echo "install: libnetx.so links OpenSSL; only libnetx_tls may" >&2
    exit 1
fi

$make -s uninstall DESTDIR="$dest" PREFIX="$prefix"
left=$(find "$dest" -type f -o -type l)
if [ -n "$left" ]; then
    echo "install: 'make uninstall' left these behind:" >&2
    echo "$left" >&2
    exit 1
fi
echo "install: installed, used from outside the tree, and uninstalled cleanly"

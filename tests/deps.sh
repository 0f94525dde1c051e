#!/bin/sh
# tests/deps.sh - make sure what `make test` needs is here: pkg-config and
# cmocka. If one is missing, install it with the system's package manager
# when that needs no prompt (we are root, or sudo needs no password);
# otherwise print the exact command to run and stop.

have_cmocka() {
    pkg-config --exists cmocka 2>/dev/null
}

if command -v pkg-config >/dev/null 2>&1 && have_cmocka; then
    exit 0
fi

# The command that installs both, for this system's package manager.
if command -v apt-get >/dev/null 2>&1; then
    install="apt-get install -y libcmocka-dev pkg-config"
    refresh="apt-get update"
elif command -v dnf >/dev/null 2>&1; then
    install="dnf install -y libcmocka-devel pkgconf-pkg-config"
    refresh=""
elif command -v pacman >/dev/null 2>&1; then
    install="pacman -S --noconfirm --needed cmocka pkgconf"
    refresh=""
elif command -v brew >/dev/null 2>&1; then
    install="brew install cmocka pkg-config"
    refresh=""
else
    echo "deps: the tests need cmocka and pkg-config, and no known package manager was found." >&2
    echo "deps: install cmocka (https://cmocka.org) and pkg-config, then run 'make test' again." >&2
    exit 1
fi

# brew runs as the user; the others need root, or sudo without a password.
sudo=""
case "$install" in
brew*) ;;
*)
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo="sudo -n "
        else
            echo "deps: the tests need cmocka and pkg-config. Install them with:" >&2
            [ -n "$refresh" ] && echo "    sudo $refresh" >&2
            echo "    sudo $install" >&2
            exit 1
        fi
    fi
    ;;
esac

if [ -n "$refresh" ]; then
    echo "deps: running: $sudo$refresh"
    $sudo$refresh >/dev/null || {
        echo "deps: '$sudo$refresh' failed; run it yourself, then: $sudo$install" >&2
        exit 1
    }
fi
echo "deps: running: $sudo$install"
DEBIAN_FRONTEND=noninteractive $sudo$install || {
    echo "deps: '$sudo$install' failed; run it yourself and try again." >&2
    exit 1
}
if ! command -v pkg-config >/dev/null 2>&1 || ! have_cmocka; then
    echo "deps: cmocka is still not found by pkg-config after '$install'." >&2
    exit 1
fi

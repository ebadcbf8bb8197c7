#!/bin/sh
# Install the Debian packages aredis needs to build and test, if missing.
# Says what it installs; without root it prints the apt-get line and stops.
set -e
PKGS="build-essential cmake pkg-config libssl-dev libcmocka-dev libuv1-dev libevent-dev
libev-dev libhiredis-dev redis-server redis-tools redis-sentinel openssl valgrind strace gnuplot-nox"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "aredis: missing Debian packages:$missing"
if [ "$(id -u)" != 0 ]; then
    echo "aredis: run as root, or install them yourself:"
    echo "    apt-get update && apt-get install -y$missing"
    exit 1
fi
echo "aredis: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
# Debian's package starts a system redis-server on 6379; the tests start
# their own servers on free ports and do not need it.
echo "aredis: packages installed"

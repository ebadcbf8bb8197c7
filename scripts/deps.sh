#!/bin/sh
# Install the Debian packages a target needs, if missing: scripts/deps.sh
# [test|bench|valgrind|fuzz|lib|docs|deb] (default test: what `make test` and `make demo`
# need). Says what it installs; without root it prints the apt-get line and
# stops.
set -e
# Build, test and demo: compiler, CMake, OpenSSL, cmocka, the three loop
# libraries for the adapters, the Redis servers the tests start, and
# clang-format (make test checks the tree against .clang-format), json-c
# (integration/otlp_export parses the OTLP JSON the example writes), doxygen
# (docs/api builds the API reference with warnings as errors) and debhelper
# (release/deb builds the Debian packages), and the Perl binding's build and
# test modules (perl/binding: bindings/perl, Future::IO::Redis).
PERL="libperl-dev libfuture-perl libfuture-io-perl libfuture-asyncawait-perl libio-async-perl
libtest2-suite-perl"
DOCS="doxygen"
DEB="debhelper dpkg-dev"
PKGS="build-essential cmake pkg-config libssl-dev libcmocka-dev libuv1-dev libevent-dev
libev-dev libjson-c-dev redis-server redis-tools redis-sentinel openssl clang-format $DOCS $DEB $PERL"
case "${1:-test}" in
test) ;;
# make install, make docs, make deb alone need less.
lib) PKGS="build-essential cmake pkg-config libssl-dev" ;;
docs) PKGS="build-essential cmake $DOCS" ;;
deb) PKGS="build-essential cmake pkg-config libssl-dev $DEB" ;;
# make bench: hiredis to compare with, valgrind (instructions), strace
# (syscalls), gnuplot (the chart).
bench) PKGS="$PKGS libhiredis-dev valgrind strace gnuplot-nox libredis-fast-perl libredis-perl" ;;
valgrind) PKGS="$PKGS valgrind" ;;
fuzz) PKGS="$PKGS clang libclang-rt-14-dev" ;;
*) echo "usage: scripts/deps.sh [test|bench|valgrind|fuzz|lib|docs|deb]" >&2; exit 2 ;;
esac
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

#!/bin/sh
# make deb: the Debian packages libaredis<ABI> and libaredis-dev (and the
# debug symbols), built by `dpkg-buildpackage -us -uc -b` from the release
# tarball unpacked in a temp dir, so the source tree stays clean. The .deb
# files land in OUTDIR (default: ..). The same command works by hand in any
# checkout: `dpkg-buildpackage -us -uc -b` (the packages go to ..).
# Usage: scripts/deb.sh [OUTDIR]
set -e
SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(cd "${1:-..}" && pwd)
for tool in dpkg-buildpackage dh; do
    command -v $tool >/dev/null 2>&1 ||
        { echo "deb: $tool not found (scripts/deps.sh deb installs debhelper and dpkg-dev)" >&2; exit 1; }
done
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$SRC/scripts/dist.sh" "$TMP" >/dev/null
tar -xzf "$TMP"/aredis-*.tar.gz -C "$TMP"
cd "$TMP"/aredis-*/
DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:-parallel=$(nproc 2>/dev/null || echo 2)}" \
    dpkg-buildpackage -us -uc -b >"$TMP/build.log" 2>&1 || {
    tail -40 "$TMP/build.log" >&2
    echo "deb: dpkg-buildpackage failed" >&2
    exit 1
}
cp "$TMP"/*.deb "$OUT"/
for f in "$TMP"/*.deb; do echo "deb: $OUT/$(basename "$f")"; done

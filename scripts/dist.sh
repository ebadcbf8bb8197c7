#!/bin/sh
# make dist: the release tarball aredis-X.Y.Z.tar.gz (X.Y.Z from
# include/aredis/export.h), written to OUTDIR (default: the current
# directory). It holds the files git tracks, as they are in the working tree,
# plus MANIFEST (the list), so `make dist` works again inside an unpacked
# tarball. The archive is reproducible: sorted names, owner 0, every mtime set
# to the last commit's time (or SOURCE_DATE_EPOCH), gzip without a timestamp.
# Usage: scripts/dist.sh [OUTDIR]
set -e
SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=$(cd "${1:-.}" && pwd)
V=$(sed -n 's/^#define AREDIS_VERSION_STRING "\([0-9.]*\)"$/\1/p' "$SRC/include/aredis/export.h")
[ -n "$V" ] || { echo "dist: no AREDIS_VERSION_STRING in include/aredis/export.h" >&2; exit 1; }
NAME=aredis-$V
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

if git -C "$SRC" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Tracked files that still exist (a deleted, not yet committed file is out).
    git -C "$SRC" ls-files -z | xargs -0 -I{} sh -c '[ -e "$1/$2" ] && printf "%s\n" "$2"' _ "$SRC" {} \
        | grep -v '^MANIFEST$' >"$TMP/list"
    : "${SOURCE_DATE_EPOCH:=$(git -C "$SRC" log -1 --format=%ct 2>/dev/null || date +%s)}"
elif [ -f "$SRC/MANIFEST" ]; then
    grep -v '^MANIFEST$' "$SRC/MANIFEST" >"$TMP/list"
    : "${SOURCE_DATE_EPOCH:=$(stat -c %Y "$SRC/MANIFEST")}"
else
    echo "dist: $SRC is neither a git checkout nor an unpacked release (no MANIFEST)" >&2
    exit 1
fi
# A name with a newline or a leading dash cannot be listed safely.
if grep -q '^-' "$TMP/list"; then echo "dist: a file name starts with '-'" >&2; exit 1; fi
echo MANIFEST >>"$TMP/list"
LC_ALL=C sort -o "$TMP/list" "$TMP/list"

mkdir "$TMP/$NAME"
grep -v '^MANIFEST$' "$TMP/list" | tar -C "$SRC" -cf - --no-recursion -T - | tar -C "$TMP/$NAME" -xf -
cp "$TMP/list" "$TMP/$NAME/MANIFEST"
tar -C "$TMP" --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
    --format=gnu -cf - "$NAME" | gzip -n -9 >"$TMP/$NAME.tar.gz"
mv "$TMP/$NAME.tar.gz" "$OUT/$NAME.tar.gz"
echo "dist: $OUT/$NAME.tar.gz ($(wc -l <"$TMP/list") files)"

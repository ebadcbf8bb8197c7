#!/bin/sh
# docs/ documents every public name, and its links lead somewhere.
#
# 1. Every public header (include/aredis/*.h, include/aredis/adapters/*.h)
#    has a line in tests/docs/pages.txt:
#        include/aredis/<header>.h docs/<PAGE>.md [docs/<PAGE2>.md ...]
#    or "include/aredis/<header>.h -" for a header exempt from the check.
#    A header with no line fails the check: a new header needs a page.
# 2. Every public name the header declares appears, as a whole word, in one
#    of its pages: the functions and variables declared with AREDIS_API,
#    the public static inline functions (the loop adapters, the C++ *_default()
#    helpers), and the types declared with typedef (`typedef ... aredis_x;`,
#    `typedef void aredis_fn(...);`, `} aredis_x;`). Names starting with
#    aredis__ are internal and skipped. Comments are stripped first
#    (cc -fpreprocessed), so a name mentioned only in a comment counts for
#    nothing and a declaration split over lines is still found.
# 3. Every relative link in docs/*.md and README.md, `[text](target)`,
#    points to a file or directory that exists, and its #anchor, if any, to
#    a heading of that page (or of the same page for a bare "#anchor"), by
#    GitHub's rule: lower case, punctuation dropped, spaces to '-', "-1",
#    "-2"... for repeated headings. http(s): and mailto: links are skipped,
#    so are fenced code blocks.
#
# Usage: check-pages.sh [BUILD_DIR] (ignored). Exit 0 when all is covered,
# 1 otherwise, listing what is missing per page.
set -u

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DATA="$ROOT/tests/docs/pages.txt"
CC=${CC:-cc}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT INT TERM
fail=0

cd "$ROOT" || exit 1
if [ ! -f "$DATA" ]; then
    echo "docs/pages: $DATA is missing" >&2
    exit 1
fi

# The header without comments and without preprocessor directives (a
# directive's continuation lines included), on stdout.
strip_header() {
    if "$CC" -fpreprocessed -dD -E -P "$1" >"$TMP/stripped" 2>"$TMP/cc.err"; then
        :
    else
        # No usable compiler: a plain comment stripper (headers hold no
        # string literal with a comment opener in it).
        awk '
            {
                line = $0; out = ""
                while (length(line) > 0) {
                    if (inc) {
                        p = index(line, "*/")
                        if (p == 0) { line = ""; break }
                        line = substr(line, p + 2); inc = 0
                    } else {
                        p = index(line, "/*"); q = index(line, "//")
                        if (q > 0 && (p == 0 || q < p)) { out = out substr(line, 1, q - 1); line = ""; break }
                        if (p == 0) { out = out line; line = ""; break }
                        out = out substr(line, 1, p - 1) " "; line = substr(line, p + 2); inc = 1
                    }
                }
                print out
            }' "$1" >"$TMP/stripped"
    fi
    awk '
        cont { cont = /\\[ \t]*$/; next }
        /^[ \t]*#/ { cont = /\\[ \t]*$/; next }
        { print }
    ' "$TMP/stripped"
}

# The public names a header declares, one a line, sorted and unique.
header_names() {
    strip_header "$1" | tr '\n\t' '  ' >"$TMP/flat"
    {
        # AREDIS_API functions: the identifier right before the first '('.
        grep -o 'AREDIS_API[^;{}()]*(' "$TMP/flat" |
            sed 's/[[:space:]]*($//; s/.*[^A-Za-z0-9_]//'
        # AREDIS_API variables: "AREDIS_API extern ... name[...];" or "name;".
        grep -o 'AREDIS_API[[:space:]][[:space:]]*extern[^;{}()]*;' "$TMP/flat" |
            sed 's/[[:space:]]*\[.*//; s/[[:space:]]*;$//; s/.*[^A-Za-z0-9_]//'
        # Public static inline functions.
        grep -o 'static[[:space:]][[:space:]]*inline[^;{}()=]*(' "$TMP/flat" |
            sed 's/[[:space:]]*($//; s/.*[^A-Za-z0-9_]//'
        # typedefs without a body: a function type (the name before its
        # parameter list), a function pointer (the name in "(*name)"), or a
        # plain type (the last identifier).
        grep -o 'typedef[^;{}]*;' "$TMP/flat" | while IFS= read -r t; do
            case $t in
            *'(*'*) printf '%s\n' "$t" | sed 's/^[^(]*([[:space:]]*\*[[:space:]]*//; s/[^A-Za-z0-9_].*//' ;;
            *'('*) printf '%s\n' "$t" | sed 's/[[:space:]]*(.*//; s/.*[^A-Za-z0-9_]//' ;;
            *) printf '%s\n' "$t" | sed 's/[[:space:]]*;$//; s/.*[^A-Za-z0-9_]//' ;;
            esac
        done
        # typedefs with a body: "} name;".
        grep -o '}[[:space:]]*aredis_[A-Za-z0-9_]*[[:space:]]*;' "$TMP/flat" |
            sed 's/^}[[:space:]]*//; s/[[:space:]]*;$//'
    } | grep '^aredis_' | grep -v '^aredis__' | sort -u
}

# ---- 1. every public header has a line ----------------------------------

grep -v '^[[:space:]]*#' "$DATA" | awk 'NF { print $1 }' | sort >"$TMP/listed"
for h in include/aredis/*.h include/aredis/adapters/*.h; do
    [ -f "$h" ] || continue
    if ! grep -qx "$h" "$TMP/listed"; then
        echo "docs/pages: $h has no line in tests/docs/pages.txt (give it a page in docs/)"
        fail=1
    fi
done
dups=$(uniq -d "$TMP/listed")
if [ -n "$dups" ]; then
    echo "docs/pages: listed twice in tests/docs/pages.txt: $dups"
    fail=1
fi

# ---- 2. every public name is on one of its header's pages ---------------

checked=0
names_total=0
grep -v '^[[:space:]]*#' "$DATA" | awk 'NF' >"$TMP/lines"
while read -r header pages; do
    if [ ! -f "$header" ]; then
        echo "docs/pages: tests/docs/pages.txt names $header, which does not exist"
        fail=1
        continue
    fi
    [ "$pages" = "-" ] && continue
    if [ -z "$pages" ]; then
        echo "docs/pages: $header has no page in tests/docs/pages.txt (or '-' to exempt it)"
        fail=1
        continue
    fi
    present=""
    for p in $pages; do
        if [ -f "$p" ]; then
            present="$present $p"
        else
            echo "docs/pages: $header: page $p does not exist"
            fail=1
        fi
    done
    header_names "$header" >"$TMP/names"
    missing=""
    n=0
    while read -r name; do
        n=$((n + 1))
        found=0
        for p in $present; do
            if grep -qw -- "$name" "$p"; then
                found=1
                break
            fi
        done
        [ $found -eq 1 ] || missing="$missing $name"
    done <"$TMP/names"
    checked=$((checked + 1))
    names_total=$((names_total + n))
    if [ -n "$missing" ]; then
        count=$(printf '%s\n' $missing | wc -l)
        echo "docs/pages: $header ->$(printf ' %s' $pages): $count of $n name(s) not documented:"
        printf '    %s\n' $missing
        fail=1
    fi
done <"$TMP/lines"

# ---- 3. relative links lead to files (and headings) that exist ---------

# The anchors of a page's headings, one a line, as GitHub makes them. Bytes,
# not characters (LC_ALL=C): ASCII is lowered and its punctuation dropped,
# the U+2000-U+2FFF block (dashes, quotes, arrows, symbols) dropped, other
# non-ASCII bytes (letters) kept.
page_anchors() {
    LC_ALL=C awk '
        function slug(t,    out, i, c) {
            t = tolower(t)
            gsub(/\342[\200-\277][\200-\277]/, "", t)
            out = ""
            for (i = 1; i <= length(t); i++) {
                c = substr(t, i, 1)
                if (c ~ /[a-z0-9_-]/ || c == " " || c > "\177") out = out c
            }
            gsub(/ /, "-", out)
            return out
        }
        /^[ \t]*(```|~~~)/ { fence = !fence; next }
        fence { next }
        /^#+[ \t]/ {
            t = $0
            sub(/^#+[ \t]+/, "", t)
            sub(/[ \t]+#+[ \t]*$/, "", t)
            sub(/[ \t]+$/, "", t)
            a = slug(t)
            if (a in seen) { seen[a]++; print a "-" seen[a] } else { seen[a] = 0; print a }
        }' "$1"
}

links=0
anchors=0
for md in README.md docs/*.md; do
    [ -f "$md" ] || continue
    dir=$(dirname "$md")
    # Outside fenced code blocks: every "](target)", target up to ')' or a
    # space (a link title).
    awk '
        /^[ \t]*(```|~~~)/ { fence = !fence; next }
        !fence {
            line = $0
            while ((p = index(line, "](")) > 0) {
                line = substr(line, p + 2)
                q = match(line, /[) ]/)
                if (q > 0) print substr(line, 1, q - 1)
            }
        }' "$md" >"$TMP/links"
    while read -r target; do
        case $target in
        '' | http://* | https://* | mailto:*) continue ;;
        esac
        # <angle brackets> are allowed around a link target
        target=${target#<}
        target=${target%>}
        file=${target%%#*}
        links=$((links + 1))
        if [ -z "$file" ]; then
            file=$(basename "$md")
        elif [ ! -e "$dir/$file" ]; then
            echo "docs/pages: $md: broken link ($target): $dir/$file does not exist"
            fail=1
            continue
        fi
        case $target in
        *'#'*) ;;
        *) continue ;;
        esac
        anchor=${target#*#}
        case $file in
        *.md) ;;
        *) continue ;;
        esac
        anchors=$((anchors + 1))
        if ! page_anchors "$dir/$file" | grep -qxF -- "$anchor"; then
            echo "docs/pages: $md: broken link ($target): no heading #$anchor in $dir/$file"
            fail=1
        fi
    done <"$TMP/links"
done

if [ $fail -ne 0 ]; then
    echo "docs/pages: FAILED (see above)"
    exit 1
fi
echo "docs/pages: $checked headers, $names_total public names documented; $links relative links resolve ($anchors to a heading)"
exit 0

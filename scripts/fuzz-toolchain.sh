# Sourced by scripts/fuzz.sh and scripts/fuzz-client.sh: make sure clang can
# link a libFuzzer target (-fsanitize=fuzzer,address,undefined), installing
# Debian's clang and its runtime when missing and we are root; otherwise say
# what is missing and exit 1.
#
#   FUZZ_CC   the compiler to check (default clang)
#   FUZZ_WHO  the name to prefix messages with

FUZZ_CC=${FUZZ_CC:-clang}

fuzzer_links() {
    command -v "$FUZZ_CC" >/dev/null 2>&1 || return 1
    t=$(mktemp -d)
    printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$t/t.c"
    ok=0
    "$FUZZ_CC" -fsanitize=fuzzer,address,undefined "$t/t.c" -o "$t/t" >/dev/null 2>&1 || ok=1
    rm -rf "$t"
    return $ok
}

apt_install() {
    echo "$FUZZ_WHO: installing: $*"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends "$@"
}

if ! fuzzer_links; then
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "$FUZZ_WHO: clang with libFuzzer (-fsanitize=fuzzer) is not available."
        echo "$FUZZ_WHO: install clang and its runtime, e.g.: apt-get install clang libclang-rt-14-dev"
        exit 1
    fi
    command -v clang >/dev/null 2>&1 || apt_install clang
    if ! fuzzer_links; then
        major=$(clang --version | sed -n 's/.*clang version \([0-9]*\).*/\1/p' | head -1)
        apt_install "libclang-rt-${major:-14}-dev"
    fi
    if ! fuzzer_links; then
        echo "$FUZZ_WHO: clang still cannot link -fsanitize=fuzzer; giving up"
        exit 1
    fi
fi

/*
 * A standalone driver for fuzz/reader_fuzz.c, without libFuzzer: the normal
 * build links it with the harness into test_unit_fuzz_replay (CTest entry
 * unit/fuzz_replay), so a harness that no longer builds, links or passes
 * fails `make test`, not only `make fuzz`.
 *
 *   test_unit_fuzz_replay [FILE|DIR]...
 *
 * Feeds each file (each file of each DIR; by default fuzz/corpus) to
 * LLVMFuzzerTestOneInput, then pseudo-random inputs from a fixed seed —
 * well-formed RESP3 of random shape (nested aggregates, maps, attributes,
 * binary blobs), the same with a byte or token mutated, mutated corpus files,
 * and RESP tokens strung together — for at most
 * AREDIS_FUZZ_REPLAY_COUNT inputs (default 4000) or
 * AREDIS_FUZZ_REPLAY_SECONDS (default 3), whichever ends first. Each input
 * sits in a buffer of exactly its size, as under libFuzzer, so ASan sees any
 * read past it. A failing check aborts: the input is then saved to
 * ./fuzz_replay-crash (CTest runs this in build/tests) to replay by name, as
 * can be any crash file from scripts/fuzz.sh.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "corpus_dir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifndef AREDIS_FUZZ_CORPUS
#define AREDIS_FUZZ_CORPUS "fuzz/corpus"
#endif

#define REPLAY_MAX_INPUT 8192

typedef struct input {
    char *name;
    uint8_t *data;
    size_t len;
} input;

static input *g_corpus;
static size_t g_ncorpus;

/* The input being run, for the crash handler. */
static const char *g_cur_name;
static const uint8_t *g_cur;
static size_t g_cur_len;

static void say(const char *s) { (void)!write(2, s, strlen(s)); }

/* A check failed (abort) or worse: say which input, save it, die as before. */
static void on_crash(int sig) {
    say("fuzz_replay: FAIL on ");
    say(g_cur_name ? g_cur_name : "?");
    int fd = open("fuzz_replay-crash", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0 && g_cur && write(fd, g_cur, g_cur_len) == (ssize_t)g_cur_len)
        say("; saved as ./fuzz_replay-crash: replay it with test_unit_fuzz_replay "
            "fuzz_replay-crash");
    say("\n");
    if (fd >= 0) close(fd);
    signal(sig, SIG_DFL);
    raise(sig);
}

/* Run one input from a copy of exactly its size. */
static void run_one(const char *name, const uint8_t *data, size_t len) {
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) abort();
    if (len) memcpy(copy, data, len);
    g_cur_name = name;
    g_cur = copy;
    g_cur_len = len;
    LLVMFuzzerTestOneInput(copy, len);
    g_cur = NULL;
    free(copy);
}

static int read_file(const char *path, input *out) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    size_t cap = 256, len = 0;
    uint8_t *buf = malloc(cap);
    for (size_t n; buf && (n = fread(buf + len, 1, cap - len, f)) > 0;) {
        len += n;
        if (len == cap) {
            uint8_t *nb = realloc(buf, cap *= 2);
            if (!nb) free(buf);
            buf = nb;
        }
    }
    int bad = ferror(f) || !buf;
    fclose(f);
    if (bad) {
        free(buf);
        return -1;
    }
    out->name = strdup(path);
    out->data = buf;
    out->len = len;
    return out->name ? 0 : -1;
}

static void add_file(const char *path) {
    input in;
    if (read_file(path, &in) != 0) {
        fprintf(stderr, "fuzz_replay: cannot read %s\n", path);
        exit(1);
    }
    input *c = realloc(g_corpus, (g_ncorpus + 1) * sizeof *c);
    if (!c) abort();
    g_corpus = c;
    g_corpus[g_ncorpus++] = in;
}

/* A file, or every regular file of a directory (sorted: a fixed order). */
static void add_path(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "fuzz_replay: no such file or directory: %s\n", path);
        exit(1);
    }
    if (!S_ISDIR(st.st_mode)) {
        add_file(path);
        return;
    }
    size_t n;
    char **names = corpus_dir_list(path, &n);
    if (!names) {
        fprintf(stderr, "fuzz_replay: cannot open %s\n", path);
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode)) add_file(names[i]);
        free(names[i]);
    }
    free(names);
}

/* ---- Pseudo-random inputs ------------------------------------------------ */

static uint64_t g_rng = 0x5eed0aed15c0ffeeu;

static uint32_t rnd(uint32_t n) { /* uniform enough in [0, n), n > 0 */
    g_rng ^= g_rng << 13;
    g_rng ^= g_rng >> 7;
    g_rng ^= g_rng << 17;
    return (uint32_t)((g_rng >> 11) % n);
}

/* Pieces of RESP2/RESP3, valid and not: headers, payloads, bad lengths. */
/* clang-format off */
static const char *const k_tokens[] = {
    "*2\r\n", "*1\r\n", "*3\r\n", "*0\r\n", "*-1\r\n", "*99999999999\r\n", "%1\r\n", "%2\r\n",
    "~2\r\n", ">3\r\n", "|1\r\n", "|0\r\n", "$3\r\nfoo\r\n", "$0\r\n\r\n", "$-1\r\n",
    "$5\r\nab", "$-2\r\n", "$1\r\n\r\r\n", "+OK\r\n", "+\r\n", "-ERR bad\r\n", ":0\r\n",
    ":-42\r\n", ":9223372036854775807\r\n", ":9223372036854775808\r\n", ":1x\r\n", ",1.5\r\n",
    ",-0\r\n", ",inf\r\n", ",-inf\r\n", ",nan\r\n", ",1e400\r\n", ",.\r\n", "#t\r\n", "#f\r\n",
    "#x\r\n", "_\r\n", "(12345678901234567890\r\n", "(\r\n", "=7\r\ntxt:abc\r\n",
    "=3\r\nabc\r\n", "!5\r\nERR x\r\n", "\r\n", "\r", "\n", "*", "$", ":", "?", "\x00",
    "*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n:1\r\n",
};
/* clang-format on */
#define NTOKENS (sizeof k_tokens / sizeof k_tokens[0])

static size_t gen_tokens(uint8_t *buf) {
    size_t n = 0;
    buf[n++] = (uint8_t)rnd(256); /* the control byte */
    for (uint32_t k = 1 + rnd(48); k-- > 0;) {
        const char *t = k_tokens[rnd(NTOKENS)];
        size_t len = strlen(t) ? strlen(t) : 1; /* "\x00" is one NUL byte */
        if (n + len > REPLAY_MAX_INPUT) break;
        memcpy(buf + n, t, len);
        n += len;
        if (rnd(16) == 0 && n < REPLAY_MAX_INPUT) buf[n++] = (uint8_t)rnd(256);
    }
    return n;
}

/* ---- Well-formed RESP3 of random shape ---- */

typedef struct out {
    uint8_t *buf;
    size_t n;
} out;

static void put(out *o, const void *p, size_t len) {
    if (len > REPLAY_MAX_INPUT - o->n) len = REPLAY_MAX_INPUT - o->n; /* truncated: fine */
    memcpy(o->buf + o->n, p, len);
    o->n += len;
}

static void putf(out *o, const char *fmt, long long v) {
    char tmp[64];
    int len = snprintf(tmp, sizeof tmp, fmt, v);
    put(o, tmp, (size_t)len);
}

static void put_bytes(out *o, size_t len, int printable) {
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)(printable ? 'a' + rnd(26) : rnd(256));
        put(o, &c, 1);
    }
}

static const char *const k_doubles[] = {"1.5", "-0",  "inf",     "-inf", "nan",
                                        "3",   "1e9", "-2.5e-3", "0.1",  "12345678.875"};
static const long long k_ints[] = {0, 1, -1, 42, 9223372036854775807LL, -9223372036854775807LL - 1};

static void gen_value(out *o, int depth) {
    uint32_t kind = rnd(depth < 6 ? 18 : 11);
    size_t len;
    switch (kind) {
    case 0:
        put(o, "+", 1), put_bytes(o, rnd(12), 1), put(o, "\r\n", 2);
        break;
    case 1:
        put(o, "-ERR ", 5), put_bytes(o, rnd(12), 1), put(o, "\r\n", 2);
        break;
    case 2:
        putf(o, ":%lld\r\n", rnd(2) ? k_ints[rnd(6)] : (long long)rnd(100000) - 50000);
        break;
    case 3:
    case 4:
        /* Now and then one big enough to take over the reader's buffer. */
        len = rnd(4) ? rnd(24) : rnd(8) ? rnd(300) : 1000 + rnd(2000);
        putf(o, "$%lld\r\n", (long long)len), put_bytes(o, len, 0), put(o, "\r\n", 2);
        break;
    case 5: {
        static const char *const nils[] = {"$-1\r\n", "*-1\r\n", "_\r\n"};
        const char *t = nils[rnd(3)];
        put(o, t, strlen(t));
        break;
    }
    case 6: {
        const char *d = k_doubles[rnd(sizeof k_doubles / sizeof k_doubles[0])];
        put(o, ",", 1), put(o, d, strlen(d)), put(o, "\r\n", 2);
        break;
    }
    case 7:
        put(o, rnd(2) ? "#t\r\n" : "#f\r\n", 4);
        break;
    case 8:
        len = rnd(2); /* negative? */
        put(o, len ? "(-1" : "(1", len ? 3 : 2);
        for (len = rnd(40); len-- > 0;) {
            char c = (char)('0' + rnd(10));
            put(o, &c, 1);
        }
        put(o, "\r\n", 2);
        break;
    case 9:
        len = rnd(20);
        putf(o, "=%lld\r\ntxt:", (long long)len + 4), put_bytes(o, len, 0), put(o, "\r\n", 2);
        break;
    case 10:
        len = rnd(16);
        putf(o, "!%lld\r\n", (long long)len), put_bytes(o, len, 1), put(o, "\r\n", 2);
        break;
    case 11: /* an attribute, then the value it goes with */
        len = rnd(3);
        putf(o, "|%lld\r\n", (long long)len);
        for (size_t i = 0; i < 2 * len; i++)
            gen_value(o, depth + 1);
        gen_value(o, depth);
        break;
    case 12:
    case 13: /* a map: pairs */
        len = rnd(5);
        putf(o, "%%%lld\r\n", (long long)len);
        for (size_t i = 0; i < 2 * len; i++)
            gen_value(o, depth + 1);
        break;
    default: { /* array, set, push */
        static const char agg[] = "*~>*";
        len = rnd(4) ? rnd(5) : rnd(20);
        put(o, &agg[rnd(4)], 1), putf(o, "%lld\r\n", (long long)len);
        for (size_t i = 0; i < len; i++)
            gen_value(o, depth + 1);
        break;
    }
    }
}

static size_t gen_resp(uint8_t *buf) {
    out o = {buf, 0};
    uint8_t ctl = (uint8_t)rnd(256);
    put(&o, &ctl, 1);
    for (uint32_t k = 1 + rnd(6); k-- > 0;)
        gen_value(&o, 0);
    return o.n;
}

static size_t mutate(uint8_t *buf, size_t n) {
    for (uint32_t k = 1 + rnd(4); k-- > 0;) {
        switch (rnd(5)) {
        case 0: /* flip a bit */
            if (n) buf[rnd((uint32_t)n)] ^= (uint8_t)(1u << rnd(8));
            break;
        case 1: /* cut the tail */
            if (n > 1) n = 1 + rnd((uint32_t)n);
            break;
        case 2: /* a new control byte */
            if (n) buf[0] = (uint8_t)rnd(256);
            break;
        case 3: { /* drop a byte */
            if (n < 2) break;
            size_t at = 1 + rnd((uint32_t)(n - 1));
            memmove(buf + at, buf + at + 1, n - at - 1);
            n--;
            break;
        }
        default: { /* insert a token */
            const char *t = k_tokens[rnd(NTOKENS)];
            size_t len = strlen(t) ? strlen(t) : 1;
            if (n < 1 || n + len > REPLAY_MAX_INPUT) break;
            size_t at = 1 + rnd((uint32_t)n);
            memmove(buf + at + len, buf + at, n - at);
            memcpy(buf + at, t, len);
            n += len;
            break;
        }
        }
    }
    return n;
}

static size_t gen_mutant(uint8_t *buf) {
    const input *src = &g_corpus[rnd((uint32_t)g_ncorpus)];
    size_t n = src->len < REPLAY_MAX_INPUT ? src->len : REPLAY_MAX_INPUT;
    memcpy(buf, src->data, n);
    return mutate(buf, n);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long env_long(const char *name, long def) {
    const char *v = getenv(name);
    return v && *v ? strtol(v, NULL, 10) : def;
}

int main(int argc, char **argv) {
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            add_path(argv[i]);
    } else {
        add_path(AREDIS_FUZZ_CORPUS);
    }
    if (g_ncorpus == 0) {
        fprintf(stderr, "fuzz_replay: no inputs found\n");
        return 1;
    }
    double t0 = now_s();
    signal(SIGABRT, on_crash);
    signal(SIGSEGV, on_crash);
    signal(SIGBUS, on_crash);
    for (size_t i = 0; i < g_ncorpus; i++)
        run_one(g_corpus[i].name, g_corpus[i].data, g_corpus[i].len);

    long count = env_long("AREDIS_FUZZ_REPLAY_COUNT", 4000);
    double secs = (double)env_long("AREDIS_FUZZ_REPLAY_SECONDS", 3);
    static uint8_t buf[REPLAY_MAX_INPUT];
    long done = 0;
    for (; done < count && now_s() - t0 < secs; done++) {
        uint32_t how = rnd(20);
        size_t n = how < 10   ? gen_resp(buf)
                   : how < 14 ? mutate(buf, gen_resp(buf))
                   : how < 17 ? gen_mutant(buf)
                              : gen_tokens(buf);
        run_one("a pseudo-random input", buf, n);
    }
    printf("fuzz_replay: %zu file(s) and %ld pseudo-random input(s) in %.2f s: ok\n", g_ncorpus,
           done, now_s() - t0);
    for (size_t i = 0; i < g_ncorpus; i++) {
        free(g_corpus[i].name);
        free(g_corpus[i].data);
    }
    free(g_corpus);
    return 0;
}

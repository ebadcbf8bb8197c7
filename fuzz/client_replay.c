/*
 * A standalone driver for fuzz/client_sim.c (the simulation of the whole
 * client), without libFuzzer: the normal build links the two into
 * test_unit_client_sim (CTest entry unit/client_sim, labels unit and sim).
 *
 *   test_unit_client_sim                 the corpus, then pseudo-random seeds
 *   test_unit_client_sim FILE|DIR...     just these inputs (a crash file)
 *   test_unit_client_sim --seed N        just pseudo-random seed N
 *
 * Runs every file of fuzz/client_corpus (sorted), then pseudo-random inputs
 * for seeds AREDIS_SIM_SEED_BASE (default 1), +1, +2... — at most
 * AREDIS_SIM_COUNT of them (default 10000) and for at most
 * AREDIS_SIM_SECONDS (default 45) of wall time, whichever ends first. Each
 * seed's input is a function of the seed alone, so a failure names the seed
 * that replays it (`--seed N`; AREDIS_SIM_TRACE=1 prints every step). A
 * failing run aborts: its input is saved to ./client_sim-crash, which the
 * libFuzzer target (scripts/fuzz-client.sh) and this driver both replay.
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

#ifndef AREDIS_SIM_CORPUS
#define AREDIS_SIM_CORPUS "fuzz/client_corpus"
#endif

#define SIM_MAX_INPUT 4096

static const char *g_cur_name;
static long long g_cur_seed = -1;
static const uint8_t *g_cur;
static size_t g_cur_len;

static void say(const char *s) { (void)!write(2, s, strlen(s)); }

static void on_crash(int sig) {
    char msg[160];
    if (g_cur_seed >= 0)
        snprintf(msg, sizeof msg, "client_sim: FAIL on pseudo-random seed %lld", g_cur_seed);
    else
        snprintf(msg, sizeof msg, "client_sim: FAIL on %s", g_cur_name ? g_cur_name : "?");
    say(msg);
    int fd = open("client_sim-crash", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0 && g_cur && write(fd, g_cur, g_cur_len) == (ssize_t)g_cur_len)
        say("; input saved as ./client_sim-crash (replay: test_unit_client_sim "
            "client_sim-crash)");
    say("\n");
    if (fd >= 0) close(fd);
    signal(sig, SIG_DFL);
    raise(sig);
}

static void run_one(const uint8_t *data, size_t len) {
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy) abort();
    if (len) memcpy(copy, data, len);
    g_cur = copy;
    g_cur_len = len;
    LLVMFuzzerTestOneInput(copy, len);
    g_cur = NULL;
    free(copy);
}

static int run_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    g_cur_name = path;
    g_cur_seed = -1;
    run_one(buf, n);
    return 0;
}

/* A file, or every regular file of a directory, sorted. Returns the count. */
static long run_path(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "client_sim: no such file or directory: %s\n", path);
        exit(1);
    }
    if (!S_ISDIR(st.st_mode)) {
        if (run_file(path) != 0) {
            fprintf(stderr, "client_sim: cannot read %s\n", path);
            exit(1);
        }
        return 1;
    }
    size_t n;
    char **names = corpus_dir_list(path, &n);
    if (!names) return 0;
    long ran = 0;
    for (size_t i = 0; i < n; i++) {
        if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode) && run_file(names[i]) == 0) ran++;
        free(names[i]);
    }
    free(names);
    return ran;
}

/* The input of a seed: its length and bytes from a splitmix64 stream. */
static uint64_t mix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static size_t gen_seed(long long seed, uint8_t *buf) {
    uint64_t s = (uint64_t)seed * 0xD1B54A32D192ED03ull;
    uint64_t r = mix(&s);
    size_t len = (r & 3) == 0 ? 16 + mix(&s) % 200 : 64 + mix(&s) % (SIM_MAX_INPUT - 64);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)mix(&s);
    return len;
}

static void run_seed(long long seed) {
    static uint8_t buf[SIM_MAX_INPUT];
    size_t n = gen_seed(seed, buf);
    g_cur_name = NULL;
    g_cur_seed = seed;
    run_one(buf, n);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long long env_ll(const char *name, long long def) {
    const char *v = getenv(name);
    return v && *v ? strtoll(v, NULL, 10) : def;
}

int main(int argc, char **argv) {
    signal(SIGABRT, on_crash);
    signal(SIGSEGV, on_crash);
    signal(SIGBUS, on_crash);
    signal(SIGPIPE, SIG_IGN);
    double t0 = now_s();
    if (argc == 3 && strcmp(argv[1], "--seed") == 0) {
        run_seed(strtoll(argv[2], NULL, 10));
        printf("client_sim: seed %s: ok\n", argv[2]);
        return 0;
    }
    if (argc > 1) {
        long n = 0;
        for (int i = 1; i < argc; i++)
            n += run_path(argv[i]);
        printf("client_sim: %ld input(s): ok\n", n);
        return 0;
    }
    long files = run_path(AREDIS_SIM_CORPUS);
    long long count = env_ll("AREDIS_SIM_COUNT", 10000);
    double secs = (double)env_ll("AREDIS_SIM_SECONDS", 45);
    long long base = env_ll("AREDIS_SIM_SEED_BASE", 1);
    long long done = 0;
    for (; done < count && now_s() - t0 < secs; done++)
        run_seed(base + done);
    printf("client_sim: %ld corpus file(s) and %lld pseudo-random seed(s) (%lld..%lld) in "
           "%.2f s: ok\n",
           files, done, base, base + done - 1, now_s() - t0);
    return 0;
}

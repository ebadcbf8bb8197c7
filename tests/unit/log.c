/*
 * Unit tests for the log handler (src/util/log.c): level filtering, NULL
 * restoring the default, the default saying nothing without AREDIS_DEBUG,
 * one line per call with control bytes neutralised, long lines cut, level
 * names, and handlers swapped while other threads log.
 */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ts.h"
#include "util/log.h"

typedef struct {
    int n;
    int last_level;
    char last[2048];
} sink;

static void to_sink(int level, const char *line, void *data) {
    sink *s = data;
    s->n++;
    s->last_level = level;
    snprintf(s->last, sizeof s->last, "%s", line);
}

static void test_levels(void **state) {
    (void)state;
    sink s = {0};
    aredis_set_log_handler(to_sink, &s, AREDIS_LOG_INFO);
    assert_false(aredis__log_enabled(AREDIS_LOG_DEBUG));
    assert_true(aredis__log_enabled(AREDIS_LOG_INFO));
    assert_true(aredis__log_enabled(AREDIS_LOG_ERROR));
    aredis__log(AREDIS_LOG_DEBUG, "not %s", "shown");
    assert_int_equal(s.n, 0);
    aredis__log(AREDIS_LOG_INFO, "shown %d", 1);
    assert_int_equal(s.n, 1);
    assert_int_equal(s.last_level, AREDIS_LOG_INFO);
    assert_string_equal(s.last, "shown 1");
    aredis__log(AREDIS_LOG_WARN, "w");
    aredis__log(AREDIS_LOG_ERROR, "e");
    assert_int_equal(s.n, 3);
    assert_int_equal(s.last_level, AREDIS_LOG_ERROR);

    aredis_set_log_handler(to_sink, &s, AREDIS_LOG_DEBUG);
    aredis__log(AREDIS_LOG_DEBUG, "d");
    assert_int_equal(s.n, 4);
    aredis_set_log_handler(to_sink, &s, AREDIS_LOG_NONE);
    aredis__log(AREDIS_LOG_ERROR, "none");
    assert_int_equal(s.n, 4);
    aredis_set_log_handler(NULL, NULL, 0);
    aredis__log(AREDIS_LOG_ERROR, "default");
    assert_int_equal(s.n, 4);

    assert_string_equal(aredis_log_level_name(AREDIS_LOG_DEBUG), "DEBUG");
    assert_string_equal(aredis_log_level_name(AREDIS_LOG_INFO), "INFO");
    assert_string_equal(aredis_log_level_name(AREDIS_LOG_WARN), "WARN");
    assert_string_equal(aredis_log_level_name(AREDIS_LOG_ERROR), "ERROR");
    assert_string_equal(aredis_log_level_name(7), "LOG");
}

/* One line per call: no newline or other control byte gets through; long
 * lines are cut. */
static void test_one_line(void **state) {
    (void)state;
    sink s = {0};
    aredis_set_log_handler(to_sink, &s, AREDIS_LOG_DEBUG);
    aredis__log(AREDIS_LOG_WARN, "a\nforged: line\r\x1b[31m%s", "\x7f!");
    assert_string_equal(s.last, "a forged: line  [31m !");
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    aredis__log(AREDIS_LOG_WARN, "%s", big);
    assert_int_equal(strlen(s.last), 1023);
    aredis_set_log_handler(NULL, NULL, 0);
}

/* Without AREDIS_DEBUG the default handler writes nothing (main() unsets
 * it before the first check). */
static void test_default_silent(void **state) {
    (void)state;
    char path[] = "/tmp/aredis-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    fflush(stderr);
    int saved = dup(2);
    dup2(fd, 2);
    aredis_set_log_handler(NULL, NULL, AREDIS_LOG_DEBUG);
    assert_false(aredis__log_enabled(AREDIS_LOG_ERROR));
    aredis__log(AREDIS_LOG_ERROR, "should not appear");
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_int_equal(lseek(fd, 0, SEEK_END), 0);
    close(fd);
    unlink(path);
}

/* Handlers swapped while threads log: every line lands in one of them
 * (ASan/UBSan watch the rest). */
typedef struct {
    int stop;
} race;

static void count_line(int level, const char *line, void *data) {
    (void)level;
    (void)line;
    __atomic_fetch_add((int *)data, 1, __ATOMIC_RELAXED);
}

static void *logger(void *arg) {
    race *r = arg;
    while (!__atomic_load_n(&r->stop, __ATOMIC_RELAXED))
        aredis__log(AREDIS_LOG_INFO, "line %d", 1);
    return NULL;
}

/* Spin until *n > 0 (bounded). */
static int wait_lines(int *n) {
    uint64_t until = ts_now_ms() + 5000;
    while (__atomic_load_n(n, __ATOMIC_RELAXED) == 0 && ts_now_ms() < until)
        sched_yield();
    return __atomic_load_n(n, __ATOMIC_RELAXED) > 0;
}

static void test_swap_while_logging(void **state) {
    (void)state;
    static int a, b;
    race r = {0};
    pthread_t t[3];
    aredis_set_log_handler(count_line, &a, AREDIS_LOG_DEBUG);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&t[i], NULL, logger, &r), 0);
    assert_true(wait_lines(&a)); /* the threads are logging */
    for (int i = 0; i < 2000; i++) {
        aredis_set_log_handler(count_line, (i & 1) ? &a : &b, AREDIS_LOG_DEBUG);
        if (i % 500 == 0) aredis_set_log_handler(NULL, NULL, 0);
    }
    __atomic_store_n(&b, 0, __ATOMIC_RELAXED);
    aredis_set_log_handler(count_line, &b, AREDIS_LOG_DEBUG);
    assert_true(wait_lines(&b)); /* and the last handler set gets their lines */
    __atomic_store_n(&r.stop, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < 3; i++)
        pthread_join(t[i], NULL);
    aredis_set_log_handler(NULL, NULL, 0);
}

int main(void) {
    unsetenv("AREDIS_DEBUG");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_one_line),
        cmocka_unit_test(test_default_silent),
        cmocka_unit_test(test_swap_while_logging),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

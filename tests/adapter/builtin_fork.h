/*
 * aredis_loop_after_fork() on the built-in loop, whichever backend it was
 * compiled with (builtin.c: the library's; builtin_poll.c: poll). Include
 * after conformance.h. Also: a wake handle made before the fork wakes only
 * the process that signals it.
 *
 * In the child, the inherited loop is inert until after_fork(); then a
 * watcher made before the fork stays dormant — the fd is readable, yet it
 * does not fire — until it is set again, and new watchers work. The parent's
 * watcher is untouched by all of it. The child reports through its exit
 * status (no cmocka asserts across fork()).
 */
#ifndef AREDIS_TEST_BUILTIN_FORK_H
#define AREDIS_TEST_BUILTIN_FORK_H

#include <sys/wait.h>

static void bf_count_cb(void *arg, int events) {
    (void)events;
    (*(int *)arg)++;
}

/* Run turns until *v > 0 or about ms pass; *v. No asserts: the child uses it. */
static int bf_run_until(aredis_loop *l, const int *v, uint64_t ms) {
    int expired = 0;
    void *guard = aredis__timer_new(l, conf_flag_cb, &expired);
    if (!guard) return -1;
    aredis__timer_arm(l, guard, ms);
    while (*v == 0 && !expired)
        aredis_loop_run_once(l, 1);
    aredis__timer_free(l, guard);
    return *v;
}

static int bf_child(aredis_loop *l, void *old_io, int *count) {
    int bad = 0, fresh = 0, sv[2];

    *count = 0;
    if (aredis_loop_run_once(l, 0) != 0 || *count) bad |= 1; /* inert */
    if (aredis_loop_after_fork(l) != AREDIS_ERR_OK) bad |= 2;
    if (bf_run_until(l, count, 100) != 0) bad |= 4; /* dormant though readable */
    aredis__io_set(l, old_io, AREDIS_EV_READ);      /* set again: watched here */
    if (bf_run_until(l, count, 3000) <= 0) bad |= 8;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return bad | 16;
    void *io = aredis__io_new(l, sv[0], bf_count_cb, &fresh);
    if (!io) return bad | 16;
    aredis__io_set(l, io, AREDIS_EV_READ);
    if (write(sv[1], "y", 1) != 1 || bf_run_until(l, &fresh, 3000) <= 0) bad |= 32;
    aredis__io_free(l, io);
    aredis__io_free(l, old_io);
    aredis_loop_free(l);
    close(sv[0]);
    close(sv[1]);
    return bad;
}

static void builtin_after_fork(void **state) {
    int sv[2], count = 0, st = 0;
    (void)state;
    signal(SIGALRM, conf_on_alarm);
    alarm(20);
    aredis_loop *l = aredis_loop_new();
    assert_non_null(l);
    assert_int_equal(aredis_loop_after_fork(l), AREDIS_ERR_OK); /* not forked: a no-op */
    conf_socketpair(sv);
    void *io = aredis__io_new(l, sv[0], bf_count_cb, &count);
    assert_non_null(io);
    aredis__io_set(l, io, AREDIS_EV_READ);
    conf_put(sv[1]); /* never drained: readable in both processes throughout */
    assert_true(bf_run_until(l, &count, 3000) > 0);

    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(bf_child(l, io, &count));
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);

    count = 0;
    assert_true(bf_run_until(l, &count, 3000) > 0); /* the parent's watcher still works */
    aredis__io_free(l, io);
    aredis_loop_free(l);
    close(sv[0]);
    close(sv[1]);
    alarm(0);
}

static void bf_wake_cb(void *arg) { (*(int *)arg)++; }

static void bf_post_fn(void *arg, aredis_err code) {
    if (code == AREDIS_ERR_OK) (*(int *)arg)++;
}

/* The child: its wake handle works after after_fork() (fds of its own,
 * watched in its own epoll instance), and so do posts. */
static int bf_wake_child(aredis_loop *l, void *w, int *count) {
    int bad = 0, posted = 0;
    *count = 0;
    if (aredis_loop_after_fork(l) != AREDIS_ERR_OK) return 1;
    aredis__wake_signal(l, w);
    if (bf_run_until(l, count, 3000) <= 0) bad |= 2;
    if (aredis_loop_post(l, bf_post_fn, &posted) != AREDIS_ERR_OK) bad |= 4;
    for (int i = 0; i < 10 && !posted; i++)
        aredis_loop_run_once(l, 0);
    if (posted != 1) bad |= 8;
    aredis__wake_free(l, w);
    aredis_loop_free(l);
    return bad;
}

/* A wake handle made before a fork: the child's signals wake the child's
 * loop, never the parent's (they shared the eventfd or pipe until the child
 * called after_fork()); the parent's handle still works. */
static void builtin_after_fork_wake(void **state) {
    int count = 0, st = 0;
    (void)state;
    signal(SIGALRM, conf_on_alarm);
    alarm(20);
    aredis_loop *l = aredis_loop_new();
    assert_non_null(l);
    void *w = aredis__wake_new(l, bf_wake_cb, &count);
    assert_non_null(w);

    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) _exit(bf_wake_child(l, w, &count));
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);

    conf_run_for(l, 100);
    assert_int_equal(count, 0); /* the child's signal stayed in the child */
    aredis__wake_signal(l, w);
    assert_true(bf_run_until(l, &count, 3000) > 0);
    aredis__wake_free(l, w);
    aredis_loop_free(l);
    alarm(0);
}

static int builtin_fork_main(const char *name) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(builtin_after_fork),
                                       cmocka_unit_test(builtin_after_fork_wake)};
    return cmocka_run_group_tests_name(name, tests, NULL, NULL);
}

#endif

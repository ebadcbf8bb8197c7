/*
 * Test support: forked children, which report through their exit status
 * (cmocka is the parent's).
 */
#include <errno.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ts.h"

pid_t ts_fork(void) {
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    return pid;
}

void ts_wait_child(pid_t pid, const ts_child_check *checks, size_t n) {
    int st = 0;
    pid_t w;
    do {
        w = waitpid(pid, &st, 0);
    } while (w < 0 && errno == EINTR);
    assert_int_equal(w, pid);
    if (WIFSIGNALED(st)) fail_msg("child killed by signal %d (a crash or a hang)", WTERMSIG(st));
    assert_true(WIFEXITED(st));
    int code = WEXITSTATUS(st);
    for (size_t i = 0; checks && i < n; i++)
        if (code & checks[i].bit) ts_log("child check failed: %s", checks[i].what);
    if (code != 0) fail_msg("child checks failed: exit status 0x%x", code);
}

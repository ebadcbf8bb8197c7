/*
 * Internal to the test support library (server.c, tls.c): one core that
 * runs redis-server processes — start on a free port, wait until ready
 * (by a predicate: a plain PING, or the log line for TLS-only servers),
 * kill, restart on the same port, stop. Processes die with the test process
 * (PR_SET_PDEATHSIG + an atexit sweep in the process that started them).
 */
#ifndef AREDIS_TS_SERVER_CORE_H
#define AREDIS_TS_SERVER_CORE_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

typedef struct tsp_proc tsp_proc;

struct tsp_proc {
    pid_t pid;
    int port;
    char dir[256];
    char conf[300];
    char log[300];                   /* the server's logfile: emptied before every start */
    char err[300];                   /* its stderr (config errors), likewise */
    int (*ready)(const tsp_proc *p); /* polled until it returns 1 */
    int rm_dir_at_exit;              /* the atexit sweep also removes dir */
    tsp_proc *next_live;
};

/* Readiness predicates: a plain-text PING on 127.0.0.1:port answered by
 * +PONG (or -NOAUTH); the line "Ready to accept connections" in p->log. */
int tsp_ready_ping(const tsp_proc *p);
int tsp_ready_log(const tsp_proc *p);

/* The redis-server binary ($REDIS_SERVER, the usual places, $PATH), or NULL. */
const char *tsp_server_path(void);
/* A free 127.0.0.1 port: bound to port 0 and read back, then closed (the
 * small race with other processes is accepted: starts retry). -1 on error. */
int tsp_free_port(void);
/*
 * Write the config lines (NULL-terminated, may be NULL) to f, one a line,
 * leaving out the ones the server binary does not know and does not need
 * (today: "enable-debug-command ..." before Redis 7.0, where DEBUG is
 * always allowed); each one left out is logged once.
 */
void tsp_write_conf_lines(FILE *f, const char *const *lines);
/* Copy p's stderr and log to stderr as "# server stderr: ..." and
 * "# server log: ..." lines; the number of lines copied. */
int tsp_dump_output(const tsp_proc *p);
/* Does p's log or stderr contain s? */
int tsp_output_has(const tsp_proc *p, const char *s);
void tsp_sleep_ms(int ms);
/* rm -rf dir, waited for. */
void tsp_rm_rf(const char *dir);

/* Make p->dir ("$TMPDIR/<prefix>-XXXXXX") and set p->conf, p->log and p->err
 * to its redis.conf, redis.log and stderr.log. */
void tsp_make_dir(tsp_proc *p, const char *prefix);
/*
 * A free port in p->port, write_conf(p, arg) (which must set `logfile` to
 * p->log), start and wait until ready; again with another port (up to 20
 * times) while the port was taken meanwhile or the server hung. On success
 * p is in the live list and 0 is returned; -1 if it never came up (a server
 * that exited for another reason, a config error, is not retried: p's log
 * and stderr say why).
 */
int tsp_start(tsp_proc *p, void (*write_conf)(tsp_proc *p, const void *arg), const void *arg);
/* SIGKILL and reap (no-op when not running, or p NULL). */
void tsp_kill(tsp_proc *p);
/* Kill, then start again on the same port and config (retrying while the
 * kernel releases the port). 0 when it is ready, -1 otherwise. */
int tsp_restart(tsp_proc *p);
/* SIGTERM (SIGKILL after 3 s), reap, leave the live list, remove the dir
 * (no-op when p is NULL). */
void tsp_stop(tsp_proc *p);

#endif

/*
 * transaction — MULTI/EXEC, and check-and-set with WATCH: read a balance,
 * write the new one only if nobody changed it meanwhile, retry if they did.
 *
 *   REDIS_URL=redis://127.0.0.1:6379 ./example_transaction   (that is the default)
 *
 * Exits 0 when the transactions ran, were refused and retried as described.
 */
#include <aredis/aredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Withdraw `amount` from `key` if the balance allows it. Returns 1 done,
 * 0 refused (not enough), -1 on an error. A transaction on its own client
 * would keep the reservation from holding up other users of `c`; here the
 * time between WATCH and EXEC is one round trip. When `rival` is given, it
 * deposits 5 between our read and our EXEC on the first attempt, as another
 * process might: that EXEC is then aborted, and we try again.
 */
static int withdraw(aredis_client *c, aredis_client *rival, const char *key, long long amount) {
    aredis_tx *tx = aredis_tx_new(c);
    int result = -1;
    for (int attempt = 1; attempt <= 5; attempt++) {
        /* WATCH, then read on the transaction's own connection. */
        const char *keys[] = {key};
        aredis_future *w = aredis_tx_watch_future(tx, 1, keys, NULL);
        aredis_future *g = aredis_tx_future_command(tx, "GET %s", key);
        aredis_err e = aredis_await(g);
        aredis_await(w);
        if (e != AREDIS_ERR_OK || aredis_future_error(w)) {
            fprintf(stderr, "read failed: %s\n", aredis_future_error(e ? g : w)->detail);
            aredis_future_release(w);
            aredis_future_release(g);
            break;
        }
        const aredis_reply *r = aredis_future_reply(g);
        long long balance = r->str ? atoll(r->str) : 0;
        aredis_future_release(w);
        aredis_future_release(g);
        if (balance < amount) {
            printf("cannot withdraw %lld: the balance is %lld\n", amount, balance);
            aredis_tx_discard(tx); /* UNWATCH: the connection is free again */
            result = 0;
            break;
        }
        if (rival && attempt == 1) {
            aredis_future *d = aredis_future_command(rival, "INCRBY %s 5", key);
            aredis_await(d);
            aredis_future_release(d);
        }
        aredis_tx_queue(tx, "SET %s %lld", key, balance - amount);
        aredis_tx_queue(tx, "INCR example:tx:withdrawals");
        aredis_future *f = aredis_tx_exec_future(tx);
        e = aredis_await(f);
        if (e == AREDIS_ERR_OK && aredis_tx_aborted(aredis_future_reply(f))) {
            printf("attempt %d: %s changed under us, again\n", attempt, key);
            aredis_future_release(f);
            continue; /* nothing ran; the transaction is empty again */
        }
        if (e != AREDIS_ERR_OK)
            fprintf(stderr, "exec failed: %s\n", aredis_future_error(f)->detail);
        else
            printf("withdrew %lld: balance %lld -> %lld\n", amount, balance, balance - amount);
        aredis_future_release(f);
        result = e == AREDIS_ERR_OK ? 1 : -1;
        break;
    }
    aredis_tx_free(tx);
    return result;
}

static aredis_client *new_client(aredis_loop *loop) {
    const char *url = getenv("REDIS_URL");
    aredis_options o = AREDIS_OPTIONS_INIT;
    aredis_uri *uri;
    char err[256];
    if (aredis_uri_parse(url && *url ? url : "redis://127.0.0.1:6379", &uri, err, sizeof err) !=
        AREDIS_ERR_OK) {
        fprintf(stderr, "bad REDIS_URL: %s\n", err);
        exit(2);
    }
    aredis_uri_apply(uri, &o);
    aredis_client *c = aredis_client_new(loop, &o);
    aredis_uri_free(uri);
    if (!c) {
        fprintf(stderr, "cannot create client: %s\n", aredis_call_error()->detail);
        exit(1);
    }
    aredis_client_connect(c);
    return c;
}

int main(void) {
    aredis_loop *loop = aredis_loop_new();
    aredis_client *c = new_client(loop);
    aredis_client *rival = new_client(loop); /* another user of the same key */

    /* MULTI ... EXEC: all run, nothing in between; one failing alone. */
    aredis_tx *tx = aredis_tx_new(c);
    aredis_tx_queue(tx, "SET example:tx:balance %d", 100);
    aredis_tx_queue(tx, "DEL example:tx:withdrawals");
    aredis_tx_queue(tx, "INCR example:tx:balance");    /* 101 */
    aredis_tx_queue(tx, "LPUSH example:tx:balance x"); /* fails alone: WRONGTYPE */
    aredis_future *f = aredis_tx_exec_future(tx);
    if (aredis_await(f) != AREDIS_ERR_OK) {
        fprintf(stderr, "transaction failed: %s\n", aredis_future_error(f)->detail);
        return 1;
    }
    const aredis_reply *all = aredis_future_reply(f);
    printf("EXEC: %zu results; INCR -> %lld; LPUSH -> %s\n", all->elements,
           all->element[2]->integer, all->element[3]->str);
    if (all->elements != 4 || all->element[2]->integer != 101 ||
        all->element[3]->type != AREDIS_REPLY_ERROR)
        return 1;
    aredis_future_release(f);

    /* A bad command queued: the server refuses the whole transaction. */
    aredis_tx_queue(tx, "SET example:tx:never 1");
    aredis_tx_queue(tx, "SET onlykey");
    f = aredis_tx_exec_future(tx);
    aredis_await(f);
    const aredis_error *e = aredis_future_error(f);
    printf("refused: %s\n", e ? e->detail : "?");
    if (!e || strcmp(e->prefix, "EXECABORT") != 0) return 1;
    aredis_future_release(f);
    aredis_tx_free(tx);

    /* Check-and-set: the rival's deposit aborts the first attempt; the
     * second withdraws from 106. Then not enough is left for 100. */
    if (withdraw(c, rival, "example:tx:balance", 30) != 1) return 1;
    if (withdraw(c, NULL, "example:tx:balance", 100) != 0) return 1;

    f = aredis_future_command(c, "MGET example:tx:balance example:tx:withdrawals example:tx:never");
    if (aredis_await(f) != AREDIS_ERR_OK) return 1;
    all = aredis_future_reply(f);
    printf("balance %s, withdrawals %s\n", all->element[0]->str, all->element[1]->str);
    int ok = all->element[0]->str && strcmp(all->element[0]->str, "76") == 0 &&
             all->element[1]->str && strcmp(all->element[1]->str, "1") == 0 &&
             all->element[2]->type == AREDIS_REPLY_NIL; /* the refused one never ran */
    aredis_future_release(f);

    f = aredis_future_command(c, "UNLINK example:tx:balance example:tx:withdrawals");
    aredis_await(f);
    aredis_future_release(f);
    aredis_client_free(rival);
    aredis_client_free(c);
    aredis_loop_free(loop);
    return ok ? 0 : 1;
}

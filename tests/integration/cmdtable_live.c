/*
 * The command table against a live server: every command and subcommand
 * the server's COMMAND lists is known to the built-in table or to a table
 * loaded from that reply (aredis__cmdtable_load), in RESP2 and RESP3; the
 * loaded table holds only what the built-in one lacks (nothing, when the
 * server is the one the table was generated from), and reads the RESP3
 * form as the generator read the RESP2 one. Commands the built-in table
 * lacks are simulated by renaming real ones in the reply (a command, and a
 * subcommand of a known container): lookups and key positions then come
 * from the loaded table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/cmdtable.h"
#include "ts.h"

static ts_server *g_srv;
static aredis_loop *g_loop;
static int g_same_server; /* the server the built-in table came from */

static int setup(void **state) {
    (void)state;
    g_srv = ts_server_start_default();
    g_loop = aredis_loop_new();
    aredis_client *c = ts_client(g_loop, g_srv);
    aredis_future *f = ts_cmd(c, "INFO server");
    ts_version v;
    char source[64];
    assert_int_equal(ts_info_version(aredis_future_reply(f)->str, &v), 0);
    snprintf(source, sizeof source, "%s %d.%d.%d",
             strcmp(v.product, "Valkey") == 0 ? "valkey" : "redis", v.major, v.minor, v.patch);
    g_same_server = strcmp(source, aredis__cmdtable_source) == 0;
    if (!g_same_server) ts_log("table from %s, server %s", aredis__cmdtable_source, source);
    aredis_future_release(f);
    aredis_client_free(c);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    aredis_loop_free(g_loop);
    ts_server_stop(g_srv);
    return 0;
}

/* COMMAND's reply over a connection of that protocol (the future keeps it). */
static aredis_future *command_reply(int protocol, aredis_client **cp) {
    aredis_options o = ts_options(g_srv);
    o.protocol = protocol;
    aredis_client *c = ts_connect(g_loop, &o);
    assert_int_equal(aredis_client_protocol(c), protocol);
    aredis_future *f = ts_cmd(c, "COMMAND");
    const aredis_reply *r = aredis_future_reply(f);
    assert_non_null(r);
    assert_int_equal(r->type, AREDIS_REPLY_ARRAY);
    assert_true(r->elements > 100);
    *cp = c;
    return f;
}

static aredis__arg arg_of(const char *s, size_t n) {
    aredis__arg a = {s, n};
    return a;
}

/* Every command and subcommand of the reply resolves to its own entry. */
static void check_known(const aredis__cmdtable *extra, const aredis_reply *r) {
    for (size_t i = 0; i < r->elements; i++) {
        const aredis_reply *cmd = r->element[i];
        const aredis_reply *name = cmd->element[0];
        aredis__arg a[2] = {arg_of(name->str, name->len), arg_of(NULL, 0)};
        const aredis__cmdinfo *ci = aredis__cmd_lookup(extra, a, 1);
        if (!ci || strcasecmp(ci->name, name->str) != 0)
            fail_msg("%s: unknown to the built-in and the loaded table", name->str);
        const aredis_reply *subs = cmd->elements > 9 ? cmd->element[9] : NULL;
        for (size_t j = 0; subs && j < subs->elements; j++) {
            const aredis_reply *sname = subs->element[j]->element[0];
            const char *bar = strchr(sname->str, '|');
            assert_non_null(bar);
            a[1] = arg_of(bar + 1, strlen(bar + 1));
            ci = aredis__cmd_lookup(extra, a, 2);
            if (!ci || strcasecmp(ci->name, sname->str) != 0)
                fail_msg("%s: unknown to the built-in and the loaded table", sname->str);
        }
    }
}

static void test_every_command_known(void **state) {
    (void)state;
    for (int protocol = 2; protocol <= 3; protocol++) {
        aredis_client *c;
        aredis_future *f = command_reply(protocol, &c);
        const aredis_reply *r = aredis_future_reply(f);
        aredis__cmdtable *t = aredis__cmdtable_load(r);
        assert_non_null(t);
        ts_log("RESP%d: %zu commands listed, %zu entries the built-in table lacks", protocol,
               r->elements, aredis__cmdtable_size(t));
        if (g_same_server) assert_int_equal(aredis__cmdtable_size(t), 0);
        check_known(t, r);
        aredis__cmdtable_free(t);
        aredis_future_release(f);
        aredis_client_free(c);
    }
}

static int same_spec(const aredis__keyspec *a, const aredis__keyspec *b) {
    return a->begin == b->begin && a->find == b->find && a->flags == b->flags &&
           a->index == b->index && a->startfrom == b->startfrom && a->a == b->a && a->b == b->b &&
           a->c == b->c &&
           (a->keyword == b->keyword ||
            (a->keyword && b->keyword && !strcmp(a->keyword, b->keyword)));
}

static void same_info(const aredis__cmdinfo *loaded, const aredis__cmdinfo *builtin) {
    /* BLOCKING is the generator's on WAIT and WAITAOF */
    uint32_t mask = ~(uint32_t)AREDIS__CF_BLOCKING;
    if (strcmp(loaded->name, builtin->name) != 0 || loaded->arity != builtin->arity ||
        loaded->first_key != builtin->first_key || loaded->last_key != builtin->last_key ||
        loaded->key_step != builtin->key_step ||
        (loaded->flags & mask) != (builtin->flags & mask) || loaded->nspecs != builtin->nspecs ||
        loaded->nsubs != builtin->nsubs)
        fail_msg("%s: the loaded entry differs from the built-in one", loaded->name);
    for (size_t j = 0; j < loaded->nspecs; j++)
        if (!same_spec(&loaded->specs[j], &builtin->specs[j]))
            fail_msg("%s: key spec %zu differs", loaded->name, j);
    for (size_t j = 0; j < loaded->nsubs; j++)
        same_info(&loaded->subs[j], &builtin->subs[j]);
}

/* RESP3's COMMAND (sets, maps) reads as the generator read RESP2's. */
static void test_resp3_reads_as_builtin(void **state) {
    (void)state;
    if (!g_same_server) skip();
    aredis_client *c;
    aredis_future *f = command_reply(3, &c);
    aredis__cmdtable *t = aredis__cmdtable_load_all(aredis_future_reply(f));
    assert_non_null(t);
    size_t n;
    const aredis__cmdinfo *e = aredis__cmdtable_entries(t, &n);
    for (size_t i = 0; i < n; i++) {
        aredis__arg a = arg_of(e[i].name, strlen(e[i].name));
        const aredis__cmdinfo *b = aredis__cmd_lookup(NULL, &a, 1);
        assert_non_null(b);
        same_info(&e[i], b);
    }
    aredis__cmdtable_free(t);
    aredis_future_release(f);
    aredis_client_free(c);
}

/* ---- Commands the built-in table lacks ---------------------------------- */

/* A string reply made up by the test (the loader only reads replies). */
static aredis_reply str_reply(const char *s) {
    aredis_reply r;
    memset(&r, 0, sizeof r);
    r.type = AREDIS_REPLY_STRING;
    r.str = (char *)s;
    r.len = strlen(s);
    return r;
}

/* Index of the command named `name` in COMMAND's reply. */
static size_t index_of(const aredis_reply *r, const char *name) {
    for (size_t i = 0; i < r->elements; i++)
        if (strcmp(r->element[i]->element[0]->str, name) == 0) return i;
    fail_msg("%s: not in COMMAND", name);
    return 0;
}

static void test_unknown_commands_from_loaded_table(void **state) {
    (void)state;
    aredis_client *c;
    aredis_future *f = command_reply(2, &c);
    const aredis_reply *real = aredis_future_reply(f);

    /* A copy of the reply's top level where GET is renamed x-get and
     * CONFIG's subcommand GET is renamed config|x-get. */
    aredis_reply top = *real;
    aredis_reply **elems = calloc(real->elements, sizeof *elems);
    assert_non_null(elems);
    memcpy(elems, real->element, real->elements * sizeof *elems);
    top.element = elems;

    size_t gi = index_of(real, "get");
    aredis_reply get = *real->element[gi], xname = str_reply("x-get");
    aredis_reply *get_elems[10];
    assert_true(get.elements <= 10);
    memcpy(get_elems, get.element, get.elements * sizeof *get_elems);
    get_elems[0] = &xname;
    get.element = get_elems;
    elems[gi] = &get;

    size_t ci_ = index_of(real, "config");
    aredis_reply config = *real->element[ci_];
    aredis_reply *config_elems[10];
    assert_true(config.elements == 10);
    memcpy(config_elems, config.element, config.elements * sizeof *config_elems);
    aredis_reply subs = *config.element[9];
    aredis_reply **sub_elems = calloc(subs.elements, sizeof *sub_elems);
    assert_non_null(sub_elems);
    memcpy(sub_elems, subs.element, subs.elements * sizeof *sub_elems);
    aredis_reply cget, cxname = str_reply("config|x-get");
    aredis_reply *cget_elems[10];
    int renamed = 0;
    for (size_t j = 0; j < subs.elements; j++) {
        if (strcmp(subs.element[j]->element[0]->str, "config|get") != 0) continue;
        cget = *subs.element[j];
        assert_true(cget.elements <= 10);
        memcpy(cget_elems, cget.element, cget.elements * sizeof *cget_elems);
        cget_elems[0] = &cxname;
        cget.element = cget_elems;
        sub_elems[j] = &cget;
        renamed = 1;
    }
    assert_true(renamed);
    subs.element = sub_elems;
    config_elems[9] = &subs;
    config.element = config_elems;
    elems[ci_] = &config;

    aredis__cmdtable *t = aredis__cmdtable_load(&top);
    assert_non_null(t);
    if (g_same_server) assert_int_equal(aredis__cmdtable_size(t), 3); /* x-get, config, its sub */

    /* x-get: unknown to the built-in table, found in the loaded one, with
     * GET's flags and key spec */
    const char *argv[] = {"X-GET", "k"};
    aredis__arg a[3] = {arg_of(argv[0], 5), arg_of(argv[1], 1), arg_of(NULL, 0)};
    assert_null(aredis__cmd_lookup(NULL, a, 2));
    const aredis__cmdinfo *x = aredis__cmd_lookup(t, a, 2);
    assert_non_null(x);
    assert_string_equal(x->name, "x-get");
    aredis__arg g[2] = {arg_of("GET", 3), arg_of("k", 1)};
    const aredis__cmdinfo *builtin_get = aredis__cmd_lookup(NULL, g, 2);
    assert_int_equal(x->flags, builtin_get->flags);
    assert_int_equal(x->arity, builtin_get->arity);
    int pos[2];
    assert_int_equal(aredis__cmd_keys(x, a, 2, pos, 2), 1);
    assert_int_equal(pos[0], 1);
    assert_ptr_equal(aredis__cmd_lookup(t, g, 2), builtin_get);

    /* CONFIG X-GET: a new subcommand of a known container */
    aredis__arg cx[3] = {arg_of("config", 6), arg_of("x-GET", 5), arg_of("maxmemory", 9)};
    const aredis__cmdinfo *sub = aredis__cmd_lookup(t, cx, 3);
    assert_string_equal(sub->name, "config|x-get");
    aredis__arg cg[3] = {arg_of("CONFIG", 6), arg_of("GET", 3), arg_of("maxmemory", 9)};
    const aredis__cmdinfo *builtin_cget = aredis__cmd_lookup(NULL, cg, 3);
    assert_string_equal(builtin_cget->name, "config|get");
    assert_int_equal(sub->flags, builtin_cget->flags);
    assert_ptr_equal(aredis__cmd_lookup(t, cg, 3), builtin_cget);
    /* without the loaded table: the container */
    assert_string_equal(aredis__cmd_lookup(NULL, cx, 3)->name, "config");

    aredis__cmdtable_free(t);
    free(sub_elems);
    free(elems);
    aredis_future_release(f);
    aredis_client_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_command_known),
        cmocka_unit_test(test_resp3_reads_as_builtin),
        cmocka_unit_test(test_unknown_commands_from_loaded_table),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

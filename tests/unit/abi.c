/*
 * The ABI policy (docs/ABI.md), enforced: the layout of every public struct
 * an application allocates, copies or reads field by field — and the values
 * of the public enums — is recorded in tests/unit/abi_layout.txt under the
 * ABI version it belongs to (AREDIS_ABI_VERSION, the library's SONAME).
 * A change to any of them fails this test until the ABI version is bumped
 * and the record regenerated:
 *
 *   build/tests/test_unit_abi --print > tests/unit/abi_layout.txt
 *
 * so that a program built against older headers can never load a library
 * whose structs it would misread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ts.h"

/* The layout as text: one line per field (offset, size), per enum value. */
static size_t layout(char *out, size_t cap) {
    size_t n = 0;
#define PUT(...) n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, __VA_ARGS__)
#define STRUCT(T) PUT("%s size %zu\n", #T, sizeof(T))
#define F(T, f) PUT("%s.%s %zu %zu\n", #T, #f, offsetof(T, f), sizeof(((T *)0)->f))
#define E(v) PUT("%s %d\n", #v, (int)(v))
    PUT("abi %d\n", AREDIS_ABI_VERSION);
    STRUCT(aredis_options);
    F(aredis_options, host);
    F(aredis_options, port);
    F(aredis_options, unix_path);
    F(aredis_options, tls);
    F(aredis_options, tls_ca_file);
    F(aredis_options, tls_ca_path);
    F(aredis_options, tls_cert_file);
    F(aredis_options, tls_key_file);
    F(aredis_options, tls_server_name);
    F(aredis_options, tls_insecure_skip_verify);
    F(aredis_options, tls_context);
    F(aredis_options, username);
    F(aredis_options, password);
    F(aredis_options, db);
    F(aredis_options, client_name);
    F(aredis_options, protocol);
    F(aredis_options, prefix);
    F(aredis_options, load_commands);
    F(aredis_options, connect_timeout_ms);
    F(aredis_options, request_timeout_ms);
    F(aredis_options, dead_timeout_ms);
    F(aredis_options, limits);
    F(aredis_options, reconnect);
    F(aredis_options, reconnect_delay_ms);
    F(aredis_options, max_reconnect_delay_ms);
    F(aredis_options, reconnect_jitter);
    F(aredis_options, max_reconnect_attempts);
    F(aredis_options, reconnect_on_auth_error);
    F(aredis_options, queue_during_reconnect);
    F(aredis_options, wait_for_first_connect);
    F(aredis_options, max_queue_size);
    F(aredis_options, retry_read_only);
    F(aredis_options, keepalive_s);
    F(aredis_options, health_check_interval_ms);
    F(aredis_options, reconnect_in_child);
    F(aredis_options, cache);
    F(aredis_options, on_push);
    F(aredis_options, on_connect);
    F(aredis_options, on_disconnect);
    F(aredis_options, on_error);
    F(aredis_options, on_reconnect_attempt);
    F(aredis_options, cb_data);
    STRUCT(aredis_cmd_opts);
    F(aredis_cmd_opts, timeout_ms);
    F(aredis_cmd_opts, flags);
    STRUCT(aredis_client_stats);
    F(aredis_client_stats, commands);
    F(aredis_client_stats, replies);
    F(aredis_client_stats, write_calls);
    F(aredis_client_stats, read_calls);
    F(aredis_client_stats, bytes_out);
    F(aredis_client_stats, bytes_in);
    F(aredis_client_stats, timeouts);
    F(aredis_client_stats, connects);
    STRUCT(aredis_error);
    F(aredis_error, code);
    F(aredis_error, detail);
    F(aredis_error, prefix);
    STRUCT(aredis_allocator);
    F(aredis_allocator, malloc_fn);
    F(aredis_allocator, calloc_fn);
    F(aredis_allocator, realloc_fn);
    F(aredis_allocator, free_fn);
    STRUCT(aredis_loop_vtable);
    F(aredis_loop_vtable, io_new);
    F(aredis_loop_vtable, io_set);
    F(aredis_loop_vtable, io_free);
    F(aredis_loop_vtable, timer_new);
    F(aredis_loop_vtable, timer_arm);
    F(aredis_loop_vtable, timer_cancel);
    F(aredis_loop_vtable, timer_free);
    F(aredis_loop_vtable, defer_new);
    F(aredis_loop_vtable, defer_arm);
    F(aredis_loop_vtable, defer_free);
    F(aredis_loop_vtable, run_once);
    F(aredis_loop_vtable, now_ms);
    F(aredis_loop_vtable, cleanup);
    F(aredis_loop_vtable, wake_new);
    F(aredis_loop_vtable, wake_signal);
    F(aredis_loop_vtable, wake_free);
    STRUCT(aredis_reader_limits);
    F(aredis_reader_limits, max_bulk_len);
    F(aredis_reader_limits, max_elements);
    F(aredis_reader_limits, max_depth);
    STRUCT(aredis_reader_task);
    F(aredis_reader_task, type);
    F(aredis_reader_task, parent);
    F(aredis_reader_task, parent_type);
    F(aredis_reader_task, idx);
    F(aredis_reader_task, privdata);
    STRUCT(aredis_reply_builder);
    F(aredis_reply_builder, create_string);
    F(aredis_reply_builder, create_aggregate);
    F(aredis_reply_builder, create_integer);
    F(aredis_reply_builder, create_double);
    F(aredis_reply_builder, create_nil);
    F(aredis_reply_builder, create_bool);
    F(aredis_reply_builder, set_attribute);
    F(aredis_reply_builder, free_object);
    STRUCT(aredis_reply);
    F(aredis_reply, type);
    F(aredis_reply, priv_refs);
    F(aredis_reply, integer);
    F(aredis_reply, dval);
    F(aredis_reply, len);
    F(aredis_reply, str);
    F(aredis_reply, elements);
    F(aredis_reply, element);
    F(aredis_reply, attribute);
    F(aredis_reply, vtype);
    F(aredis_reply, priv_alloc);
    STRUCT(aredis_sub_options);
    F(aredis_sub_options, on_message);
    F(aredis_sub_options, on_event);
    F(aredis_sub_options, max_buffered);
    F(aredis_sub_options, connection);
    F(aredis_sub_options, data);
    STRUCT(aredis_message);
    F(aredis_message, kind);
    F(aredis_message, channel);
    F(aredis_message, channel_len);
    F(aredis_message, pattern);
    F(aredis_message, pattern_len);
    F(aredis_message, payload);
    F(aredis_message, payload_len);
    F(aredis_message, reply);
    STRUCT(aredis_sub_stats);
    F(aredis_sub_stats, delivered);
    F(aredis_sub_stats, dropped);
    F(aredis_sub_stats, resubscribes);
    F(aredis_sub_stats, buffered);
    STRUCT(aredis_pool_options);
    F(aredis_pool_options, client);
    F(aredis_pool_options, uri);
    F(aredis_pool_options, min_connections);
    F(aredis_pool_options, max_connections);
    F(aredis_pool_options, acquire_timeout_ms);
    F(aredis_pool_options, idle_timeout_ms);
    F(aredis_pool_options, max_age_ms);
    F(aredis_pool_options, health_check_after_ms);
    STRUCT(aredis_pool_stats);
    F(aredis_pool_stats, total);
    F(aredis_pool_stats, idle);
    F(aredis_pool_stats, in_use);
    F(aredis_pool_stats, opening);
    F(aredis_pool_stats, checking);
    F(aredis_pool_stats, waiting);
    F(aredis_pool_stats, created);
    F(aredis_pool_stats, discarded);
    F(aredis_pool_stats, connect_failures);
    F(aredis_pool_stats, acquires);
    F(aredis_pool_stats, commands);
    F(aredis_pool_stats, timeouts);
    F(aredis_pool_stats, resets);
    F(aredis_pool_stats, health_checks);
    F(aredis_pool_stats, health_check_failures);
    STRUCT(aredis_scan_opts);
    F(aredis_scan_opts, kind);
    F(aredis_scan_opts, key);
    F(aredis_scan_opts, keylen);
    F(aredis_scan_opts, match);
    F(aredis_scan_opts, matchlen);
    F(aredis_scan_opts, count);
    F(aredis_scan_opts, type);
    F(aredis_scan_opts, timeout_ms);
    F(aredis_scan_opts, cursor);
    E(AREDIS_SCAN_KEYS);
    E(AREDIS_SCAN_HASH);
    E(AREDIS_SCAN_SET);
    E(AREDIS_SCAN_ZSET);
    STRUCT(aredis_cache_options);
    F(aredis_cache_options, max_bytes);
    F(aredis_cache_options, max_entries);
    F(aredis_cache_options, ttl_ms);
    F(aredis_cache_options, mode);
    F(aredis_cache_options, prefixes);
    F(aredis_cache_options, nprefixes);
    F(aredis_cache_options, on_invalidate);
    F(aredis_cache_options, data);
    STRUCT(aredis_cache_stats);
    F(aredis_cache_stats, hits);
    F(aredis_cache_stats, misses);
    F(aredis_cache_stats, stores);
    F(aredis_cache_stats, not_stored);
    F(aredis_cache_stats, evictions);
    F(aredis_cache_stats, expirations);
    F(aredis_cache_stats, invalidations);
    F(aredis_cache_stats, invalidation_messages);
    F(aredis_cache_stats, flushes);
    F(aredis_cache_stats, entries);
    F(aredis_cache_stats, bytes);
    E(AREDIS_CACHE_DEFAULT);
    E(AREDIS_CACHE_BCAST);
    E(AREDIS_CACHE_OPTIN);
    STRUCT(aredis_op);
    F(aredis_op, client);
    F(aredis_op, id);
    F(aredis_op, name);
    F(aredis_op, batch_size);
    F(aredis_op, db);
    F(aredis_op, server_address);
    F(aredis_op, server_port);
    F(aredis_op, peer_address);
    F(aredis_op, peer_port);
    F(aredis_op, query_text);
    F(aredis_op, start_unix_ns);
    F(aredis_op, duration_ns);
    F(aredis_op, outcome);
    F(aredis_op, error_type);
    F(aredis_op, status_code);
    F(aredis_op, parent);
    F(aredis_op, span);
    STRUCT(aredis_conn_event);
    F(aredis_conn_event, kind);
    F(aredis_conn_event, client);
    F(aredis_conn_event, server_address);
    F(aredis_conn_event, server_port);
    F(aredis_conn_event, peer_address);
    F(aredis_conn_event, peer_port);
    F(aredis_conn_event, time_unix_ns);
    F(aredis_conn_event, duration_ns);
    F(aredis_conn_event, outcome);
    F(aredis_conn_event, error_type);
    F(aredis_conn_event, attempt);
    F(aredis_conn_event, delay_ms);
    STRUCT(aredis_pool_wait_event);
    F(aredis_pool_wait_event, pool);
    F(aredis_pool_wait_event, pool_name);
    F(aredis_pool_wait_event, duration_ns);
    F(aredis_pool_wait_event, outcome);
    F(aredis_pool_wait_event, error_type);
    F(aredis_pool_wait_event, idle);
    F(aredis_pool_wait_event, used);
    F(aredis_pool_wait_event, pending);
    STRUCT(aredis_observer);
    F(aredis_observer, command_start);
    F(aredis_observer, command_end);
    F(aredis_observer, connection);
    F(aredis_observer, pool_wait);
    F(aredis_observer, flags);
    STRUCT(aredis_histogram);
    F(aredis_histogram, count);
    F(aredis_histogram, sum_seconds);
    F(aredis_histogram, buckets);
    STRUCT(aredis_metrics_op);
    F(aredis_metrics_op, server_address);
    F(aredis_metrics_op, server_port);
    F(aredis_metrics_op, name);
    F(aredis_metrics_op, error_type);
    F(aredis_metrics_op, duration);
    STRUCT(aredis_metrics_server);
    F(aredis_metrics_server, server_address);
    F(aredis_metrics_server, server_port);
    F(aredis_metrics_server, bytes_out);
    F(aredis_metrics_server, bytes_in);
    F(aredis_metrics_server, connects);
    F(aredis_metrics_server, connect_failures);
    F(aredis_metrics_server, reconnect_attempts);
    F(aredis_metrics_server, timeouts);
    STRUCT(aredis_metrics_pool);
    F(aredis_metrics_pool, pool_name);
    F(aredis_metrics_pool, idle);
    F(aredis_metrics_pool, used);
    F(aredis_metrics_pool, pending);
    F(aredis_metrics_pool, max);
    F(aredis_metrics_pool, timeouts);
    F(aredis_metrics_pool, wait);
    STRUCT(aredis_metrics_snapshot);
    F(aredis_metrics_snapshot, n_ops);
    F(aredis_metrics_snapshot, ops);
    F(aredis_metrics_snapshot, n_servers);
    F(aredis_metrics_snapshot, servers);
    F(aredis_metrics_snapshot, n_pools);
    F(aredis_metrics_snapshot, pools);
    E(AREDIS_CONN_CONNECT);
    E(AREDIS_CONN_DISCONNECT);
    E(AREDIS_CONN_RECONNECT);
    E(AREDIS_OBSERVE_QUERY_TEXT);
    E(AREDIS_METRICS_BOUNDS);
    E(AREDIS_SUB_CHANNEL);
    E(AREDIS_SUB_PATTERN);
    E(AREDIS_SUB_SHARD);
    E(AREDIS_SUB_RESUBSCRIBED);
    E(AREDIS_SUB_OVERFLOW);
    E(AREDIS_SUB_DROPPED);
    E(AREDIS_SUB_ERROR);
    E(AREDIS_SUB_ENDED);
    E(AREDIS_SUB_AUTO);
    E(AREDIS_SUB_SHARED);
    E(AREDIS_SUB_DEDICATED);
    STRUCT(aredis_sentinel_options);
    F(aredis_sentinel_options, sentinels);
    F(aredis_sentinel_options, nsentinels);
    F(aredis_sentinel_options, master_name);
    F(aredis_sentinel_options, role);
    F(aredis_sentinel_options, sentinel_username);
    F(aredis_sentinel_options, sentinel_password);
    F(aredis_sentinel_options, sentinel_timeout_ms);
    F(aredis_sentinel_options, watch);
    F(aredis_sentinel_options, node);
    STRUCT(aredis_sentinel_stats);
    F(aredis_sentinel_stats, lookups);
    F(aredis_sentinel_stats, lookup_failures);
    F(aredis_sentinel_stats, sentinel_errors);
    F(aredis_sentinel_stats, moves);
    F(aredis_sentinel_stats, switches);
    F(aredis_sentinel_stats, relocations);
    F(aredis_sentinel_stats, watch_connects);
    E(AREDIS_SENTINEL_PRIMARY);
    E(AREDIS_SENTINEL_REPLICA);
    STRUCT(aredis_cluster_options);
    F(aredis_cluster_options, seeds);
    F(aredis_cluster_options, nseeds);
    F(aredis_cluster_options, node);
    F(aredis_cluster_options, max_redirects);
    F(aredis_cluster_options, min_refresh_ms);
    F(aredis_cluster_options, refresh_every_ms);
    F(aredis_cluster_options, read_from);
    STRUCT(aredis_cluster_stats);
    F(aredis_cluster_stats, refreshes);
    F(aredis_cluster_stats, moved);
    F(aredis_cluster_stats, asked);
    F(aredis_cluster_stats, tryagain);
    F(aredis_cluster_stats, rerouted);
    F(aredis_cluster_stats, nodes);
    F(aredis_cluster_stats, slots_known);
    E(AREDIS_READ_PRIMARY);
    E(AREDIS_READ_REPLICA);
    E(AREDIS_CLUSTER_NO_PERIODIC);
#define ERR_VALUE(name, msg) E(AREDIS_ERR_##name);
    AREDIS_ERRNO_MAP(ERR_VALUE)
    E(AREDIS_ERR__COUNT);
#define STATE_VALUE(name, text) E(AREDIS_STATE_##name);
    AREDIS_STATE_MAP(STATE_VALUE)
    E(AREDIS_REPLY_STRING);
    E(AREDIS_REPLY_VERB);
    E(AREDIS_EV_READ);
    E(AREDIS_EV_WRITE);
    E(AREDIS_CMD_NO_TIMEOUT);
    E(AREDIS_CMD_RETRYABLE);
    return n;
}

static char *recorded(void) {
    char path[4096];
    snprintf(path, sizeof path, "%s", __FILE__);
    char *slash = strrchr(path, '/');
    snprintf(slash ? slash + 1 : path, sizeof path - (size_t)(slash ? slash + 1 - path : 0),
             "abi_layout.txt");
    FILE *f = fopen(path, "r");
    if (!f) fail_msg("cannot read %s", path);
    static char buf[32768];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static void test_layout_matches_record(void **state) {
    (void)state;
    if (sizeof(void *) != 8 || sizeof(long) != 8) {
        /* The record is the LP64 layout (x86_64, aarch64): the one CI has. */
        ts_log("not an LP64 platform: the recorded layout does not apply");
        skip();
    }
    static char now[32768];
    size_t n = layout(now, sizeof now);
    assert_true(n < sizeof now);
    const char *rec = recorded();
    int rec_abi = atoi(rec + 4);
    if (strcmp(now, rec) == 0) return;
    /* Say what moved, then why it matters. */
    const char *a = now, *b = rec;
    while (*a && *a == *b)
        a++, b++;
    while (a > now && a[-1] != '\n')
        a--;
    while (b > rec && b[-1] != '\n')
        b--;
    fail_msg("public ABI changed at \"%.*s\" (recorded \"%.*s\"): %s", (int)strcspn(a, "\n"), a,
             (int)strcspn(b, "\n"), b,
             rec_abi == AREDIS_ABI_VERSION
                 ? "bump AREDIS_ABI_VERSION in include/aredis/export.h, then regenerate "
                   "tests/unit/abi_layout.txt (test_unit_abi --print)"
                 : "regenerate tests/unit/abi_layout.txt (test_unit_abi --print)");
}

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "--print") == 0) {
        static char now[32768];
        layout(now, sizeof now);
        fputs(now, stdout);
        return 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_matches_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

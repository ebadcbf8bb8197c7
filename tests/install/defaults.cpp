// AREDIS_OPTIONS_INIT has two spellings: a designated initializer in C and
// aredis_options_default() in C++ (client.h). They must give the same
// defaults: compare the C++ values with the C ones (defaults_c.c), field by
// field, then byte by byte, so that a field added to one spelling only is
// caught even before it is named here. Same for the other _INIT macros.
#include <aredis/aredis.h>

#include <cstddef>
#include <cstdio>
#include <cstring>

extern "C" {
extern const aredis_options aredis_test_c_options;
extern const aredis_cmd_opts aredis_test_c_cmd_opts;
extern const aredis_reader_limits aredis_test_c_limits;
extern const aredis_pool_options aredis_test_c_pool_options;
extern const aredis_sentinel_options aredis_test_c_sentinel_options;
extern const aredis_cluster_options aredis_test_c_cluster_options;
}

static const aredis_options cxx_options = AREDIS_OPTIONS_INIT;
static const aredis_cmd_opts cxx_cmd_opts = AREDIS_CMD_OPTS_INIT;
static const aredis_reader_limits cxx_limits = AREDIS_READER_LIMITS_INIT;
static const aredis_pool_options cxx_pool_options = AREDIS_POOL_OPTIONS_INIT;
static const aredis_sentinel_options cxx_sentinel_options = AREDIS_SENTINEL_OPTIONS_INIT;
static const aredis_cluster_options cxx_cluster_options = AREDIS_CLUSTER_OPTIONS_INIT;

static int failures = 0;

template <typename T> static void same(const char *what, const T &c, const T &cxx) {
    if (!(c == cxx)) {
        std::printf("defaults: %s differs between C and C++\n", what);
        failures++;
    }
}

static void same(const char *what, const char *c, const char *cxx) {
    if (c && cxx ? std::strcmp(c, cxx) != 0 : c != cxx) {
        std::printf("defaults: %s differs between C (%s) and C++ (%s)\n", what, c ? c : "NULL",
                    cxx ? cxx : "NULL");
        failures++;
    }
}

// The object representations (padding is zero in both: static objects),
// with the string pointers blanked: equal strings need not share an address.
static void same_bytes(const char *what, const void *c, const void *cxx, size_t n,
                       const size_t *strings, size_t nstrings) {
    unsigned char a[1024], b[1024];
    if (n > sizeof a) {
        std::printf("defaults: %s is larger than this test's buffer\n", what);
        failures++;
        return;
    }
    std::memcpy(a, c, n);
    std::memcpy(b, cxx, n);
    for (size_t i = 0; i < nstrings; i++) {
        std::memset(a + strings[i], 0, sizeof(const char *));
        std::memset(b + strings[i], 0, sizeof(const char *));
    }
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i]) {
            std::printf("defaults: %s differs between C and C++ at byte %zu "
                        "(a field not compared by name in defaults.cpp?)\n",
                        what, i);
            failures++;
            return;
        }
}

#define SAME(field) same(#field, c.field, x.field)

int main() {
    {
        const aredis_options &c = aredis_test_c_options, &x = cxx_options;
        SAME(host);
        SAME(port);
        SAME(unix_path);
        SAME(tls);
        SAME(tls_ca_file);
        SAME(tls_ca_path);
        SAME(tls_cert_file);
        SAME(tls_key_file);
        SAME(tls_server_name);
        SAME(tls_insecure_skip_verify);
        SAME(tls_context);
        SAME(username);
        SAME(password);
        SAME(db);
        SAME(client_name);
        SAME(protocol);
        SAME(prefix);
        SAME(load_commands);
        SAME(connect_timeout_ms);
        SAME(request_timeout_ms);
        SAME(dead_timeout_ms);
        SAME(limits.max_bulk_len);
        SAME(limits.max_elements);
        SAME(limits.max_depth);
        SAME(reconnect);
        SAME(reconnect_delay_ms);
        SAME(max_reconnect_delay_ms);
        SAME(reconnect_jitter);
        SAME(max_reconnect_attempts);
        SAME(reconnect_on_auth_error);
        SAME(queue_during_reconnect);
        SAME(wait_for_first_connect);
        SAME(max_queue_size);
        SAME(retry_read_only);
        SAME(keepalive_s);
        SAME(health_check_interval_ms);
        SAME(reconnect_in_child);
        SAME(on_push);
        SAME(on_connect);
        SAME(on_disconnect);
        SAME(on_error);
        SAME(on_reconnect_attempt);
        SAME(cb_data);
        const size_t strings[] = {
            offsetof(aredis_options, host),
            offsetof(aredis_options, unix_path),
            offsetof(aredis_options, tls_ca_file),
            offsetof(aredis_options, tls_ca_path),
            offsetof(aredis_options, tls_cert_file),
            offsetof(aredis_options, tls_key_file),
            offsetof(aredis_options, tls_server_name),
            offsetof(aredis_options, username),
            offsetof(aredis_options, password),
            offsetof(aredis_options, client_name),
        };
        same_bytes("aredis_options", &c, &x, sizeof c, strings, sizeof strings / sizeof strings[0]);
    }
    {
        const aredis_cmd_opts &c = aredis_test_c_cmd_opts, &x = cxx_cmd_opts;
        SAME(timeout_ms);
        SAME(flags);
        same_bytes("aredis_cmd_opts", &c, &x, sizeof c, NULL, 0);
    }
    {
        const aredis_reader_limits &c = aredis_test_c_limits, &x = cxx_limits;
        SAME(max_bulk_len);
        SAME(max_elements);
        SAME(max_depth);
        same_bytes("aredis_reader_limits", &c, &x, sizeof c, NULL, 0);
    }
    {
        // The client options inside were compared above (the same macro).
        const aredis_pool_options &c = aredis_test_c_pool_options, &x = cxx_pool_options;
        SAME(uri);
        SAME(min_connections);
        SAME(max_connections);
        SAME(acquire_timeout_ms);
        SAME(idle_timeout_ms);
        SAME(max_age_ms);
        SAME(health_check_after_ms);
        SAME(client.port);
        SAME(client.request_timeout_ms);
        const size_t strings[] = {
            offsetof(aredis_pool_options, client) + offsetof(aredis_options, host),
            offsetof(aredis_pool_options, uri),
        };
        same_bytes("aredis_pool_options", &c, &x, sizeof c, strings,
                   sizeof strings / sizeof strings[0]);
    }
    {
        // The node options inside are AREDIS_OPTIONS_INIT (compared above).
        const aredis_sentinel_options &c = aredis_test_c_sentinel_options,
                                      &x = cxx_sentinel_options;
        SAME(sentinels);
        SAME(nsentinels);
        SAME(master_name);
        SAME(role);
        SAME(sentinel_username);
        SAME(sentinel_password);
        SAME(sentinel_timeout_ms);
        SAME(watch);
        SAME(node.port);
        SAME(node.reconnect);
        const size_t strings[] = {
            offsetof(aredis_sentinel_options, node) + offsetof(aredis_options, host),
        };
        same_bytes("aredis_sentinel_options", &c, &x, sizeof c, strings,
                   sizeof strings / sizeof strings[0]);
    }
    {
        const aredis_cluster_options &c = aredis_test_c_cluster_options, &x = cxx_cluster_options;
        SAME(seeds);
        SAME(nseeds);
        SAME(max_redirects);
        SAME(min_refresh_ms);
        SAME(refresh_every_ms);
        SAME(read_from);
        SAME(node.port);
        SAME(node.reconnect);
        const size_t strings[] = {
            offsetof(aredis_cluster_options, node) + offsetof(aredis_options, host),
        };
        same_bytes("aredis_cluster_options", &c, &x, sizeof c, strings,
                   sizeof strings / sizeof strings[0]);
    }
    if (failures) return 1;
    std::printf("defaults: C and C++ _INIT macros agree\n");
    return 0;
}

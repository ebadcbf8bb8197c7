/*
 * TLS over a connected non-blocking socket, with OpenSSL 3.
 *
 * Security defaults (see docs/SECURITY.md):
 *   - TLS 1.2 is the oldest version spoken;
 *   - the server's certificate chain is verified (SSL_VERIFY_PEER) against
 *     tls_ca_file / tls_ca_path, or the system store when neither is given;
 *   - the certificate's name is checked against the host connected to (or
 *     tls_server_name): SSL_set1_host() for a DNS name, the IP SAN for an
 *     IPv4/IPv6 literal. OpenSSL does neither name check by itself, which is
 *     why most C clients silently accept any valid certificate for any host.
 *   - tls_insecure_skip_verify turns both checks off, and nothing else does.
 *
 * I/O goes through a small BIO of our own instead of BIO_s_socket(): the
 * stock socket BIO writes with write(2), which raises SIGPIPE when the peer
 * has gone. A library must never kill its host process, so ours writes with
 * send(MSG_NOSIGNAL), as the plain-socket path of the client does.
 *
 * errno contract with the client (src/client/client.c, conn_read/conn_write):
 * on a failure, errno is the system error for a socket-level failure
 * (ECONNRESET, EPIPE, ...) and 0 for a TLS protocol failure, so that the
 * client can report the former as a connection error and the latter as
 * AREDIS_ERR_TLS.
 *
 * Every SSL call is preceded by ERR_clear_error(): OpenSSL's error queue is
 * per thread and shared with whatever else the application does with
 * OpenSSL, and SSL_get_error() looks at it. A stale entry left by someone
 * else would turn a would-block into a bogus failure.
 */
#include "net/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "aredis/loop.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/compat.h" /* MSG_NOSIGNAL */
#include "util/error.h"

struct aredis_tls_context {
    SSL_CTX *ssl_ctx;
    BIO_METHOD *bio_method; /* the process-wide one below */
    int skip_verify;
    atomic_int refs;
};

struct aredis__tls {
    SSL *ssl;
    int fd;
    int refused; /* the last failure was a certificate refusal, ours or the peer's */
    /* Ciphertext OpenSSL has written that the socket has not taken yet (see
     * the BIO below), and a send error met while flushing it. */
    aredis__buf pend;
    int send_errno;
};

/* SSL_write stops taking plaintext while this much ciphertext waits. */
#define PEND_HIGH (64 * 1024)
/* The most plaintext handed to one SSL_write: four records. */
#define WRITE_CHUNK (64 * 1024)

/*
 * A certificate refusal: our check of the server's certificate failed, or
 * the server sent an alert about ours (bad, unsupported, revoked, expired,
 * unknown, unknown CA, access denied, required). The next attempt would
 * meet the same refusal; any other TLS failure may not recur.
 */
static int cert_refusal(unsigned long e) {
    if (ERR_GET_LIB(e) != ERR_LIB_SSL) return 0;
    int r = ERR_GET_REASON(e);
    if (r == SSL_R_CERTIFICATE_VERIFY_FAILED) return 1;
    switch (r - SSL_AD_REASON_OFFSET) {
    case SSL_AD_BAD_CERTIFICATE:
    case SSL_AD_UNSUPPORTED_CERTIFICATE:
    case SSL_AD_CERTIFICATE_REVOKED:
    case SSL_AD_CERTIFICATE_EXPIRED:
    case SSL_AD_CERTIFICATE_UNKNOWN:
    case SSL_AD_UNKNOWN_CA:
    case SSL_AD_ACCESS_DENIED:
    case SSL_AD_CERTIFICATE_REQUIRED:
        return 1;
    default:
        return 0;
    }
}

/* ---- Error messages ------------------------------------------------------ */

/*
 * Append OpenSSL's reasons from this thread's error queue (oldest first) to
 * err after `prefix`, and empty the queue. Reasons are the short texts
 * ("certificate verify failed", "tlsv13 alert certificate required");
 * an entry without a reason string falls back to ERR_error_string_n().
 * Returns 1 if the queue held something.
 */
static int append_queue(char *err, size_t errlen, size_t *used, int *refused) {
    int any = 0;
    unsigned long e;
    while ((e = ERR_get_error()) != 0) {
        if (cert_refusal(e)) *refused = 1;
        char one[256];
        const char *reason = ERR_reason_error_string(e);
        if (ERR_SYSTEM_ERROR(e))
            snprintf(one, sizeof one, "%s", strerror(ERR_GET_REASON(e)));
        else if (reason)
            snprintf(one, sizeof one, "%s", reason);
        else
            ERR_error_string_n(e, one, sizeof one);
        /* Skip an exact repeat of the previous entry. */
        if (any && *used >= strlen(one) && strcmp(err + *used - strlen(one), one) == 0) continue;
        if (*used < errlen) {
            int n = snprintf(err + *used, errlen - *used, "%s%s", any ? ": " : "", one);
            if (n > 0) *used += (size_t)n < errlen - *used ? (size_t)n : errlen - *used - 1;
        }
        any = 1;
    }
    return any;
}

/*
 * A message for a failed SSL call: "<what>: <reasons>", where a failed
 * certificate check names why ("certificate verify failed: hostname
 * mismatch", "...: unable to get local issuer certificate",
 * "...: certificate has expired").
 */
static int ssl_error_message(SSL *ssl, const char *what, char *err, size_t errlen) {
    int refused = 0;
    if (!err || errlen == 0) {
        ERR_clear_error();
        return 0;
    }
    int n = snprintf(err, errlen, "%s: ", what);
    size_t used = n < 0 ? 0 : (size_t)n < errlen ? (size_t)n : errlen - 1;
    size_t start = used;
    int any = append_queue(err, errlen, &used, &refused);
    /* With verification off OpenSSL still records a verify result: ignore
     * it then, it did not cause this failure. */
    long v = ssl && (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) ? SSL_get_verify_result(ssl)
                                                                 : X509_V_OK;
    if (v != X509_V_OK) refused = 1;
    if (v != X509_V_OK && used < errlen) {
        n = snprintf(err + used, errlen - used, "%s%s%s", any ? "" : "certificate verify failed",
                     ": ", X509_verify_cert_error_string(v));
        if (n > 0) used += (size_t)n < errlen - used ? (size_t)n : errlen - used - 1;
        any = 1;
    }
    if (!any) {
        /* Nothing queued: do not leave a dangling ": ". */
        if (start >= 2) err[start - 2] = '\0';
    }
    return refused;
}

/* ---- The socket BIO ------------------------------------------------------ */

/*
 * Writes never block inside OpenSSL. What the socket does not take at once
 * is kept in t->pend and flushed when the socket is writable
 * (aredis__tls_flush). So OpenSSL never holds a half-written record of its
 * own: it can answer a key update from inside SSL_read while application
 * data waits to go out — OpenSSL 3.0 fails that with "bad length" when its
 * own write is pending (openssl#8677) — and SSL_read never needs the
 * socket to be writable. Sends use MSG_NOSIGNAL: a peer that went away
 * gives EPIPE, not SIGPIPE.
 */
static aredis__tls *tls_of(BIO *b) { return BIO_get_data(b); }

/* Send from `buf`; returns bytes sent (maybe 0: would block) or -1. */
static ssize_t send_some(aredis__tls *t, const char *buf, size_t len) {
    for (;;) {
        ssize_t r = send(t->fd, buf, len, MSG_NOSIGNAL);
        if (r >= 0) return r;
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
        t->send_errno = errno;
        return -1;
    }
}

static int bio_write(BIO *b, const char *buf, int len) {
    aredis__tls *t = tls_of(b);
    BIO_clear_retry_flags(b);
    if (len <= 0) return 0;
    size_t n = (size_t)len, sent = 0;
    if (!aredis__buf_used(&t->pend)) { /* nothing ahead of it: straight out */
        ssize_t r = send_some(t, buf, n);
        if (r < 0) {
            errno = t->send_errno;
            return -1;
        }
        sent = (size_t)r;
    }
    if (sent < n && aredis__buf_append(&t->pend, buf + sent, n - sent) != 0) {
        errno = ENOMEM;
        return -1;
    }
    return len;
}

static int bio_read(BIO *b, char *buf, int len) {
    BIO_clear_retry_flags(b);
    if (!buf || len <= 0) return 0;
    for (;;) {
        ssize_t r = recv(tls_of(b)->fd, buf, (size_t)len, 0);
        if (r >= 0) return (int)r; /* 0 = EOF; OpenSSL decides what it means */
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) BIO_set_retry_read(b);
        return -1;
    }
}

static int bio_puts(BIO *b, const char *s) {
    size_t n = strlen(s);
    return bio_write(b, s, n > INT_MAX ? INT_MAX : (int)n);
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
    (void)num;
    switch (cmd) {
    case BIO_CTRL_FLUSH: /* what waits is flushed by the client's loop */
        return 1;
    case BIO_C_GET_FD:
        if (ptr) *(int *)ptr = tls_of(b)->fd;
        return tls_of(b)->fd;
    case BIO_CTRL_GET_CLOSE:
        return BIO_NOCLOSE; /* the client owns and closes the fd */
    case BIO_CTRL_SET_CLOSE:
    case BIO_CTRL_DUP:
        return 1;
    default: /* pending counts, kTLS, datagram controls... */
        return 0;
    }
}

static int bio_create(BIO *b) {
    BIO_set_data(b, NULL);
    BIO_set_init(b, 0);
    return 1;
}

static int bio_destroy(BIO *b) {
    /* The fd is the client's: never closed here. */
    BIO_set_data(b, NULL);
    BIO_set_init(b, 0);
    return 1;
}

/*
 * One method for the whole process, made once and never freed: BIOs of any
 * client may point at it until the last SSL is gone, and each
 * BIO_get_new_index() would use up one of OpenSSL's 128 custom type slots.
 */
static BIO_METHOD *g_bio_method;
static pthread_once_t g_bio_once = PTHREAD_ONCE_INIT;

static void bio_method_init(void) {
    int type = BIO_get_new_index();
    if (type == -1) return;
    BIO_METHOD *m = BIO_meth_new(type | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR,
                                 "aredis socket (MSG_NOSIGNAL)");
    if (!m) return;
    if (!BIO_meth_set_write(m, bio_write) || !BIO_meth_set_read(m, bio_read) ||
        !BIO_meth_set_puts(m, bio_puts) || !BIO_meth_set_ctrl(m, bio_ctrl) ||
        !BIO_meth_set_create(m, bio_create) || !BIO_meth_set_destroy(m, bio_destroy)) {
        BIO_meth_free(m);
        return;
    }
    g_bio_method = m;
}

static BIO_METHOD *bio_method(void) {
    pthread_once(&g_bio_once, bio_method_init);
    return g_bio_method;
}

/* ---- Context -------------------------------------------------------------- */

/*
 * Encrypted private keys would make OpenSSL prompt on the terminal from
 * inside the library. Refuse the passphrase instead, so loading fails with
 * a clear message.
 */
static int no_passphrase(char *buf, int size, int rwflag, void *u) {
    (void)buf, (void)size, (void)rwflag, (void)u;
    return 0;
}

static aredis_err ctx_fail(aredis__tls_ctx *t, char *err, size_t errlen, const char *what) {
    ssl_error_message(NULL, what, err, errlen);
    aredis__tls_ctx_free(t);
    return AREDIS_ERR_TLS;
}

/*
 * A file OpenSSL is about to read: say plainly when it is missing or not
 * readable (OpenSSL's own queue for that is three lines of noise).
 */
static int unreadable(const char *opt, const char *path, int mode, char *err, size_t errlen) {
    if (!path || access(path, mode) == 0) return 0;
    snprintf(err, errlen, "TLS: cannot read %s '%s': %s", opt, path, strerror(errno));
    return 1;
}

aredis_err aredis__tls_ctx_new(const aredis_options *o, aredis__tls_ctx **out, char *err,
                               size_t errlen) {
    char what[600];
    *out = NULL;
    if ((o->tls_cert_file != NULL) != (o->tls_key_file != NULL)) {
        snprintf(err, errlen,
                 "TLS: tls_cert_file and tls_key_file must be set together "
                 "(mutual TLS needs both the certificate and its key)");
        return AREDIS_ERR_TLS;
    }
    if (unreadable("tls_ca_file", o->tls_ca_file, R_OK, err, errlen) ||
        unreadable("tls_ca_path", o->tls_ca_path, R_OK | X_OK, err, errlen) ||
        unreadable("tls_cert_file", o->tls_cert_file, R_OK, err, errlen) ||
        unreadable("tls_key_file", o->tls_key_file, R_OK, err, errlen))
        return AREDIS_ERR_TLS;
    aredis__tls_ctx *t = aredis__calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return AREDIS_ERR_NOMEM;
    }
    t->skip_verify = o->tls_insecure_skip_verify != 0;
    atomic_init(&t->refs, 1);
    ERR_clear_error();
    t->ssl_ctx = SSL_CTX_new(TLS_client_method());
    if (!t->ssl_ctx) return ctx_fail(t, err, errlen, "TLS: cannot create context");
    t->bio_method = bio_method();
    if (!t->bio_method) return ctx_fail(t, err, errlen, "TLS: cannot create socket BIO");

    if (!SSL_CTX_set_min_proto_version(t->ssl_ctx, TLS1_2_VERSION))
        return ctx_fail(t, err, errlen, "TLS: cannot set minimum version TLS 1.2");
    /*
     * IGNORE_UNEXPECTED_EOF: Redis closes connections without close_notify;
     * report that as an ordinary EOF. RESP is self-delimiting, so a
     * truncated reply is still detected by the reader.
     * NO_RENEGOTIATION: Redis never renegotiates; refuse it if asked.
     */
    SSL_CTX_set_options(t->ssl_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    /* Writes may be partial, and the client's output buffer may move (it
     * grows by realloc) between a would-block write and its retry. */
    SSL_CTX_set_mode(t->ssl_ctx,
                     SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_default_passwd_cb(t->ssl_ctx, no_passphrase);

    if (o->tls_ca_file || o->tls_ca_path) {
        if (!SSL_CTX_load_verify_locations(t->ssl_ctx, o->tls_ca_file, o->tls_ca_path)) {
            snprintf(what, sizeof what, "TLS: cannot load CA %s '%s'",
                     o->tls_ca_file ? "file" : "path",
                     o->tls_ca_file ? o->tls_ca_file : o->tls_ca_path);
            return ctx_fail(t, err, errlen, what);
        }
    } else if (!t->skip_verify && !SSL_CTX_set_default_verify_paths(t->ssl_ctx)) {
        return ctx_fail(t, err, errlen, "TLS: cannot load the system CA store");
    }
    SSL_CTX_set_verify(t->ssl_ctx, t->skip_verify ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);

    if (o->tls_cert_file) {
        if (SSL_CTX_use_certificate_chain_file(t->ssl_ctx, o->tls_cert_file) != 1) {
            snprintf(what, sizeof what, "TLS: cannot load client certificate '%s'",
                     o->tls_cert_file);
            return ctx_fail(t, err, errlen, what);
        }
        if (SSL_CTX_use_PrivateKey_file(t->ssl_ctx, o->tls_key_file, SSL_FILETYPE_PEM) != 1) {
            /* An encrypted key fails here too: no passphrase is ever asked. */
            snprintf(what, sizeof what, "TLS: cannot use private key '%s'", o->tls_key_file);
            return ctx_fail(t, err, errlen, what);
        }
        if (SSL_CTX_check_private_key(t->ssl_ctx) != 1) {
            snprintf(what, sizeof what, "TLS: private key '%s' does not match certificate '%s'",
                     o->tls_key_file, o->tls_cert_file);
            return ctx_fail(t, err, errlen, what);
        }
    }
    *out = t;
    return AREDIS_ERR_OK;
}

/* Connections hold their own reference to the SSL_CTX: any order is fine. */
void aredis__tls_ctx_free(aredis__tls_ctx *ctx) {
    if (!ctx || atomic_fetch_sub_explicit(&ctx->refs, 1, memory_order_acq_rel) != 1) return;
    SSL_CTX_free(ctx->ssl_ctx);
    aredis__free(ctx);
}

aredis__tls_ctx *aredis__tls_ctx_ref(aredis__tls_ctx *ctx) {
    if (ctx) atomic_fetch_add_explicit(&ctx->refs, 1, memory_order_relaxed);
    return ctx;
}

/* ---- The public context (aredis/tls.h) ----------------------------------- */

aredis_tls_context *aredis_tls_context_new(const aredis_options *o) {
    char err[512];
    aredis__tls_ctx *ctx = NULL;
    if (!o) {
        aredis__call_fail(AREDIS_ERR_INVALID, "options are NULL");
        return NULL;
    }
    aredis_err e = aredis__tls_ctx_new(o, &ctx, err, sizeof err);
    if (e != AREDIS_ERR_OK) {
        aredis__call_fail(e, "%s", err);
        return NULL;
    }
    return ctx;
}

aredis_tls_context *aredis_tls_context_retain(aredis_tls_context *ctx) {
    return aredis__tls_ctx_ref(ctx);
}

void aredis_tls_context_release(aredis_tls_context *ctx) { aredis__tls_ctx_free(ctx); }

/* ---- Connection -------------------------------------------------------- */

/*
 * Is `host` an IP literal? Copies it, without an IPv6 zone ("%eth0"), into
 * ip[] when it is. The name check then matches an IP SAN, and no SNI is
 * sent (RFC 6066 forbids IP addresses in SNI).
 */
static int ip_literal(const char *host, char *ip, size_t iplen) {
    unsigned char addr[sizeof(struct in6_addr)];
    size_t n = strcspn(host, "%");
    if (n == 0 || n >= iplen) return 0;
    memcpy(ip, host, n);
    ip[n] = '\0';
    if (inet_pton(AF_INET, ip, addr) == 1) return host[n] == '\0';
    return inet_pton(AF_INET6, ip, addr) == 1;
}

aredis__tls *aredis__tls_new(aredis__tls_ctx *ctx, int fd, const char *host, char *err,
                             size_t errlen) {
    char ip[INET6_ADDRSTRLEN + 1];
    if (!ctx || fd < 0) {
        snprintf(err, errlen, "TLS: no context");
        return NULL;
    }
    if ((!host || !*host) && !ctx->skip_verify) {
        snprintf(err, errlen,
                 "TLS: no server name to verify the certificate against "
                 "(set host or tls_server_name)");
        return NULL;
    }
    aredis__tls *t = aredis__calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ERR_clear_error();
    t->ssl = SSL_new(ctx->ssl_ctx);
    if (!t->ssl) goto fail;
    BIO *b = BIO_new(ctx->bio_method);
    if (!b) goto fail;
    t->fd = fd;
    BIO_set_data(b, t);
    BIO_set_init(b, 1);
    SSL_set_bio(t->ssl, b, b); /* the SSL owns b now */

    int is_ip = host && *host && ip_literal(host, ip, sizeof ip);
    if (host && *host && !is_ip) {
        /* A fully qualified "name." is the same name: no dot in SNI (RFC
         * 6066) nor in the certificate. */
        size_t n = strlen(host);
        char *name = aredis__memdup0(host, n > 1 && host[n - 1] == '.' ? n - 1 : n);
        if (!name) goto fail;
        int ok = SSL_set_tlsext_host_name(t->ssl, name) == 1;
        if (ok && !ctx->skip_verify) {
            /* "*.example.com" matches one whole label, never "a*.example.com". */
            SSL_set_hostflags(t->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            ok = SSL_set1_host(t->ssl, name) == 1;
        }
        aredis__free(name);
        if (!ok) goto fail;
    } else if (is_ip && !ctx->skip_verify) {
        if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), ip)) goto fail;
    }
    SSL_set_connect_state(t->ssl);
    return t;

fail:
    ssl_error_message(NULL, "TLS: cannot set up the connection", err, errlen);
    aredis__tls_free(t);
    return NULL;
}

void aredis__tls_free(aredis__tls *t) {
    if (!t) return;
    /* No SSL_shutdown(): it would write close_notify, which must not happen
     * from a forked child sharing the socket, nor wait for the peer. */
    SSL_free(t->ssl);
    aredis__buf_free(&t->pend);
    aredis__free(t);
}

/*
 * Map a failed SSL call. Returns the value for the caller: -1 (with *want
 * set for a would-block), or 0 for an orderly EOF when eof_ok.
 */
static int map_failure(aredis__tls *t, int ret, int sys_errno, const char *what, int eof_ok,
                       int *want, char *err, size_t errlen) {
    SSL *ssl = t->ssl;
    int e = SSL_get_error(ssl, ret);
    *want = 0;
    t->refused = 0;
    switch (e) {
    case SSL_ERROR_WANT_READ:
        *want = AREDIS_EV_READ;
        return -1;
    case SSL_ERROR_WANT_WRITE:
        *want = AREDIS_EV_WRITE;
        return -1;
    case SSL_ERROR_ZERO_RETURN: /* close_notify, or EOF (IGNORE_UNEXPECTED_EOF) */
        ERR_clear_error();
        if (eof_ok) {
            errno = 0;
            return 0;
        }
        errno = EPIPE;
        snprintf(err, errlen, "%s: connection closed by peer", what);
        return -1;
    case SSL_ERROR_SYSCALL:
        if (sys_errno != 0) {
            ERR_clear_error();
            snprintf(err, errlen, "%s: %s", what, strerror(sys_errno));
            errno = sys_errno;
            return -1;
        }
        if (ERR_peek_error() == 0) {
            /* EOF at the socket with nothing else to say. */
            if (eof_ok) {
                errno = 0;
                return 0;
            }
            snprintf(err, errlen, "%s: connection closed by peer", what);
            errno = EPIPE;
            return -1;
        }
        break; /* queued errors: a protocol failure after all */
    default:
        break;
    }
    t->refused = ssl_error_message(ssl, what, err, errlen);
    errno = 0;
    return -1;
}

static int flush_pending(aredis__tls *t, const char *what, char *err, size_t errlen);

int aredis__tls_handshake(aredis__tls *t, char *err, size_t errlen) {
    /* Our last flight must reach the server before it can answer. */
    int f = flush_pending(t, "TLS handshake failed", err, errlen);
    if (f != 0) return f < 0 ? -1 : AREDIS_EV_WRITE;
    ERR_clear_error();
    errno = 0;
    int r = SSL_do_handshake(t->ssl);
    int sys = errno;
    if (r == 1) return 0; /* the Finished may still wait in pend: flushed by writes */
    int want = 0;
    /* An EOF during the handshake is a failure, never "done". */
    map_failure(t, r, sys, "TLS handshake failed", 0, &want, err, errlen);
    if (want) {
        f = flush_pending(t, "TLS handshake failed", err, errlen);
        return f < 0 ? -1 : f > 0 ? AREDIS_EV_WRITE : want;
    }
    /* A protocol failure during the handshake (an alert: no common version
     * or cipher, our certificate refused; TLS spoken to a plain port) is a
     * configuration the next attempt would meet again. A reset or an EOF
     * (errno set) may not be. */
    if (errno == 0) t->refused = 1;
    if (sys == 0 && errno == EPIPE) {
        snprintf(err, errlen,
                 "TLS handshake failed: connection closed by peer "
                 "(is the server speaking TLS on this port?)");
    }
    return -1;
}

ssize_t aredis__tls_read(aredis__tls *t, void *buf, size_t n, int *want, char *err, size_t errlen) {
    size_t got = 0;
    ERR_clear_error();
    errno = 0;
    int r = SSL_read_ex(t->ssl, buf, n, &got);
    int sys = errno;
    if (r == 1) {
        *want = 0;
        return (ssize_t)got;
    }
    return map_failure(t, r, sys, "TLS read failed", 1, want, err, errlen);
}

/*
 * A write failed because the peer reset the connection. A TLS server that
 * refuses a client (TLS 1.3 mutual TLS without a client certificate: the
 * client's handshake is already done when the server checks) sends an alert
 * and closes; our next write then meets the reset. The alert is usually
 * still waiting in the socket: read it, so that the error says "certificate
 * required" rather than "connection reset". The connection is being torn
 * down anyway, so whatever else is read is dropped. Returns 1 and sets err
 * if an alert (a TLS protocol error) was found.
 */
static int pending_alert(aredis__tls *t, const char *what, char *err, size_t errlen) {
    SSL *ssl = t->ssl;
    char scratch[4096];
    for (int i = 0; i < 64; i++) {
        size_t got = 0;
        ERR_clear_error();
        int r = SSL_read_ex(ssl, scratch, sizeof scratch, &got);
        if (r == 1) continue;
        unsigned long e = ERR_peek_error();
        /* Only a received alert counts (its reason codes start at
         * SSL_AD_REASON_OFFSET); anything else keeps the socket error. */
        if (SSL_get_error(ssl, r) == SSL_ERROR_SSL && ERR_GET_LIB(e) == ERR_LIB_SSL &&
            ERR_GET_REASON(e) >= SSL_AD_REASON_OFFSET) {
            t->refused = ssl_error_message(ssl, what, err, errlen);
            return 1;
        }
        break;
    }
    ERR_clear_error();
    return 0;
}

/*
 * Send what waits in pend: 0 when all of it is gone, 1 when the socket is
 * full (wait until writable), -1 on failure (err set; errno the cause, or 0
 * for a TLS alert found behind a reset).
 */
static int flush_pending(aredis__tls *t, const char *what, char *err, size_t errlen) {
    while (aredis__buf_used(&t->pend)) {
        ssize_t r = send_some(t, t->pend.data + t->pend.off, aredis__buf_used(&t->pend));
        if (r == 0) return 1;
        if (r < 0) {
            int e = t->send_errno;
            if ((e == ECONNRESET || e == EPIPE) && pending_alert(t, what, err, errlen)) {
                errno = 0;
                return -1;
            }
            snprintf(err, errlen, "%s: %s", what, strerror(e));
            errno = e;
            return -1;
        }
        aredis__buf_consume(&t->pend, (size_t)r);
    }
    return 0;
}

size_t aredis__tls_pending(const aredis__tls *t) { return t ? aredis__buf_used(&t->pend) : 0; }

int aredis__tls_flush(aredis__tls *t, char *err, size_t errlen) {
    return flush_pending(t, "TLS write failed", err, errlen);
}

ssize_t aredis__tls_write(aredis__tls *t, const void *buf, size_t n, int *want, char *err,
                          size_t errlen) {
    /* Bounded: past PEND_HIGH of ciphertext waiting, take no more plaintext
     * until the socket has taken some. */
    if (aredis__buf_used(&t->pend) >= PEND_HIGH) {
        int f = flush_pending(t, "TLS write failed", err, errlen);
        *want = f > 0 && aredis__buf_used(&t->pend) >= PEND_HIGH ? AREDIS_EV_WRITE : 0;
        if (f < 0 || *want) return -1;
    }
    if (n > WRITE_CHUNK) n = WRITE_CHUNK;
    size_t put = 0;
    ERR_clear_error();
    errno = 0;
    int r = SSL_write_ex(t->ssl, buf, n, &put);
    int sys = errno;
    if (r == 1) {
        *want = 0;
        return (ssize_t)put;
    }
    if (SSL_get_error(t->ssl, r) == SSL_ERROR_SYSCALL && (sys == ECONNRESET || sys == EPIPE) &&
        pending_alert(t, "TLS write failed", err, errlen)) {
        *want = 0;
        errno = 0;
        return -1;
    }
    return map_failure(t, r, sys, "TLS write failed", 0, want, err, errlen);
}

int aredis__tls_refused(const aredis__tls *t) { return t && t->refused; }

// OpenSSL for Sluice's TLS data plane (Sources/SluiceCore/TLS/).
//
// Only what Swift cannot import: OpenSSL's function-like macros (SSL_CTX_set_*, which expand to
// SSL_CTX_ctrl) and the SSL_OP_* / XN_FLAG_* constants built from them. One wrapper per macro,
// no logic. The one exception is the socket BIO at the end (csluice_tlsbio_*): its callbacks
// run inside OpenSSL on every record read and write, where C is simplest and cheapest.
#ifndef SLUICE_COPENSSL_SHIM_H
#define SLUICE_COPENSSL_SHIM_H
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <stdint.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <netinet/in.h>
#include <netinet/tcp.h>

static inline long csluice_SSL_CTX_set_tlsext_servername_callback(SSL_CTX *ctx, int (*cb)(SSL *, int *, void *)) {
    return SSL_CTX_set_tlsext_servername_callback(ctx, cb);
}
static inline long csluice_SSL_CTX_set_tlsext_servername_arg(SSL_CTX *ctx, void *arg) {
    return SSL_CTX_set_tlsext_servername_arg(ctx, arg);
}
static inline long csluice_SSL_set_tlsext_host_name(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}
static inline long csluice_SSL_CTX_set_min_proto_version(SSL_CTX *ctx, int version) {
    return SSL_CTX_set_min_proto_version(ctx, version);
}
static inline long csluice_SSL_CTX_set_max_proto_version(SSL_CTX *ctx, int version) {
    return SSL_CTX_set_max_proto_version(ctx, version);
}
static inline long csluice_SSL_CTX_set_mode(SSL_CTX *ctx, long mode) { return SSL_CTX_set_mode(ctx, mode); }
static inline long csluice_SSL_CTX_set_session_cache_mode(SSL_CTX *ctx, long mode) {
    return SSL_CTX_set_session_cache_mode(ctx, mode);
}
static inline long csluice_SSL_CTX_set1_groups_list(SSL_CTX *ctx, const char *list) {
    return SSL_CTX_set1_groups_list(ctx, list);
}
static inline uint64_t csluice_SSL_OP_NO_RENEGOTIATION(void) { return SSL_OP_NO_RENEGOTIATION; }
static inline uint64_t csluice_SSL_OP_CIPHER_SERVER_PREFERENCE(void) { return SSL_OP_CIPHER_SERVER_PREFERENCE; }
static inline uint64_t csluice_SSL_OP_NO_COMPRESSION(void) { return SSL_OP_NO_COMPRESSION; }
static inline unsigned long csluice_XN_FLAG_RFC2253(void) { return XN_FLAG_RFC2253; }
static inline void csluice_OPENSSL_free(void *p) { OPENSSL_free(p); }
static inline long csluice_SSL_CTX_set_read_ahead(SSL_CTX *ctx, long yes) { return SSL_CTX_set_read_ahead(ctx, yes); }

// MARK: - The socket BIO of TLSStream
//
// OpenSSL's socket BIO (BIO_s_socket) does its reads and writes; this one does the same with the
// same syscalls and errno rules, and also learns whether a read left the socket empty. On a TCP
// socket with TCP_INQ on, each recvmsg carries how many bytes stay queued (TCP_CM_INQ); the kernel
// answers at least 1 when a FIN is queued, so 0 means "empty, end of input not reached": the next
// byte (or FIN) brings a new edge-triggered epoll event. TLSStream answers .drained from that
// (with OpenSSL holding nothing more), saving the read that only returns EAGAIN. On other sockets
// (no TCP_INQ) `emptied` is never set: TLSStream reads on until EAGAIN, as before.

/// Per-BIO state, owned by the BIO (allocated in create, freed in destroy).
typedef struct csluice_tlsbio {
    int fd;
    /// TCP_INQ is on for `fd`: reads use recvmsg and learn the queue length.
    int inq;
    /// A read during the current OpenSSL call returned bytes and left the socket empty (queue 0,
    /// no FIN). TLSStream clears it before every OpenSSL call; a read that does not prove it
    /// clears it too. While it is set a further read in the same call answers EAGAIN without
    /// the syscall (it could only find what arrived since, and that brings a new edge).
    int emptied;
} csluice_tlsbio;

static inline int csluice_tlsbio_create(BIO *b) {
    csluice_tlsbio *s = (csluice_tlsbio *)OPENSSL_zalloc(sizeof(csluice_tlsbio));
    if (s == NULL) return 0;
    s->fd = -1;
    BIO_set_data(b, s);
    return 1;
}

static inline int csluice_tlsbio_destroy(BIO *b) {
    if (b == NULL) return 0;
    OPENSSL_free(BIO_get_data(b));
    BIO_set_data(b, NULL);
    BIO_set_init(b, 0);
    return 1;
}

/// BIO_sock_non_fatal_error's list: these leave the BIO retryable, as the socket BIO does.
static inline int csluice_tlsbio_retryable(int e) {
    return e == EAGAIN || e == EWOULDBLOCK || e == EINTR || e == ENOTCONN || e == EPROTO
        || e == EINPROGRESS || e == EALREADY;
}

static inline int csluice_tlsbio_read(BIO *b, char *out, int outl) {
    csluice_tlsbio *s = (csluice_tlsbio *)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (s == NULL || out == NULL || outl <= 0) return 0;
    if (s->emptied) {
        errno = EAGAIN;
        BIO_set_retry_read(b);
        return -1;
    }
    errno = 0;
    ssize_t n;
    if (s->inq) {
        struct iovec iov;
        iov.iov_base = out;
        iov.iov_len = (size_t)outl;
        union { char bytes[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
        struct msghdr msg;
        memset(&msg, 0, sizeof(msg));
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.bytes;
        msg.msg_controllen = sizeof(control.bytes);
        n = recvmsg(s->fd, &msg, 0);
        if (n > 0) {
            for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
                if (c->cmsg_level == IPPROTO_TCP && c->cmsg_type == TCP_CM_INQ && c->cmsg_len >= CMSG_LEN(sizeof(int))) {
                    int queued;
                    memcpy(&queued, CMSG_DATA(c), sizeof(queued));
                    s->emptied = queued == 0;
                }
            }
        }
    } else {
        n = read(s->fd, out, (size_t)outl);
    }
    if (n > 0) return (int)n;
    if (n == 0) {
        BIO_set_flags(b, BIO_FLAGS_IN_EOF);
        return 0;
    }
    if (csluice_tlsbio_retryable(errno)) BIO_set_retry_read(b);
    return -1;
}

static inline int csluice_tlsbio_write(BIO *b, const char *in, int inl) {
    csluice_tlsbio *s = (csluice_tlsbio *)BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (s == NULL || in == NULL || inl <= 0) return 0;
    errno = 0;
    ssize_t n = send(s->fd, in, (size_t)inl, MSG_NOSIGNAL);
    if (n >= 0) return (int)n;
    if (csluice_tlsbio_retryable(errno)) BIO_set_retry_write(b);
    return -1;
}

static inline long csluice_tlsbio_ctrl(BIO *b, int cmd, long num, void *ptr) {
    csluice_tlsbio *s = (csluice_tlsbio *)BIO_get_data(b);
    (void)num;
    switch (cmd) {
    case BIO_C_GET_FD:
        if (s == NULL || !BIO_get_init(b)) return -1;
        if (ptr != NULL) *(int *)ptr = s->fd;
        return s->fd;
    case BIO_CTRL_GET_CLOSE: return BIO_NOCLOSE;
    case BIO_CTRL_SET_CLOSE:
    case BIO_CTRL_DUP:
    case BIO_CTRL_FLUSH: return 1;
    case BIO_CTRL_EOF: return BIO_test_flags(b, BIO_FLAGS_IN_EOF) != 0;
    default: return 0;  // no kTLS, no pending bytes of its own
    }
}

/// The method of every TLSStream BIO; NULL when OpenSSL cannot allocate. Call once per process.
static inline BIO_METHOD *csluice_tlsbio_method_new(void) {
    int index = BIO_get_new_index();
    if (index == -1) return NULL;
    BIO_METHOD *m = BIO_meth_new(index | BIO_TYPE_SOURCE_SINK | BIO_TYPE_DESCRIPTOR, "sluice socket");
    if (m == NULL) return NULL;
    if (!BIO_meth_set_read(m, csluice_tlsbio_read) || !BIO_meth_set_write(m, csluice_tlsbio_write)
        || !BIO_meth_set_ctrl(m, csluice_tlsbio_ctrl) || !BIO_meth_set_create(m, csluice_tlsbio_create)
        || !BIO_meth_set_destroy(m, csluice_tlsbio_destroy)) {
        BIO_meth_free(m);
        return NULL;
    }
    return m;
}

/// A BIO over `fd` (not closed with the BIO) made with `method`, with TCP_INQ turned on when `fd`
/// is a TCP socket; NULL when OpenSSL cannot allocate.
static inline BIO *csluice_tlsbio_new(BIO_METHOD *method, int fd) {
    BIO *b = BIO_new(method);
    if (b == NULL) return NULL;
    csluice_tlsbio *s = (csluice_tlsbio *)BIO_get_data(b);
    if (s == NULL) {
        BIO_free(b);
        return NULL;
    }
    s->fd = fd;
    int on = 1;
    s->inq = setsockopt(fd, IPPROTO_TCP, TCP_INQ, &on, sizeof(on)) == 0;
    BIO_set_init(b, 1);
    return b;
}

/// The state of a BIO made by csluice_tlsbio_new.
static inline csluice_tlsbio *csluice_tlsbio_state(BIO *b) { return (csluice_tlsbio *)BIO_get_data(b); }

#endif

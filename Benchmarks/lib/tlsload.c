/* tlsload: TLS handshakes per second, full or resumed -- the client of the tls_handshake and
 * tls_resumed scenarios (Benchmarks/README.md).
 *
 *   tlsload HOST PORT PATH CONNS SECONDS new|resume [SNI]
 *
 * CONNS threads, each in a loop for SECONDS: connect, TLS 1.3 handshake (ALPN http/1.1, no
 * certificate verification), "GET PATH HTTP/1.1" with "Connection: close", read the response to
 * EOF, close. `new` never offers a session: every handshake is a full one (certificate, signature,
 * key exchange). `resume` offers the session ticket of the thread's previous connection: after the
 * first connection every handshake is a PSK resumption (with (EC)DHE, as every TLS 1.3 client
 * and server here do by default). Why not h2load or wrk: both resume on reconnect (checked with
 * nginx's $ssl_session_reused), with no option to stop it; and openssl s_time is one connection at
 * a time. Prints key=value: conns (completed with a 2xx/3xx status line), errors, resumed (how
 * many of conns were resumptions), seconds, rps (conns/s), p50_ms, p99_ms (connect to EOF).
 *
 * Build: gcc -O2 -o tlsload tlsload.c -lssl -lcrypto -lpthread (Debian libssl-dev).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in addr;
static const char *path, *sni;
static int resume;
static double deadline;
static SSL_CTX *ctx;

struct worker {
    pthread_t th;
    long conns, errors, resumed;
    double *lat;
    size_t nlat, cap;
};

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int one(struct worker *w, SSL_SESSION **sess) {
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1, ok = 0;
    if (fd < 0) return 0;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) { close(fd); return 0; }
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, sni);
    if (resume && *sess) SSL_set_session(ssl, *sess);
    if (SSL_connect(ssl) == 1) {
        char req[512], buf[16384];
        int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, sni);
        if (SSL_write(ssl, req, n) == n) {
            int got = 0, status = 0, r;
            while ((r = SSL_read(ssl, buf + (got < 16 ? got : 0), got < 16 ? sizeof buf - got : sizeof buf)) > 0) {
                if (got < 16 && got + r >= 12) status = atoi(buf + 9);
                got += r;
            }
            /* EOF (close_notify or TCP FIN) after a 2xx/3xx status line */
            int e = SSL_get_error(ssl, r);
            if (status >= 200 && status < 400 && (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL)) ok = 1;
        }
        if (ok) {
            /* as if close_notify had been sent: SSL_free would otherwise mark the session
             * not resumable (ssl_clear_bad_session), and the next ClientHello would offer none */
            SSL_set_shutdown(ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
            if (SSL_session_reused(ssl)) w->resumed++;
            if (resume) {
                SSL_SESSION *s = SSL_get1_session(ssl); /* carries the ticket read with the response */
                if (s && SSL_SESSION_is_resumable(s)) {
                    if (*sess) SSL_SESSION_free(*sess);
                    *sess = s;
                } else if (s) SSL_SESSION_free(s);
            }
        }
    }
    SSL_free(ssl);
    close(fd);
    ERR_clear_error();
    return ok;
}

static void *run(void *arg) {
    struct worker *w = arg;
    SSL_SESSION *sess = NULL;
    while (now() < deadline) {
        double t = now();
        if (one(w, &sess)) {
            w->conns++;
            if (w->nlat == w->cap) {
                w->cap = w->cap ? 2 * w->cap : 4096;
                w->lat = realloc(w->lat, w->cap * sizeof *w->lat);
            }
            w->lat[w->nlat++] = now() - t;
        } else {
            w->errors++;
        }
    }
    if (sess) SSL_SESSION_free(sess);
    return NULL;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    if (argc < 7) {
        fprintf(stderr, "usage: tlsload HOST PORT PATH CONNS SECONDS new|resume [SNI]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(atoi(argv[2]));
    if (inet_pton(AF_INET, argv[1], &addr.sin_addr) != 1) { fprintf(stderr, "IPv4 address please\n"); return 2; }
    path = argv[3];
    int conns = atoi(argv[4]);
    double secs = atof(argv[5]);
    resume = strcmp(argv[6], "resume") == 0;
    sni = argc > 7 ? argv[7] : "localhost";
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF); /* sessions only as handed by run() */
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
    struct worker *w = calloc(conns, sizeof *w);
    double t0 = now();
    deadline = t0 + secs;
    for (int i = 0; i < conns; i++) pthread_create(&w[i].th, NULL, run, &w[i]);
    long c = 0, e = 0, r = 0;
    size_t n = 0;
    for (int i = 0; i < conns; i++) {
        pthread_join(w[i].th, NULL);
        c += w[i].conns; e += w[i].errors; r += w[i].resumed; n += w[i].nlat;
    }
    double el = now() - t0;
    double *all = malloc((n ? n : 1) * sizeof *all);
    size_t k = 0;
    for (int i = 0; i < conns; i++) { memcpy(all + k, w[i].lat, w[i].nlat * sizeof *all); k += w[i].nlat; }
    qsort(all, n, sizeof *all, cmp);
    double p50 = n ? all[n / 2] * 1e3 : -1, p99 = n ? all[(size_t)(n * 0.99)] * 1e3 : -1;
    printf("conns=%ld errors=%ld resumed=%ld seconds=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f\n",
           c, e, r, el, c / el, p50, p99);
    return 0;
}

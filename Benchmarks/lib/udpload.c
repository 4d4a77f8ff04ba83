/* udpload: UDP round trips per second through a proxy -- the load client and the echo backend of
 * the udp_rtt scenario (Benchmarks/README.md).
 *
 *   udpload load HOST PORT SECONDS [FLOWS [INFLIGHT [PAYLOAD [WARMUP_MS]]]]
 *   udpload count HOST PORT N [FLOWS [INFLIGHT [PAYLOAD [NEW]]]]
 *   udpload echo ADDR PORT
 *
 * load: FLOWS (16) UDP sockets, each connect()ed to HOST:PORT from its own ephemeral port (so each
 * is one flow of the proxy), INFLIGHT (4) datagrams of PAYLOAD (64) bytes in flight on each; every
 * reply sends the next datagram on its flow (closed loop; replies drained with recvmmsg, their
 * successors sent with one sendmmsg per flow). Runs WARMUP_MS (500) ms unmeasured, then SECONDS
 * measured. Every datagram carries a magic, its flow, a sequence number, its send time and a
 * pattern derived from the sequence number; a reply counts only when it is exactly the datagram
 * sent (length, flow, pattern) and its sequence number is one still in flight on that flow. A
 * flow with datagrams in flight and nothing received for 200 ms has lost them: they are counted
 * as lost and the flow is primed again. A reply for a datagram already given up (or a duplicate)
 * is "late"; anything else that arrives is "bad".
 * Prints one line of key=value: rtts (round trips completed in the measured SECONDS), rtts_total
 * (also during the warm-up: the divisor of CPU per round trip, since the load generator's whole
 * run is measured), sent, lost, late, bad, errors (send/receive errors such as ECONNREFUSED),
 * seconds, rps (rtts / seconds), p50_ms, p99_ms (send to reply, measured window), flows,
 * inflight, payload. Exit 0 when rtts > 0 and bad == 0.
 *
 * count: the same closed loop without a warm-up, for a FIXED amount of work (the allocation
 * budget, scenarios/alloc.sh): it stops once the FLOWS (16; 0 allowed with NEW) flows have
 * completed N round trips and NEW (0) one-datagram flows are done. Each new flow is a fresh
 * socket (a new client port, so a new flow of the proxy) opened when the steady flows have
 * done their share (spread evenly over the N round trips; one after the other when FLOWS is 0);
 * it sends one datagram, counts its reply as a round trip and closes. Prints the load line
 * (seconds: the whole run; rtts includes the new flows' round trips) plus new_flows=. Exit 0
 * when every round trip was completed and bad == 0; it gives up after 120 s (exit 1).
 *
 * echo: one UDP socket bound to ADDR:PORT, a blocking recvmmsg/sendmmsg loop (batches of up to
 * 64 datagrams of up to 64 KiB), every datagram sent back to where it came from. Runs until killed.
 *
 * Build: gcc -O2 -o udpload udpload.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x4c504455u /* "UDPL" */
#define HDR 24            /* magic u32, flow u32, seq u64, send time u64 */
#define HIST_MAX_US 200000
#define BATCH 64
#define MAX_DGRAM 65507
#define LOSS_NS 200000000ull

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int parse_addr(const char *host, const char *port, struct sockaddr_in *a) {
    memset(a, 0, sizeof *a);
    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)atoi(port));
    return inet_pton(AF_INET, host, &a->sin_addr) == 1 ? 0 : -1;
}

static void bigbuf(int fd) {
    int sz = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
}

/* ------------------------------------------------------------------ echo */
static int echo_main(int argc, char **argv) {
    struct sockaddr_in a;
    if (argc < 4 || parse_addr(argv[2], argv[3], &a) != 0) {
        fprintf(stderr, "usage: udpload echo ADDR PORT (IPv4)\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        perror("udpload echo: bind");
        return 1;
    }
    bigbuf(fd);
    static char bufs[BATCH][65536];
    static struct mmsghdr msgs[BATCH];
    static struct iovec iov[BATCH];
    static struct sockaddr_in peers[BATCH];
    fprintf(stderr, "udpload echo on %s:%s\n", argv[2], argv[3]);
    for (;;) {
        for (int i = 0; i < BATCH; i++) {
            iov[i].iov_base = bufs[i];
            iov[i].iov_len = sizeof bufs[i];
            memset(&msgs[i], 0, sizeof msgs[i]);
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = &peers[i];
            msgs[i].msg_hdr.msg_namelen = sizeof peers[i];
        }
        int n = recvmmsg(fd, msgs, BATCH, MSG_WAITFORONE, NULL);
        if (n <= 0) continue;
        for (int i = 0; i < n; i++) iov[i].iov_len = msgs[i].msg_len;
        for (int off = 0; off < n;) {
            int s = sendmmsg(fd, msgs + off, (unsigned)(n - off), 0);
            off += s > 0 ? s : 1; /* a datagram that cannot be sent is dropped (the client counts it lost) */
        }
    }
}

/* ------------------------------------------------------------------ load */
struct flow {
    int fd;
    uint32_t id;
    uint64_t next_seq, last_ns;
    int nout;
    int depth;      /* datagrams in flight: INFLIGHT, or 1 for a new (one-shot) flow */
    int oneshot;    /* count mode: closes after its one reply */
    uint64_t *slot; /* INFLIGHT sequence numbers in flight, 0 = free */
    char *sbuf;     /* INFLIGHT send buffers of PAYLOAD bytes */
};

static int inflight;
static size_t payload;
static uint32_t *hist;
static uint64_t rtts, rtts_total, sent, lost, late, bad, errors;
static int measuring;

static uint8_t pat(uint64_t seq, size_t j) { return (uint8_t)(seq * 31u + j); }

static void fill(struct flow *f, int s, uint64_t ts) {
    char *b = f->sbuf + (size_t)s * payload;
    uint32_t m = MAGIC;
    uint64_t seq = f->next_seq++;
    f->slot[s] = seq;
    memcpy(b, &m, 4);
    memcpy(b + 4, &f->id, 4);
    memcpy(b + 8, &seq, 8);
    memcpy(b + 16, &ts, 8);
    for (size_t j = HDR; j < payload; j++) b[j] = (char)pat(seq, j);
}

/* send the slots in idx[0..n) (already filled) with sendmmsg */
static void send_slots(struct flow *f, const int *idx, int n) {
    struct mmsghdr msgs[BATCH];
    struct iovec iov[BATCH];
    for (int k = 0; k < n; k++) {
        iov[k].iov_base = f->sbuf + (size_t)idx[k] * payload;
        iov[k].iov_len = payload;
        memset(&msgs[k], 0, sizeof msgs[k]);
        msgs[k].msg_hdr.msg_iov = &iov[k];
        msgs[k].msg_hdr.msg_iovlen = 1;
    }
    for (int off = 0; off < n;) {
        int s = sendmmsg(f->fd, msgs + off, (unsigned)(n - off), MSG_DONTWAIT);
        if (s > 0) {
            sent += (uint64_t)s;
            off += s;
        } else {
            errors++; /* the datagram stays "in flight": lost after LOSS_NS, then primed again */
            off++;
        }
    }
}

static void prime(struct flow *f, uint64_t now) {
    int idx[BATCH];
    int n = f->depth < BATCH ? f->depth : BATCH;
    for (int s = 0; s < n; s++) { fill(f, s, now); idx[s] = s; }
    f->nout = n;
    f->last_ns = now;
    send_slots(f, idx, n);
}

/* 1 = a reply to a datagram in flight (its slot index in *slot_out), 0 = late/dup, -1 = bad */
static int check(struct flow *f, const char *b, size_t len, int *slot_out, uint64_t *ts_out) {
    uint32_t m, id;
    uint64_t seq, ts;
    if (len != payload) return -1;
    memcpy(&m, b, 4);
    memcpy(&id, b + 4, 4);
    memcpy(&seq, b + 8, 8);
    memcpy(&ts, b + 16, 8);
    if (m != MAGIC || id != f->id || seq == 0 || seq >= f->next_seq) return -1;
    for (size_t j = HDR; j < payload; j++)
        if ((uint8_t)b[j] != pat(seq, j)) return -1;
    for (int s = 0; s < f->depth; s++)
        if (f->slot[s] == seq) { *slot_out = s; *ts_out = ts; return 1; }
    return 0;
}

static double pct(uint64_t total, double p) {
    if (total == 0) return -1;
    uint64_t want = (uint64_t)(p * (double)total), acc = 0;
    if (want >= total) want = total - 1;
    for (int i = 0; i <= HIST_MAX_US; i++) {
        acc += hist[i];
        if (acc > want) return i / 1000.0;
    }
    return HIST_MAX_US / 1000.0;
}

/* a socket connect()ed to dst from a fresh ephemeral port, registered in ep as flow index i */
static int open_flow(struct flow *f, int ep, const struct sockaddr_in *dst, uint32_t i) {
    f->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (f->fd < 0 || connect(f->fd, (const struct sockaddr *)dst, sizeof *dst) != 0) {
        perror("udpload: socket/connect");
        return -1;
    }
    bigbuf(f->fd);
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, f->fd, &ev) != 0) {
        perror("udpload: epoll_ctl");
        return -1;
    }
    return 0;
}

/* load (count == 0): SECONDS after WARMUP_MS; count: N round trips on the steady flows plus NEW one-shot flows */
static int load_main(int argc, char **argv, int count) {
    struct sockaddr_in dst;
    if (argc < 5 || parse_addr(argv[2], argv[3], &dst) != 0) {
        fprintf(stderr, count ? "usage: udpload count HOST PORT N [FLOWS [INFLIGHT [PAYLOAD [NEW]]]] (IPv4)\n"
                              : "usage: udpload load HOST PORT SECONDS [FLOWS [INFLIGHT [PAYLOAD [WARMUP_MS]]]] (IPv4)\n");
        return 2;
    }
    double secs = count ? 120 : atof(argv[4]);
    long long want = count ? atoll(argv[4]) : 0;
    int nflows = argc > 5 ? atoi(argv[5]) : 16;
    inflight = argc > 6 ? atoi(argv[6]) : 4;
    long pl = argc > 7 ? atol(argv[7]) : 64;
    int warmup_ms = count ? 0 : argc > 8 ? atoi(argv[8]) : 500;
    int nnew = count && argc > 8 ? atoi(argv[8]) : 0;
    if (secs <= 0 || secs > 3600 || nflows < (count && nnew > 0 ? 0 : 1) || nflows > 4096 || inflight < 1 ||
        inflight > BATCH || pl < HDR || pl > MAX_DGRAM || warmup_ms < 0 || want < 0 || nnew < 0 || nnew > 100000 ||
        (count && nflows > 0 && want < 1) || (nflows == 0 && want > 0)) {
        fprintf(stderr, "udpload: bad arguments (FLOWS 1..4096, or 0 with N 0 and NEW > 0; INFLIGHT 1..%d, PAYLOAD %d..%d)\n",
                BATCH, HDR, MAX_DGRAM);
        return 2;
    }
    payload = (size_t)pl;
    int ntot = nflows + nnew;
    hist = calloc(HIST_MAX_US + 1, sizeof *hist);
    struct flow *fl = calloc((size_t)ntot, sizeof *fl);
    char *rbuf = malloc((size_t)BATCH * 65536);
    if (!hist || !fl || !rbuf) return 1;
    int ep = epoll_create1(0);
    for (int i = 0; i < ntot; i++) {
        struct flow *f = &fl[i];
        f->id = (uint32_t)i;
        f->next_seq = 1;
        f->fd = -1;
        f->oneshot = i >= nflows;
        f->depth = f->oneshot ? 1 : inflight;
        f->slot = calloc((size_t)f->depth, sizeof *f->slot);
        f->sbuf = malloc((size_t)f->depth * payload);
        if (!f->slot || !f->sbuf) return 1;
        if (!f->oneshot && open_flow(f, ep, &dst, (uint32_t)i) != 0) return 1;
    }
    struct mmsghdr rm[BATCH];
    struct iovec riov[BATCH];
    uint64_t t0 = now_ns(), t_meas = t0 + (uint64_t)warmup_ms * 1000000ull;
    uint64_t t_end = t_meas + (uint64_t)(secs * 1e9), last_scan = t0;
    uint64_t steady = 0; /* count: round trips of the steady flows */
    int opened = 0, done_new = 0, live_new = 0;
    for (int i = 0; i < nflows; i++) prime(&fl[i], t0);
    uint64_t issued = (uint64_t)nflows * (uint64_t)inflight; /* count: steady datagrams sent (not resent) */
    if (warmup_ms == 0) measuring = 1;
    struct epoll_event evs[256];
    for (;;) {
        uint64_t now = now_ns();
        if (now >= t_end) break;
        if (count && steady >= (uint64_t)want && done_new == nnew) break;
        /* count: the next new flow once the steady flows did their share (or the last one is done) */
        if (count && opened < nnew &&
            (nflows > 0 ? steady * (uint64_t)(nnew + 1) >= (uint64_t)want * (uint64_t)(opened + 1) : live_new == 0)) {
            struct flow *f = &fl[nflows + opened];
            if (open_flow(f, ep, &dst, (uint32_t)(nflows + opened)) != 0) return 1;
            prime(f, now);
            opened++;
            live_new++;
            continue;
        }
        if (!measuring && now >= t_meas) {
            measuring = 1;
            rtts = 0;
            lost = late = bad = errors = 0;
            memset(hist, 0, (HIST_MAX_US + 1) * sizeof *hist);
        }
        int n = epoll_wait(ep, evs, 256, 10);
        for (int e = 0; e < n; e++) {
            struct flow *f = &fl[evs[e].data.u32];
            while (f->fd >= 0) {
                for (int k = 0; k < BATCH; k++) {
                    riov[k].iov_base = rbuf + (size_t)k * 65536;
                    riov[k].iov_len = 65536;
                    memset(&rm[k], 0, sizeof rm[k]);
                    rm[k].msg_hdr.msg_iov = &riov[k];
                    rm[k].msg_hdr.msg_iovlen = 1;
                }
                int r = recvmmsg(f->fd, rm, BATCH, MSG_DONTWAIT, NULL);
                if (r < 0) {
                    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) errors++; /* e.g. ECONNREFUSED */
                    break;
                }
                if (r == 0) break;
                uint64_t t = now_ns();
                int idx[BATCH], ns = 0;
                for (int k = 0; k < r; k++) {
                    int s;
                    uint64_t ts;
                    int c = check(f, riov[k].iov_base, rm[k].msg_len, &s, &ts);
                    if (c < 0) { bad++; continue; }
                    if (c == 0) { late++; continue; }
                    rtts_total++;
                    if (measuring) {
                        rtts++;
                        uint64_t us = ts <= t ? (t - ts) / 1000 : 0;
                        hist[us > HIST_MAX_US ? HIST_MAX_US : us]++;
                    }
                    f->last_ns = t;
                    if (f->oneshot) { /* its one round trip: the flow is done */
                        f->slot[s] = 0;
                        f->nout = 0;
                        close(f->fd);
                        f->fd = -1;
                        done_new++;
                        live_new--;
                        break;
                    }
                    steady++;
                    if (count && issued >= (uint64_t)want) {
                        f->slot[s] = 0; /* enough sent to finish N: no successor */
                        f->nout--;
                        continue;
                    }
                    issued++;
                    fill(f, s, t); /* its successor in the same slot */
                    idx[ns++] = s;
                }
                if (ns) send_slots(f, idx, ns);
                if (r < BATCH) break;
            }
        }
        now = now_ns();
        if (now - last_scan > 20000000ull) { /* every 20 ms: flows silent for LOSS_NS lost their datagrams */
            last_scan = now;
            for (int i = 0; i < ntot; i++) {
                if (fl[i].fd >= 0 && fl[i].nout > 0 && now - fl[i].last_ns > LOSS_NS) {
                    lost += (uint64_t)fl[i].nout;
                    prime(&fl[i], now);
                }
            }
        }
    }
    double el = (double)(now_ns() - t_meas) / 1e9;
    uint64_t total = 0;
    for (int i = 0; i <= HIST_MAX_US; i++) total += hist[i];
    printf("rtts=%llu rtts_total=%llu sent=%llu lost=%llu late=%llu bad=%llu errors=%llu seconds=%.3f rps=%.1f "
           "p50_ms=%.3f p99_ms=%.3f flows=%d inflight=%d payload=%zu",
           (unsigned long long)rtts, (unsigned long long)rtts_total, (unsigned long long)sent,
           (unsigned long long)lost, (unsigned long long)late, (unsigned long long)bad,
           (unsigned long long)errors, el, (double)rtts / el, pct(total, 0.50), pct(total, 0.99), nflows,
           inflight, payload);
    if (count) printf(" new_flows=%d", done_new);
    printf("\n");
    if (count) return steady >= (uint64_t)want && done_new == nnew && bad == 0 ? 0 : 1;
    return rtts > 0 && bad == 0 ? 0 : 1;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "load") == 0) return load_main(argc, argv, 0);
    if (argc >= 2 && strcmp(argv[1], "count") == 0) return load_main(argc, argv, 1);
    if (argc >= 2 && strcmp(argv[1], "echo") == 0) return echo_main(argc, argv);
    fprintf(stderr, "usage: udpload load HOST PORT SECONDS [FLOWS [INFLIGHT [PAYLOAD [WARMUP_MS]]]]\n"
                    "       udpload count HOST PORT N [FLOWS [INFLIGHT [PAYLOAD [NEW]]]]\n"
                    "       udpload echo ADDR PORT\n");
    return 2;
}

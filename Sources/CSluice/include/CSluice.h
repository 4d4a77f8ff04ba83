// Sluice's C shim: one prefixed wrapper per symbol that Swift's Glibc module cannot
// reach (it is built without _GNU_SOURCE). No logic lives here.
#ifndef SLUICE_CSLUICE_H
#define SLUICE_CSLUICE_H

#include <stdint.h>
#include <sys/types.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/signalfd.h>
#include <signal.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/uio.h>

int csluice_epoll_create(void);
int csluice_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);
int csluice_epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout);
uint64_t csluice_epoll_event_data(const struct epoll_event *event);
uint32_t csluice_epoll_event_events(const struct epoll_event *event);

int csluice_eventfd(void);
int csluice_accept4(int fd, struct sockaddr *addr, socklen_t *len);
/// accept4 with SOCK_CLOEXEC only: a blocking socket (control-plane servers).
int csluice_accept4_blocking(int fd);
int csluice_socket_nonblocking(int domain, int type);
ssize_t csluice_splice(int fd_in, int fd_out, size_t len);
int csluice_pipe2_nonblocking(int fds[2]);
int csluice_pipe_set_size(int fd, int size);
int csluice_pipe_get_size(int fd);

/// Number of CPUs this process may run on (sched_getaffinity + CPU_COUNT).
int csluice_cpu_count(void);
int csluice_set_thread_name(const char *name);

/// Blocks SIGTERM, SIGINT, SIGHUP, SIGPIPE in the calling thread (inherited by threads it starts)
/// and returns a nonblocking signalfd for the first three.
int csluice_block_signals_signalfd(void);
/// Reads one signal from a signalfd; returns its number, 0 when none is pending, -1 on error.
int csluice_signalfd_read(int fd);

int csluice_getpeereid(int fd, uid_t *uid, gid_t *gid, pid_t *pid);

/// Twin of glibc's `struct mmsghdr` (GNU-only, so the Glibc module lacks it): one message of
/// a `recvmmsg`/`sendmmsg` batch. shim.c asserts that the layouts agree.
struct csluice_mmsghdr {
    struct msghdr msg_hdr;
    unsigned int msg_len;
};

/// recvmmsg/sendmmsg without flags (the sockets are nonblocking) and without a timeout.
int csluice_recvmmsg(int fd, struct csluice_mmsghdr *msgs, unsigned int count);
int csluice_sendmmsg(int fd, struct csluice_mmsghdr *msgs, unsigned int count);

/// Control-message space one datagram needs for an IPv4 or IPv6 packet-info message.
extern const size_t csluice_PKTINFO_SPACE;
extern const int csluice_MSG_TRUNC;
/// Asks the kernel to report each datagram's destination address (IP_PKTINFO, or
/// IPV6_RECVPKTINFO when `ipv6` is nonzero). 0 on success, -1 with errno.
int csluice_enable_pktinfo(int fd, int ipv6);
/// CMSG_FIRSTHDR/NXTHDR walk: the destination address of a received datagram from its
/// IP_PKTINFO / IPV6_PKTINFO message, written to `local` (port 0; IPv6: the interface index
/// in sin6_scope_id). Returns 1 when found, 0 otherwise.
int csluice_pktinfo_destination(const struct msghdr *msg, struct sockaddr_storage *local);
/// Writes one IP_PKTINFO / IPV6_PKTINFO control message into `control` (`space` bytes) asking
/// to send from `local`'s address. Returns the control length to set, 0 when the family is
/// not IPv4/IPv6 or it does not fit.
size_t csluice_pktinfo_source(void *control, size_t space, const struct sockaddr_storage *local);

/// Relaxed atomic counter operations for per-worker statistics (one writer, any reader).
static inline void csluice_counter_add(uint64_t *p, uint64_t v) { __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
static inline uint64_t csluice_counter_load(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }

/// Epoll and splice constants (GNU-only or macros).
extern const uint32_t csluice_EPOLLIN;
extern const uint32_t csluice_EPOLLOUT;
extern const uint32_t csluice_EPOLLRDHUP;
extern const uint32_t csluice_EPOLLHUP;
extern const uint32_t csluice_EPOLLERR;
extern const uint32_t csluice_EPOLLET;
extern const int csluice_EPOLL_CTL_ADD;
extern const int csluice_EPOLL_CTL_MOD;
extern const int csluice_EPOLL_CTL_DEL;
extern const int csluice_MSG_NOSIGNAL;

#endif

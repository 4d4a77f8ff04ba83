#define _GNU_SOURCE 1
#include "CSluice.h"
#include <sched.h>
#include <pthread.h>
#include <unistd.h>
#include <string.h>
#include <errno.h>
#include <stddef.h>

_Static_assert(sizeof(struct epoll_event) == 12, "packed epoll_event on x86_64");
_Static_assert(sizeof(struct csluice_mmsghdr) == sizeof(struct mmsghdr), "mmsghdr twin");
_Static_assert(offsetof(struct csluice_mmsghdr, msg_len) == offsetof(struct mmsghdr, msg_len), "mmsghdr twin");

const uint32_t csluice_EPOLLIN = EPOLLIN;
const uint32_t csluice_EPOLLOUT = EPOLLOUT;
const uint32_t csluice_EPOLLRDHUP = EPOLLRDHUP;
const uint32_t csluice_EPOLLHUP = EPOLLHUP;
const uint32_t csluice_EPOLLERR = EPOLLERR;
const uint32_t csluice_EPOLLET = EPOLLET;
const int csluice_EPOLL_CTL_ADD = EPOLL_CTL_ADD;
const int csluice_EPOLL_CTL_MOD = EPOLL_CTL_MOD;
const int csluice_EPOLL_CTL_DEL = EPOLL_CTL_DEL;
const int csluice_MSG_NOSIGNAL = MSG_NOSIGNAL;

int csluice_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int csluice_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev;
    ev.events = events;
    ev.data.u64 = data;
    return epoll_ctl(epfd, op, fd, &ev);
}

int csluice_epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout) {
    return epoll_wait(epfd, events, maxevents, timeout);
}

uint64_t csluice_epoll_event_data(const struct epoll_event *event) { return event->data.u64; }
uint32_t csluice_epoll_event_events(const struct epoll_event *event) { return event->events; }

int csluice_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int csluice_accept4(int fd, struct sockaddr *addr, socklen_t *len) {
    return accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int csluice_accept4_blocking(int fd) {
    return accept4(fd, NULL, NULL, SOCK_CLOEXEC);
}

int csluice_socket_nonblocking(int domain, int type) {
    return socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

ssize_t csluice_splice(int fd_in, int fd_out, size_t len) {
    return splice(fd_in, NULL, fd_out, NULL, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
}

int csluice_pipe2_nonblocking(int fds[2]) { return pipe2(fds, O_NONBLOCK | O_CLOEXEC); }
int csluice_pipe_set_size(int fd, int size) { return fcntl(fd, F_SETPIPE_SZ, size); }
int csluice_pipe_get_size(int fd) { return fcntl(fd, F_GETPIPE_SZ); }

int csluice_cpu_count(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
    int n = CPU_COUNT(&set);
    return n > 0 ? n : 1;
}

int csluice_set_thread_name(const char *name) { return pthread_setname_np(pthread_self(), name); }

int csluice_block_signals_signalfd(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigset_t blocked = set;
    sigaddset(&blocked, SIGPIPE);
    if (pthread_sigmask(SIG_BLOCK, &blocked, NULL) != 0) return -1;
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

int csluice_signalfd_read(int fd) {
    struct signalfd_siginfo info;
    ssize_t n = read(fd, &info, sizeof(info));
    if (n == (ssize_t)sizeof(info)) return (int)info.ssi_signo;
    if (n < 0 && errno == EAGAIN) return 0;
    return -1;
}

int csluice_getpeereid(int fd, uid_t *uid, gid_t *gid, pid_t *pid) {
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -1;
    *uid = cred.uid;
    *gid = cred.gid;
    *pid = cred.pid;
    return 0;
}

int csluice_recvmmsg(int fd, struct csluice_mmsghdr *msgs, unsigned int count) {
    return recvmmsg(fd, (struct mmsghdr *)msgs, count, 0, NULL);
}

int csluice_sendmmsg(int fd, struct csluice_mmsghdr *msgs, unsigned int count) {
    return sendmmsg(fd, (struct mmsghdr *)msgs, count, MSG_NOSIGNAL);
}

const size_t csluice_PKTINFO_SPACE = CMSG_SPACE(sizeof(struct in6_pktinfo));
const int csluice_MSG_TRUNC = MSG_TRUNC;

int csluice_enable_pktinfo(int fd, int ipv6) {
    int one = 1;
    if (ipv6) return setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one));
    return setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
}

int csluice_pktinfo_destination(const struct msghdr *msg, struct sockaddr_storage *local) {
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
        if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO
            && c->cmsg_len >= CMSG_LEN(sizeof(struct in_pktinfo))) {
            struct in_pktinfo info;
            memcpy(&info, CMSG_DATA(c), sizeof(info));
            struct sockaddr_in a;
            memset(&a, 0, sizeof(a));
            a.sin_family = AF_INET;
            a.sin_addr = info.ipi_addr;
            memset(local, 0, sizeof(*local));
            memcpy(local, &a, sizeof(a));
            return 1;
        }
        if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO
            && c->cmsg_len >= CMSG_LEN(sizeof(struct in6_pktinfo))) {
            struct in6_pktinfo info;
            memcpy(&info, CMSG_DATA(c), sizeof(info));
            struct sockaddr_in6 a;
            memset(&a, 0, sizeof(a));
            a.sin6_family = AF_INET6;
            a.sin6_addr = info.ipi6_addr;
            a.sin6_scope_id = info.ipi6_ifindex;
            memset(local, 0, sizeof(*local));
            memcpy(local, &a, sizeof(a));
            return 1;
        }
    }
    return 0;
}

size_t csluice_pktinfo_source(void *control, size_t space, const struct sockaddr_storage *local) {
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_control = control;
    if (local->ss_family == AF_INET) {
        if (space < CMSG_SPACE(sizeof(struct in_pktinfo))) return 0;
        msg.msg_controllen = CMSG_SPACE(sizeof(struct in_pktinfo));
        memset(control, 0, msg.msg_controllen);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = IPPROTO_IP;
        c->cmsg_type = IP_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
        struct in_pktinfo info;
        memset(&info, 0, sizeof(info));
        info.ipi_spec_dst = ((const struct sockaddr_in *)local)->sin_addr;
        memcpy(CMSG_DATA(c), &info, sizeof(info));
        return msg.msg_controllen;
    }
    if (local->ss_family == AF_INET6) {
        if (space < CMSG_SPACE(sizeof(struct in6_pktinfo))) return 0;
        msg.msg_controllen = CMSG_SPACE(sizeof(struct in6_pktinfo));
        memset(control, 0, msg.msg_controllen);
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = IPPROTO_IPV6;
        c->cmsg_type = IPV6_PKTINFO;
        c->cmsg_len = CMSG_LEN(sizeof(struct in6_pktinfo));
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)local;
        struct in6_pktinfo info;
        memset(&info, 0, sizeof(info));
        info.ipi6_addr = a->sin6_addr;
        info.ipi6_ifindex = a->sin6_scope_id;
        memcpy(CMSG_DATA(c), &info, sizeof(info));
        return msg.msg_controllen;
    }
    return 0;
}

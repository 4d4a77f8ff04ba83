#define _GNU_SOURCE 1
#include "CSluice.h"
#include <sched.h>
#include <pthread.h>
#include <unistd.h>
#include <string.h>
#include <errno.h>

_Static_assert(sizeof(struct epoll_event) == 12, "packed epoll_event on x86_64");

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

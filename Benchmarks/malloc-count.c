/*
 * malloc-count.c -- LD_PRELOAD shim counting heap calls, for Benchmarks/scenarios/alloc.sh (make alloc-budget).
 *
 *   gcc -O2 -shared -fPIC -o /tmp/malloc-count.so Benchmarks/malloc-count.c -ldl
 *   MALLOC_COUNT_OUT=/tmp/counts LD_PRELOAD=/tmp/malloc-count.so prog &
 *   kill -USR2 $!      # appends "mallocs=N frees=M" to $MALLOC_COUNT_OUT
 *
 * mallocs counts every call of malloc, calloc, realloc, posix_memalign, aligned_alloc
 * (and memalign) -- each is one trip into the allocator; frees counts free(p) with p != NULL
 * (and realloc(p, 0), which frees). Counters are relaxed atomics: exact totals, no ordering.
 * The real functions come from dlsym(RTLD_NEXT, ...). dlsym itself may call calloc/malloc
 * before the real ones are known: those calls are served from a static bootstrap buffer
 * (never freed; free/realloc recognise its pointers).
 * The SIGUSR2 handler only uses async-signal-safe calls (open/write/close); the output path
 * is copied from the environment in the constructor. Nothing here is thread-unsafe: the
 * lookup runs once, early, while the process is still single-threaded.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static atomic_ulong n_alloc, n_free;

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void (*real_free)(void *);
static int (*real_posix_memalign)(void **, size_t, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void *(*real_memalign)(size_t, size_t);

/* ---- bootstrap: allocations made while dlsym runs ---------------------------------- */
#define BOOT_SIZE (64 * 1024)
static _Alignas(64) unsigned char boot_buf[BOOT_SIZE];
static size_t boot_used;
static int in_init;

static int is_boot(const void *p) {
    return (const unsigned char *)p >= boot_buf && (const unsigned char *)p < boot_buf + BOOT_SIZE;
}

/* 16-byte header holding the size, so realloc can copy out of the bootstrap buffer */
static void *boot_alloc(size_t n, size_t align) {
    if (align < 16) align = 16;
    size_t start = (boot_used + 16 + align - 1) & ~(align - 1);
    if (start + n > BOOT_SIZE) return NULL;
    *(size_t *)(boot_buf + start - sizeof(size_t)) = n;
    boot_used = start + n;
    return boot_buf + start; /* static storage: already zero, good for calloc */
}

static size_t boot_size(const void *p) { return *(const size_t *)((const unsigned char *)p - sizeof(size_t)); }

static void init(void) {
    if (real_malloc || in_init) return;
    in_init = 1;
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_free = dlsym(RTLD_NEXT, "free");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_posix_memalign = dlsym(RTLD_NEXT, "posix_memalign");
    real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    real_memalign = dlsym(RTLD_NEXT, "memalign");
    real_malloc = dlsym(RTLD_NEXT, "malloc"); /* last: it is the "ready" flag */
    in_init = 0;
}

#define COUNT(c) atomic_fetch_add_explicit(&(c), 1, memory_order_relaxed)

/* ---- interposed functions ----------------------------------------------------------- */
void *malloc(size_t n) {
    if (!real_malloc) {
        init();
        if (!real_malloc) return boot_alloc(n, 16);
    }
    COUNT(n_alloc);
    return real_malloc(n);
}

void *calloc(size_t a, size_t b) {
    if (!real_calloc || !real_malloc) {
        init();
        if (!real_calloc || !real_malloc) {
            size_t n;
            if (__builtin_mul_overflow(a, b, &n)) return NULL;
            return boot_alloc(n, 16);
        }
    }
    COUNT(n_alloc);
    return real_calloc(a, b);
}

void free(void *p) {
    if (!p || is_boot(p)) return;
    if (!real_free) init();
    COUNT(n_free);
    real_free(p);
}

void *realloc(void *p, size_t n) {
    if (!real_realloc || !real_malloc) {
        init();
        if (!real_realloc || !real_malloc) {
            void *q = boot_alloc(n, 16);
            if (q && p) memcpy(q, p, boot_size(p) < n ? boot_size(p) : n);
            return q;
        }
    }
    if (p && is_boot(p)) { /* move a bootstrap block onto the real heap */
        COUNT(n_alloc);
        void *q = real_malloc(n);
        if (q) memcpy(q, p, boot_size(p) < n ? boot_size(p) : n);
        return q;
    }
    COUNT(n_alloc);
    if (p && n == 0) COUNT(n_free);
    return real_realloc(p, n);
}

int posix_memalign(void **out, size_t align, size_t n) {
    if (!real_posix_memalign || !real_malloc) {
        init();
        if (!real_posix_memalign || !real_malloc) {
            void *q = boot_alloc(n, align);
            if (!q) return ENOMEM;
            *out = q;
            return 0;
        }
    }
    COUNT(n_alloc);
    return real_posix_memalign(out, align, n);
}

void *aligned_alloc(size_t align, size_t n) {
    if (!real_aligned_alloc || !real_malloc) {
        init();
        if (!real_aligned_alloc || !real_malloc) return boot_alloc(n, align);
    }
    COUNT(n_alloc);
    return real_aligned_alloc(align, n);
}

void *memalign(size_t align, size_t n) {
    if (!real_memalign || !real_malloc) {
        init();
        if (!real_memalign || !real_malloc) return boot_alloc(n, align);
    }
    COUNT(n_alloc);
    return real_memalign(align, n);
}

/* ---- SIGUSR2: append the totals --------------------------------------------------- */
static char out_path[4096];

static size_t put_u(char *s, unsigned long v) {
    char t[24];
    size_t n = 0, i;
    do { t[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    for (i = 0; i < n; i++) s[i] = t[n - 1 - i];
    return n;
}

static void on_usr2(int sig) {
    (void)sig;
    int saved = errno;
    char line[96];
    size_t n = 0;
    memcpy(line + n, "mallocs=", 8); n += 8;
    n += put_u(line + n, atomic_load_explicit(&n_alloc, memory_order_relaxed));
    memcpy(line + n, " frees=", 7); n += 7;
    n += put_u(line + n, atomic_load_explicit(&n_free, memory_order_relaxed));
    line[n++] = '\n';
    if (out_path[0]) {
        int fd = open(out_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0) {
            ssize_t w = write(fd, line, n); /* one write: the line appears whole or not at all */
            (void)w;
            close(fd);
        }
    }
    errno = saved;
}

__attribute__((constructor)) static void malloc_count_start(void) {
    init();
    const char *p = getenv("MALLOC_COUNT_OUT");
    if (p && strlen(p) < sizeof out_path) strcpy(out_path, p);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr2;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR2, &sa, NULL);
}

/* faultfs: an LD_PRELOAD shim that makes file operations under one folder fail the way a
 * full disk or a read-only file system does, whoever the process runs as (root included,
 * which chmod cannot stop). Test-only; built by tests/crash/meson.build.
 *
 * Environment:
 *   FAULTFS_DIR    absolute folder; only paths under it are affected (required)
 *   FAULTFS_ERRNO  ENOSPC (default), EROFS, EIO or EDQUOT
 *   FAULTFS_OPS    comma list of what fails: open (opening for writing or creating, mkstemp
 *                  included), write (write, pwrite, writev, fallocate), fsync (fsync,
 *                  fdatasync), truncate, rename, link, unlink, mkdir; "all" for every one
 *                  (default: write)
 *   FAULTFS_MATCH  only paths that contain this text (e.g. "-wal", "/blobs/"), or with a
 *                  final "$" that end in it ("bcd.sqlite3$")
 *   FAULTFS_AFTER  let this many bytes of writes through first (a write that crosses the
 *                  limit is cut short there, as on a disk that fills up; with an errno
 *                  other than EROFS, creating files, folders and links fails from then
 *                  on too); default 0
 *   FAULTFS_KILL_AT  N: the process SIGKILLs itself just before its N-th data operation
 *                  under FAULTFS_DIR (writes, syncs, truncations, renames, links,
 *                  removals, folder creations; opening files and the -shm index do not
 *                  count), a crash at an exact point of its writes
 *   FAULTFS_TORN   1: if that operation is a write, half of it is written first (a torn
 *                  write)
 *   FAULTFS_TRACE  a file to append one line per mutating operation under FAULTFS_DIR
 *                  ("op bytes monotonic-ns path", op ending in "!" when it was failed); no failure is injected unless FAULTFS_OPS
 *                  or FAULTFS_ERRNO is set.
 *
 * Descriptors are mapped to paths through /proc/self/fd. The shim calls the next
 * definition (libc, or the sanitizer's interceptor chain) for everything it lets through.
 */
#undef _FILE_OFFSET_BITS /* define open and open64, pwrite and pwrite64... each under its own name */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

enum { OP_OPEN = 1, OP_WRITE = 2, OP_FSYNC = 4, OP_TRUNCATE = 8, OP_RENAME = 16, OP_LINK = 32, OP_UNLINK = 64,
       OP_MKDIR = 128 };

static struct {
    bool init;
    char dir[PATH_MAX];
    size_t dirlen;
    int err;
    unsigned ops;
    char match[256];
    long long after;
    long long written;
    int trace_fd;
    long kill_at;     /* SIGKILL the process at this data operation (1-based), 0: never */
    bool torn;        /* ... a write being half done first */
    long data_ops;    /* data operations seen so far */
    bool kill_after;  /* the write under way is the torn one: kill once it is done */
} cfg = {.trace_fd = -1};

#define REAL(name) ((__typeof__(&name))real_sym(#name))

static void *real_sym(const char *name)
{
    void *p = dlsym(RTLD_NEXT, name);
    if (!p)
        abort();
    return p;
}

static void setup(void)
{
    if (cfg.init)
        return;
    cfg.init = true;
    const char *d = getenv("FAULTFS_DIR");
    if (d && *d && strlen(d) < sizeof cfg.dir) {
        strcpy(cfg.dir, d);
        cfg.dirlen = strlen(d);
        while (cfg.dirlen > 1 && cfg.dir[cfg.dirlen - 1] == '/')
            cfg.dir[--cfg.dirlen] = '\0';
    }
    const char *e = getenv("FAULTFS_ERRNO");
    const char *o = getenv("FAULTFS_OPS");
    cfg.err = ENOSPC;
    if (e && strcmp(e, "EROFS") == 0)
        cfg.err = EROFS;
    else if (e && strcmp(e, "EIO") == 0)
        cfg.err = EIO;
    else if (e && strcmp(e, "EDQUOT") == 0)
        cfg.err = EDQUOT;
    if (o && *o) {
        static const struct { const char *name; unsigned bit; } names[] = {
            {"open", OP_OPEN}, {"write", OP_WRITE}, {"fsync", OP_FSYNC}, {"truncate", OP_TRUNCATE},
            {"rename", OP_RENAME}, {"link", OP_LINK}, {"unlink", OP_UNLINK}, {"mkdir", OP_MKDIR}, {"all", ~0u}};
        char buf[256];
        snprintf(buf, sizeof buf, "%s", o);
        for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save))
            for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
                if (strcmp(t, names[i].name) == 0)
                    cfg.ops |= names[i].bit;
    } else if (e && *e) {
        cfg.ops = OP_WRITE;
    }
    const char *m = getenv("FAULTFS_MATCH");
    if (m)
        snprintf(cfg.match, sizeof cfg.match, "%s", m);
    const char *a = getenv("FAULTFS_AFTER");
    cfg.after = a ? atoll(a) : 0;
    const char *k = getenv("FAULTFS_KILL_AT");
    cfg.kill_at = k ? atol(k) : 0;
    const char *tw = getenv("FAULTFS_TORN");
    cfg.torn = tw && strcmp(tw, "1") == 0;
    const char *t = getenv("FAULTFS_TRACE");
    if (t && *t)
        cfg.trace_fd = REAL(open)(t, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

static bool under(const char *path)
{
    if (!cfg.dirlen || !path)
        return false;
    if (strncmp(path, cfg.dir, cfg.dirlen) != 0 || (path[cfg.dirlen] != '/' && path[cfg.dirlen] != '\0'))
        return false;
    if (!cfg.match[0])
        return true;
    size_t m = strlen(cfg.match), n = strlen(path);
    if (cfg.match[m - 1] == '$') /* "text$": paths that end in text */
        return n >= m - 1 && strncmp(path + n - (m - 1), cfg.match, m - 1) == 0;
    return strstr(path, cfg.match) != NULL;
}

/* Absolute form of (dirfd, path) into buf; false if it cannot be told. */
static bool abs_path(int dirfd, const char *path, char *buf, size_t cap)
{
    if (!path)
        return false;
    if (path[0] == '/') {
        snprintf(buf, cap, "%s", path);
        return true;
    }
    char base[PATH_MAX];
    if (dirfd == AT_FDCWD) {
        if (!getcwd(base, sizeof base))
            return false;
    } else {
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
        ssize_t n = readlink(link, base, sizeof base - 1);
        if (n <= 0)
            return false;
        base[n] = '\0';
    }
    return (size_t)snprintf(buf, cap, "%s/%s", base, path) < cap;
}

static bool fd_path(int fd, char *buf, size_t cap)
{
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, buf, cap - 1);
    if (n <= 0)
        return false;
    buf[n] = '\0';
    return true;
}

/* Count a data operation (anything but opening a file or touching the -shm index) and
 * crash at the chosen one. Returns true when a write should be torn (half written, then
 * the crash). */
static bool crash_point(const char *op, const char *path)
{
    size_t n = strlen(path);
    if (!cfg.kill_at || strcmp(op, "open") == 0 || (n >= 4 && strcmp(path + n - 4, "-shm") == 0))
        return false;
    if (++cfg.data_ops < cfg.kill_at)
        return false;
    if (cfg.torn && strcmp(op, "write") == 0)
        return true;
    kill(getpid(), SIGKILL);
    return false;
}

static void trace(const char *op, size_t bytes, const char *path, bool failed)
{
    if (cfg.trace_fd < 0)
        return;
    char line[PATH_MAX + 96];
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long ns = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    int n = snprintf(line, sizeof line, "%s%s %zu %lld %s\n", op, failed ? "!" : "", bytes, ns, path);
    if (n > 0 && (size_t)n < sizeof line) {
        ssize_t w = REAL(write)(cfg.trace_fd, line, (size_t)n);
        (void)w;
    }
}

/* Decide for a path-based operation: true = fail it (errno set). */
static bool hit_path(unsigned op, const char *name, int dirfd, const char *path)
{
    setup();
    char abs[PATH_MAX];
    if (!cfg.dirlen || !abs_path(dirfd, path, abs, sizeof abs) || !under(abs))
        return false;
    /* a full disk refuses new entries only once it is full */
    bool fail = (cfg.ops & op) != 0 && (cfg.err == EROFS || op == OP_UNLINK || cfg.written >= cfg.after);
    trace(name, 0, abs, fail);
    crash_point(name, abs);
    if (fail)
        errno = cfg.err;
    return fail;
}

static bool hit_fd(unsigned op, const char *name, int fd)
{
    setup();
    char p[PATH_MAX];
    if (!cfg.dirlen || !fd_path(fd, p, sizeof p) || !under(p))
        return false;
    bool fail = (cfg.ops & op) != 0;
    trace(name, 0, p, fail);
    crash_point(name, p);
    if (fail)
        errno = cfg.err;
    return fail;
}

/* A write of len bytes to fd: how many may go through (len: all; 0 with errno: none). */
static size_t write_budget(int fd, size_t len, bool *fail)
{
    *fail = false;
    setup();
    char p[PATH_MAX];
    if (!cfg.dirlen || !fd_path(fd, p, sizeof p) || !under(p))
        return len;
    if (!(cfg.ops & OP_WRITE)) {
        trace("write", len, p, false);
        if (crash_point("write", p)) { /* torn: half of it, then the crash */
            cfg.kill_after = true;
            return len / 2;
        }
        return len;
    }
    long long left = cfg.after - cfg.written;
    if (left <= 0) {
        trace("write", len, p, true);
        *fail = true;
        errno = cfg.err;
        return 0;
    }
    size_t ok = (long long)len > left ? (size_t)left : len;
    trace("write", ok, p, false);
    cfg.written += (long long)ok;
    return ok;
}

/* Whether an open can fail: on a read-only file system any open for writing does; on a
 * full one only the creation of a new file. */
static bool exists(int dirfd, const char *path)
{
    struct stat st;
    return fstatat(dirfd, path, &st, 0) == 0;
}

static bool writes_to(int dirfd, const char *path, int flags)
{
    setup();
    if (cfg.err == EROFS)
        return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND)) != 0;
    return (flags & O_CREAT) && !exists(dirfd, path);
}

#define OPEN_BODY(realname, dirfd, path)                                                                          \
    mode_t mode = 0;                                                                                              \
    if (flags & (O_CREAT | O_TMPFILE)) {                                                                          \
        va_list ap;                                                                                               \
        va_start(ap, flags);                                                                                      \
        mode = (mode_t)va_arg(ap, int);                                                                           \
        va_end(ap);                                                                                               \
    }                                                                                                             \
    if (writes_to(dirfd, path, flags) && hit_path(OP_OPEN, "open", dirfd, path))                                               \
        return -1;

int open(const char *path, int flags, ...)
{
    OPEN_BODY(open, AT_FDCWD, path)
    return REAL(open)(path, flags, mode);
}

int open64(const char *path, int flags, ...)
{
    OPEN_BODY(open64, AT_FDCWD, path)
    return REAL(open64)(path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...)
{
    OPEN_BODY(openat, dirfd, path)
    return REAL(openat)(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...)
{
    OPEN_BODY(openat64, dirfd, path)
    return REAL(openat64)(dirfd, path, flags, mode);
}

int creat(const char *path, mode_t mode)
{
    if (hit_path(OP_OPEN, "open", AT_FDCWD, path))
        return -1;
    return REAL(creat)(path, mode);
}

int mkstemp(char *tmpl)
{
    if (hit_path(OP_OPEN, "open", AT_FDCWD, tmpl))
        return -1;
    int fd = REAL(mkstemp)(tmpl);
    return fd;
}

int mkstemp64(char *tmpl)
{
    if (hit_path(OP_OPEN, "open", AT_FDCWD, tmpl))
        return -1;
    return REAL(mkstemp64)(tmpl);
}

int mkostemp(char *tmpl, int flags)
{
    if (hit_path(OP_OPEN, "open", AT_FDCWD, tmpl))
        return -1;
    return REAL(mkostemp)(tmpl, flags);
}

ssize_t write(int fd, const void *buf, size_t len)
{
    bool fail;
    size_t n = write_budget(fd, len, &fail);
    if (fail)
        return -1;
    ssize_t w = REAL(write)(fd, buf, n);
    if (cfg.kill_after)
        kill(getpid(), SIGKILL);
    return w;
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
    bool fail;
    size_t n = write_budget(fd, len, &fail);
    if (fail)
        return -1;
    ssize_t w = REAL(pwrite)(fd, buf, n, off);
    if (cfg.kill_after)
        kill(getpid(), SIGKILL);
    return w;
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off64_t off)
{
    bool fail;
    size_t n = write_budget(fd, len, &fail);
    if (fail)
        return -1;
    ssize_t w = REAL(pwrite64)(fd, buf, n, off);
    if (cfg.kill_after)
        kill(getpid(), SIGKILL);
    return w;
}

ssize_t writev(int fd, const struct iovec *iov, int cnt)
{
    size_t len = 0;
    for (int i = 0; i < cnt; i++)
        len += iov[i].iov_len;
    bool fail;
    size_t n = write_budget(fd, len, &fail);
    if (fail)
        return -1;
    if (n == len)
        return REAL(writev)(fd, iov, cnt);
    if (cfg.kill_after) {
        /* torn: the first half, then the crash */
        for (int i = 0; i < cnt && n; i++) {
            size_t k = iov[i].iov_len < n ? iov[i].iov_len : n;
            if (REAL(write)(fd, iov[i].iov_base, k) < 0)
                break;
            n -= k;
        }
        kill(getpid(), SIGKILL);
    }
    /* cut short: write the first n bytes only */
    ssize_t done = 0;
    for (int i = 0; i < cnt && (size_t)done < n; i++) {
        size_t k = iov[i].iov_len < n - (size_t)done ? iov[i].iov_len : n - (size_t)done;
        ssize_t w = REAL(write)(fd, iov[i].iov_base, k);
        if (w < 0)
            return done ? done : -1;
        done += w;
        if ((size_t)w < k)
            break;
    }
    return done;
}

int fallocate(int fd, int mode, off_t off, off_t len)
{
    if (hit_fd(OP_WRITE, "fallocate", fd))
        return -1;
    return REAL(fallocate)(fd, mode, off, len);
}

int posix_fallocate(int fd, off_t off, off_t len)
{
    setup();
    if (hit_fd(OP_WRITE, "fallocate", fd))
        return cfg.err; /* returns the error, errno untouched by contract */
    return REAL(posix_fallocate)(fd, off, len);
}

int fsync(int fd)
{
    if (hit_fd(OP_FSYNC, "fsync", fd))
        return -1;
    return REAL(fsync)(fd);
}

int fdatasync(int fd)
{
    if (hit_fd(OP_FSYNC, "fsync", fd))
        return -1;
    return REAL(fdatasync)(fd);
}

int ftruncate(int fd, off_t len)
{
    if (hit_fd(OP_TRUNCATE, "truncate", fd))
        return -1;
    return REAL(ftruncate)(fd, len);
}

int ftruncate64(int fd, off64_t len)
{
    if (hit_fd(OP_TRUNCATE, "truncate", fd))
        return -1;
    return REAL(ftruncate64)(fd, len);
}

int rename(const char *a, const char *b)
{
    if (hit_path(OP_RENAME, "rename", AT_FDCWD, b) || hit_path(OP_RENAME, "rename", AT_FDCWD, a))
        return -1;
    return REAL(rename)(a, b);
}

int renameat(int da, const char *a, int db, const char *b)
{
    if (hit_path(OP_RENAME, "rename", db, b) || hit_path(OP_RENAME, "rename", da, a))
        return -1;
    return REAL(renameat)(da, a, db, b);
}

int link(const char *a, const char *b)
{
    if (hit_path(OP_LINK, "link", AT_FDCWD, b))
        return -1;
    return REAL(link)(a, b);
}

int linkat(int da, const char *a, int db, const char *b, int flags)
{
    if (hit_path(OP_LINK, "link", db, b))
        return -1;
    return REAL(linkat)(da, a, db, b, flags);
}

int unlink(const char *p)
{
    if (hit_path(OP_UNLINK, "unlink", AT_FDCWD, p))
        return -1;
    return REAL(unlink)(p);
}

int unlinkat(int d, const char *p, int flags)
{
    if (hit_path(OP_UNLINK, "unlink", d, p))
        return -1;
    return REAL(unlinkat)(d, p, flags);
}

int mkdir(const char *p, mode_t mode)
{
    if (!exists(AT_FDCWD, p) && hit_path(OP_MKDIR, "mkdir", AT_FDCWD, p))
        return -1;
    return REAL(mkdir)(p, mode);
}

int mkdirat(int d, const char *p, mode_t mode)
{
    if (!exists(d, p) && hit_path(OP_MKDIR, "mkdir", d, p))
        return -1;
    return REAL(mkdirat)(d, p, mode);
}

/*
 * The files and folders the library writes: reports, heatmaps, preprocessed images,
 * tensors. One policy for all of them:
 *
 * - a regular file (or a new name) is written under a unique temporary name next to it,
 *   mode 0600 whatever the umask (they hold photos of a person or numbers derived from
 *   them), synced, and renamed over the target only once complete: a reader never sees
 *   half a file and a failed write leaves an earlier file intact;
 * - a symbolic link is followed to its target, which is the file replaced (the link
 *   stays a link);
 * - standard output ("-", /dev/stdout, /dev/fd/N) and pipes or character devices are
 *   written directly: renaming over them would replace a device node or the shell's
 *   redirection with a regular file;
 * - nothing else (a folder, a socket, a block device) is ever renamed over.
 *
 * Folders are created 0700.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core.h"

#define MAX_LINKS 40

/* The descriptor an already open stream name stands for, or -1. */
static int named_fd(const char *path)
{
    if (strcmp(path, "-") == 0 || strcmp(path, "/dev/stdout") == 0)
        return 1;
    if (strcmp(path, "/dev/stderr") == 0)
        return 2;
    const char *num = NULL;
    if (strncmp(path, "/dev/fd/", 8) == 0)
        num = path + 8;
    else if (strncmp(path, "/proc/self/fd/", 14) == 0)
        num = path + 14;
    if (!num || !*num)
        return -1;
    char *end;
    errno = 0;
    long n = strtol(num, &end, 10);
    if (errno || *end || n < 0 || n > INT_MAX)
        return -1;
    return (int)n;
}

/* Follow the links of path to the name they end at (which may not exist yet). NULL with
 * errno set on failure (ELOOP for too many links). Caller frees. */
static char *resolve_links(const char *path)
{
    char *cur = bcd__strdup(path);
    for (int hops = 0; cur; hops++) {
        struct stat st;
        if (lstat(cur, &st) != 0 || !S_ISLNK(st.st_mode))
            return cur; /* missing (created there) or not a link */
        if (hops == MAX_LINKS) {
            free(cur);
            errno = ELOOP;
            return NULL;
        }
        char buf[PATH_MAX];
        ssize_t n = readlink(cur, buf, sizeof buf - 1);
        if (n < 0) {
            int e = errno;
            free(cur);
            errno = e;
            return NULL;
        }
        buf[n] = '\0';
        char *next;
        const char *slash = strrchr(cur, '/');
        if (buf[0] == '/' || !slash) {
            next = bcd__strdup(buf);
        } else {
            size_t d = (size_t)(slash - cur) + 1;
            next = malloc(d + (size_t)n + 1);
            if (next) {
                memcpy(next, cur, d);
                memcpy(next + d, buf, (size_t)n + 1);
            }
        }
        free(cur);
        cur = next;
    }
    errno = ENOMEM;
    return NULL;
}

static bcd_status write_all(int fd, const void *data, size_t len)
{
    const unsigned char *p = data;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = ENOSPC;
            return BCD_EIO;
        }
        p += w;
        len -= (size_t)w;
    }
    return BCD_OK;
}

bcd_status bcd__file_open(struct bcd__file *f, bcd_error *err, const char *path)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    if (!path || !*path)
        return bcd__fail(err, BCD_EINVAL, "invalid_argument", "a file path is required");
    size_t n = strlen(path);
    if (path[n - 1] == '/')
        return bcd__fail(err, BCD_EINVAL, "invalid_argument", "'%.200s' names a folder, not a file", path);

    int sfd = named_fd(path);
    if (sfd >= 0) {
        if (fcntl(sfd, F_GETFL) == -1)
            return bcd__fail(err, BCD_EIO, "file_write_failed", "cannot write %.200s: %s", path, strerror(errno));
        f->fd = sfd;
        f->direct = true;
        f->borrowed = true;
        return BCD_OK;
    }

    char *target = resolve_links(path);
    if (!target)
        return bcd__fail(err, errno == ENOMEM ? BCD_ENOMEM : BCD_EIO, "file_write_failed",
                         "cannot follow the link %.200s: %s", path, strerror(errno));
    struct stat st;
    if (stat(target, &st) == 0 && !S_ISREG(st.st_mode)) {
        if (!S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode)) {
            bcd_status r = bcd__fail(err, BCD_EINVAL, "file_write_failed", "%.200s is %s, not a file", target,
                                     S_ISDIR(st.st_mode) ? "a folder" : "not a regular file");
            free(target);
            return r;
        }
        /* a pipe or a device (/dev/null, a terminal): written in place */
        int fd = open(target, O_WRONLY | O_NOCTTY | O_CLOEXEC);
        struct stat again;
        if (fd >= 0 && (fstat(fd, &again) != 0 || S_ISREG(again.st_mode) || S_ISDIR(again.st_mode))) {
            close(fd);
            fd = -1;
            errno = EINVAL;
        }
        if (fd < 0) {
            bcd_status r = bcd__fail(err, BCD_EIO, "file_write_failed", "cannot open %.200s: %s", target,
                                     strerror(errno));
            free(target);
            return r;
        }
        f->fd = fd;
        f->direct = true;
        f->target = target;
        return BCD_OK;
    }

    size_t tn = strlen(target);
    f->tmp = malloc(tn + sizeof ".XXXXXX");
    if (!f->tmp) {
        free(target);
        return bcd__fail(err, BCD_ENOMEM, "out_of_memory", "out of memory");
    }
    memcpy(f->tmp, target, tn);
    memcpy(f->tmp + tn, ".XXXXXX", sizeof ".XXXXXX");
    f->target = target;
    f->fd = mkstemp(f->tmp); /* mode 0600 */
    if (f->fd < 0) {
        bcd_status r = bcd__fail(err, BCD_EIO, "file_write_failed", "cannot create a file next to %.200s: %s",
                                 target, strerror(errno));
        free(f->tmp);
        free(f->target);
        f->tmp = f->target = NULL;
        return r;
    }
    return BCD_OK;
}

bcd_status bcd__file_put(struct bcd__file *f, bcd_error *err, const void *data, size_t len)
{
    if (write_all(f->fd, data, len) != BCD_OK)
        return bcd__fail(err, BCD_EIO, "file_write_failed", "cannot write %.200s: %s",
                         f->target ? f->target : "standard output", strerror(errno));
    return BCD_OK;
}

void bcd__file_abort(struct bcd__file *f)
{
    if (f->fd >= 0 && !f->borrowed)
        close(f->fd);
    if (f->tmp)
        unlink(f->tmp);
    free(f->tmp);
    free(f->target);
    memset(f, 0, sizeof *f);
    f->fd = -1;
}

bcd_status bcd__file_commit(struct bcd__file *f, bcd_error *err)
{
    const char *name = f->target ? f->target : "standard output";
    bcd_status st = BCD_OK;
    if (f->direct) {
        if (!f->borrowed && close(f->fd) != 0)
            st = bcd__fail(err, BCD_EIO, "file_write_failed", "cannot write %.200s: %s", name, strerror(errno));
        f->fd = -1;
        bcd__file_abort(f);
        return st;
    }
    int fd = f->fd;
    f->fd = -1;
    if (fsync(fd) != 0) {
        st = bcd__fail(err, BCD_EIO, "file_write_failed", "cannot write %.200s: %s", f->tmp, strerror(errno));
        close(fd);
    } else if (close(fd) != 0) {
        st = bcd__fail(err, BCD_EIO, "file_write_failed", "cannot write %.200s: %s", f->tmp, strerror(errno));
    }
    /* what was a file (or nothing) when opened must still be one: never rename over a
     * folder, device or link put there since */
    struct stat sb;
    if (st == BCD_OK && lstat(f->target, &sb) == 0 && !S_ISREG(sb.st_mode))
        st = bcd__fail(err, BCD_EIO, "file_write_failed", "%.200s changed into something that is not a file", name);
    if (st == BCD_OK && rename(f->tmp, f->target) != 0)
        st = bcd__fail(err, BCD_EIO, "file_write_failed", "cannot rename %.200s to %.200s: %s", f->tmp, name,
                       strerror(errno));
    if (st == BCD_OK) {
        free(f->tmp); /* renamed: nothing to remove */
        f->tmp = NULL;
        char *dir = bcd__strdup(f->target);
        if (dir) {
            char *slash = strrchr(dir, '/');
            if (slash == dir)
                dir[1] = '\0';
            else if (slash)
                *slash = '\0';
            int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd >= 0) {
                (void)fsync(dfd); /* best effort: the file itself is complete */
                close(dfd);
            }
            free(dir);
        }
    }
    bcd__file_abort(f);
    return st;
}

bcd_status bcd__file_write(bcd_error *err, const char *path, const void *data, size_t len)
{
    if (!data && len)
        return bcd__fail(err, BCD_EINVAL, "invalid_argument", "no data to write");
    struct bcd__file f;
    bcd_status st = bcd__file_open(&f, err, path);
    if (st != BCD_OK)
        return st;
    if ((st = bcd__file_put(&f, err, data, len)) != BCD_OK) {
        bcd__file_abort(&f);
        return st;
    }
    return bcd__file_commit(&f, err);
}

bcd_status bcd__mkdirs(bcd_error *err, const char *path, bool *created)
{
    if (created)
        *created = false;
    if (!path || !*path)
        return bcd__fail(err, BCD_EINVAL, "invalid_argument", "a folder path is required");
    char *p = bcd__strdup(path);
    if (!p)
        return bcd__fail(err, BCD_ENOMEM, "out_of_memory", "out of memory");
    bcd_status st = BCD_OK;
    for (char *s = p + 1;; s++) {
        bool end = *s == '\0';
        if (*s != '/' && !end)
            continue;
        *s = '\0';
        struct stat sb;
        if (mkdir(p, 0700) == 0) { /* folders of photos of a person */
            if (end && created)
                *created = true;
        } else if (errno != EEXIST || stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
            int e = errno == EEXIST ? ENOTDIR : errno;
            st = bcd__fail(err, BCD_EIO, "file_write_failed", "cannot create the folder %.200s: %s", p,
                           strerror(e));
            break;
        }
        if (end)
            break;
        *s = '/';
        while (s[1] == '/')
            s++;
    }
    free(p);
    return st;
}

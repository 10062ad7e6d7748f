#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "core.h"

char *bcd__strdup(const char *s)
{
    return s ? bcd__strndup(s, strlen(s)) : NULL;
}

char *bcd__strndup(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

size_t bcd__utf8_seq(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    /* the lead byte gives the length and the bounds of the first continuation byte */
    unsigned lo = 0x80, hi = 0xBF;
    size_t n;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        lo = c == 0xE0 ? 0xA0 : 0x80; /* overlong */
        hi = c == 0xED ? 0x9F : 0xBF; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        lo = c == 0xF0 ? 0x90 : 0x80; /* overlong */
        hi = c == 0xF4 ? 0x8F : 0xBF; /* above U+10FFFF */
    } else
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < n; k++)
        if (s[k] < 0x80 || s[k] > 0xBF)
            return 0;
    return n;
}

char *bcd__utf8_repair(char *s)
{
    if (!s)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t bad = 0, len = 0;
    while (p[len]) {
        size_t n = bcd__utf8_seq(p + len);
        bad += n == 0;
        len += n ? n : 1;
    }
    if (!bad)
        return s;
    char *d = malloc(len + 2 * bad + 1);
    if (!d) {
        free(s);
        return NULL;
    }
    size_t o = 0;
    for (size_t i = 0; i < len;) {
        size_t n = bcd__utf8_seq(p + i);
        if (n) {
            memcpy(d + o, p + i, n);
            o += n;
            i += n;
        } else {
            memcpy(d + o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    d[o] = '\0';
    free(s);
    return d;
}

void bcd__free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

enum bcd__read_result bcd__read_regular(const char *path, size_t max_len, unsigned char **out, size_t *len,
                                        int *err_no, size_t *size)
{
    *err_no = 0;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        *err_no = errno;
        return errno == ENOENT || errno == ENOTDIR ? BCD__READ_MISSING : BCD__READ_OPEN;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return BCD__READ_NOT_FILE;
    }
    size_t n = (size_t)st.st_size;
    *size = n;
    if (max_len && n > max_len) {
        close(fd);
        return BCD__READ_TOO_LARGE;
    }
    unsigned char *buf = malloc(n + 1);
    if (!buf) {
        close(fd);
        return BCD__READ_NOMEM;
    }
    long long deadline = now_ms() + BCD__READ_TIMEOUT_MS;
    size_t got = 0;
    enum bcd__read_result r = BCD__READ_OK;
    while (got < n) {
        size_t want = n - got < (1u << 20) ? n - got : (1u << 20);
        ssize_t k = read(fd, buf + got, want);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (k <= 0) {
            *err_no = k < 0 ? errno : 0;
            r = BCD__READ_IO;
            break;
        }
        got += (size_t)k;
        if (got < n && now_ms() > deadline) {
            r = BCD__READ_SLOW;
            break;
        }
    }
    close(fd);
    if (r != BCD__READ_OK) {
        free(buf);
        return r;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return BCD__READ_OK;
}

bcd_status bcd__read_file(bcd_ctx *ctx, const char *path, size_t max_len, unsigned char **out, size_t *len)
{
    int e = 0;
    size_t size = 0;
    switch (bcd__read_regular(path, max_len, out, len, &e, &size)) {
    case BCD__READ_OK:
        return BCD_OK;
    case BCD__READ_MISSING:
        return bcd__ctx_fail(ctx, BCD_ENOTFOUND, "file_not_found", "no such file: %s", path);
    case BCD__READ_OPEN:
        return bcd__ctx_fail(ctx, BCD_EIO, "file_unreadable", "cannot open %s: %s", path, strerror(e));
    case BCD__READ_NOT_FILE:
        return bcd__ctx_fail(ctx, BCD_EIO, "file_unreadable",
                             "not a regular file: %s (a FIFO, device or folder is never read)", path);
    case BCD__READ_TOO_LARGE:
        return bcd__ctx_fail(ctx, BCD_ELIMIT, "file_too_large", "%s is %zu bytes, limit %zu", path, size,
                             max_len);
    case BCD__READ_NOMEM:
        return bcd__ctx_fail(ctx, BCD_ENOMEM, "out_of_memory", "cannot allocate %zu bytes", size + 1);
    case BCD__READ_IO:
        return bcd__ctx_fail(ctx, BCD_EIO, "file_unreadable", "short read on %s%s%s", path, e ? ": " : "",
                             e ? strerror(e) : "");
    case BCD__READ_SLOW:
        return bcd__ctx_fail(ctx, BCD_EIO, "file_unreadable", "reading %s took longer than %d s; given up", path,
                             BCD__READ_TIMEOUT_MS / 1000);
    }
    return bcd__ctx_fail(ctx, BCD_ERROR, "internal_error", "cannot read %s", path);
}

bcd_status bcd__uuid_v4(char buf[37])
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1)
        return BCD_ERROR;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
             b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return BCD_OK;
}

bool bcd__uuid_valid(const char *s)
{
    if (!s || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return true;
}

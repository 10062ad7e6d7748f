#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

void bcd__free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

bcd_status bcd__read_file(bcd_ctx *ctx, const char *path, size_t max_len, unsigned char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            return bcd__ctx_fail(ctx, BCD_ENOTFOUND, "file_not_found", "no such file: %s", path);
        return bcd__ctx_fail(ctx, BCD_EIO, "file_unreadable", "cannot open %s: %s", path, strerror(errno));
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return bcd__ctx_fail(ctx, BCD_EIO, "file_unreadable", "not a regular file: %s", path);
    }
    size_t size = (size_t)st.st_size;
    if (max_len && size > max_len) {
        fclose(f);
        return bcd__ctx_fail(ctx, BCD_ELIMIT, "file_too_large", "%s is %zu bytes, limit %zu", path, size,
                             max_len);
    }
    unsigned char *buf = malloc(size + 1);
    if (!buf) {
        fclose(f);
        return bcd__ctx_fail(ctx, BCD_ENOMEM, "out_of_memory", "cannot allocate %zu bytes", size + 1);
    }
    size_t got = fread(buf, 1, size, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || got != size) {
        free(buf);
        return bcd__ctx_fail(ctx, BCD_EIO, "file_unreadable", "short read on %s", path);
    }
    buf[size] = '\0';
    *out = buf;
    *len = size;
    return BCD_OK;
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

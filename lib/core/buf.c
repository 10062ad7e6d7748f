/* A growing NUL-terminated string buffer shared by the layers that build text (HTTP
 * requests, JSON, HTML). An allocation failure is sticky: b->oom is set, later appends
 * are ignored, and the owner checks oom once at the end. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

bool bcd__buf_reserve(struct bcd__buf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) {
        b->oom = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void bcd__buf_putn(struct bcd__buf *b, const char *s, size_t n)
{
    if (!bcd__buf_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void bcd__buf_put(struct bcd__buf *b, const char *s)
{
    bcd__buf_putn(b, s, strlen(s));
}

void bcd__buf_printf(struct bcd__buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        return;
    }
    if (!bcd__buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void bcd__buf_free(struct bcd__buf *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

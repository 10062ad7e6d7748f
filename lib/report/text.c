/* Text helpers of the report layer: a growable buffer, HTML escaping, base64, numbers
 * that do not depend on the locale, timestamps. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report.h"

const char *const bcd__rep_angles[BCD__REP_ANGLES] = {"front", "left", "right", "up", "down", "raised"};

int bcd__rep_angle_index(const char *angle)
{
    for (int i = 0; angle && i < BCD__REP_ANGLES; i++)
        if (strcmp(angle, bcd__rep_angles[i]) == 0)
            return i;
    return -1;
}

double bcd__rep_round(double x)
{
    if (!isfinite(x))
        return x;
    double r = round(x * 1e6) / 1e6;
    return r == 0.0 ? 0.0 : r; /* no "-0" */
}

void bcd__sb_num(struct bcd__buf *b, const char *fmt, double v)
{
    char buf[64];
    if (!isfinite(v))
        v = 0.0;
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#endif
    snprintf(buf, sizeof buf, fmt, v);
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
    /* a host program may have set LC_NUMERIC: HTML, SVG and JSON need '.' */
    bool nonzero = false;
    for (char *p = buf; *p; p++) {
        if (*p == ',')
            *p = '.';
        nonzero |= *p >= '1' && *p <= '9';
    }
    /* "-0.000": a tiny negative value rounded away reads as zero */
    bcd__buf_put(b, buf[0] == '-' && !nonzero ? buf + 1 : buf);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned min;
    if ((c & 0xe0) == 0xc0) {
        n = 2;
        min = 0x80;
        c &= 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
        n = 3;
        min = 0x800;
        c &= 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
        n = 4;
        min = 0x10000;
        c &= 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    return n;
}

void bcd__sb_html(struct bcd__buf *b, const char *s)
{
    if (!s)
        return;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t run = 0;
        /* copy plain runs at once */
        while (p[run] && p[run] >= 0x20 && p[run] < 0x7f && !strchr("&<>\"':", p[run]))
            run++;
        if (run) {
            bcd__buf_putn(b, (const char *)p, run);
            p += run;
            continue;
        }
        unsigned char c = *p;
        switch (c) {
        case '&': bcd__buf_put(b, "&amp;"); p++; continue;
        case '<': bcd__buf_put(b, "&lt;"); p++; continue;
        case '>': bcd__buf_put(b, "&gt;"); p++; continue;
        case '"': bcd__buf_put(b, "&quot;"); p++; continue;
        case '\'': bcd__buf_put(b, "&#39;"); p++; continue;
        case ':':
            /* "scheme://" in stored text stays readable but never forms a URL in the file */
            if (p[1] == '/' && p[2] == '/') {
                bcd__buf_put(b, ":&#47;&#47;");
                p += 3;
            } else {
                bcd__buf_put(b, ":");
                p++;
            }
            continue;
        default: break;
        }
        if (c == '\n' || c == '\t') {
            bcd__buf_putn(b, (const char *)p, 1);
            p++;
        } else if (c < 0x20 || c == 0x7f) {
            p++; /* control characters carry nothing a reader needs */
        } else {
            size_t n = utf8_len(p);
            if (n) {
                bcd__buf_putn(b, (const char *)p, n);
                p += n;
            } else {
                bcd__buf_put(b, "\xef\xbf\xbd");
                p++;
            }
        }
    }
}

void bcd__sb_base64(struct bcd__buf *b, const unsigned char *data, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (len > (SIZE_MAX / 4) * 3 - 3 || !bcd__buf_reserve(b, (len + 2) / 3 * 4))
        return;
    char *o = b->p + b->len;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        unsigned v = (unsigned)data[i] << 16 | (unsigned)data[i + 1] << 8 | data[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = tab[v & 63];
    }
    if (i < len) {
        unsigned v = (unsigned)data[i] << 16 | (i + 1 < len ? (unsigned)data[i + 1] << 8 : 0u);
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = i + 1 < len ? tab[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    b->len = (size_t)(o - b->p);
    b->p[b->len] = '\0';
}


bool bcd__rep_parse_time(const char *ts, double *out)
{
    int y, mo, d, h, mi, n = 0;
    double sec;
    if (!ts || sscanf(ts, "%4d-%2d-%2dT%2d:%2d:%lf%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6)
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec < 0 || sec >= 61)
        return false;
    /* days from the civil date (proleptic Gregorian), no timezone database involved */
    int yy = y - (mo <= 2);
    int era = (yy >= 0 ? yy : yy - 399) / 400;
    int yoe = yy - era * 400;
    int doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    double days = (double)era * 146097.0 + doe - 719468.0;
    *out = days * 86400.0 + h * 3600.0 + mi * 60.0 + sec;
    /* an explicit offset such as +02:00 (PostgREST may answer that way) */
    const char *z = ts + n;
    int oh, om;
    if ((*z == '+' || *z == '-') && sscanf(z + 1, "%2d:%2d", &oh, &om) == 2)
        *out -= (*z == '+' ? 1 : -1) * (oh * 3600.0 + om * 60.0);
    return true;
}

void bcd__rep_format_date(char *buf, size_t cap, const char *ts, int style)
{
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    double t;
    if (!bcd__rep_parse_time(ts, &t)) {
        snprintf(buf, cap, "%s", ts ? ts : "");
        return;
    }
    long long secs = (long long)floor(t);
    long long days = secs >= 0 ? secs / 86400 : (secs - 86399) / 86400;
    long long rem = secs - days * 86400;
    /* civil date from days (inverse of the above) */
    long long z = days + 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    long long doe = z - era * 146097;
    long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long y = yoe + era * 400;
    long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long long mp = (5 * doy + 2) / 153;
    long long d = doy - (153 * mp + 2) / 5 + 1;
    long long m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    if (style == BCD__REP_DATE_TIME)
        snprintf(buf, cap, "%lld %s %lld %02lld:%02lld UTC", d, months[m - 1], y, rem / 3600, rem % 3600 / 60);
    else if (style == BCD__REP_DATE_SHORT_TIME)
        snprintf(buf, cap, "%lld %s %02lld:%02lld", d, months[m - 1], rem / 3600, rem % 3600 / 60);
    else
        snprintf(buf, cap, "%lld %s %lld", d, months[m - 1], y);
}

bool bcd__rep_same_day(const char *a, const char *b)
{
    double x, y;
    if (!bcd__rep_parse_time(a, &x) || !bcd__rep_parse_time(b, &y))
        return false;
    return floor(x / 86400.0) == floor(y / 86400.0);
}

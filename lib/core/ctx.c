#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "core.h"

static const struct {
    const char *name;
    const char *dflt;
    bool secret;
} keys[BCD__CFG_COUNT] = {
    [BCD__CFG_SUPABASE_URL] = {"SUPABASE_URL", NULL, false},
    [BCD__CFG_SUPABASE_SERVICE_ROLE_KEY] = {"SUPABASE_SERVICE_ROLE_KEY", NULL, true},
    [BCD__CFG_SUPABASE_STORAGE_BUCKET] = {"SUPABASE_STORAGE_BUCKET", "bcd-images", false},
    [BCD__CFG_STORE] = {"BCD_STORE", "local", false},
    [BCD__CFG_DATA_DIR] = {"BCD_DATA_DIR", NULL, false}, /* computed: see default_data_dir() */
    [BCD__CFG_MODEL] = {"BCD_MODEL", "builtin", false},
    [BCD__CFG_DEVICE] = {"BCD_DEVICE", "auto", false},
    [BCD__CFG_THREADS] = {"BCD_THREADS", "0", false},
    [BCD__CFG_MAX_PIXELS] = {"BCD_MAX_PIXELS", "100000000", false},
    [BCD__CFG_MAX_DIMENSION] = {"BCD_MAX_DIMENSION", "65500", false},
    [BCD__CFG_HTTP_TIMEOUT_MS] = {"BCD_HTTP_TIMEOUT_MS", "60000", false},
    [BCD__CFG_HTTP_CONNECT_TIMEOUT_MS] = {"BCD_HTTP_CONNECT_TIMEOUT_MS", "10000", false},
    [BCD__CFG_DETECT] = {"BCD_DETECT", "on", false},
    [BCD__CFG_HTTP_MAX_RESPONSE_BYTES] = {"BCD_HTTP_MAX_RESPONSE_BYTES", "67108864", false},
    [BCD__CFG_HTTP_MAX_REQUEST_BYTES] = {"BCD_HTTP_MAX_REQUEST_BYTES", "52428800", false},
    [BCD__CFG_LESIONS] = {"BCD_LESIONS", "on", false},
    [BCD__CFG_MM_PER_PX] = {"BCD_MM_PER_PX", NULL, false},
    [BCD__CFG_IMAGE_DIRS] = {"BCD_IMAGE_DIRS", NULL, false},
    [BCD__CFG_JOB_TIMEOUT] = {"BCD_JOB_TIMEOUT", "1800", false},
};

static int key_index(const char *name)
{
    if (!name)
        return -1;
    for (int i = 0; i < BCD__CFG_COUNT; i++)
        if (strcmp(keys[i].name, name) == 0)
            return i;
    return -1;
}

static void free_val(int k, char *v)
{
    if (keys[k].secret)
        bcd__free_secret(v);
    else
        free(v);
}

static bool parse_ull(const char *s, unsigned long long *out)
{
    if (!s || !*s)
        return false;
    for (const char *p = s; *p; p++)
        if (!isdigit((unsigned char)*p))
            return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

/* NULL if valid, otherwise why not. */
static const char *validate(int k, const char *v)
{
    unsigned long long n;
    switch ((enum bcd__cfg_key)k) {
    case BCD__CFG_STORE:
        return strcmp(v, "local") == 0 || strcmp(v, "supabase") == 0 ? NULL : "must be local or supabase";
    case BCD__CFG_DEVICE:
        return strcmp(v, "auto") == 0 || strcmp(v, "cpu") == 0 || strcmp(v, "cuda") == 0
                   ? NULL
                   : "must be auto, cpu or cuda";
    case BCD__CFG_DETECT:
    case BCD__CFG_LESIONS:
        return strcmp(v, "on") == 0 || strcmp(v, "off") == 0 ? NULL : "must be on or off";
    case BCD__CFG_MM_PER_PX: {
        char *end;
        double d = strtod(v, &end);
        return *v && !*end && d > 0.0 && d < 100.0 ? NULL : "must be a number of mm per pixel, above 0 and below 100";
    }
    case BCD__CFG_THREADS:
        return parse_ull(v, &n) && n <= 1024 ? NULL : "must be an integer from 0 to 1024";
    case BCD__CFG_JOB_TIMEOUT:
        return parse_ull(v, &n) && n >= 1 && n <= 604800 ? NULL : "must be an integer from 1 to 604800 (s)";
    case BCD__CFG_MAX_PIXELS:
    case BCD__CFG_MAX_DIMENSION:
        return parse_ull(v, &n) && n > 0 ? NULL : "must be a positive integer";
    case BCD__CFG_HTTP_TIMEOUT_MS:
    case BCD__CFG_HTTP_CONNECT_TIMEOUT_MS:
        return parse_ull(v, &n) && n >= 100 && n <= 3600000 ? NULL : "must be an integer from 100 to 3600000 (ms)";
    case BCD__CFG_HTTP_MAX_RESPONSE_BYTES:
    case BCD__CFG_HTTP_MAX_REQUEST_BYTES:
        return parse_ull(v, &n) && n >= 1024 && n <= (1ull << 32) ? NULL
                                                                 : "must be an integer from 1024 to 4294967296 (bytes)";
    case BCD__CFG_SUPABASE_URL:
        return strncmp(v, "http://", 7) == 0 || strncmp(v, "https://", 8) == 0 ? NULL
                                                                                : "must start with http:// or https://";
    case BCD__CFG_DATA_DIR:
    case BCD__CFG_MODEL:
    case BCD__CFG_SUPABASE_STORAGE_BUCKET:
        return *v ? NULL : "must not be empty";
    case BCD__CFG_IMAGE_DIRS:
        for (const char *p = v; *p; p = strchr(p, ':') ? strchr(p, ':') + 1 : p + strlen(p))
            if (*p != '/')
                return "must be absolute folders separated by ':'";
        return NULL;
    case BCD__CFG_SUPABASE_SERVICE_ROLE_KEY:
    case BCD__CFG_COUNT:
        break;
    }
    return NULL;
}

static char *default_data_dir(void)
{
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    char buf[4096];
    if (xdg && *xdg == '/')
        snprintf(buf, sizeof buf, "%s/libbcd", xdg);
    else if (home && *home)
        snprintf(buf, sizeof buf, "%s/.local/share/libbcd", home);
    else
        snprintf(buf, sizeof buf, "./.libbcd");
    return bcd__strdup(buf);
}

bcd_status bcd_ctx_new(bcd_ctx **out)
{
    if (!out)
        return BCD_EINVAL;
    bcd_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return BCD_ENOMEM;
    ctx->default_data_dir = default_data_dir();
    if (!ctx->default_data_dir) {
        free(ctx);
        return BCD_ENOMEM;
    }
    *out = ctx;
    return BCD_OK;
}

void bcd_ctx_free(bcd_ctx *ctx)
{
    if (!ctx)
        return;
    for (int k = 0; k < BCD__CFG_COUNT; k++) {
        free_val(k, ctx->explicit_val[k]);
        free_val(k, ctx->env_val[k]);
        free_val(k, ctx->file_val[k]);
    }
    free(ctx->default_data_dir);
    bcd__error_clear(&ctx->err);
    free(ctx);
}

const char *bcd__cfg(const bcd_ctx *ctx, enum bcd__cfg_key k)
{
    if (ctx->explicit_val[k])
        return ctx->explicit_val[k];
    if (ctx->env_val[k])
        return ctx->env_val[k];
    if (ctx->file_val[k])
        return ctx->file_val[k];
    if (k == BCD__CFG_DATA_DIR)
        return ctx->default_data_dir;
    return keys[k].dflt;
}

unsigned long long bcd__cfg_ull(const bcd_ctx *ctx, enum bcd__cfg_key k, unsigned long long dflt)
{
    unsigned long long v;
    return parse_ull(bcd__cfg(ctx, k), &v) ? v : dflt;
}

bcd_status bcd_ctx_set(bcd_ctx *ctx, const char *key, const char *value)
{
    if (!ctx)
        return BCD_EINVAL;
    bcd__ctx_clear(ctx);
    int k = key_index(key);
    if (k < 0)
        return bcd__ctx_fail(ctx, BCD_EINVAL, "unknown_config_key", "unknown configuration key '%s'",
                             key ? key : "(null)");
    if (value) {
        const char *why = validate(k, value);
        if (why)
            return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_config_value", "%s %s", keys[k].name, why);
    }
    char *copy = NULL;
    if (value && !(copy = bcd__strdup(value)))
        return bcd__ctx_fail(ctx, BCD_ENOMEM, NULL, NULL);
    free_val(k, ctx->explicit_val[k]);
    ctx->explicit_val[k] = copy;
    return BCD_OK;
}

const char *bcd_ctx_get(const bcd_ctx *ctx, const char *key)
{
    int k = key_index(key);
    if (!ctx || k < 0)
        return NULL;
    const char *v = bcd__cfg(ctx, (enum bcd__cfg_key)k);
    if (keys[k].secret)
        return v ? "<set>" : NULL;
    return v;
}

/* Strip surrounding whitespace in place; returns the new start. */
static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

bcd_status bcd__ctx_parse_dotenv(bcd_ctx *ctx, char *text, const char *path)
{
    char *vals[BCD__CFG_COUNT] = {0};
    bcd_status st = BCD_OK;
    int lineno = 0;
    for (char *line = text, *next; line; line = next) {
        lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        char *s = trim(line);
        if (!*s || *s == '#')
            continue;
        if (strncmp(s, "export ", 7) == 0)
            s = trim(s + 7);
        char *eq = strchr(s, '=');
        if (!eq || eq == s) {
            st = bcd__ctx_fail(ctx, BCD_EFORMAT, "invalid_dotenv", "%s:%d: expected KEY=VALUE", path, lineno);
            break;
        }
        *eq = '\0';
        char *name = trim(s);
        char *v = trim(eq + 1);
        size_t n = strlen(v);
        if (n >= 2 && (v[0] == '"' || v[0] == '\'') && v[n - 1] == v[0]) {
            v[n - 1] = '\0';
            v++;
        } else {
            /* unquoted: an inline comment starts at " #" */
            char *hash = strstr(v, " #");
            if (hash) {
                *hash = '\0';
                v = trim(v);
            }
        }
        int k = key_index(name);
        if (k < 0)
            continue;
        const char *why = *v ? validate(k, v) : NULL;
        if (why) {
            st = bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_config_value", "%s:%d: %s %s", path, lineno, name, why);
            break;
        }
        free_val(k, vals[k]);
        vals[k] = NULL;
        if (*v && !(vals[k] = bcd__strdup(v))) {
            st = bcd__ctx_fail(ctx, BCD_ENOMEM, NULL, NULL);
            break;
        }
    }
    for (int k = 0; k < BCD__CFG_COUNT; k++) {
        if (st == BCD_OK) {
            free_val(k, ctx->file_val[k]);
            ctx->file_val[k] = vals[k];
        } else {
            free_val(k, vals[k]);
        }
    }
    return st;
}

bcd_status bcd_ctx_load_env(bcd_ctx *ctx, const char *dotenv_path)
{
    if (!ctx)
        return BCD_EINVAL;
    bcd__ctx_clear(ctx);
    const char *path = dotenv_path ? dotenv_path : ".env";
    if (dotenv_path ? *dotenv_path != '\0' : access(path, F_OK) == 0) {
        unsigned char *text = NULL;
        size_t len = 0;
        bcd_status st = bcd__read_file(ctx, path, 1 << 20, &text, &len);
        if (st != BCD_OK)
            return st;
        st = bcd__ctx_parse_dotenv(ctx, (char *)text, path);
        bcd__free_secret((char *)text);
        if (st != BCD_OK)
            return st;
    }
    char *vals[BCD__CFG_COUNT] = {0};
    for (int k = 0; k < BCD__CFG_COUNT; k++) {
        const char *v = getenv(keys[k].name);
        if (!v || !*v)
            continue;
        const char *why = validate(k, v);
        if (why) {
            for (int j = 0; j < BCD__CFG_COUNT; j++)
                free_val(j, vals[j]);
            return bcd__ctx_fail(ctx, BCD_EINVAL, "invalid_config_value", "environment variable %s %s",
                                 keys[k].name, why);
        }
        if (!(vals[k] = bcd__strdup(v))) {
            for (int j = 0; j < BCD__CFG_COUNT; j++)
                free_val(j, vals[j]);
            return bcd__ctx_fail(ctx, BCD_ENOMEM, NULL, NULL);
        }
    }
    for (int k = 0; k < BCD__CFG_COUNT; k++) {
        free_val(k, ctx->env_val[k]);
        ctx->env_val[k] = vals[k];
    }
    return BCD_OK;
}

bcd_status bcd_ctx_config_json(char **out, const bcd_ctx *ctx)
{
    if (!out || !ctx)
        return BCD_EINVAL;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return BCD_ENOMEM;
    for (int k = 0; k < BCD__CFG_COUNT; k++) {
        const char *v = bcd_ctx_get(ctx, keys[k].name);
        if (v)
            cJSON_AddStringToObject(o, keys[k].name, v);
        else
            cJSON_AddNullToObject(o, keys[k].name);
    }
    char *s = bcd__utf8_repair(cJSON_PrintUnformatted(o)); /* values are the environment's bytes */
    cJSON_Delete(o);
    if (!s)
        return BCD_ENOMEM;
    *out = s;
    return BCD_OK;
}

void bcd_ctx_set_logger(bcd_ctx *ctx, bcd_log_fn fn, void *user)
{
    if (!ctx)
        return;
    ctx->log_fn = fn;
    ctx->log_user = user;
}

void bcd__log(const bcd_ctx *ctx, bcd_log_level level, const char *fmt, ...)
{
    if (!ctx || !ctx->log_fn)
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ctx->log_fn(ctx->log_user, level, buf);
}

/* Keep in step with struct bcd_ctx (core.h): everything but the error detail is copied. */
bcd_status bcd__ctx_clone(bcd_ctx **out, const bcd_ctx *src)
{
    bcd_ctx *c = NULL;
    bcd_status st = bcd_ctx_new(&c);
    if (st != BCD_OK)
        return st;
    bool ok = true;
    for (int k = 0; k < BCD__CFG_COUNT; k++) {
        if (src->explicit_val[k] && !(c->explicit_val[k] = bcd__strdup(src->explicit_val[k])))
            ok = false;
        if (src->env_val[k] && !(c->env_val[k] = bcd__strdup(src->env_val[k])))
            ok = false;
        if (src->file_val[k] && !(c->file_val[k] = bcd__strdup(src->file_val[k])))
            ok = false;
    }
    char *d = src->default_data_dir ? bcd__strdup(src->default_data_dir) : NULL;
    if (d) {
        free(c->default_data_dir);
        c->default_data_dir = d;
    } else if (src->default_data_dir) {
        ok = false;
    }
    c->log_fn = src->log_fn;
    c->log_user = src->log_user;
    if (!ok) {
        bcd_ctx_free(c);
        return BCD_ENOMEM;
    }
    *out = c;
    return BCD_OK;
}

/* Internal core API shared by all layers. Not installed. */
#ifndef BCD_CORE_INTERNAL_H
#define BCD_CORE_INTERNAL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "bcd/common.h"
#include "bcd/ctx.h"

/* A function built twice where the compiler can (GCC, x86-64 ELF): for the instruction
 * set isa and for the baseline, the one the CPU runs chosen when the library loads.
 * BCD__WIDE_KERNEL: loops that vectorize, with AVX2, which brings no fused multiply-add
 * that would round differently: the same results on wider vectors. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__ELF__)
#define BCD__CLONES(isa) __attribute__((target_clones(isa, "default")))
#else
#define BCD__CLONES(isa)
#endif
#define BCD__WIDE_KERNEL BCD__CLONES("avx2")
/* A function whose loops run best as written: GCC's vectorizer would shuffle short
 * strided sums (RGB triples) across lanes and lose more than it gains. */
#if defined(__GNUC__) && !defined(__clang__)
#define BCD__SCALAR_LOOPS __attribute__((optimize("no-tree-vectorize")))
#else
#define BCD__SCALAR_LOOPS
#endif

struct bcd_error {
    bcd_status status;
    char code[64];
    char message[512];
    char *details_json;      /* owned, may be NULL */
    char correlation_id[64]; /* empty if none */
};

/* Configuration keys, in a fixed order. */
enum bcd__cfg_key {
    BCD__CFG_SUPABASE_URL,
    BCD__CFG_SUPABASE_SERVICE_ROLE_KEY,
    BCD__CFG_SUPABASE_STORAGE_BUCKET,
    BCD__CFG_STORE,
    BCD__CFG_DATA_DIR,
    BCD__CFG_MODEL,
    BCD__CFG_DEVICE,
    BCD__CFG_THREADS,
    BCD__CFG_MAX_PIXELS,
    BCD__CFG_MAX_DIMENSION,
    BCD__CFG_HTTP_TIMEOUT_MS,         /* total time of one HTTP request (lib/net) */
    BCD__CFG_HTTP_CONNECT_TIMEOUT_MS, /* connection set-up (lib/net) */
    BCD__CFG_DETECT,                  /* change detection in analyze: on|off (lib/service) */
    BCD__CFG_HTTP_MAX_RESPONSE_BYTES, /* cap on one response body (lib/net) */
    BCD__CFG_HTTP_MAX_REQUEST_BYTES,  /* cap on one request body, e.g. an upload (lib/net) */
    BCD__CFG_LESIONS,                 /* lesions in analyze: on|off (lib/service) */
    BCD__CFG_MM_PER_PX,               /* scale of the photos, mm per pixel (lib/service) */
    BCD__CFG_IMAGE_DIRS,              /* folders whose registered files the local store reads */
    BCD__CFG_JOB_TIMEOUT,             /* seconds a worker's job may run (lib/service) */
    BCD__CFG_COUNT
};

struct bcd_ctx {
    bcd_error err;
    bool has_err;
    char *explicit_val[BCD__CFG_COUNT]; /* bcd_ctx_set() */
    char *env_val[BCD__CFG_COUNT];      /* environment */
    char *file_val[BCD__CFG_COUNT];     /* .env file */
    char *default_data_dir;             /* computed default */
    bcd_log_fn log_fn;
    void *log_user;
};

/* Record a failure on err and return status. fmt is printf-like. */
bcd_status bcd__fail(bcd_error *err, bcd_status status, const char *code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
bcd_status bcd__vfail(bcd_error *err, bcd_status status, const char *code, const char *fmt, va_list ap)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 0)))
#endif
    ;
/* As bcd__fail on ctx (ctx may be NULL: only the status is returned). */
bcd_status bcd__ctx_fail(bcd_ctx *ctx, bcd_status status, const char *code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* Attach details JSON (copied) to err; ignored on allocation failure. */
void bcd__error_set_details(bcd_error *err, const char *details_json);
void bcd__error_set_correlation_id(bcd_error *err, const char *id);
void bcd__error_clear(bcd_error *err);
void bcd__error_copy(bcd_error *dst, const bcd_error *src);
/* Every fallible public call that takes ctx clears its error on entry. */
void bcd__ctx_clear(bcd_ctx *ctx);
/* A new ctx with the configuration (explicit, environment, .env) and the logger of src,
 * and no error: for another thread (a ctx is used by one thread at a time). */
bcd_status bcd__ctx_clone(bcd_ctx **out, const bcd_ctx *src);
/* Parse the text of a .env file (NUL-terminated, modified in place; path names it in
 * errors) into the file layer of ctx, as bcd_ctx_load_env() does with the file it reads.
 * On failure the file layer is left as it was. BCD_EFORMAT, BCD_EINVAL, BCD_ENOMEM on ctx. */
bcd_status bcd__ctx_parse_dotenv(bcd_ctx *ctx, char *text, const char *path);

/* Effective config value (NULL if unset) and typed helpers. Secrets included. */
const char *bcd__cfg(const bcd_ctx *ctx, enum bcd__cfg_key key);
unsigned long long bcd__cfg_ull(const bcd_ctx *ctx, enum bcd__cfg_key key, unsigned long long dflt);

void bcd__log(const bcd_ctx *ctx, bcd_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Memory and strings. */
char *bcd__strdup(const char *s);
char *bcd__strndup(const char *s, size_t n);
/* Length of the well-formed UTF-8 sequence at s (RFC 3629: no overlong forms, surrogates
 * or code points above U+10FFFF), 0 when the bytes there are not one. */
size_t bcd__utf8_seq(const unsigned char *s);
/* JSON text made safe to hand out: s itself when it is valid UTF-8; otherwise a copy with
 * each byte that starts no well-formed sequence replaced by U+FFFD, and s freed. NULL
 * (s freed) when out of memory; NULL for NULL. */
char *bcd__utf8_repair(char *s);
/* Overwrite and free a secret string. */
void bcd__free_secret(char *s);

/* Read a whole file (NUL appended, not counted in *len). max_len 0: no limit. Only a
 * regular file is read (see bcd__read_regular()). */
bcd_status bcd__read_file(bcd_ctx *ctx, const char *path, size_t max_len, unsigned char **out, size_t *len);

/* What bcd__read_regular() ran into. */
enum bcd__read_result {
    BCD__READ_OK,
    BCD__READ_MISSING,  /* no such file (ENOENT, ENOTDIR) */
    BCD__READ_OPEN,     /* cannot open: *err_no says why */
    BCD__READ_NOT_FILE, /* a FIFO, device, socket or folder */
    BCD__READ_TOO_LARGE,
    BCD__READ_NOMEM,
    BCD__READ_IO,       /* read error (*err_no) or the file changed size while read */
    BCD__READ_SLOW,     /* still not read after BCD__READ_TIMEOUT_MS */
};
#define BCD__READ_TIMEOUT_MS 60000
/* Read a whole regular file into *out (malloc'd, NUL appended, not counted in *len).
 * Opened with O_NONBLOCK, so a FIFO or a device never blocks the open, and checked with
 * fstat() before any read: anything but a regular file is refused. max_len 0: no limit;
 * *size: the file's size (for messages), set when known. Reads in chunks and gives up
 * after BCD__READ_TIMEOUT_MS (a hung network file system). */
enum bcd__read_result bcd__read_regular(const char *path, size_t max_len, unsigned char **out, size_t *len,
                                        int *err_no, size_t *size);

/* Files the library writes (file.c): one policy for every layer. A regular file or a new
 * name is written under a unique temporary name beside it (mode 0600), synced and renamed
 * over it when committed; a symbolic link is followed to its target; "-", /dev/stdout,
 * /dev/stderr, /dev/fd/N, pipes and character devices are written directly; anything
 * else (a folder, a socket) is refused, never renamed over. */
struct bcd__file {
    int fd;        /* write here (bcd__file_put, or directly) */
    char *tmp;     /* the temporary name; NULL when written directly */
    char *target;  /* the name renamed over, links followed; NULL for a named stream */
    bool direct;   /* written in place: a stream, pipe or device */
    bool borrowed; /* fd belongs to the process (standard output): never closed */
};
/* Open path for writing. On failure f needs no clean-up. */
bcd_status bcd__file_open(struct bcd__file *f, bcd_error *err, const char *path);
bcd_status bcd__file_put(struct bcd__file *f, bcd_error *err, const void *data, size_t len);
/* Sync, close and rename into place; f is released, whatever the result. */
bcd_status bcd__file_commit(struct bcd__file *f, bcd_error *err);
/* Give up: remove the temporary file, release f. */
void bcd__file_abort(struct bcd__file *f);
/* Open, put and commit in one call. */
bcd_status bcd__file_write(bcd_error *err, const char *path, const void *data, size_t len);
/* mkdir -p: folders created 0700; existing ones (links to folders included) are fine.
 * *created (may be NULL): whether the last one was created. */
bcd_status bcd__mkdirs(bcd_error *err, const char *path, bool *created);

/* Growing string buffer (buf.c); zero-initialise, check oom at the end, free with
 * bcd__buf_free(). */
struct bcd__buf {
    char *p;
    size_t len, cap;
    bool oom;
};
void bcd__buf_put(struct bcd__buf *b, const char *s);
void bcd__buf_putn(struct bcd__buf *b, const char *s, size_t n);
void bcd__buf_printf(struct bcd__buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void bcd__buf_free(struct bcd__buf *b);
/* Make room for extra more bytes (plus the NUL); false (and oom set) on failure. */
bool bcd__buf_reserve(struct bcd__buf *b, size_t extra);

/* Random UUID v4 (OpenSSL RAND) into buf[37]. */
bcd_status bcd__uuid_v4(char buf[37]);
bool bcd__uuid_valid(const char *s);

#endif

/* Internal service helpers shared by lib/service. Not installed. */
#ifndef BCD_SERVICE_INTERNAL_H
#define BCD_SERVICE_INTERNAL_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "bcd/embed.h"
#include "bcd/service.h"
#include "core/core.h"
#include "store/store.h"

/* Largest image file read for add or analysis. */
#define BCD__MAX_IMAGE_FILE (256u << 20)

struct bcd_service {
    bcd_ctx *ctx;          /* borrowed */
    bcd_store *store;      /* owned */
    bcd_embedder *emb;     /* owned, opened on first analysis, reused while emb_spec matches */
    char *emb_spec;
    bcd_error err;
    bool has_err;
    /* progress of long operations (bcd_service_set_progress(), lib/service/jobs.c) */
    bcd_progress_fn progress;
    void *progress_user;
    double progress_t0;    /* monotonic seconds at the start of the current operation */
    char progress_session[BCD__ID_LEN]; /* the session it concerns, "" if none */
};

/* Error recording on the service (the handle the caller asks). */
void bcd__svc_clear(bcd_service *svc);
/* The start of a public operation that returns a document in *out: a NULL service is
 * BCD_EINVAL, the last error is cleared, and a NULL out is invalid_argument. */
#define BCD__SVC_ENTER(svc, out)                                                                                  \
    do {                                                                                                          \
        if (!(svc))                                                                                               \
            return BCD_EINVAL;                                                                                    \
        bcd__svc_clear(svc);                                                                                      \
        if (!(out))                                                                                               \
            return bcd__svc_fail(svc, BCD_EINVAL, "invalid_argument", "out is NULL");                            \
    } while (0)
bcd_status bcd__svc_fail(bcd_service *svc, bcd_status st, const char *code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
/* Attach details JSON to the recorded error. */
void bcd__svc_details(bcd_service *svc, cJSON *details /* consumed */);
/* Prefix the recorded error message (context for the reader). */
void bcd__svc_prefix(bcd_service *svc, const char *prefix);
/* Copy the store's error detail (status st). */
bcd_status bcd__svc_from_store(bcd_service *svc, bcd_status st);
/* Copy the ctx's error detail (status st); generic text if ctx has none. */
bcd_status bcd__svc_from_ctx(bcd_service *svc, bcd_status st);

/* Input validation. */
bcd_status bcd__svc_check_user(bcd_service *svc, const char *user_id);
bcd_status bcd__svc_check_session_id(bcd_service *svc, const char *session_id);
bcd_status bcd__svc_check_angle(bcd_service *svc, const char *angle);
/* Validate user and session id, load the session and check it is the user's
 * (another user's session is "session_not_found", like a missing one). */
bcd_status bcd__svc_owned_session(bcd_service *svc, const char *user_id, const char *session_id,
                                  struct bcd__session_row *row);

/* Print root (consumed) into *out; ok false (an adder failed) or a print failure is
 * BCD_ENOMEM. */
bcd_status bcd__svc_emit(bcd_service *svc, cJSON *root, bool ok, char **out);

/* Round for output: 6 decimals, so that float noise does not show. */
double bcd__svc_round(double x);

/* JSON adders that remember an allocation failure in *ok (o may be NULL). */
void bcd__j_str(bool *ok, cJSON *o, const char *k, const char *v); /* v NULL: null */
void bcd__j_num(bool *ok, cJSON *o, const char *k, double v);      /* rounded */
void bcd__j_int(bool *ok, cJSON *o, const char *k, double v);      /* not rounded */
void bcd__j_bool(bool *ok, cJSON *o, const char *k, bool v);
void bcd__j_null(bool *ok, cJSON *o, const char *k);
cJSON *bcd__j_obj(bool *ok, cJSON *o, const char *k);
cJSON *bcd__j_arr(bool *ok, cJSON *o, const char *k);
/* Append a string to an array. */
void bcd__j_push_str(bool *ok, cJSON *arr, const char *v);
/* Add parsed JSON text under k (null when text is NULL or not valid JSON). */
void bcd__j_raw(bool *ok, cJSON *o, const char *k, const char *json_text);

/* Progress of a long operation (lib/service/jobs.c): report `stage`, step done of total
 * to the callback set with bcd_service_set_progress(), if any. bcd__svc_progress_start
 * marks the start of the operation (elapsed time is measured from there) and names the
 * session it concerns (NULL: none), which every report of it carries. */
void bcd__svc_progress_start(bcd_service *svc, const char *session_id);
void bcd__svc_progress(bcd_service *svc, const char *stage, size_t done, size_t total);

#endif

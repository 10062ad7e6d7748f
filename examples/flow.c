/*
 * The main job of libbcd through its public API: two checks of one person, six angles
 * each, stored in the local store, analyzed and compared.
 *
 *     flow DATA_DIR [EXAMPLES_DATA]
 *
 * DATA_DIR is the store's data directory (created if missing; use a fresh one to start
 * from an empty history). EXAMPLES_DATA is the folder holding check1/ and check2/ with
 * front.jpg ... raised.jpg (default: examples/data). The environment and ./.env are read
 * first, as bcd-cli does; DATA_DIR wins over them.
 *
 * Build against an installed libbcd:
 *     cc -o flow flow.c $(pkg-config --cflags --libs bcd)
 */
#include <stdio.h>
#include <stdlib.h>

#include <bcd.h>

static const char *const angles[BCD_ANGLE_COUNT] = {"front", "left", "right", "up", "down", "raised"};
static const char *const user = "example-user";

/* Print the error detail of a failed call as "what: code (status): message [details]". */
static int report(const char *what, bcd_status st, const bcd_error *e)
{
    const char *details = bcd_error_details_json(e);
    fprintf(stderr, "flow: %s failed: %s (%s, %d): %s%s%s\n", what, bcd_error_code(e), bcd_status_name(st),
            (int)st, bcd_error_message(e), details ? " " : "", details ? details : "");
    return EXIT_FAILURE;
}

/* Run one service operation: on success print "label: result" unless quiet, and free it. */
#define SVC_CALL(label, quiet, call)                                                                        \
    do {                                                                                                     \
        char *out_ = NULL;                                                                                   \
        bcd_status st_ = (call);                                                                             \
        if (st_ != BCD_OK)                                                                                   \
            return report(label, st_, bcd_service_last_error(svc));                                         \
        if (!(quiet))                                                                                        \
            printf("%s: %s\n", label, out_);                                                                 \
        bcd_free(out_);                                                                                      \
    } while (0)

/* Pull the "session_id" string out of a create result (a flat JSON object). */
static int session_id_of(char id[37], const char *json)
{
    const char *p = json;
    static const char key[] = "\"session_id\":\"";
    for (; *p; p++) {
        size_t i = 0;
        while (key[i] && p[i] == key[i])
            i++;
        if (!key[i]) {
            p += i;
            for (i = 0; i < 36 && p[i] && p[i] != '"'; i++)
                id[i] = p[i];
            id[i] = '\0';
            return i == 36 ? 0 : -1;
        }
    }
    return -1;
}

/* Create a session, add the six photos of one check, complete and analyze it. */
static int run_check(bcd_service *svc, const char *examples, const char *check, char id[37])
{
    char *created = NULL;
    bcd_status st = bcd_session_create(&created, svc, user);
    if (st != BCD_OK)
        return report("session create", st, bcd_service_last_error(svc));
    int bad = session_id_of(id, created);
    bcd_free(created);
    if (bad) {
        fprintf(stderr, "flow: no session_id in the create result\n");
        return EXIT_FAILURE;
    }
    printf("%s: session %s\n", check, id);
    for (size_t i = 0; i < BCD_ANGLE_COUNT; i++) {
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s/%s.jpg", examples, check, angles[i]) >= (int)sizeof path) {
            fprintf(stderr, "flow: path too long\n");
            return EXIT_FAILURE;
        }
        SVC_CALL("image add", 1, bcd_image_add(&out_, svc, user, id, angles[i], path, -1));
    }
    SVC_CALL("session complete", 1, bcd_session_complete(&out_, svc, user, id));
    SVC_CALL("analyze", 0, bcd_session_analyze(&out_, svc, user, id, NULL));
    return EXIT_SUCCESS;
}

static int run(bcd_ctx *ctx, const char *data_dir, const char *examples)
{
    bcd_status st = bcd_ctx_load_env(ctx, NULL);
    if (st != BCD_OK)
        return report("reading the environment", st, bcd_ctx_last_error(ctx));
    if ((st = bcd_ctx_set(ctx, "BCD_DATA_DIR", data_dir)) != BCD_OK)
        return report("setting BCD_DATA_DIR", st, bcd_ctx_last_error(ctx));

    bcd_service *svc = NULL;
    if ((st = bcd_service_open(&svc, ctx)) != BCD_OK)
        return report("opening the store", st, bcd_ctx_last_error(ctx));

    char first[37], second[37];
    int rc = run_check(svc, examples, "check1", first);
    if (rc == EXIT_SUCCESS)
        rc = run_check(svc, examples, "check2", second);
    if (rc == EXIT_SUCCESS) {
        char *out = NULL;
        st = bcd_session_compare(&out, svc, user, second, first);
        if (st != BCD_OK) {
            rc = report("compare", st, bcd_service_last_error(svc));
        } else {
            printf("compare: %s\n", out);
            bcd_free(out);
        }
    }
    bcd_service_free(svc);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s DATA_DIR [EXAMPLES_DATA]\n", argv[0]);
        return 2;
    }
    if (bcd_version_number() / 10000 != BCD_VERSION_MAJOR) {
        fprintf(stderr, "flow: built with libbcd %s, running with %s\n", BCD_VERSION_STRING, bcd_version());
        return EXIT_FAILURE;
    }
    bcd_ctx *ctx = NULL;
    bcd_status st = bcd_ctx_new(&ctx);
    if (st != BCD_OK) {
        fprintf(stderr, "flow: bcd_ctx_new: %s\n", bcd_strerror(st));
        return EXIT_FAILURE;
    }
    printf("libbcd %s\n", bcd_version());
    int rc = run(ctx, argv[1], argc > 2 ? argv[2] : "examples/data");
    bcd_ctx_free(ctx);
    return rc;
}

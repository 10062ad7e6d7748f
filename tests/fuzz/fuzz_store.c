/* The local store's database file: the input is written as bcd.sqlite3 of an empty data
 * folder, which is then opened and listed (bcd_service_open, bcd_session_list, and
 * bcd_history for a user with sessions). A damaged or hostile file may be refused, never
 * crash: opening fails with a documented status and an error message, or the store opens
 * and every listing is JSON (or a documented failure). */
#include <sys/stat.h>
#include <unistd.h>

#include <bcd.h>

#include <cjson/cJSON.h>

#include "fuzz.h"

static char dir[64];
static char db[128], wal[128], shm[128], journal[128];

/* the data folder is the harness's own, under /tmp: removed when the fuzzer exits */
static void cleanup(void)
{
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "fuzz_store: could not remove %s\n", dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    snprintf(dir, sizeof dir, "/tmp/bcd-fuzz-store-XXXXXX");
    if (!mkdtemp(dir))
        abort();
    snprintf(db, sizeof db, "%s/bcd.sqlite3", dir);
    snprintf(wal, sizeof wal, "%s-wal", db);
    snprintf(shm, sizeof shm, "%s-shm", db);
    snprintf(journal, sizeof journal, "%s-journal", db);
    atexit(cleanup);
    return 0;
}

static bool documented(bcd_status st)
{
    return st == BCD_EFORMAT || st == BCD_EIO || st == BCD_ENOMEM || st == BCD_ESTATE || st == BCD_ECONFLICT ||
           st == BCD_EINVAL || st == BCD_ELIMIT || st == BCD_EUNSUPPORTED;
}

static void listed(bcd_status st, char *out, bcd_service *svc)
{
    if (st == BCD_OK) {
        cJSON *doc = cJSON_Parse(out);
        FUZZ_CHECK(doc != NULL);
        cJSON_Delete(doc);
    } else {
        FUZZ_CHECK(documented(st) || st == BCD_ENOTFOUND);
        const bcd_error *e = bcd_service_last_error(svc);
        FUZZ_CHECK(e && bcd_error_message(e) && bcd_error_message(e)[0]);
    }
    bcd_free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unlink(wal);
    unlink(shm);
    unlink(journal);
    FILE *f = fopen(db, "wb");
    if (!f)
        return 0;
    size_t w = size ? fwrite(data, 1, size, f) : 0;
    if (fclose(f) != 0 || w != size)
        return 0;
    chmod(db, 0600);
    bcd_ctx *ctx = NULL;
    if (bcd_ctx_new(&ctx) != BCD_OK)
        return 0;
    if (bcd_ctx_set(ctx, "BCD_DATA_DIR", dir) != BCD_OK) {
        bcd_ctx_free(ctx);
        return 0;
    }
    bcd_service *svc = NULL;
    bcd_status st = bcd_service_open(&svc, ctx);
    if (st != BCD_OK) {
        FUZZ_CHECK(documented(st));
        const bcd_error *e = bcd_ctx_last_error(ctx);
        FUZZ_CHECK(e && bcd_error_message(e) && bcd_error_message(e)[0]);
    } else {
        char *out = NULL;
        st = bcd_session_list(&out, svc, "fuzz-user");
        listed(st, out, svc);
        out = NULL;
        st = bcd_history(&out, svc, "fuzz-user");
        listed(st, out, svc);
        bcd_service_free(svc);
    }
    bcd_ctx_free(ctx);
    return 0;
}

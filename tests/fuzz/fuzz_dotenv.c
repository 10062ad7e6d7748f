/* The .env parser of the configuration (bcd_ctx_load_env's file layer). Every value it
 * accepts must read back through bcd_ctx_get and be accepted by bcd_ctx_set as well (the
 * file layer and explicit settings validate alike). */
#include <bcd.h>

#include "core/core.h"
#include "fuzz.h"

static const char *const keys[] = {
    "SUPABASE_URL", "SUPABASE_STORAGE_BUCKET", "BCD_STORE", "BCD_DATA_DIR", "BCD_MODEL", "BCD_DEVICE",
    "BCD_THREADS", "BCD_MAX_PIXELS", "BCD_MAX_DIMENSION", "BCD_HTTP_TIMEOUT_MS", "BCD_HTTP_CONNECT_TIMEOUT_MS",
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    bcd_ctx *ctx = NULL, *check = NULL;
    if (!text || bcd_ctx_new(&ctx) != BCD_OK || bcd_ctx_new(&check) != BCD_OK) {
        free(text);
        bcd_ctx_free(ctx);
        return 0;
    }
    bcd_status st = bcd__ctx_parse_dotenv(ctx, text, "fuzz.env");
    if (st == BCD_OK) {
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            const char *v = bcd_ctx_get(ctx, keys[i]);
            if (v)
                FUZZ_CHECK(*v && bcd_ctx_set(check, keys[i], v) == BCD_OK);
        }
        const char *secret = bcd_ctx_get(ctx, "SUPABASE_SERVICE_ROLE_KEY");
        FUZZ_CHECK(!secret || strcmp(secret, "<set>") == 0);
        char *json = NULL;
        if (bcd_ctx_config_json(&json, ctx) == BCD_OK)
            bcd_free(json);
    } else {
        FUZZ_CHECK(st == BCD_EFORMAT || st == BCD_EINVAL || st == BCD_ENOMEM);
        const bcd_error *e = bcd_ctx_last_error(ctx);
        FUZZ_CHECK(e && e->message[0]);
    }
    bcd_ctx_free(check);
    bcd_ctx_free(ctx);
    free(text);
    return 0;
}

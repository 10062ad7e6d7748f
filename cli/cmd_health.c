/* bcd-cli health: the checks of bcd_health() (the seeds' GET / and GET /health). */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"

/* The status a check's error names (bcd_status_name()), or BCD_ERROR. */
static bcd_status status_named(const char *name)
{
    for (int st = -1; name && st >= -64; st--)
        if (strcmp(bcd_status_name(st), name) == 0)
            return st;
    return BCD_ERROR;
}

static int cmd_health(struct cli *c)
{
    char *out = NULL;
    bcd_status st = bcd_health(&out, c->ctx);
    if (st != BCD_OK)
        return cli_fail_ctx(c, st);
    int rc = cli_print_result(c, out);
    cJSON *doc = cJSON_Parse(out);
    bcd_free(out);
    if (!doc)
        return rc == EXIT_OK ? cli_fail(BCD_ENOMEM, "out of memory") : rc;
    if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(doc, "ok"))) {
        /* exit with the status of the first required check that is down, and say which */
        const cJSON *chk;
        cJSON_ArrayForEach(chk, cJSON_GetObjectItemCaseSensitive(doc, "checks"))
        {
            const cJSON *s = cJSON_GetObjectItemCaseSensitive(chk, "status");
            if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(chk, "required")) || !cJSON_IsString(s) ||
                strcmp(s->valuestring, "down") != 0)
                continue;
            const cJSON *e = cJSON_GetObjectItemCaseSensitive(chk, "error");
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(e, "status");
            const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
            rc = cli_fail(status_named(cJSON_IsString(name) ? name->valuestring : NULL), "%s check down: %s",
                          chk->string, cJSON_IsString(msg) ? msg->valuestring : "");
            break;
        }
        if (rc == EXIT_OK)
            rc = EXIT_INTERNAL;
    }
    cJSON_Delete(doc);
    return rc;
}

const struct cli_command cli_health_commands[] = {
    {"health", "", "Check the store, the model and Supabase (the seeds' GET /health)",
     "Prints {\"status\":\"ok\"|\"down\",\"ok\",\"version\",\"checks\":{\"store\",\"model\",\"supabase\"}}:\n"
     "the store opens with a current schema, answers a read and (local) takes a new file;\n"
     "the model loads; Supabase's key set answers when SUPABASE_URL is set. Each check has a\n"
     "status and, when down, an error. Exits 0 when every required check is ok, else with the\n"
     "status of the first one down (e.g. 5 for an unwritable store, 13 for an unreachable\n"
     "Supabase), after an error envelope on stderr.\n"
     "  --json      print JSON",
     0, 0, cmd_health},
};
const int cli_health_ncommands = sizeof cli_health_commands / sizeof cli_health_commands[0];

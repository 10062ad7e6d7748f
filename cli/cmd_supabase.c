/* bcd-cli commands that need a remote store (BCD_STORE=supabase): each calls one
 * service operation. */
#include <stdlib.h>
#include <unistd.h>

#include "cli.h"

static int cmd_upload_url(struct cli *c)
{
    int urc;
    const char *user = cli_caller(c, &urc);
    if (!user)
        return urc;
    bcd_service *svc = NULL;
    bcd_status st = bcd_service_open(&svc, c->ctx);
    if (st != BCD_OK)
        return cli_fail_ctx(c, st);
    char *out = NULL;
    st = bcd_image_upload_url(&out, svc, user, c->pos[0], c->pos[1], c->pos[2]);
    int rc;
    if (st == BCD_OK) {
        rc = cli_print_result(c, out);
    } else {
        char *env = NULL;
        if (bcd_error_json(&env, bcd_service_last_error(svc)) == BCD_OK)
            fprintf(stderr, "%s\n", env);
        bcd_free(env);
        rc = cli_exit_code(st);
    }
    bcd_free(out);
    bcd_service_free(svc);
    return rc;
}

const struct cli_command cli_supabase_commands[] = {
    {"image upload-url", "SESSION ANGLE FILENAME", "Signed URL to upload a photo straight to storage",
     "Supabase store only (--store supabase). Prints {\"uploadUrl\",\"token\",\"path\",\"headers\",\n"
     "\"publicUrl\"}: PUT the file's bytes to uploadUrl with the headers, then run\n"
     "'bcd-cli image register SESSION ANGLE PATH' with the printed path.\n"
     "FILENAME ends in .jpg, .jpeg or .png.\n"
     "  --user ID   the caller (default: BCD_USER, then the login name)\n  --json      print JSON",
     3, 3, cmd_upload_url},
};
const int cli_supabase_ncommands = sizeof cli_supabase_commands / sizeof cli_supabase_commands[0];

/* bcd-cli auth commands: verify a Supabase access token and print its caller. */
#include <stdio.h>

#include "cli.h"

static int cmd_verify(struct cli *c)
{
    bcd_auth_verifier *v = NULL;
    bcd_status st = bcd_auth_verifier_new(&v, c->ctx, NULL);
    if (st != BCD_OK)
        return cli_fail_ctx(c, st);
    char *out = NULL;
    if (c->jwks)
        st = bcd_auth_verifier_load_jwks_file(v, c->jwks);
    if (st == BCD_OK)
        st = bcd_auth_verify(&out, v, c->pos[0]);
    int rc;
    if (st == BCD_OK) {
        rc = cli_print_result(c, out);
    } else {
        char *env = NULL;
        if (bcd_error_json(&env, bcd_auth_verifier_last_error(v)) == BCD_OK)
            fprintf(stderr, "%s\n", env);
        else
            fprintf(stderr, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\",\"details\":{},\"correlation_id\":null}}\n",
                    bcd_status_name(st), bcd_strerror(st));
        bcd_free(env);
        rc = cli_exit_code(st);
    }
    bcd_free(out);
    bcd_auth_verifier_free(v);
    return rc;
}

const struct cli_command cli_auth_commands[] = {
    {"auth verify", "TOKEN [--jwks FILE]", "Verify a Supabase access token, print its caller",
     "Checks an ES256 access token (compact JWS) against the project's key set: signature,\n"
     "exp/nbf (30 s leeway), iss = SUPABASE_URL/auth/v1 (when SUPABASE_URL is set), aud\n"
     "\"authenticated\", sub. Prints {\"user_id\",\"role\",\"email\",\"session_id\",\"exp\",...}.\n"
     "A rejected token exits with status 12 and a code such as token_expired, bad_signature,\n"
     "alg_not_allowed, unknown_kid, bad_issuer, bad_audience. The token is never printed.\n"
     "  --jwks FILE  read the key set ({\"keys\":[...]}) from FILE instead of downloading it from\n"
     "               SUPABASE_URL/auth/v1/.well-known/jwks.json\n"
     "  --json       print JSON",
     1, 1, cmd_verify},
};
const int cli_auth_ncommands = sizeof cli_auth_commands / sizeof cli_auth_commands[0];

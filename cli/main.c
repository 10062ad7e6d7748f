/* bcd-cli: parse arguments, call one public operation, print its result or the error
 * envelope, map the status to an exit code. No logic of its own. */
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"

static const struct cli_command *const groups[] = {cli_session_commands, cli_image_commands, cli_auth_commands, cli_supabase_commands, cli_jobs_commands, cli_report_commands, cli_health_commands};
static const int *const group_sizes[] = {&cli_session_ncommands, &cli_image_ncommands, &cli_auth_ncommands, &cli_supabase_ncommands, &cli_jobs_ncommands, &cli_report_ncommands, &cli_health_ncommands};
#define NGROUPS (sizeof groups / sizeof groups[0])

static const struct {
    bcd_status status;
    int code;
} exit_codes[] = {
    {BCD_ERROR, 1},   {BCD_EINVAL, 3},  {BCD_ENOMEM, 4},        {BCD_EIO, 5},   {BCD_EFORMAT, 6},
    {BCD_ELIMIT, 7},  {BCD_ENOTFOUND, 8}, {BCD_ECONFLICT, 9},   {BCD_ESTATE, 10}, {BCD_EUNSUPPORTED, 11},
    {BCD_EAUTH, 12},  {BCD_ENET, 13},   {BCD_EDOMAIN, 14},
};

int cli_exit_code(bcd_status st)
{
    if (st == BCD_OK)
        return EXIT_OK;
    for (size_t i = 0; i < sizeof exit_codes / sizeof exit_codes[0]; i++)
        if (exit_codes[i].status == st)
            return exit_codes[i].code;
    return EXIT_INTERNAL;
}

static void print_envelope(const bcd_error *e, bcd_status st)
{
    char *json = NULL;
    if (e && bcd_error_json(&json, e) == BCD_OK) {
        fprintf(stderr, "%s\n", json);
        bcd_free(json);
    } else {
        fprintf(stderr,
                "{\"error\":{\"code\":\"%s\",\"message\":\"%s\",\"details\":{},\"correlation_id\":null}}\n",
                bcd_status_name(st), bcd_strerror(st));
    }
}

int cli_fail_ctx(struct cli *c, bcd_status st)
{
    print_envelope(bcd_ctx_last_error(c->ctx), st);
    return cli_exit_code(st);
}

/* Escape s for a JSON string literal into buf. */
static void json_escape(char *buf, size_t cap, const char *s)
{
    size_t o = 0;
    for (; *s && o + 7 < cap; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') {
            buf[o++] = '\\';
            buf[o++] = (char)ch;
        } else if (ch < 0x20) {
            o += (size_t)snprintf(buf + o, cap - o, "\\u%04x", ch);
        } else {
            buf[o++] = (char)ch;
        }
    }
    buf[o] = '\0';
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 0)))
#endif
static void vprint_envelope(const char *code, const char *fmt, va_list ap)
{
    char msg[512], esc[1100];
    vsnprintf(msg, sizeof msg, fmt, ap);
    json_escape(esc, sizeof esc, msg);
    fprintf(stderr, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\",\"details\":{},\"correlation_id\":null}}\n",
            code, esc);
}

int cli_fail(bcd_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprint_envelope(bcd_status_name(st), fmt, ap);
    va_end(ap);
    return cli_exit_code(st);
}

int cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprint_envelope("usage_error", fmt, ap);
    va_end(ap);
    fprintf(stderr, "Try 'bcd-cli --help'.\n");
    return EXIT_USAGE;
}

/* Verify --token and keep its subject as the caller. */
static const char *verify_token(struct cli *c, int *rc)
{
    bcd_auth_verifier *v = NULL;
    char *claims = NULL;
    bcd_status st = bcd_auth_verifier_new(&v, c->ctx, NULL);
    if (st != BCD_OK) {
        *rc = cli_fail_ctx(c, st);
        return NULL;
    }
    if (c->jwks)
        st = bcd_auth_verifier_load_jwks_file(v, c->jwks);
    if (st == BCD_OK)
        st = bcd_auth_verify(&claims, v, c->token);
    if (st != BCD_OK) {
        char *env = NULL;
        if (bcd_error_json(&env, bcd_auth_verifier_last_error(v)) == BCD_OK)
            fprintf(stderr, "%s\n", env);
        bcd_free(env);
        bcd_auth_verifier_free(v);
        *rc = cli_exit_code(st);
        return NULL;
    }
    bcd_auth_verifier_free(v);
    cJSON *doc = cJSON_Parse(claims);
    bcd_free(claims);
    const cJSON *sub = cJSON_GetObjectItemCaseSensitive(doc, "user_id");
    if (cJSON_IsString(sub) && sub->valuestring[0]) {
        size_t n = strlen(sub->valuestring);
        c->verified_user = malloc(n + 1);
        if (c->verified_user)
            memcpy(c->verified_user, sub->valuestring, n + 1);
    }
    cJSON_Delete(doc);
    if (!c->verified_user)
        *rc = cli_fail(BCD_EAUTH, "the token names no user");
    return c->verified_user;
}

const char *cli_caller(struct cli *c, int *rc)
{
    *rc = EXIT_OK;
    if (c->token && c->user) {
        *rc = cli_usage_error("give either --token (a user's access token) or --user (trusted mode), not both");
        return NULL;
    }
    if (c->token)
        return c->verified_user ? c->verified_user : verify_token(c, rc);
    if (c->user)
        return c->user;
    const char *u = getenv("BCD_USER");
    if (u && *u)
        return u;
    struct passwd *pw = getpwuid(getuid());
    if (pw)
        return pw->pw_name;
    *rc = cli_usage_error("no user: pass --user ID, --token JWT or set BCD_USER");
    return NULL;
}

#ifndef BCD_CLI_NO_MAIN /* help is printed by main only */
/* The library's warnings (a store just created, a server retried), kept while a command
 * runs and printed on stderr after it, so that its result or error envelope comes first.
 * Workers call the logger from their threads. */
static struct {
    pthread_mutex_t lock;
    char text[4096];
    size_t len;
    bool cut;
} notes = {PTHREAD_MUTEX_INITIALIZER, "", 0, false};

static void keep_note(void *user, bcd_log_level level, const char *message)
{
    (void)user;
    if (level < BCD_LOG_WARN)
        return;
    pthread_mutex_lock(&notes.lock);
    int n = snprintf(notes.text + notes.len, sizeof notes.text - notes.len, "bcd-cli: %s\n", message);
    if (n < 0 || (size_t)n >= sizeof notes.text - notes.len) {
        notes.text[notes.len] = '\0';
        notes.cut = true;
    } else {
        notes.len += (size_t)n;
    }
    pthread_mutex_unlock(&notes.lock);
}

static void print_notes(void)
{
    pthread_mutex_lock(&notes.lock);
    fputs(notes.text, stderr);
    if (notes.cut)
        fputs("bcd-cli: (more warnings left out)\n", stderr);
    pthread_mutex_unlock(&notes.lock);
}

static const char general_help[] =
    "Options (anywhere on the line):\n"
    "  --json            print results as JSON (default: readable text)\n"
    "  --model SPEC      embedding model: builtin (default) or a TorchScript file (BCD_MODEL)\n"
    "  --user ID         the caller's user id, trusted mode (default: BCD_USER, then the login name)\n"
    "  --token JWT       act as the user of a verified Supabase access token (instead of --user)\n"
    "  --jwks FILE       verify tokens with this key set instead of SUPABASE_URL's JWKS\n"
    "  --order-index N   position of an image within its angle (image add/register/delete)\n"
    "  --yes             confirm 'user delete'\n"
    "  --async           analyze: queue a job for a worker and return at once\n"
    "  --exit-code       analyze, compare: exit 20 when a change was found, 0 when none\n"
    "  --session ID      job status: the newest job of this session\n"
    "  --concurrency N   worker: jobs run at once (threads)\n"
    "  --drain           worker: exit once no job is queued or running\n"
    "  --html FILE       report: write the HTML report to FILE\n"
    "  --heatmaps DIR    compare: write the change-map overlays as DIR/<angle>.png\n"
    "  --store NAME      local (default) or supabase (BCD_STORE)\n"
    "  --data-dir DIR    local store folder (BCD_DATA_DIR); a new one is announced on stderr\n"
    "  --env-file FILE   read configuration from the .env file FILE (default: BCD_ENV_FILE;\n"
    "                    without either, no .env file is read)\n"
    "  -h, --help        help for bcd-cli or for a command\n"
    "  --version         print the version\n"
    "\n"
    "Configuration: explicit options, then environment variables, then the .env file named by\n"
    "--env-file or BCD_ENV_FILE (KEY=VALUE lines; 'bcd-cli config' says which file was read):\n"
    "  SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY, SUPABASE_STORAGE_BUCKET, BCD_STORE,\n"
    "  BCD_DATA_DIR, BCD_MODEL, BCD_DEVICE, BCD_THREADS, BCD_MAX_PIXELS, BCD_MAX_DIMENSION,\n"
    "  BCD_HTTP_TIMEOUT_MS, BCD_HTTP_CONNECT_TIMEOUT_MS.\n"
    "  Secrets are never printed.\n"
    "\n"
    "Errors are printed on stderr as {\"error\":{\"code\",\"message\",\"details\",\"correlation_id\"}}.\n"
    "Exit status: 0 success, 1 internal error, 2 usage error, 3 invalid input, 4 out of memory,\n"
    "  5 I/O error, 6 corrupt or unsupported data, 7 limit exceeded, 8 not found, 9 conflict,\n"
    "  10 precondition not met, 11 not supported by this build, 12 unauthorized,\n"
    "  13 network or server error, 14 mathematically undefined;\n"
    "  with --exit-code, analyze and compare exit 20 when they found a change.\n";

static void print_help(void)
{
    printf("bcd-cli %s: longitudinal body-photo change detection\n\n"
           "Usage: bcd-cli [OPTIONS] COMMAND [ARGS]\n\nCommands:\n",
           bcd_version());
    for (size_t g = 0; g < NGROUPS; g++)
        for (int i = 0; i < *group_sizes[g]; i++) {
            char left[64];
            snprintf(left, sizeof left, "%s %s", groups[g][i].words, groups[g][i].args);
            if (strlen(left) > 34)
                printf("  %s\n  %-34s %s\n", left, "", groups[g][i].summary);
            else
                printf("  %-34s %s\n", left, groups[g][i].summary);
        }
    printf("\nRun 'bcd-cli COMMAND --help' for the options of a command.\n\n%s", general_help);
}

static void print_command_help(const struct cli_command *cmd)
{
    printf("Usage: bcd-cli %s %s\n\n%s\n\n%s\n", cmd->words, cmd->args, cmd->summary, cmd->help);
}
#endif

/* Options: name, whether it takes a value, where the value goes. */
struct opt {
    const char *name;
    size_t off; /* offset of a const char * in struct cli, or 0 for flags/special */
};
#define OPT(n, field) {n, offsetof(struct cli, field)}
static const struct opt value_opts[] = {
    OPT("--user", user),   OPT("--out", out),   OPT("--order-index", order_index),
    OPT("--model", model), OPT("--heatmaps", heatmaps),
    OPT("--jwks", jwks),
    OPT("--token", token),
    OPT("--session", session), OPT("--concurrency", concurrency), /* jobs (cmd_jobs.c) */
    OPT("--html", html), /* report (cmd_report.c) */
};

/* Count the words of a command ("session create" = 2). */
static int word_count(const char *words)
{
    int n = 1;
    for (const char *p = words; *p; p++)
        n += *p == ' ';
    return n;
}

/* The command whose words are the first of the positional words, longest match first. */
static const struct cli_command *find_command(const char **words, int nwords, int *used)
{
    const struct cli_command *best = NULL;
    int best_n = 0;
    for (size_t g = 0; g < NGROUPS; g++)
        for (int i = 0; i < *group_sizes[g]; i++) {
            const struct cli_command *cmd = &groups[g][i];
            int n = word_count(cmd->words);
            if (n > nwords || n <= best_n)
                continue;
            char joined[128] = "";
            for (int w = 0; w < n; w++) {
                if (w)
                    strncat(joined, " ", sizeof joined - strlen(joined) - 1);
                strncat(joined, words[w], sizeof joined - strlen(joined) - 1);
            }
            if (strcmp(joined, cmd->words) == 0) {
                best = cmd;
                best_n = n;
            }
        }
    *used = best_n;
    return best;
}

int cli_parse_args(struct cli *cp, struct cli_args *ap, int argc, char **argv)
{
    struct cli c = {0};
    struct cli_args r = {.action = CLI_RUN};
    const char *words[CLI_MAX_ARGS];
    int nwords = 0;
    bool version = false, dashdash = false;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (dashdash || a[0] != '-' || strcmp(a, "-") == 0) {
            if (nwords == CLI_MAX_ARGS)
                return cli_usage_error("too many arguments");
            words[nwords++] = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            dashdash = true;
            continue;
        }
        if (strcmp(a, "--json") == 0) {
            c.json = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            c.help = true;
            continue;
        }
        if (strcmp(a, "--version") == 0) {
            version = true;
            continue;
        }
        if (strcmp(a, "--yes") == 0) {
            c.yes = true;
            continue;
        }
        if (strcmp(a, "--exit-code") == 0) {
            c.exit_code = true;
            continue;
        }
        if (strcmp(a, "--async") == 0 || strcmp(a, "--drain") == 0) { /* jobs (cmd_jobs.c) */
            *(a[2] == 'a' ? &c.async : &c.drain) = true;
            continue;
        }
        /* --name=value or --name value */
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        const char *val = eq ? eq + 1 : NULL;
        const char **dst = NULL;
        for (size_t k = 0; k < sizeof value_opts / sizeof value_opts[0]; k++)
            if (strlen(value_opts[k].name) == nlen && strncmp(a, value_opts[k].name, nlen) == 0)
                dst = (const char **)((char *)&c + value_opts[k].off);
        if (!dst) {
            if (nlen == 7 && strncmp(a, "--store", 7) == 0)
                dst = &r.store;
            else if (nlen == 10 && strncmp(a, "--data-dir", 10) == 0)
                dst = &r.data_dir;
            else if (nlen == 10 && strncmp(a, "--env-file", 10) == 0)
                dst = &r.env_file;
            else
                return cli_usage_error("unknown option '%.*s'", (int)nlen, a);
        }
        if (!val) {
            if (i + 1 >= argc)
                return cli_usage_error("option '%s' needs a value", a);
            val = argv[++i];
        }
        *dst = val;
    }

    if (version && nwords == 0) {
        r.action = CLI_VERSION;
        goto parsed;
    }
    int used = 0;
    const struct cli_command *cmd = nwords ? find_command(words, nwords, &used) : NULL;
    if (!cmd) {
        if (c.help || nwords == 0) {
            r.action = CLI_HELP;
            r.help_rc = c.help ? EXIT_OK : EXIT_USAGE;
            goto parsed;
        }
        return cli_usage_error("unknown command '%s'", words[0]);
    }
    r.cmd = cmd;
    if (c.help) {
        r.action = CLI_COMMAND_HELP;
        goto parsed;
    }
    c.npos = nwords - used;
    for (int i = 0; i < c.npos; i++)
        c.pos[i] = words[used + i];
    if (c.npos < cmd->min_pos || (cmd->max_pos >= 0 && c.npos > cmd->max_pos))
        return cli_usage_error("'%s' expects %s", cmd->words, cmd->args);
parsed:
    *cp = c;
    *ap = r;
    return EXIT_OK;
}

/* The fuzzing harness of the argument parser (tests/fuzz) links this file without main. */
#ifndef BCD_CLI_NO_MAIN
int main(int argc, char **argv)
{
    struct cli c;
    struct cli_args a;
    int prc = cli_parse_args(&c, &a, argc, argv);
    if (prc != EXIT_OK)
        return prc;
    switch (a.action) {
    case CLI_VERSION:
        printf("bcd-cli %s (libbcd %s)\n", BCD_VERSION_STRING, bcd_version());
        return EXIT_OK;
    case CLI_HELP:
        print_help();
        return a.help_rc;
    case CLI_COMMAND_HELP:
        print_command_help(a.cmd);
        return EXIT_OK;
    case CLI_RUN:
        break;
    }
    const struct cli_command *cmd = a.cmd;
    const char *env_file = a.env_file, *store = a.store, *data_dir = a.data_dir;

    if (bcd_ctx_new(&c.ctx) != BCD_OK) {
        fprintf(stderr, "{\"error\":{\"code\":\"out_of_memory\",\"message\":\"out of memory\",\"details\":{},"
                        "\"correlation_id\":null}}\n");
        return cli_exit_code(BCD_ENOMEM);
    }
    bcd_ctx_set_logger(c.ctx, keep_note, NULL);
    /* a .env file only when asked: one lying in the current folder changes nothing */
    if (!env_file) {
        const char *e = getenv("BCD_ENV_FILE");
        env_file = e && *e ? e : NULL;
    }
    c.env_file = env_file;
    bcd_status st = bcd_ctx_load_env(c.ctx, env_file ? env_file : "");
    if (st != BCD_OK && env_file && cmd->reads_bad_env) {
        /* 'config' shows what is wrong instead of failing with it */
        const bcd_error *e = bcd_ctx_last_error(c.ctx);
        snprintf(c.env_error, sizeof c.env_error, "%s (%s)", bcd_error_message(e), bcd_error_code(e));
        fprintf(stderr, "bcd-cli: warning: %s; the file is not used\n", c.env_error);
        st = bcd_ctx_load_env(c.ctx, "");
    }
    if (st == BCD_OK && store)
        st = bcd_ctx_set(c.ctx, "BCD_STORE", store);
    if (st == BCD_OK && data_dir)
        st = bcd_ctx_set(c.ctx, "BCD_DATA_DIR", data_dir);
    if (st == BCD_OK && c.model)
        st = bcd_ctx_set(c.ctx, "BCD_MODEL", c.model);
    int rc = st == BCD_OK ? cmd->run(&c) : cli_fail_ctx(&c, st);
    if (fflush(stdout) != 0 && rc == EXIT_OK)
        rc = cli_exit_code(BCD_EIO);
    bcd_ctx_free(c.ctx);
    free(c.verified_user);
    print_notes();
    return rc;
}
#endif

/* bcd-cli: shared declarations of the command files. The CLI uses the public API only. */
#ifndef BCD_CLI_H
#define BCD_CLI_H

#include <stdbool.h>
#include <stdio.h>

#include <bcd.h>

/* Exit codes (documented in `bcd-cli --help` and the man page). */
enum {
    EXIT_OK = 0,
    EXIT_INTERNAL = 1,
    EXIT_USAGE = 2,
    /* analyze and compare with --exit-code: a change was found (not an error; above every
     * status of bcd_status, like `git diff --exit-code` but clear of the error codes) */
    EXIT_CHANGED = 20,
};

#define CLI_MAX_ARGS 64

/* Parsed command line: options may stand before or after the command words. */
struct cli {
    bcd_ctx *ctx;
    bool json;
    bool help;
    const char *user;
    const char *out;
    const char *order_index;
    const char *model;
    const char *heatmaps;
    const char *jwks;
    const char *token;
    char *verified_user; /* owned: user id taken from a verified --token */
    /* asynchronous analysis and workers (cmd_jobs.c) */
    const char *session;     /* --session: job status of a session */
    const char *concurrency; /* --concurrency N: worker threads */
    bool async;              /* --async: analyze queues a job */
    bool exit_code;          /* --exit-code: analyze / compare exit EXIT_CHANGED on a change */
    bool drain;              /* --drain: the worker exits when the queue is empty */
    bool yes;                /* --yes: confirms 'user delete' */
    const char *html;        /* --html FILE: report writes the HTML report (cmd_report.c) */
    const char *env_file;    /* the .env file read (--env-file or BCD_ENV_FILE), or NULL */
    char env_error[600];     /* why env_file was not used ('config' only), or "" */
    int npos;
    const char *pos[CLI_MAX_ARGS]; /* positional words after the command words */
};

struct cli_command {
    const char *words;   /* "session create" */
    const char *args;    /* "SESSION ANGLE FILE" */
    const char *summary; /* one line */
    const char *help;    /* the rest of --help */
    int min_pos, max_pos;
    int (*run)(struct cli *c);
    bool reads_bad_env; /* runs with a .env file that cannot be used, saying why (config) */
};

/* What a command line asks for (cli_parse_args). */
enum cli_action { CLI_RUN, CLI_VERSION, CLI_HELP, CLI_COMMAND_HELP };
struct cli_args {
    enum cli_action action;
    int help_rc;                   /* CLI_HELP: EXIT_OK when asked for, EXIT_USAGE without a command */
    const struct cli_command *cmd; /* CLI_RUN, CLI_COMMAND_HELP */
    const char *env_file, *store, *data_dir; /* --env-file, --store, --data-dir (borrowed from argv) */
};
/* Parse the command line into c (options and positional words, pointing into argv; ctx
 * left NULL) and a. Runs nothing and prints nothing but a usage error: EXIT_OK, or
 * EXIT_USAGE with the error printed. */
int cli_parse_args(struct cli *c, struct cli_args *a, int argc, char **argv);
/* Print the failure of the last call on ctx as the error envelope on stderr and return
 * the exit code of its status. */
int cli_fail_ctx(struct cli *c, bcd_status st);
/* Print an error envelope built from a (code, message) pair, for failures detected by
 * the CLI itself (usage errors). Returns EXIT_USAGE. */
int cli_usage_error(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* Print an envelope for a failure the CLI detected itself; returns the status's exit code. */
int cli_fail(bcd_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
int cli_exit_code(bcd_status st);
/* The caller's user id: the subject of a verified --token, else --user, else BCD_USER,
 * else the login name. On failure prints the error and returns NULL with *rc set. */
const char *cli_caller(struct cli *c, int *rc);
/* Print a result document: as is with --json, as readable text otherwise. */
int cli_print_result(struct cli *c, const char *json);
/* The readable lesion table of bcd_lesions_get()'s result. */
int cli_print_lesions(const char *json);

extern const struct cli_command cli_image_commands[];
extern const int cli_image_ncommands;
extern const struct cli_command cli_session_commands[];
extern const int cli_session_ncommands;
extern const struct cli_command cli_auth_commands[];
extern const int cli_auth_ncommands;
extern const struct cli_command cli_supabase_commands[];
extern const int cli_supabase_ncommands;
/* Asynchronous analysis and workers (cmd_jobs.c). */
extern const struct cli_command cli_jobs_commands[];
extern const int cli_jobs_ncommands;
/* Progress of a long operation on svc, on stderr: only on a terminal and without --json.
 * Attach before the call, done after it (erases the progress line). */
void cli_progress_attach(struct cli *c, bcd_service *svc);
void cli_progress_done(struct cli *c, bcd_service *svc);
/* Reports and history (cmd_report.c). */
extern const struct cli_command cli_report_commands[];
extern const int cli_report_ncommands;
/* Health check (cmd_health.c). */
extern const struct cli_command cli_health_commands[];
extern const int cli_health_ncommands;

#endif

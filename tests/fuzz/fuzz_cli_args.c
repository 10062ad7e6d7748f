/* The argument parser of bcd-cli (cli_parse_args in cli/main.c): options anywhere, --name
 * value and --name=value, "--", command words matched longest first, positional counts.
 * Input: the arguments after argv[0], separated by NUL bytes. Nothing runs; usage errors
 * are printed on stderr (run with -close_fd_mask=2 to keep the log short). */
#include "../../cli/cli.h"
#include "fuzz.h"

#define MAX_ARGV 200

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    return 0;
}

static bool points_into(const char *p, char **argv, int argc)
{
    for (int i = 1; i < argc; i++)
        if (p >= argv[i] && p <= argv[i] + strlen(argv[i]))
            return true;
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    char *argv[MAX_ARGV + 1];
    int argc = 0;
    if (!text)
        return 0;
    argv[argc++] = "bcd-cli";
    for (size_t i = 0; i < size && argc < MAX_ARGV; argc++) {
        argv[argc] = text + i;
        i += strlen(text + i) + 1;
    }
    argv[argc] = NULL;

    struct cli c;
    struct cli_args a;
    int rc = cli_parse_args(&c, &a, argc, argv);
    if (rc == EXIT_OK) {
        FUZZ_CHECK(c.ctx == NULL && c.verified_user == NULL);
        const char *const opts[] = {c.user, c.out, c.order_index, c.model, c.heatmaps, c.jwks, c.token,
                                    c.session, c.concurrency, c.html, a.env_file, a.store, a.data_dir};
        for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
            FUZZ_CHECK(!opts[i] || points_into(opts[i], argv, argc));
        switch (a.action) {
        case CLI_RUN:
            FUZZ_CHECK(a.cmd && !c.help && c.npos >= a.cmd->min_pos && c.npos <= CLI_MAX_ARGS);
            FUZZ_CHECK(a.cmd->max_pos < 0 || c.npos <= a.cmd->max_pos);
            for (int i = 0; i < c.npos; i++)
                FUZZ_CHECK(c.pos[i] && points_into(c.pos[i], argv, argc));
            break;
        case CLI_COMMAND_HELP:
            FUZZ_CHECK(a.cmd && c.help);
            break;
        case CLI_HELP:
            FUZZ_CHECK(a.help_rc == (c.help ? EXIT_OK : EXIT_USAGE));
            break;
        case CLI_VERSION:
            break;
        }
    } else {
        FUZZ_CHECK(rc == EXIT_USAGE);
    }
    free(text);
    return 0;
}

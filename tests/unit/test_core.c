/* Unit tests of lib/core: statuses, error detail, configuration, UUIDs. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "bcd.h"
#include "core/core.h"

static char tmpdir[] = "/tmp/bcd-core-XXXXXX";

static const char *write_tmp(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

START_TEST(test_status_names_stable)
{
    ck_assert_str_eq(bcd_status_name(BCD_OK), "ok");
    ck_assert_str_eq(bcd_status_name(BCD_EINVAL), "invalid_argument");
    ck_assert_str_eq(bcd_status_name(BCD_ENOTFOUND), "not_found");
    ck_assert_str_eq(bcd_status_name(BCD_EUNSUPPORTED), "unsupported");
    ck_assert_int_eq(BCD_EDOMAIN, -13);
    /* every status in range has its own name and text; out of range gets a fallback */
    for (int s = 0; s >= BCD_EDOMAIN; s--) {
        ck_assert_str_ne(bcd_status_name(s), "unknown");
        ck_assert_str_ne(bcd_strerror(s), "unknown status");
        for (int t = s - 1; t >= BCD_EDOMAIN; t--)
            ck_assert_str_ne(bcd_status_name(s), bcd_status_name(t));
    }
    ck_assert_str_eq(bcd_status_name(-999), "unknown");
    ck_assert_str_eq(bcd_strerror(42), "unknown status");
}
END_TEST

START_TEST(test_version)
{
    ck_assert_str_eq(bcd_version(), BCD_VERSION_STRING);
    ck_assert_int_eq(bcd_version_number(), BCD_VERSION_NUMBER);
    ck_assert_int_eq(BCD_VERSION_NUMBER, BCD_VERSION_MAJOR * 10000 + BCD_VERSION_MINOR * 100 + BCD_VERSION_PATCH);
}
END_TEST

START_TEST(test_error_detail_and_envelope)
{
    bcd_ctx *ctx = NULL;
    ck_assert_int_eq(bcd_ctx_new(&ctx), BCD_OK);
    ck_assert_ptr_null(bcd_ctx_last_error(ctx));
    ck_assert_int_eq(bcd__ctx_fail(ctx, BCD_ENOTFOUND, "session_not_found", "session %s not found", "x\"y"),
                     BCD_ENOTFOUND);
    bcd__error_set_details(&ctx->err, "{\"session_id\":\"x\"}");
    bcd__error_set_correlation_id(&ctx->err, "abc-123");
    const bcd_error *e = bcd_ctx_last_error(ctx);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_eq(bcd_error_status(e), BCD_ENOTFOUND);
    ck_assert_str_eq(bcd_error_code(e), "session_not_found");
    ck_assert_str_eq(bcd_error_message(e), "session x\"y not found");
    char *json = NULL;
    ck_assert_int_eq(bcd_error_json(&json, e), BCD_OK);
    ck_assert_str_eq(json, "{\"error\":{\"code\":\"session_not_found\",\"message\":\"session x\\\"y not found\","
                           "\"details\":{\"session_id\":\"x\"},\"correlation_id\":\"abc-123\"}}");
    bcd_free(json);
    /* the next fallible call on the ctx clears the detail */
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_MODEL", "builtin"), BCD_OK);
    ck_assert_ptr_null(bcd_ctx_last_error(ctx));
    /* a NULL error prints as success-shaped envelope pieces */
    ck_assert_str_eq(bcd_error_code(NULL), "ok");
    ck_assert_ptr_null(bcd_error_correlation_id(NULL));
    bcd_ctx_free(ctx);
    bcd_ctx_free(NULL);
}
END_TEST

START_TEST(test_config_defaults_and_setters)
{
    bcd_ctx *ctx = NULL;
    ck_assert_int_eq(bcd_ctx_new(&ctx), BCD_OK);
    ck_assert_str_eq(bcd_ctx_get(ctx, "BCD_STORE"), "local");
    ck_assert_str_eq(bcd_ctx_get(ctx, "BCD_MODEL"), "builtin");
    ck_assert_str_eq(bcd_ctx_get(ctx, "SUPABASE_STORAGE_BUCKET"), "bcd-images");
    ck_assert_str_eq(bcd_ctx_get(ctx, "BCD_MAX_PIXELS"), "100000000");
    ck_assert_ptr_nonnull(bcd_ctx_get(ctx, "BCD_DATA_DIR"));
    ck_assert_ptr_null(bcd_ctx_get(ctx, "SUPABASE_SERVICE_ROLE_KEY"));
    ck_assert_ptr_null(bcd_ctx_get(ctx, "NOT_A_KEY"));

    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_STORE", "redis"), BCD_EINVAL);
    ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), "invalid_config_value");
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_THREADS", "-1"), BCD_EINVAL);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_MAX_PIXELS", "0"), BCD_EINVAL);
    ck_assert_int_eq(bcd_ctx_set(ctx, "SUPABASE_URL", "ftp://x"), BCD_EINVAL);
    ck_assert_int_eq(bcd_ctx_set(ctx, "NOPE", "1"), BCD_EINVAL);
    ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), "unknown_config_key");
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_THREADS", "4"), BCD_OK);
    ck_assert_str_eq(bcd_ctx_get(ctx, "BCD_THREADS"), "4");
    ck_assert_int_eq(bcd__cfg_ull(ctx, BCD__CFG_THREADS, 0), 4);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_THREADS", NULL), BCD_OK);
    ck_assert_str_eq(bcd_ctx_get(ctx, "BCD_THREADS"), "0");
    bcd_ctx_free(ctx);
}
END_TEST

START_TEST(test_config_load_env_empty_path_reads_no_file)
{
    char cwd[4096];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    write_tmp(".env", "BCD_MODEL=from-dotenv.pt\n");
    ck_assert_int_eq(chdir(tmpdir), 0);
    setenv("BCD_THREADS", "4", 1);
    unsetenv("BCD_MODEL");
    bcd_ctx *ctx = NULL;
    ck_assert_int_eq(bcd_ctx_new(&ctx), BCD_OK);
    ck_assert_int_eq(bcd_ctx_load_env(ctx, ""), BCD_OK); /* the environment only */
    ck_assert_str_eq(bcd_ctx_get(ctx, "BCD_THREADS"), "4");
    ck_assert_str_ne(bcd_ctx_get(ctx, "BCD_MODEL"), "from-dotenv.pt");
    ck_assert_int_eq(bcd_ctx_load_env(ctx, NULL), BCD_OK); /* ./.env, as a server reads it */
    ck_assert_str_eq(bcd_ctx_get(ctx, "BCD_MODEL"), "from-dotenv.pt");
    bcd_ctx_free(ctx);
    unsetenv("BCD_THREADS");
    ck_assert_int_eq(chdir(cwd), 0);
}
END_TEST

START_TEST(test_config_precedence_and_dotenv)
{
    const char *path = write_tmp("env1", "# comment\n"
                                         "export SUPABASE_URL=\"http://127.0.0.1:54321\"\n"
                                         "SUPABASE_SERVICE_ROLE_KEY='sb_secret_abcdef'\n"
                                         "BCD_MODEL=from-file.pt  # trailing comment\n"
                                         "BCD_THREADS=3\n"
                                         "OPENROUTER_API_KEY=ignored\n\n");
    setenv("BCD_THREADS", "5", 1);
    unsetenv("BCD_MODEL");
    bcd_ctx *ctx = NULL;
    ck_assert_int_eq(bcd_ctx_new(&ctx), BCD_OK);
    ck_assert_int_eq(bcd_ctx_load_env(ctx, path), BCD_OK);
    ck_assert_str_eq(bcd_ctx_get(ctx, "SUPABASE_URL"), "http://127.0.0.1:54321");
    ck_assert_str_eq(bcd_ctx_get(ctx, "BCD_MODEL"), "from-file.pt");
    ck_assert_str_eq(bcd_ctx_get(ctx, "BCD_THREADS"), "5"); /* environment beats the file */
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_THREADS", "7"), BCD_OK);
    ck_assert_str_eq(bcd_ctx_get(ctx, "BCD_THREADS"), "7"); /* explicit beats environment */
    /* the secret is usable inside, never shown outside */
    ck_assert_str_eq(bcd__cfg(ctx, BCD__CFG_SUPABASE_SERVICE_ROLE_KEY), "sb_secret_abcdef");
    ck_assert_str_eq(bcd_ctx_get(ctx, "SUPABASE_SERVICE_ROLE_KEY"), "<set>");
    char *json = NULL;
    ck_assert_int_eq(bcd_ctx_config_json(&json, ctx), BCD_OK);
    ck_assert_ptr_null(strstr(json, "sb_secret"));
    ck_assert_ptr_nonnull(strstr(json, "\"SUPABASE_SERVICE_ROLE_KEY\":\"<set>\""));
    bcd_free(json);
    unsetenv("BCD_THREADS");
    bcd_ctx_free(ctx);
}
END_TEST

START_TEST(test_dotenv_errors)
{
    bcd_ctx *ctx = NULL;
    ck_assert_int_eq(bcd_ctx_new(&ctx), BCD_OK);
    ck_assert_int_eq(bcd_ctx_load_env(ctx, "/nonexistent/.env"), BCD_ENOTFOUND);
    const char *bad = write_tmp("env2", "BCD_MODEL=a\nthis line is wrong\n");
    ck_assert_int_eq(bcd_ctx_load_env(ctx, bad), BCD_EFORMAT);
    ck_assert_ptr_nonnull(strstr(bcd_error_message(bcd_ctx_last_error(ctx)), ":2:"));
    /* a failed load changes nothing */
    ck_assert_str_eq(bcd_ctx_get(ctx, "BCD_MODEL"), "builtin");
    const char *badval = write_tmp("env3", "BCD_STORE=mongo\n");
    ck_assert_int_eq(bcd_ctx_load_env(ctx, badval), BCD_EINVAL);
    setenv("BCD_DEVICE", "tpu", 1);
    ck_assert_int_eq(bcd_ctx_load_env(ctx, NULL), BCD_EINVAL);
    ck_assert_ptr_nonnull(strstr(bcd_error_message(bcd_ctx_last_error(ctx)), "BCD_DEVICE"));
    unsetenv("BCD_DEVICE");
    bcd_ctx_free(ctx);
}
END_TEST

START_TEST(test_uuid)
{
    char a[37], b[37];
    ck_assert_int_eq(bcd__uuid_v4(a), BCD_OK);
    ck_assert_int_eq(bcd__uuid_v4(b), BCD_OK);
    ck_assert(bcd__uuid_valid(a));
    ck_assert_str_ne(a, b);
    ck_assert_int_eq(a[14], '4');
    ck_assert(strchr("89ab", a[19]) != NULL);
    ck_assert(!bcd__uuid_valid("not-a-uuid"));
    ck_assert(!bcd__uuid_valid("123e4567-e89b-12d3-a456-42661417400g"));
    ck_assert(bcd__uuid_valid("123e4567-e89b-12d3-a456-426614174000"));
    ck_assert(!bcd__uuid_valid(NULL));
}
END_TEST

/* Repair of one text: the result, or "=" when the text itself is returned (valid). */
static void repaired(const char *in, const char *want)
{
    char *s = bcd__strdup(in);
    ck_assert_ptr_nonnull(s);
    char *r = bcd__utf8_repair(s);
    ck_assert_ptr_nonnull(r);
    if (strcmp(want, "=") == 0) {
        ck_assert_ptr_eq(r, s);
        ck_assert_str_eq(r, in);
    } else {
        ck_assert_str_eq(r, want);
    }
    free(r);
}

START_TEST(test_utf8_repair)
{
    repaired("", "=");
    repaired("plain ascii {\"a\":1}", "=");
    repaired("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf", "="); /* 2, 3, 4 bytes, U+10FFFF */
    repaired("a\xff" "b", "a\xef\xbf\xbd" "b");                                    /* never a lead byte */
    repaired("\x80", "\xef\xbf\xbd");                                                /* lone continuation */
    repaired("\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd");                            /* overlong '/' */
    repaired("\xe0\x80\xaf", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");        /* overlong, 3 bytes */
    repaired("\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");        /* a surrogate */
    repaired("\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"); /* > U+10FFFF */
    repaired("x\xe2\x82", "x\xef\xbf\xbd\xef\xbf\xbd");                          /* cut short */
    repaired("\xc3\xa9\xc3", "\xc3\xa9\xef\xbf\xbd");
    ck_assert_ptr_null(bcd__utf8_repair(NULL));
}
END_TEST

START_TEST(test_read_file)
{
    bcd_ctx *ctx = NULL;
    ck_assert_int_eq(bcd_ctx_new(&ctx), BCD_OK);
    const char *p = write_tmp("f", "hello");
    unsigned char *buf = NULL;
    size_t len = 0;
    ck_assert_int_eq(bcd__read_file(ctx, p, 0, &buf, &len), BCD_OK);
    ck_assert_uint_eq(len, 5);
    ck_assert_str_eq((char *)buf, "hello");
    free(buf);
    ck_assert_int_eq(bcd__read_file(ctx, p, 4, &buf, &len), BCD_ELIMIT);
    ck_assert_int_eq(bcd__read_file(ctx, "/nonexistent", 0, &buf, &len), BCD_ENOTFOUND);
    ck_assert_int_eq(bcd__read_file(ctx, "/tmp", 0, &buf, &len), BCD_EIO);
    bcd_ctx_free(ctx);
}
END_TEST

static size_t file_size(const char *path)
{
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    return (size_t)sb.st_size;
}

/* The names in dir other than . and .. (no temporary file left behind). */
static int entries(const char *dir)
{
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) -eq 0", dir);
    int n = 0;
    if (system(cmd) != 0)
        n = 1;
    return n;
}

START_TEST(test_file_write_replaces_and_fails_cleanly)
{
    char dir[600], path[700], bad[700];
    snprintf(dir, sizeof dir, "%s/atomic", tmpdir);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    snprintf(path, sizeof path, "%s/r.html", dir);
    bcd_error err;
    memset(&err, 0, sizeof err);
    mode_t old = umask(0);
    ck_assert_int_eq(bcd__file_write(&err, path, "one", 3), BCD_OK);
    ck_assert_int_eq(bcd__file_write(&err, path, "second", 6), BCD_OK);
    umask(old);
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq((int)sb.st_size, 6);
    ck_assert_int_eq((int)(sb.st_mode & 0777), 0600);
    snprintf(bad, sizeof bad, "%s/no/such/dir/r.html", dir);
    ck_assert_int_eq(bcd__file_write(&err, bad, "x", 1), BCD_EIO);
    ck_assert_str_eq(err.code, "file_write_failed");
    bcd__error_clear(&err);
    snprintf(bad, sizeof bad, "%s/", dir);
    ck_assert_int_eq(bcd__file_write(&err, bad, "x", 1), BCD_EINVAL);
    bcd__error_clear(&err);
    /* an abandoned write leaves the earlier file and nothing else */
    struct bcd__file f;
    ck_assert_int_eq(bcd__file_open(&f, &err, path), BCD_OK);
    ck_assert_int_eq(bcd__file_put(&f, &err, "partial", 7), BCD_OK);
    bcd__file_abort(&f);
    ck_assert_uint_eq(file_size(path), 6);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(entries(dir), 0);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(test_file_write_follows_a_link_to_its_target)
{
    char dir[600], target[700], link1[700], link2[700], dangling[700], missing[700];
    snprintf(dir, sizeof dir, "%s/links", tmpdir);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    snprintf(target, sizeof target, "%s/target.html", dir);
    snprintf(link1, sizeof link1, "%s/link1", dir);
    snprintf(link2, sizeof link2, "%s/link2", dir);
    snprintf(dangling, sizeof dangling, "%s/dangling", dir);
    snprintf(missing, sizeof missing, "%s/new.html", dir);
    ck_assert_int_eq(bcd__file_write(NULL, target, "old", 3), BCD_OK);
    ck_assert_int_eq(symlink("target.html", link1), 0); /* relative */
    ck_assert_int_eq(symlink(link1, link2), 0);         /* absolute, a chain */
    ck_assert_int_eq(symlink("new.html", dangling), 0);
    bcd_error err;
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(bcd__file_write(&err, link2, "through links", 13), BCD_OK);
    struct stat sb;
    ck_assert_int_eq(lstat(link1, &sb), 0);
    ck_assert(S_ISLNK(sb.st_mode));
    ck_assert_int_eq(lstat(link2, &sb), 0);
    ck_assert(S_ISLNK(sb.st_mode));
    ck_assert_int_eq(lstat(target, &sb), 0);
    ck_assert(S_ISREG(sb.st_mode));
    ck_assert_int_eq((int)sb.st_size, 13);
    /* a link to a name that does not exist yet: the file is created there */
    ck_assert_int_eq(bcd__file_write(&err, dangling, "new", 3), BCD_OK);
    ck_assert_int_eq(lstat(dangling, &sb), 0);
    ck_assert(S_ISLNK(sb.st_mode));
    ck_assert_uint_eq(file_size(missing), 3);
    /* a loop of links is an error, not a hang */
    char loop_a[700], loop_b[700];
    snprintf(loop_a, sizeof loop_a, "%s/a", dir);
    snprintf(loop_b, sizeof loop_b, "%s/b", dir);
    ck_assert_int_eq(symlink(loop_b, loop_a), 0);
    ck_assert_int_eq(symlink(loop_a, loop_b), 0);
    ck_assert_int_eq(bcd__file_write(&err, loop_a, "x", 1), BCD_EIO);
    ck_assert_int_eq(lstat(loop_a, &sb), 0);
    ck_assert(S_ISLNK(sb.st_mode));
    bcd__error_clear(&err);
}
END_TEST

START_TEST(test_file_write_never_renames_over_a_special_file)
{
    char dir[600], fifo[700], sock[700], sub[700];
    snprintf(dir, sizeof dir, "%s/special", tmpdir);
    ck_assert_int_eq(mkdir(dir, 0700), 0);
    bcd_error err;
    memset(&err, 0, sizeof err);
    /* a pipe: written in place (a reader gets the bytes), still a pipe afterwards */
    snprintf(fifo, sizeof fifo, "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    int rd = open(fifo, O_RDONLY | O_NONBLOCK);
    ck_assert_int_ge(rd, 0);
    ck_assert_int_eq(bcd__file_write(&err, fifo, "piped", 5), BCD_OK);
    char buf[16] = "";
    ck_assert_int_eq((int)read(rd, buf, sizeof buf), 5);
    ck_assert(memcmp(buf, "piped", 5) == 0);
    close(rd);
    struct stat sb;
    ck_assert_int_eq(lstat(fifo, &sb), 0);
    ck_assert(S_ISFIFO(sb.st_mode));
    /* a device: written directly, the node stays */
    ck_assert_int_eq(bcd__file_write(&err, "/dev/null", "x", 1), BCD_OK);
    ck_assert_int_eq(lstat("/dev/null", &sb), 0);
    ck_assert(S_ISCHR(sb.st_mode));
    /* a folder or a socket: refused, left alone */
    snprintf(sub, sizeof sub, "%s/folder", dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    ck_assert_int_eq(bcd__file_write(&err, sub, "x", 1), BCD_EINVAL);
    ck_assert_int_eq(lstat(sub, &sb), 0);
    ck_assert(S_ISDIR(sb.st_mode));
    snprintf(sock, sizeof sock, "%s/sock", dir);
    int sfd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    if (strlen(sock) < sizeof sa.sun_path) {
        memcpy(sa.sun_path, sock, strlen(sock) + 1);
        ck_assert_int_eq(bind(sfd, (struct sockaddr *)&sa, sizeof sa), 0);
        ck_assert_int_eq(bcd__file_write(&err, sock, "x", 1), BCD_EINVAL);
        ck_assert_int_eq(lstat(sock, &sb), 0);
        ck_assert(S_ISSOCK(sb.st_mode));
    }
    close(sfd);
    bcd__error_clear(&err);
}
END_TEST

START_TEST(test_file_write_dash_and_dev_stdout_write_standard_output)
{
    char out[600];
    snprintf(out, sizeof out, "%s/stdout.txt", tmpdir);
    fflush(stdout);
    int saved = dup(1);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(dup2(fd, 1), 1);
    close(fd);
    ck_assert_int_eq(bcd__file_write(NULL, "-", "dash,", 5), BCD_OK);
    ck_assert_int_eq(bcd__file_write(NULL, "/dev/stdout", "stdout,", 7), BCD_OK);
    ck_assert_int_eq(bcd__file_write(NULL, "/dev/fd/1", "fd1", 3), BCD_OK);
    ck_assert_int_eq(dup2(saved, 1), 1); /* standard output is still open and written in order */
    close(saved);
    FILE *f = fopen(out, "r");
    char buf[64] = "";
    ck_assert_ptr_nonnull(fgets(buf, sizeof buf, f));
    fclose(f);
    ck_assert_str_eq(buf, "dash,stdout,fd1");
    struct stat sb;
    ck_assert_int_eq(lstat("/dev/stdout", &sb), 0);
    ck_assert(S_ISLNK(sb.st_mode));
}
END_TEST

START_TEST(test_mkdirs_creates_private_folders)
{
    char path[700], file[700];
    snprintf(path, sizeof path, "%s/m/a//b/c", tmpdir);
    bcd_error err;
    memset(&err, 0, sizeof err);
    bool created = false;
    mode_t old = umask(0);
    ck_assert_int_eq(bcd__mkdirs(&err, path, &created), BCD_OK);
    umask(old);
    ck_assert(created);
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert(S_ISDIR(sb.st_mode));
    ck_assert_int_eq((int)(sb.st_mode & 0777), 0700);
    snprintf(file, sizeof file, "%s/m/a", tmpdir);
    ck_assert_int_eq(stat(file, &sb), 0);
    ck_assert_int_eq((int)(sb.st_mode & 0777), 0700);
    ck_assert_int_eq(bcd__mkdirs(&err, path, &created), BCD_OK); /* already there */
    ck_assert(!created);
    snprintf(file, sizeof file, "%s/m/file", tmpdir);
    ck_assert_int_eq(bcd__file_write(&err, file, "x", 1), BCD_OK);
    snprintf(path, sizeof path, "%s/m/file/sub", tmpdir);
    ck_assert_int_eq(bcd__mkdirs(&err, path, NULL), BCD_EIO);
    ck_assert_str_eq(err.code, "file_write_failed");
    bcd__error_clear(&err);
}
END_TEST

int main(void)
{
    if (!mkdtemp(tmpdir))
        return EXIT_FAILURE;
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_status_names_stable);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_error_detail_and_envelope);
    tcase_add_test(tc, test_config_defaults_and_setters);
    tcase_add_test(tc, test_config_precedence_and_dotenv);
    tcase_add_test(tc, test_config_load_env_empty_path_reads_no_file);
    tcase_add_test(tc, test_dotenv_errors);
    tcase_add_test(tc, test_uuid);
    tcase_add_test(tc, test_utf8_repair);
    tcase_add_test(tc, test_read_file);
    tcase_add_test(tc, test_file_write_replaces_and_fails_cleanly);
    tcase_add_test(tc, test_file_write_follows_a_link_to_its_target);
    tcase_add_test(tc, test_file_write_never_renames_over_a_special_file);
    tcase_add_test(tc, test_file_write_dash_and_dev_stdout_write_standard_output);
    tcase_add_test(tc, test_mkdirs_creates_private_folders);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

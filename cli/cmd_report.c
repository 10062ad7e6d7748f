/* bcd-cli report and history: one library operation each (bcd/report.h), printed as JSON
 * or as readable text; long work shows progress on stderr when that is a terminal. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"

/* ---- progress on stderr ---------------------------------------------------------------
 * Only on a terminal and never with --json: one line rewritten in place, erased at the
 * end. Nothing goes to stdout. */

struct progress {
    const char *what; /* "report", "history" */
    bool line;
    double last_draw;
    char last_stage[16];
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static const char *stage_words(const char *stage)
{
    if (strcmp(stage, "analyses") == 0)
        return "reading analyses";
    if (strcmp(stage, "photos") == 0)
        return "preparing photos";
    if (strcmp(stage, "write") == 0)
        return "writing the file";
    return stage;
}

static void on_progress(void *user, const bcd_progress_event *ev)
{
    struct progress *p = user;
    double t = now_s();
    bool stage_changed = strcmp(p->last_stage, ev->stage) != 0;
    /* redraw at most 10 times a second, but always on a new stage and at its end */
    if (!stage_changed && ev->done != ev->total && t - p->last_draw < 0.1)
        return;
    p->last_draw = t;
    snprintf(p->last_stage, sizeof p->last_stage, "%s", ev->stage);
    fputs("\r\033[K", stderr);
    if (ev->total)
        fprintf(stderr, "%s: %s %zu of %zu | %.1f s", p->what, stage_words(ev->stage), ev->done, ev->total,
                ev->elapsed_s);
    else
        fprintf(stderr, "%s: %s | %.1f s", p->what, stage_words(ev->stage), ev->elapsed_s);
    p->line = true;
    fflush(stderr);
}

static void progress_on(struct cli *c, bcd_service *svc, struct progress *p, const char *what)
{
    memset(p, 0, sizeof *p);
    p->what = what;
    if (!c->json && isatty(STDERR_FILENO))
        bcd_service_set_progress(svc, on_progress, p);
}

static void progress_off(bcd_service *svc, struct progress *p)
{
    bcd_service_set_progress(svc, NULL, NULL);
    if (p->line) {
        fputs("\r\033[K", stderr);
        fflush(stderr);
    }
    p->line = false;
}

/* ---- readable text ---------------------------------------------------------------------- */

static const char *str(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static void print_num(double v, int decimals, int width)
{
    char buf[32];
    if (isnan(v))
        snprintf(buf, sizeof buf, "-");
    else
        snprintf(buf, sizeof buf, "%.*f", decimals, v);
    printf("%-*s", width, buf);
}

/* "2026-11-25T05:07:02.0347Z" -> "2026-11-25 05:07" */
static void short_time(char *buf, size_t cap, const char *ts)
{
    snprintf(buf, cap, "%.16s", ts ? ts : "-");
    char *t = strchr(buf, 'T');
    if (t)
        *t = ' ';
}

static const char *label_or(const char *label, const char *dflt)
{
    return label ? label : dflt;
}

/* Text wrapped at 88 columns with an indent. */
static void wrap(const char *text, int indent)
{
    const int width = 88;
    int col = 0;
    const char *p = text;
    while (*p) {
        while (*p == ' ')
            p++;
        size_t w = strcspn(p, " ");
        if (!w)
            break;
        if (col && col + 1 + (int)w > width) {
            putchar('\n');
            col = 0;
        }
        if (!col) {
            printf("%*s", indent, "");
            col = indent;
        } else {
            putchar(' ');
            col++;
        }
        fwrite(p, 1, w, stdout);
        col += (int)w;
        p += w;
    }
    if (col)
        putchar('\n');
}

static void print_list(const char *title, const cJSON *arr)
{
    if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
        return;
    printf("\n%s\n", title);
    const cJSON *it;
    cJSON_ArrayForEach(it, arr) if (cJSON_IsString(it))
    {
        fputs("  - ", stdout);
        wrap(it->valuestring, 0);
    }
}

static void print_trend(const cJSON *trend)
{
    double n_scored = num(trend, "n_scored");
    printf("Trend: %s", label_or(str(trend, "label"), "-"));
    if (n_scored >= 2)
        printf(", %s (Theil-Sen slope %+.4f per check over %.0f scored checks, level %.4f)",
               label_or(str(trend, "direction"), "-"), num(trend, "slope"), n_scored, num(trend, "level"));
    putchar('\n');
    const cJSON *fl = cJSON_GetObjectItemCaseSensitive(trend, "flagged_sessions");
    int nf = cJSON_GetArraySize(fl);
    printf("Flagged checks: %s", nf ? "" : "none\n");
    const cJSON *it;
    int i = 0;
    cJSON_ArrayForEach(it, fl)
    {
        char t[32];
        short_time(t, sizeof t, str(it, "created_at"));
        printf("%s#%.0f (%s)", i++ ? ", " : "", num(it, "index") + 1, t);
    }
    if (nf)
        putchar('\n');
}

static void print_report_text(const cJSON *d)
{
    char when[32];
    short_time(when, sizeof when, str(d, "created_at"));
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(d, "history");
    printf("Report of check %.0f of %.0f (%s UTC), session %s\n", num(d, "check_number"), num(h, "count"), when,
           label_or(str(d, "session_id"), "-"));
    printf("Overall change vs baseline: ");
    print_num(num(d, "overall_change_score"), 4, 0);
    printf(" (%s)", label_or(str(d, "overall_trend"), "baseline check"));
    const cJSON *cmp = cJSON_GetObjectItemCaseSensitive(d, "comparison");
    if (cJSON_IsObject(cmp)) {
        printf("; since previous check: ");
        print_num(num(cmp, "overall_delta"), 4, 0);
        printf(" (%s)", label_or(str(cmp, "overall_trend"), "-"));
    }
    printf("; confidence ");
    print_num(num(d, "confidence"), 2, 0);
    double cp = num(d, "change_probability");
    if (!isnan(cp))
        printf("; change probability %.0f%%", 100.0 * cp);
    printf("\n\n");
    wrap(label_or(str(d, "summary"), ""), 0);
    printf("\n%-8s %-10s %-18s %-12s %s\n", "angle", "baseline", "label", "since prev", "quality");
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItemCaseSensitive(d, "per_angle"))
    {
        const cJSON *q = cJSON_GetObjectItemCaseSensitive(it, "quality");
        printf("%-8s ", label_or(str(it, "angle_type"), "?"));
        print_num(num(it, "change_score"), 4, 10);
        printf(" %-18s ", label_or(str(it, "trend"), "no baseline yet"));
        print_num(num(it, "embedding_distance"), 4, 12);
        printf(" ");
        print_num(num(q, "score"), 2, 0);
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(q, "blurred")))
            printf(" blurred");
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(q, "poorly_exposed")))
            printf(" poorly exposed");
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "changed")))
            printf(" CHANGED");
        putchar('\n');
    }
    print_list("Photo quality:", cJSON_GetObjectItemCaseSensitive(d, "quality_warnings"));
    print_list("What you might do next:", cJSON_GetObjectItemCaseSensitive(d, "next_steps"));
    putchar('\n');
    print_trend(cJSON_GetObjectItemCaseSensitive(h, "trend"));
}

static void print_history_text(const cJSON *doc)
{
    const cJSON *sessions = cJSON_GetObjectItemCaseSensitive(doc, "sessions");
    printf("%.0f analyzed checks of %s\n\n", num(doc, "count"), label_or(str(doc, "user_id"), "-"));
    printf("%-4s %-17s %-10s %-18s %-11s %-6s %s\n", "#", "date (UTC)", "overall", "label", "since prev", "conf",
           "flag");
    const cJSON *it;
    int i = 0;
    cJSON_ArrayForEach(it, sessions)
    {
        char when[32];
        short_time(when, sizeof when, str(it, "created_at"));
        printf("%-4d %-17s ", ++i, when);
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "is_baseline")))
            printf("%-10s %-18s ", "-", "baseline");
        else {
            print_num(num(it, "overall_change_score"), 4, 10);
            printf(" %-18s ", label_or(str(it, "overall_trend"), "-"));
        }
        print_num(num(it, "delta_from_previous"), 4, 11);
        printf(" ");
        print_num(num(it, "confidence"), 2, 6);
        printf(" %s  %.8s\n", cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "flagged")) ? "FLAGGED" : "-",
               label_or(str(it, "session_id"), ""));
    }
    putchar('\n');
    print_trend(cJSON_GetObjectItemCaseSensitive(doc, "trend"));
}

/* Print a document: as is with --json, else through the text printer. */
static int print_doc(struct cli *c, const char *json, void (*text)(const cJSON *), bool data)
{
    if (c->json) {
        puts(json);
        return EXIT_OK;
    }
    cJSON *doc = cJSON_Parse(json);
    if (!doc)
        return cli_fail(BCD_ENOMEM, "out of memory");
    const cJSON *d = data ? cJSON_GetObjectItemCaseSensitive(doc, "data") : doc;
    text(d);
    cJSON_Delete(doc);
    return EXIT_OK;
}

static int svc_fail(bcd_service *svc, bcd_status st)
{
    char *env = NULL;
    if (bcd_error_json(&env, bcd_service_last_error(svc)) == BCD_OK)
        fprintf(stderr, "%s\n", env);
    else
        fprintf(stderr, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\",\"details\":{},\"correlation_id\":null}}\n",
                bcd_status_name(st), bcd_strerror(st));
    bcd_free(env);
    return cli_exit_code(st);
}

/* Whether path names standard output: then nothing else is printed there. */
static bool to_stdout(const char *path)
{
    return strcmp(path, "-") == 0 || strcmp(path, "/dev/stdout") == 0 || strcmp(path, "/dev/fd/1") == 0 ||
           strcmp(path, "/proc/self/fd/1") == 0;
}

static int cmd_report(struct cli *c)
{
    int urc;
    const char *user = cli_caller(c, &urc);
    if (!user)
        return urc;
    if (c->html && !*c->html)
        return cli_usage_error("--html needs a file name");
    bcd_service *svc = NULL;
    bcd_status st = bcd_service_open(&svc, c->ctx);
    if (st != BCD_OK)
        return cli_fail_ctx(c, st);
    struct progress prog;
    progress_on(c, svc, &prog, "report");
    int rc = EXIT_OK;
    if (c->html) {
        st = bcd_report_html(svc, user, c->pos[0], c->html);
        progress_off(svc, &prog);
        if (st != BCD_OK) {
            rc = svc_fail(svc, st);
        } else if (!c->json && !to_stdout(c->html)) {
            struct stat sb;
            if (stat(c->html, &sb) == 0 && S_ISREG(sb.st_mode))
                printf("Report written to %s (%lld KB)\n", c->html, ((long long)sb.st_size + 1023) / 1024);
            else
                printf("Report written to %s\n", c->html);
        }
    }
    /* the document: without --html, or with --html and --json (the numbers of the page) */
    if (rc == EXIT_OK && (!c->html || c->json)) {
        char *out = NULL;
        st = bcd_report(&out, svc, user, c->pos[0]);
        progress_off(svc, &prog);
        rc = st == BCD_OK ? print_doc(c, out, print_report_text, true) : svc_fail(svc, st);
        bcd_free(out);
    }
    progress_off(svc, &prog);
    bcd_service_free(svc);
    return rc;
}

static int cmd_history(struct cli *c)
{
    int urc;
    const char *user = cli_caller(c, &urc);
    if (!user)
        return urc;
    bcd_service *svc = NULL;
    bcd_status st = bcd_service_open(&svc, c->ctx);
    if (st != BCD_OK)
        return cli_fail_ctx(c, st);
    struct progress prog;
    progress_on(c, svc, &prog, "history");
    char *out = NULL;
    st = bcd_history(&out, svc, user);
    progress_off(svc, &prog);
    int rc = st == BCD_OK ? print_doc(c, out, print_history_text, false) : svc_fail(svc, st);
    bcd_free(out);
    bcd_service_free(svc);
    return rc;
}

#define USER_HELP "  --user ID   the caller (default: BCD_USER, then the login name)\n  --json      print JSON"

const struct cli_command cli_report_commands[] = {
    {"report", "SESSION [--html FILE]", "Report of an analyzed check: summary, angles, history",
     "Written from the stored analyses: which angles changed and how much against the baseline\n"
     "and the previous check, photo quality, confidence, the history trend and what you might do\n"
     "next (not a diagnosis). --json prints the generate-report document {\"success\",\"data\":{...}}.\n"
     "  --html FILE  write one self-contained HTML file (photos embedded, charts as SVG, no\n"
     "               network access, printable, mode 0600); with --json the document is\n"
     "               printed too. FILE is replaced only once complete; a link is followed\n"
     "               to its target; '-' or /dev/stdout writes to standard output, and pipes\n"
     "               and devices are written directly\n"
     "On a terminal, progress is shown on stderr (not with --json).\n" USER_HELP,
     1, 1, cmd_report},
    {"history", "", "Every analyzed check with its scores, and the trend",
     "Oldest first, with overall and per-angle scores, the change against the previous check and\n"
     "the flags; the trend is a Theil-Sen slope of the overall score per check, labelled by its\n"
     "fitted level: stable (< 0.1), mild_variation (< 0.25), significant_shift.\n" USER_HELP,
     0, 0, cmd_history},
};
const int cli_report_ncommands = sizeof cli_report_commands / sizeof cli_report_commands[0];

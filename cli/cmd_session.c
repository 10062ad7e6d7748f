/* bcd-cli commands on sessions, images and analyses: each calls one service operation. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"

static int parse_order_index(struct cli *c, int *out)
{
    *out = -1;
    if (!c->order_index)
        return EXIT_OK;
    char *end;
    long v = strtol(c->order_index, &end, 10);
    if (*c->order_index == '\0' || *end || v < 0 || v > 1000000)
        return cli_usage_error("--order-index must be a non-negative integer, got '%s'", c->order_index);
    *out = (int)v;
    return EXIT_OK;
}

enum op {
    OP_CREATE, OP_COMPLETE, OP_LIST, OP_INFO, OP_THUMBS, OP_ADD, OP_REGISTER, OP_PREVIEW,
    OP_ANALYZE, OP_COMPARE, OP_GET, OP_LESIONS, OP_IMAGE_DELETE, OP_SESSION_DELETE, OP_USER_DELETE,
};

/* Open the service, run one operation, print its result or its error. */
/* The "changed" of an analysis or a comparison ({"success", "data": {..., "changed"}}). */
static bool result_changed(const char *json)
{
    cJSON *doc = cJSON_Parse(json);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(doc, "data");
    bool changed = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(d ? d : doc, "changed"));
    cJSON_Delete(doc);
    return changed;
}

static int run_op(struct cli *c, enum op op)
{
    int urc;
    const char *user = cli_caller(c, &urc);
    if (!user)
        return urc;
    int order = -1;
    if ((op == OP_ADD || op == OP_REGISTER || op == OP_IMAGE_DELETE) && parse_order_index(c, &order) != EXIT_OK)
        return EXIT_USAGE;
    if (c->exit_code && ((op != OP_ANALYZE && op != OP_COMPARE) || c->async))
        return cli_usage_error("--exit-code applies to analyze and compare (and not to analyze --async: the "
                               "result is not known yet)");
    if (op == OP_USER_DELETE && !c->yes)
        return cli_usage_error("'user delete' deletes every check and photo of %s: add --yes to confirm", user);
    bcd_service *svc = NULL;
    bcd_status st = bcd_service_open(&svc, c->ctx);
    if (st != BCD_OK)
        return cli_fail_ctx(c, st);
    char *out = NULL;
    const char *const *p = c->pos;
    switch (op) {
    case OP_CREATE: st = bcd_session_create(&out, svc, user); break;
    case OP_COMPLETE: st = bcd_session_complete(&out, svc, user, p[0]); break;
    case OP_LIST: st = bcd_session_list(&out, svc, user); break;
    case OP_INFO: st = bcd_session_info(&out, svc, user, p[0]); break;
    case OP_THUMBS: st = bcd_session_thumbnails(&out, svc, user, p[0]); break;
    case OP_ADD: st = bcd_image_add(&out, svc, user, p[0], p[1], p[2], order); break;
    case OP_REGISTER: st = bcd_image_register(&out, svc, user, p[0], p[1], p[2], order); break;
    case OP_PREVIEW: st = bcd_image_preview(&out, svc, user, p[0], p[1]); break;
    case OP_ANALYZE:
        if (c->async) { /* queue a job for a worker (cmd_jobs.c) */
            st = bcd_session_analyze_async(&out, svc, user, p[0], c->model);
            break;
        }
        cli_progress_attach(c, svc);
        st = bcd_session_analyze(&out, svc, user, p[0], NULL);
        cli_progress_done(c, svc);
        break;
    case OP_COMPARE: {
        bcd_compare_options o = BCD_COMPARE_OPTIONS_INIT;
        o.heatmap_dir = c->heatmaps;
        st = bcd_session_compare_ex(&out, svc, user, p[0], p[1], &o);
        break;
    }
    case OP_GET: st = bcd_analysis_get(&out, svc, user, p[0]); break;
    case OP_LESIONS: st = bcd_lesions_get(&out, svc, user, p[0]); break;
    case OP_IMAGE_DELETE: st = bcd_image_delete(&out, svc, user, p[0], p[1], order); break;
    case OP_SESSION_DELETE: st = bcd_session_delete(&out, svc, user, p[0]); break;
    case OP_USER_DELETE: st = bcd_user_delete(&out, svc, user); break;
    }
    int rc;
    if (st == BCD_OK && op == OP_LESIONS && !c->json) {
        rc = cli_print_lesions(out);
    } else if (st == BCD_OK) {
        rc = cli_print_result(c, out);
        if (rc == EXIT_OK && c->exit_code && result_changed(out))
            rc = EXIT_CHANGED;
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

#define OP_FN(name, op) \
    static int name(struct cli *c) { return run_op(c, op); }
OP_FN(cmd_create, OP_CREATE)
OP_FN(cmd_complete, OP_COMPLETE)
OP_FN(cmd_list, OP_LIST)
OP_FN(cmd_info, OP_INFO)
OP_FN(cmd_thumbs, OP_THUMBS)
OP_FN(cmd_add, OP_ADD)
OP_FN(cmd_register, OP_REGISTER)
OP_FN(cmd_preview, OP_PREVIEW)
OP_FN(cmd_analyze, OP_ANALYZE)
OP_FN(cmd_compare, OP_COMPARE)
OP_FN(cmd_get, OP_GET)
OP_FN(cmd_lesions, OP_LESIONS)
OP_FN(cmd_image_delete, OP_IMAGE_DELETE)
OP_FN(cmd_session_delete, OP_SESSION_DELETE)
OP_FN(cmd_user_delete, OP_USER_DELETE)

#define USER_HELP "  --user ID   the caller (default: BCD_USER, then the login name)\n  --json      print JSON"

const struct cli_command cli_session_commands[] = {
    {"session create", "", "Create a session for the caller, print its id",
     "Prints {\"session_id\":UUID,\"status\":\"created\"}.\n" USER_HELP, 0, 0, cmd_create},
    {"session complete", "SESSION", "Mark a session completed (needs 3 distinct angles)",
     "Analysis only runs on completed sessions; at least 3 of the 6 angles must have images.\n" USER_HELP, 1, 1,
     cmd_complete},
    {"session list", "", "List the caller's sessions, oldest first", USER_HELP, 0, 0, cmd_list},
    {"session delete", "SESSION", "Delete a check: its photos, analysis and every file made from them",
     "The rows go in one atomic step, the stored files after them; the check no longer counts\n"
     "as a baseline or in the history. Other checks are untouched.\n" USER_HELP,
     1, 1, cmd_session_delete},
    {"user delete", "--yes", "Delete every check and photo of the caller (right to erasure)",
     "Deletes each of the caller's checks as 'session delete' does, newest first; other\n"
     "users' data is untouched. Needs --yes. After a failure part way, run it again.\n" USER_HELP,
     0, 0, cmd_user_delete},
    {"session info", "SESSION", "First/current session, total, previous session id",
     "previous_session_id is the session just before this one in time.\n" USER_HELP, 1, 1, cmd_info},
    {"session thumbnails", "SESSION", "Paths / file:// URLs of every angle in one call", USER_HELP, 1, 1,
     cmd_thumbs},
    {"image add", "SESSION ANGLE FILE [--order-index N]", "Copy a photo into the store and register it",
     "ANGLE is one of front, left, right, up, down, raised. The file is decoded once to check\n"
     "it is a JPEG or PNG; its bytes are stored unchanged. Without --order-index the next\n"
     "index of the angle is used.\n" USER_HELP,
     3, 3, cmd_add},
    {"image register", "SESSION ANGLE PATH [--order-index N]", "Register an image already in storage",
     "Idempotent per (session, path). For an angle, --order-index must equal the number of\n"
     "images it already has (0-based); a different path in a taken slot is a conflict.\n" USER_HELP,
     3, 3, cmd_register},
    {"image delete", "SESSION ANGLE [--order-index N]", "Delete one photo of a check, with what was made from it",
     "Removes the photo (the last of ANGLE, or the one at --order-index N), the check's\n"
     "analysis (made from it; analyze the check again) and the stored files nothing names any\n"
     "more: the photo's copy, working copies, heatmaps, feature maps. Later photos of the\n"
     "angle move up one place: to replace a wrong photo, delete it and 'image add' the right\n"
     "one with the same --order-index.\n" USER_HELP,
     2, 2, cmd_image_delete},
    {"image preview", "SESSION ANGLE", "Where to read the photo of one angle", USER_HELP, 2, 2, cmd_preview},
    {"analyze", "SESSION [--model builtin|PATH] [--async] [--exit-code]", "Analyze a completed session and store the result",
     "Embeds all angles in one batch and scores each against the caller's earlier sessions\n"
     "(change_score = cosine distance to their mean). Change detection compares each angle's\n"
     "photo with the previous completed session: local_change, changed_regions (pixel boxes),\n"
     "quality flags and a stored heatmap per angle; change_probability and changed overall.\n"
     "Re-analysis replaces the stored result.\n"
     "On a terminal, progress is shown on stderr (not with --json).\n"
     "  --model SPEC  builtin (default, BCD_MODEL) or a TorchScript file\n"
     "  --async       queue a job for 'bcd-cli worker' and print {\"status\":\"processing\",\"job_id\"}\n"
     "                at once; follow it with 'bcd-cli job status JOB'\n"
     "  --exit-code   exit 20 when a change was found (changed), 0 when none\n" USER_HELP,
     1, 1, cmd_analyze},
    {"compare", "CURRENT PREVIOUS [--heatmaps DIR] [--exit-code]", "Deltas, trend and local change detection of two checks",
     "Both sessions must be analyzed. overall_trend: stable (< 0.1), mild_variation (< 0.25),\n"
     "significant_shift. Change detection of the pair: per angle local_change, changed,\n"
     "changed_regions, quality flags; change_probability and changed overall (reused from\n"
     "the analysis of CURRENT when it was made against PREVIOUS, else computed).\n"
     "  --heatmaps DIR  write the change-map overlays as DIR/<angle>.png (DIR is created)\n"
     "  --exit-code     exit 20 when a change was found (changed), 0 when none\n" USER_HELP,
     2, 2, cmd_compare},
    {"analysis get", "SESSION", "The stored analysis of a session (no recomputation)", USER_HELP, 1, 1, cmd_get},
    {"lesions", "SESSION", "The lesions of an analyzed check against the previous one",
     "Every spot (mole, freckle, papule) analyze found on each angle's photo, with a stable id\n"
     "carried from check to check, its state (matched, new, gone, not_visible), centre and\n"
     "size, and for matched lesions what changed since the previous check (diameter, area,\n"
     "colour as CIEDE2000, darkening, a second colour) with a change score. The readable form\n"
     "lists each angle's counts, its changed lesions, and how many matched lesions could not\n"
     "be judged and why (light_differs, registration_unverified, too_faint, ...); --json has\n"
     "every lesion, with change.not_judged.\n"
     "BCD_MM_PER_PX (the photos' scale) adds sizes in mm.\n" USER_HELP,
     1, 1, cmd_lesions},
};
const int cli_session_ncommands = sizeof cli_session_commands / sizeof cli_session_commands[0];

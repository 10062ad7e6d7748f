/* Presentation only: print a result document as JSON (--json) or as readable text. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"

static void print_scalar(const cJSON *v)
{
    if (cJSON_IsString(v))
        fputs(v->valuestring, stdout);
    else if (cJSON_IsBool(v))
        fputs(cJSON_IsTrue(v) ? "yes" : "no", stdout);
    else if (cJSON_IsNull(v))
        fputs("-", stdout);
    else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (d == (double)(long long)d && d > -1e15 && d < 1e15)
            printf("%lld", (long long)d);
        else
            printf("%.4f", d);
    }
}

static bool is_scalar_array(const cJSON *a)
{
    const cJSON *e;
    cJSON_ArrayForEach(e, a) if (cJSON_IsObject(e) || cJSON_IsArray(e)) return false;
    return true;
}

static void humanize(const char *key, char *buf, size_t cap)
{
    size_t i = 0;
    for (; key[i] && i + 1 < cap; i++)
        buf[i] = key[i] == '_' ? ' ' : key[i];
    buf[i] = '\0';
}

static void render(const cJSON *node, int indent)
{
    const cJSON *child;
    cJSON_ArrayForEach(child, node)
    {
        char label[128] = "";
        if (child->string)
            humanize(child->string, label, sizeof label);
        printf("%*s", indent, "");
        if (cJSON_IsObject(child)) {
            printf("%s:\n", label);
            render(child, indent + 2);
        } else if (cJSON_IsArray(child) && is_scalar_array(child)) {
            int n = cJSON_GetArraySize(child);
            printf("%s: ", label);
            if (n > 8) {
                printf("[%d values]\n", n);
                continue;
            }
            const cJSON *e;
            int i = 0;
            cJSON_ArrayForEach(e, child)
            {
                if (i++)
                    fputs(", ", stdout);
                print_scalar(e);
            }
            putchar('\n');
        } else if (cJSON_IsArray(child)) {
            printf("%s:\n", label);
            const cJSON *e;
            cJSON_ArrayForEach(e, child)
            {
                printf("%*s-\n", indent + 2, "");
                render(e, indent + 4);
            }
        } else {
            printf("%s: ", label);
            print_scalar(child);
            putchar('\n');
        }
    }
}

int cli_print_result(struct cli *c, const char *json)
{
    if (c->json) {
        puts(json);
        return EXIT_OK;
    }
    cJSON *doc = cJSON_Parse(json);
    if (!doc) {
        puts(json);
        return EXIT_OK;
    }
    /* The seeds wrap results as {"success":true,"data":{...}}: show the data. */
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(doc, "data");
    render(cJSON_IsObject(data) ? data : doc, 0);
    cJSON_Delete(doc);
    return EXIT_OK;
}

static double jnum(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* One changed lesion: what changed, in words. */
static void print_change(const cJSON *l)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(l, "change");
    const char *state = jstr(l, "state");
    const cJSON *ctr = cJSON_GetObjectItemCaseSensitive(l, "center");
    double x = cJSON_IsArray(ctr) ? jnum(cJSON_GetArrayItem(ctr, 0), NULL) : NAN;
    double y = NAN;
    if (cJSON_IsArray(ctr)) {
        const cJSON *a = cJSON_GetArrayItem(ctr, 0), *b = cJSON_GetArrayItem(ctr, 1);
        x = cJSON_IsNumber(a) ? a->valuedouble : NAN;
        y = cJSON_IsNumber(b) ? b->valuedouble : NAN;
    }
    double dmm = jnum(l, "diameter_mm");
    printf("    #%-5.0f %-8s at (%.0f, %.0f)  %.0f px", jnum(l, "id"), state ? state : "?", x, y,
           jnum(l, "diameter_px"));
    if (isfinite(dmm))
        printf(" (%.1f mm)", dmm);
    if (cJSON_IsObject(c)) {
        double dd = jnum(c, "diameter_px"), dm = jnum(c, "diameter_mm"), de = jnum(c, "delta_e");
        double dk = jnum(c, "darkening");
        if (isfinite(dm))
            printf("  diameter %+.1f mm", dm);
        else if (isfinite(dd))
            printf("  diameter %+.0f px", dd);
        printf("  area %+.0f %%  colour dE %.1f  darker x%.2f", jnum(c, "area_pct"), de, exp(dk));
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "second_colour")))
            printf("  second colour");
    }
    printf("  score %.2f\n", jnum(l, "score"));
}

int cli_print_lesions(const char *json)
{
    cJSON *doc = cJSON_Parse(json);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(doc, "data");
    const char *prev = jstr(d, "previous_session_id");
    printf("session %s", jstr(d, "session_id") ? jstr(d, "session_id") : "?");
    printf(prev ? " against %s\n" : " (first check: nothing to compare)\n", prev);
    const cJSON *a, *angles = cJSON_GetObjectItemCaseSensitive(d, "angles");
    if (cJSON_GetArraySize(angles) == 0)
        printf("no lesions were recorded (analyzed with BCD_LESIONS=off, or before lesions existed)\n");
    cJSON_ArrayForEach(a, angles)
    {
        size_t counts[4] = { 0, 0, 0, 0 };
        static const char *const names[4] = { "matched", "new", "gone", "not_visible" };
        const cJSON *l, *list = cJSON_GetObjectItemCaseSensitive(a, "lesions");
        cJSON_ArrayForEach(l, list)
        {
            const char *s = jstr(l, "state");
            for (int k = 0; s && k < 4; k++)
                counts[k] += strcmp(s, names[k]) == 0;
        }
        const char *status = jstr(a, "status"), *reason = jstr(a, "reason");
        printf("%-7s %-15s %3d lesions: %zu matched, %zu new, %zu gone, %zu not visible; %.0f changed\n",
               jstr(a, "angle_type") ? jstr(a, "angle_type") : "?", status ? status : "?", cJSON_GetArraySize(list),
               counts[0], counts[1], counts[2], counts[3], jnum(a, "changed"));
        if (reason)
            printf("    %s\n", reason);
        cJSON_ArrayForEach(l, list)
        {
            if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(l, "changed")))
                print_change(l);
        }
        /* matched lesions whose change could not be judged, by reason: where nothing was
         * said, and why */
        static const char *const whys[] = { "light_differs", "registration_unverified", "too_faint",
                                            "frame_edge", "near_clipping", "far_from_mapping", "not_separated",
                                            "skin_edge" };
        size_t nwhy[sizeof whys / sizeof *whys] = { 0 }, total = 0;
        cJSON_ArrayForEach(l, list)
        {
            const char *w = jstr(cJSON_GetObjectItemCaseSensitive(l, "change"), "not_judged");
            for (size_t k = 0; w && k < sizeof whys / sizeof *whys; k++)
                if (strcmp(w, whys[k]) == 0) {
                    nwhy[k]++;
                    total++;
                }
        }
        if (total) {
            printf("    %zu matched not judged:", total);
            const char *sep = " ";
            for (size_t k = 0; k < sizeof whys / sizeof *whys; k++)
                if (nwhy[k]) {
                    printf("%s%s %zu", sep, whys[k], nwhy[k]);
                    sep = ", ";
                }
            printf("\n");
        }
    }
    cJSON_Delete(doc);
    return EXIT_OK;
}

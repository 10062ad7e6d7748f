/* Benchmark driver of the lesion comparison (bcd/lesion.h), used by lesion_bench.py and by
 * hand; not a test.
 *
 *   lesion_compare [--mm-per-px X] [--previous-mm-per-px Y] [--side N] [--no-prior] PREV CUR
 *   lesion_compare --spots [--side N] PHOTO
 *
 * Prints one JSON object: bcd_lesion_result_json() plus "changed_regions" (a box around
 * each changed lesion, current pixels) and "elapsed_ms" (wall time of decoding both photos
 * and comparing). With the prior (the default) the photos are first aligned by
 * bcd_detect_compare(), as analyze does, and its matrix is offered to the registration.
 * Exit status 0, or 1 with a message on stderr.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <bcd.h>

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static int fail(bcd_ctx *ctx, const char *what)
{
    fprintf(stderr, "lesion_compare: %s: %s\n", what, bcd_error_message(bcd_ctx_last_error(ctx)));
    return 1;
}

int main(int argc, char **argv)
{
    bcd_lesion_options o = BCD_LESION_OPTIONS_INIT;
    int spots = 0, prior = 1, i = 1;
    for (; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        if (!strcmp(argv[i], "--spots"))
            spots = 1;
        else if (!strcmp(argv[i], "--no-prior"))
            prior = 0;
        else if (!strcmp(argv[i], "--mm-per-px") && i + 1 < argc)
            o.mm_per_px = atof(argv[++i]);
        else if (!strcmp(argv[i], "--previous-mm-per-px") && i + 1 < argc)
            o.previous_mm_per_px = atof(argv[++i]);
        else if (!strcmp(argv[i], "--side") && i + 1 < argc)
            o.analysis_side = (unsigned)atoi(argv[++i]);
        else {
            fprintf(stderr, "lesion_compare: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (argc - i != (spots ? 1 : 2)) {
        fprintf(stderr, "usage: lesion_compare [--mm-per-px X] [--previous-mm-per-px Y] [--side N] [--no-prior] "
                        "PREV CUR\n       lesion_compare --spots [--side N] PHOTO\n");
        return 2;
    }
    bcd_ctx *ctx;
    if (bcd_ctx_new(&ctx) != BCD_OK)
        return 1;
    double t0 = now_ms();
    bcd_image *cur = NULL, *prev = NULL;
    bcd_lesion_result *r = NULL;
    int rc = 0;
    if (spots) {
        if (bcd_image_decode_file(&cur, ctx, argv[i]) != BCD_OK)
            rc = fail(ctx, argv[i]);
        else if (bcd_lesion_find(&r, ctx, cur, &o) != BCD_OK)
            rc = fail(ctx, "bcd_lesion_find");
    } else {
        double m[6];
        bcd_detect_result *dr = NULL;
        if (bcd_image_decode_file(&prev, ctx, argv[i]) != BCD_OK)
            rc = fail(ctx, argv[i]);
        else if (bcd_image_decode_file(&cur, ctx, argv[i + 1]) != BCD_OK)
            rc = fail(ctx, argv[i + 1]);
        if (!rc && prior && bcd_detect_compare(&dr, ctx, cur, prev, NULL) == BCD_OK &&
            !(bcd_detect_result_flags(dr) & BCD_DETECT_MISALIGNED) && bcd_detect_result_matrix(dr, m) == BCD_OK)
            o.prior = m;
        if (!rc && bcd_lesion_compare(&r, ctx, cur, prev, &o) != BCD_OK)
            rc = fail(ctx, "bcd_lesion_compare");
        bcd_detect_result_free(dr);
    }
    double t1 = now_ms();
    char *js = NULL;
    if (!rc && bcd_lesion_result_json(&js, r) != BCD_OK)
        rc = fail(ctx, "json");
    if (!rc) {
        /* the JSON object, with two members added before its closing brace */
        size_t len = strlen(js);
        js[len - 1] = '\0';
        printf("%s,\"changed_regions\":[", js);
        int first = 1;
        for (size_t k = 0; k < bcd_lesion_result_count(r); k++) {
            const bcd_lesion *l = bcd_lesion_result_get(r, k);
            if (!l->changed || !isfinite(l->x))
                continue;
            double h = 0.5 * l->diameter_px + 4.0;
            double x0 = fmax(0, l->x - h), y0 = fmax(0, l->y - h);
            printf("%s{\"x\":%.0f,\"y\":%.0f,\"width\":%.0f,\"height\":%.0f,\"score\":%.3f}", first ? "" : ",", x0,
                   y0, 2 * h, 2 * h, l->score);
            first = 0;
        }
        printf("],\"elapsed_ms\":%.1f}\n", t1 - t0);
    }
    bcd_free(js);
    bcd_lesion_result_free(r);
    bcd_image_free(cur);
    bcd_image_free(prev);
    bcd_ctx_free(ctx);
    return rc;
}

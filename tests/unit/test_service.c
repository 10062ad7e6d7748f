/* Unit tests of lib/service: the public operations over the local store, end to end
 * (decode, preprocess, builtin embedder, SQLite). */
#include <check.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <png.h>
#include <sqlite3.h>

#include "bcd.h"
#include "core/core.h"
#include "service/service_internal.h"

static char tmpdir[64];
static char datadir[128];
static bcd_ctx *ctx;
static bcd_service *svc;

static const char *const ANGLES[6] = {"front", "left", "right", "up", "down", "raised"};

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/bcd-service-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    snprintf(datadir, sizeof datadir, "%s/data", tmpdir);
    ck_assert_int_eq(bcd_ctx_new(&ctx), BCD_OK);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_DATA_DIR", datadir), BCD_OK);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_STORE", "local"), BCD_OK);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_MODEL", "builtin"), BCD_OK);
    ck_assert_int_eq(bcd_service_open(&svc, ctx), BCD_OK);
    ck_assert_ptr_null(bcd_service_last_error(svc));
}

static void teardown(void)
{
    bcd_service_free(svc);
    svc = NULL;
    bcd_ctx_free(ctx);
    ctx = NULL;
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- helpers ---------------------------------------------------------------------- */

static const char *err_code(void)
{
    return bcd_error_code(bcd_service_last_error(svc));
}

#define OK(expr)                                                                                                  \
    do {                                                                                                          \
        bcd_status st_ = (expr);                                                                                  \
        ck_assert_msg(st_ == BCD_OK, "%s -> %d %s: %s", #expr, st_, err_code(),                                    \
                      bcd_error_message(bcd_service_last_error(svc)));                                            \
    } while (0)

#define FAILS(expr, status, code)                                                                                 \
    do {                                                                                                          \
        bcd_status st_ = (expr);                                                                                  \
        ck_assert_msg(st_ == (status), "%s -> %d (%s), expected %d", #expr, st_, err_code(), (status));           \
        ck_assert_str_eq(err_code(), (code));                                                                     \
    } while (0)

/* Parse and free a result document. */
static cJSON *parse(char *json)
{
    ck_assert_ptr_nonnull(json);
    cJSON *j = cJSON_Parse(json);
    ck_assert_msg(j != NULL, "not JSON: %s", json);
    bcd_free(json);
    return j;
}

static const cJSON *at(const cJSON *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *cur = o;
    for (char *tok = strtok(buf, "."); tok; tok = strtok(NULL, ".")) {
        ck_assert_msg(cur != NULL, "no %s", path);
        if (cJSON_IsArray(cur))
            cur = cJSON_GetArrayItem(cur, atoi(tok));
        else
            cur = cJSON_GetObjectItemCaseSensitive(cur, tok);
    }
    ck_assert_msg(cur != NULL, "no %s", path);
    return cur;
}

static double num(const cJSON *o, const char *path)
{
    const cJSON *v = at(o, path);
    ck_assert_msg(cJSON_IsNumber(v), "%s is not a number", path);
    return v->valuedouble;
}

static const char *str(const cJSON *o, const char *path)
{
    const cJSON *v = at(o, path);
    ck_assert_msg(cJSON_IsString(v), "%s is not a string", path);
    return v->valuestring;
}

static bool boolean(const cJSON *o, const char *path)
{
    const cJSON *v = at(o, path);
    ck_assert_msg(cJSON_IsBool(v), "%s is not a boolean", path);
    return cJSON_IsTrue(v);
}

static long long raw_sql(const char *sql)
{
    char path[256];
    snprintf(path, sizeof path, "%s/bcd.sqlite3", datadir);
    sqlite3 *db = NULL;
    ck_assert_int_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    ck_assert_msg(rc == SQLITE_OK, "%s: %s", sql, sqlite3_errmsg(db));
    long long v = -1;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else
        ck_assert_msg(rc == SQLITE_DONE, "%s: %s", sql, sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

static unsigned lcg(unsigned *s)
{
    *s = *s * 1103515245u + 12345u;
    return (*s >> 16) & 0x7fff;
}

/* Synthetic "skin" photo, 320x240: a per-angle layout (soft shading and a few moles
 * that stay put), a new draw of sensor noise per session (draw), optionally a dark
 * spot of ~2 % of the picture (the change to detect), or a flat, featureless image. */
enum look { LOOK_NORMAL, LOOK_SPOT, LOOK_FLAT };

static void write_png(const char *path, int angle, unsigned draw, enum look look)
{
    const int w = 320, h = 240;
    unsigned char *px = malloc((size_t)w * h * 3);
    ck_assert_ptr_nonnull(px);
    unsigned seed = draw * 7919u + 17u;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            double shade = 18.0 * sin(x * 0.021 + angle) * cos(y * 0.017 - angle * 0.5);
            double noise = look == LOOK_FLAT ? 0.0 : (double)(lcg(&seed) % 17) - 8.0;
            double r = 196 + shade + noise, g = 150 + shade * 0.8 + noise, b = 128 + shade * 0.7 + noise;
            if (look != LOOK_FLAT) {
                /* two moles per angle, same place in every session */
                for (int m = 0; m < 2; m++) {
                    int mx = 60 + ((angle * 37 + m * 101) % 200), my = 50 + ((angle * 53 + m * 67) % 140);
                    if ((x - mx) * (x - mx) + (y - my) * (y - my) < 25) {
                        r *= 0.55;
                        g *= 0.5;
                        b *= 0.5;
                    }
                }
            }
            if (look == LOOK_SPOT && (x - 200) * (x - 200) + (y - 110) * (y - 110) < 22 * 22) {
                r = 95 + noise;
                g = 60 + noise;
                b = 50 + noise;
            }
            unsigned char *p = px + ((size_t)y * w + x) * 3;
            p[0] = (unsigned char)fmin(255, fmax(0, r));
            p[1] = (unsigned char)fmin(255, fmax(0, g));
            p[2] = (unsigned char)fmin(255, fmax(0, b));
        }
    }
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    ck_assert(png && info);
    if (setjmp(png_jmpbuf(png)))
        ck_abort_msg("libpng failed writing %s", path);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++)
        png_write_row(png, px + (size_t)y * w * 3);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
    free(px);
}

/* Path of a fixture image, written on first use. */
static const char *fixture(int angle, unsigned draw, enum look look)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/img-%d-%u-%d.png", tmpdir, angle, draw, (int)look);
    if (access(path, F_OK) != 0)
        write_png(path, angle, draw, look);
    return path;
}

/* Create a session of `user` with the angles in mask (bit i = ANGLES[i]), each image
 * a new draw; spot_mask marks angles that get the dark spot; complete it if asked. */
static void make_session(char id[37], const char *user, unsigned mask, unsigned draw, unsigned spot_mask,
                         bool complete)
{
    char *out = NULL;
    OK(bcd_session_create(&out, svc, user));
    cJSON *j = parse(out);
    ck_assert_str_eq(str(j, "status"), "created");
    snprintf(id, 37, "%s", str(j, "session_id"));
    cJSON_Delete(j);
    for (int a = 0; a < 6; a++) {
        if (!(mask & (1u << a)))
            continue;
        enum look look = spot_mask & (1u << a) ? LOOK_SPOT : LOOK_NORMAL;
        OK(bcd_image_add(&out, svc, user, id, ANGLES[a], fixture(a, draw, look), -1));
        bcd_free(out);
    }
    if (complete) {
        OK(bcd_session_complete(&out, svc, user, id));
        bcd_free(out);
    }
}

static cJSON *analyze(const char *user, const char *id)
{
    char *out = NULL;
    OK(bcd_session_analyze(&out, svc, user, id, NULL));
    cJSON *j = parse(out);
    ck_assert(boolean(j, "success"));
    return j;
}

static double angle_score(const cJSON *j, const char *angle)
{
    const cJSON *per = at(j, "data.session_analysis.per_angle");
    const cJSON *it;
    cJSON_ArrayForEach(it, per)
    {
        if (strcmp(str(it, "angle_type"), angle) == 0)
            return num(it, "change_score");
    }
    ck_abort_msg("no angle %s", angle);
    return NAN;
}

#define ALL 0x3fu

/* ---- tests ------------------------------------------------------------------------ */

START_TEST(test_service_open_rejects_supabase_and_null)
{
    bcd_service *other = NULL;
    ck_assert_int_eq(bcd_service_open(NULL, ctx), BCD_EINVAL);
    ck_assert_int_eq(bcd_service_open(&other, NULL), BCD_EINVAL);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_STORE", "supabase"), BCD_OK);
    ck_assert_int_eq(bcd_service_open(&other, ctx), BCD_EINVAL);
    ck_assert_ptr_null(other);
    ck_assert_str_eq(bcd_error_code(bcd_ctx_last_error(ctx)), "supabase_not_configured");
    ck_assert_ptr_nonnull(strstr(bcd_error_message(bcd_ctx_last_error(ctx)), "SUPABASE_URL"));
    bcd_service_free(NULL);
    ck_assert_ptr_null(bcd_service_last_error(NULL));
}
END_TEST

START_TEST(test_session_create_returns_id_and_status)
{
    char *out = NULL;
    OK(bcd_session_create(&out, svc, "alice"));
    cJSON *j = parse(out);
    ck_assert(bcd__uuid_valid(str(j, "session_id")));
    ck_assert_str_eq(str(j, "status"), "created");
    ck_assert_str_eq(str(j, "user_id"), "alice");
    ck_assert_int_eq(strlen(str(j, "created_at")), 27);
    cJSON_Delete(j);
}
END_TEST

START_TEST(test_inputs_are_validated_before_anything_is_written)
{
    char *out = NULL, id[37];
    make_session(id, "alice", 0x1, 1, 0, false);
    FAILS(bcd_session_create(&out, svc, ""), BCD_EINVAL, "invalid_user_id");
    FAILS(bcd_session_create(&out, svc, NULL), BCD_EINVAL, "invalid_user_id");
    FAILS(bcd_session_create(&out, svc, "bad\nuser"), BCD_EINVAL, "invalid_user_id");
    char longuser[200];
    memset(longuser, 'u', sizeof longuser - 1);
    longuser[sizeof longuser - 1] = '\0';
    FAILS(bcd_session_create(&out, svc, longuser), BCD_EINVAL, "invalid_user_id");
    FAILS(bcd_session_info(&out, svc, "alice", "not-a-uuid"), BCD_EINVAL, "invalid_session_id");
    FAILS(bcd_session_analyze(&out, svc, "alice", "1234", NULL), BCD_EINVAL, "invalid_session_id");
    FAILS(bcd_session_compare(&out, svc, "alice", id, "x"), BCD_EINVAL, "invalid_session_id");
    FAILS(bcd_image_register(&out, svc, "alice", id, "back", "/p/x.jpg", 0), BCD_EINVAL, "invalid_angle");
    FAILS(bcd_image_register(&out, svc, "alice", id, "Front", "/p/x.jpg", 0), BCD_EINVAL, "invalid_angle");
    FAILS(bcd_image_add(&out, svc, "alice", id, "sideways", fixture(0, 1, LOOK_NORMAL), -1), BCD_EINVAL,
          "invalid_angle");
    FAILS(bcd_image_preview(&out, svc, "alice", id, NULL), BCD_EINVAL, "invalid_angle");
    FAILS(bcd_image_register(&out, svc, "alice", id, "left", "", 0), BCD_EINVAL, "invalid_path");
    FAILS(bcd_session_list(NULL, svc, "alice"), BCD_EINVAL, "invalid_argument");
    ck_assert_int_eq(bcd_session_list(&out, NULL, "alice"), BCD_EINVAL);
    ck_assert_ptr_null(out);
    /* nothing was written by the refused calls */
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM sessions"), 1);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM images"), 1);
    /* the next successful call clears the error */
    OK(bcd_session_list(&out, svc, "alice"));
    bcd_free(out);
    ck_assert_ptr_null(bcd_service_last_error(svc));
}
END_TEST

START_TEST(test_other_users_session_is_not_found)
{
    char id[37], bob[37], *out = NULL;
    make_session(id, "alice", ALL, 1, 0, true);
    make_session(bob, "bob", ALL, 1, 0, true);
    const char *missing = "00000000-0000-4000-8000-000000000000";
    FAILS(bcd_session_info(&out, svc, "bob", id), BCD_ENOTFOUND, "session_not_found");
    char msg_other[512];
    snprintf(msg_other, sizeof msg_other, "%s", bcd_error_message(bcd_service_last_error(svc)));
    FAILS(bcd_session_info(&out, svc, "bob", missing), BCD_ENOTFOUND, "session_not_found");
    /* same words for "someone else's" and "no such session" */
    ck_assert_ptr_nonnull(strstr(msg_other, "not found"));
    ck_assert_ptr_nonnull(strstr(bcd_error_message(bcd_service_last_error(svc)), "not found"));
    FAILS(bcd_session_complete(&out, svc, "bob", id), BCD_ENOTFOUND, "session_not_found");
    FAILS(bcd_session_analyze(&out, svc, "bob", id, NULL), BCD_ENOTFOUND, "session_not_found");
    FAILS(bcd_analysis_get(&out, svc, "bob", id), BCD_ENOTFOUND, "session_not_found");
    FAILS(bcd_image_register(&out, svc, "bob", id, "front", "/p/x.jpg", 1), BCD_ENOTFOUND, "session_not_found");
    FAILS(bcd_image_add(&out, svc, "bob", id, "front", fixture(0, 9, LOOK_NORMAL), -1), BCD_ENOTFOUND,
          "session_not_found");
    FAILS(bcd_image_preview(&out, svc, "bob", id, "front"), BCD_ENOTFOUND, "session_not_found");
    FAILS(bcd_session_thumbnails(&out, svc, "bob", id), BCD_ENOTFOUND, "session_not_found");
    FAILS(bcd_session_compare(&out, svc, "bob", bob, id), BCD_ENOTFOUND, "session_not_found");
    FAILS(bcd_session_compare(&out, svc, "bob", id, bob), BCD_ENOTFOUND, "session_not_found");
    /* upper-case UUID text names the same session */
    char upper[37];
    for (int i = 0; i < 37; i++)
        upper[i] = (char)(id[i] >= 'a' && id[i] <= 'f' ? id[i] - 'a' + 'A' : id[i]);
    OK(bcd_session_info(&out, svc, "alice", upper));
    cJSON *j = parse(out);
    ck_assert_str_eq(str(j, "session_id"), id);
    cJSON_Delete(j);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM images"), 12);
}
END_TEST

START_TEST(test_image_register_is_idempotent_and_contiguous)
{
    char id[37], *out = NULL;
    make_session(id, "alice", 0, 1, 0, false);
    OK(bcd_image_register(&out, svc, "alice", id, "front", "/photos/front-0.jpg", 0));
    cJSON *j = parse(out);
    ck_assert(boolean(j, "ok"));
    ck_assert(boolean(j, "created"));
    ck_assert_int_eq((int)num(j, "order_index"), 0);
    ck_assert_str_eq(str(j, "image_type"), "front");
    char image_id[37];
    snprintf(image_id, sizeof image_id, "%s", str(j, "image_id"));
    cJSON_Delete(j);

    /* same path again: ok, nothing created (even with another angle or index) */
    OK(bcd_image_register(&out, svc, "alice", id, "front", "/photos/front-0.jpg", 0));
    j = parse(out);
    ck_assert(boolean(j, "ok"));
    ck_assert(!boolean(j, "created"));
    ck_assert_str_eq(str(j, "image_id"), image_id);
    cJSON_Delete(j);
    OK(bcd_image_register(&out, svc, "alice", id, "left", "/photos/front-0.jpg", 3));
    j = parse(out);
    ck_assert(!boolean(j, "created"));
    ck_assert_str_eq(str(j, "angle"), "front");
    cJSON_Delete(j);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM images"), 1);

    /* order_index must equal the current count */
    FAILS(bcd_image_register(&out, svc, "alice", id, "front", "/photos/front-2.jpg", 2), BCD_ECONFLICT,
          "order_index_out_of_sequence");
    cJSON *d = cJSON_Parse(bcd_error_details_json(bcd_service_last_error(svc)));
    ck_assert_int_eq((int)num(d, "expected_order_index"), 1);
    cJSON_Delete(d);
    FAILS(bcd_image_register(&out, svc, "alice", id, "left", "/photos/left-1.jpg", 1), BCD_ECONFLICT,
          "order_index_out_of_sequence");
    /* a different path in a taken slot */
    FAILS(bcd_image_register(&out, svc, "alice", id, "front", "/photos/other.jpg", 0), BCD_ECONFLICT,
          "slot_conflict");
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM images"), 1);

    OK(bcd_image_register(&out, svc, "alice", id, "front", "/photos/front-1.jpg", 1));
    bcd_free(out);
    OK(bcd_image_register(&out, svc, "alice", id, "front", "file:///photos/front-2.jpg", -1));
    j = parse(out);
    ck_assert_int_eq((int)num(j, "order_index"), 2);
    cJSON_Delete(j);
    OK(bcd_image_register(&out, svc, "alice", id, "left", "https://example.org/left.jpg", -1));
    j = parse(out);
    ck_assert_int_eq((int)num(j, "order_index"), 0);
    cJSON_Delete(j);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM images"), 4);
}
END_TEST

START_TEST(test_image_add_copies_validated_images_only)
{
    char id[37], *out = NULL;
    make_session(id, "alice", 0, 1, 0, false);
    const char *src = fixture(0, 1, LOOK_NORMAL);
    OK(bcd_image_add(&out, svc, "alice", id, "front", src, -1));
    cJSON *j = parse(out);
    ck_assert(boolean(j, "created"));
    ck_assert_str_eq(str(j, "content_type"), "image/png");
    ck_assert_int_eq((int)num(j, "width"), 320);
    ck_assert_int_eq((int)num(j, "height"), 240);
    const char *key = str(j, "storage_path");
    ck_assert_int_eq(strncmp(key, id, 36), 0);
    /* the stored copy has the same bytes */
    unsigned char *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    char path[512];
    snprintf(path, sizeof path, "%s/blobs/%s", datadir, key);
    ck_assert_int_eq(bcd__read_file(ctx, src, 0, &a, &la), BCD_OK);
    ck_assert_int_eq(bcd__read_file(ctx, path, 0, &b, &lb), BCD_OK);
    ck_assert_uint_eq(la, lb);
    ck_assert_int_eq(memcmp(a, b, la), 0);
    char sha[65];
    bcd__sha256_hex(a, la, sha);
    ck_assert_str_eq(str(j, "sha256"), sha);
    ck_assert_int_eq((int)num(j, "size_bytes"), (int)la);
    free(a);
    free(b);
    cJSON_Delete(j);

    /* the same file again for the same angle: idempotent; for another angle: refused */
    OK(bcd_image_add(&out, svc, "alice", id, "front", src, -1));
    j = parse(out);
    ck_assert(!boolean(j, "created"));
    cJSON_Delete(j);
    FAILS(bcd_image_add(&out, svc, "alice", id, "left", src, -1), BCD_ECONFLICT, "duplicate_image");

    /* not an image / corrupt / missing: refused, nothing stored */
    char text[300], trunc[300];
    snprintf(text, sizeof text, "%s/notes.txt", tmpdir);
    FILE *f = fopen(text, "w");
    fputs("these are not pixels\n", f);
    fclose(f);
    ck_assert_int_eq(bcd_image_add(&out, svc, "alice", id, "left", text, -1), BCD_EFORMAT);
    ck_assert_ptr_nonnull(strstr(bcd_error_message(bcd_service_last_error(svc)), "notes.txt"));
    unsigned char *png = NULL;
    size_t plen = 0;
    ck_assert_int_eq(bcd__read_file(ctx, fixture(1, 1, LOOK_NORMAL), 0, &png, &plen), BCD_OK);
    snprintf(trunc, sizeof trunc, "%s/trunc.png", tmpdir);
    f = fopen(trunc, "wb");
    fwrite(png, 1, plen / 2, f);
    fclose(f);
    free(png);
    ck_assert_int_eq(bcd_image_add(&out, svc, "alice", id, "left", trunc, -1), BCD_EFORMAT);
    FAILS(bcd_image_add(&out, svc, "alice", id, "left", "/nonexistent/x.png", -1), BCD_ENOTFOUND,
          "file_not_found");
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM images"), 1);
    char blobdir[256];
    snprintf(blobdir, sizeof blobdir, "%s/blobs/%s", datadir, id);
    int files = 0;
    FILE *ls;
    char cmd[400];
    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", blobdir);
    ls = popen(cmd, "r");
    ck_assert_int_eq(fscanf(ls, "%d", &files), 1);
    pclose(ls);
    ck_assert_int_eq(files, 1);

    /* a conflict after the copy removes the copy again */
    FAILS(bcd_image_add(&out, svc, "alice", id, "front", fixture(0, 2, LOOK_NORMAL), 0), BCD_ECONFLICT,
          "slot_conflict");
    ls = popen(cmd, "r");
    ck_assert_int_eq(fscanf(ls, "%d", &files), 1);
    pclose(ls);
    ck_assert_int_eq(files, 1);
}
END_TEST

START_TEST(test_session_complete_needs_three_angles)
{
    char id[37], *out = NULL;
    make_session(id, "alice", 0x3, 1, 0, false); /* front, left */
    FAILS(bcd_session_complete(&out, svc, "alice", id), BCD_ESTATE, "insufficient_angles");
    cJSON *d = cJSON_Parse(bcd_error_details_json(bcd_service_last_error(svc)));
    ck_assert_int_eq(cJSON_GetArraySize(at(d, "angles_present")), 2);
    ck_assert_int_eq((int)num(d, "required"), 3);
    cJSON_Delete(d);
    /* two images of one angle are still one angle */
    OK(bcd_image_add(&out, svc, "alice", id, "front", fixture(0, 2, LOOK_NORMAL), -1));
    bcd_free(out);
    FAILS(bcd_session_complete(&out, svc, "alice", id), BCD_ESTATE, "insufficient_angles");
    OK(bcd_session_info(&out, svc, "alice", id));
    cJSON *j = parse(out);
    ck_assert_str_eq(str(j, "status"), "created");
    cJSON_Delete(j);

    OK(bcd_image_add(&out, svc, "alice", id, "raised", fixture(5, 1, LOOK_NORMAL), -1));
    bcd_free(out);
    OK(bcd_session_complete(&out, svc, "alice", id));
    j = parse(out);
    ck_assert_str_eq(str(j, "status"), "completed");
    ck_assert(!boolean(j, "already_completed"));
    ck_assert_int_eq(cJSON_GetArraySize(at(j, "angles")), 3);
    ck_assert_int_eq((int)num(j, "image_count"), 4);
    cJSON_Delete(j);
    OK(bcd_session_complete(&out, svc, "alice", id));
    j = parse(out);
    ck_assert(boolean(j, "already_completed"));
    cJSON_Delete(j);
}
END_TEST

START_TEST(test_analyze_requires_completed_session_with_three_angles)
{
    char id[37], *out = NULL;
    make_session(id, "alice", ALL, 1, 0, false);
    FAILS(bcd_session_analyze(&out, svc, "alice", id, NULL), BCD_ESTATE, "session_not_completed");
    /* a session completed elsewhere (e.g. by the seed's backend) with too few angles */
    char id2[37];
    make_session(id2, "alice", 0x3, 1, 0, false);
    char sql[200];
    snprintf(sql, sizeof sql, "UPDATE sessions SET status = 'completed' WHERE id = '%s'", id2);
    raw_sql(sql);
    FAILS(bcd_session_analyze(&out, svc, "alice", id2, NULL), BCD_ESTATE, "insufficient_angles");
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM session_analysis"), 0);
    /* unknown model */
    OK(bcd_session_complete(&out, svc, "alice", id));
    bcd_free(out);
    FAILS(bcd_session_analyze(&out, svc, "alice", id, "/nonexistent/model.pt"), BCD_ENOTFOUND, "model_not_found");
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM session_analysis"), 0);
}
END_TEST

START_TEST(test_delete_image_session_and_user)
{
    char a1[37], a2[37], b1[37], *out = NULL;
    make_session(a1, "alice", ALL, 1, 0, true);
    make_session(a2, "alice", ALL, 2, 0, true);
    make_session(b1, "bob", ALL, 1, 0, true);
    cJSON_Delete(analyze("alice", a1));
    cJSON *j = analyze("alice", a2);
    ck_assert_int_eq((int)num(j, "data.baseline_sessions"), 1);
    cJSON_Delete(j);
    cJSON_Delete(analyze("bob", b1));

    /* a photo: the analysis goes with it; adding to an analyzed check is refused until then */
    ck_assert_int_eq(bcd_image_add(&out, svc, "alice", a2, "front", fixture(0, 3, LOOK_NORMAL), -1), BCD_ESTATE);
    ck_assert_str_eq(bcd_error_code(bcd_service_last_error(svc)), "session_already_analyzed");
    ck_assert_int_eq(bcd_image_delete(&out, svc, "bob", a2, "front", 0), BCD_ENOTFOUND);
    OK(bcd_image_delete(&out, svc, "alice", a2, "front", -1));
    j = parse(out);
    ck_assert_str_eq(str(j, "angle_type"), "front");
    ck_assert(boolean(j, "analysis_deleted"));
    cJSON_Delete(j);
    ck_assert_int_eq(bcd_analysis_get(&out, svc, "alice", a2), BCD_ENOTFOUND);
    ck_assert_int_eq(bcd_image_delete(&out, svc, "alice", a2, "front", -1), BCD_ENOTFOUND);
    ck_assert_str_eq(bcd_error_code(bcd_service_last_error(svc)), "image_not_found");
    OK(bcd_image_add(&out, svc, "alice", a2, "front", fixture(0, 2, LOOK_NORMAL), 0));
    bcd_free(out);

    /* a check: the other one no longer has it as a baseline */
    ck_assert_int_eq(bcd_session_delete(&out, svc, "bob", a1), BCD_ENOTFOUND);
    OK(bcd_session_delete(&out, svc, "alice", a1));
    j = parse(out);
    ck_assert_int_eq((int)num(j, "images_deleted"), 6);
    cJSON_Delete(j);
    j = analyze("alice", a2);
    ck_assert_int_eq((int)num(j, "data.baseline_sessions"), 0);
    cJSON_Delete(j);

    /* a user: bob keeps everything */
    OK(bcd_user_delete(&out, svc, "alice"));
    j = parse(out);
    ck_assert_int_eq((int)num(j, "sessions_deleted"), 1);
    cJSON_Delete(j);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM sessions"), 1);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM images"), 6);
    OK(bcd_analysis_get(&out, svc, "bob", b1));
    bcd_free(out);
    ck_assert_int_eq(bcd_user_delete(NULL, svc, "alice"), BCD_EINVAL);
}
END_TEST

START_TEST(test_analyze_first_session_establishes_baseline)
{
    char id[37], *out = NULL;
    make_session(id, "alice", ALL, 1, 0, true);
    cJSON *j = analyze("alice", id);
    ck_assert_str_eq(str(j, "data.session_id"), id);
    ck_assert(!boolean(j, "data.overwritten"));
    ck_assert(boolean(j, "data.is_first_session"));
    ck_assert_str_eq(str(j, "data.model"), "builtin-v2");
    ck_assert_int_eq((int)num(j, "data.baseline_sessions"), 0);
    ck_assert_int_eq(cJSON_GetArraySize(at(j, "data.session_analysis.per_angle")), 6);
    for (int a = 0; a < 6; a++) {
        ck_assert_str_eq(str(j, "data.session_analysis.per_angle.0.angle_type"), "front");
        ck_assert_double_eq(angle_score(j, ANGLES[a]), 0.0);
    }
    ck_assert_ptr_nonnull(strstr(str(j, "data.session_analysis.per_angle.1.summary"), "baseline is being established"));
    ck_assert_ptr_nonnull(strstr(str(j, "data.session_analysis.overall_summary"), "baseline is being established"));
    ck_assert_double_eq(num(j, "data.scores.change_score"), 0.0);
    double conf = num(j, "data.scores.confidence");
    ck_assert_double_eq_tol(num(j, "data.confidence_factors.angle_coverage"), 1.0, 1e-9);
    ck_assert_double_eq_tol(num(j, "data.confidence_factors.baseline"), 0.5, 1e-9);
    double quality = num(j, "data.confidence_factors.image_quality");
    ck_assert(quality > 0.5 && quality <= 1.0);
    ck_assert_double_eq_tol(conf, 1.0 * quality * 0.5, 1e-5);
    cJSON_Delete(j);

    /* stored: analysis get returns it without recomputing */
    OK(bcd_analysis_get(&out, svc, "alice", id));
    j = parse(out);
    ck_assert(boolean(j, "success"));
    ck_assert_str_eq(str(j, "data.session_analysis.session_id"), id);
    ck_assert_double_eq(num(j, "data.session_analysis.overall_change_score"), 0.0);
    ck_assert_double_eq_tol(num(j, "data.session_analysis.confidence"), conf, 1e-6);
    ck_assert_int_eq(cJSON_GetArraySize(at(j, "data.session_analysis.per_angle")), 6);
    ck_assert(boolean(j, "data.session_analysis.has_embeddings"));
    cJSON_Delete(j);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM angle_embeddings"), 6);
    ck_assert_int_eq(raw_sql("SELECT dim FROM session_embeddings"), 516);
}
END_TEST

START_TEST(test_analyze_scores_against_earlier_sessions_only)
{
    char s1[37], s2[37], s3[37];
    make_session(s1, "alice", ALL, 1, 0, true);
    make_session(s2, "alice", ALL, 2, 0x2 /* left */, true);
    make_session(s3, "alice", ALL, 3, 0, true);
    /* another user's sessions never enter alice's baseline */
    char b1[37];
    make_session(b1, "bob", ALL, 4, ALL, true);
    cJSON_Delete(analyze("bob", b1));

    cJSON *j1 = analyze("alice", s1);
    ck_assert_int_eq((int)num(j1, "data.baseline_sessions"), 0);
    cJSON_Delete(j1);

    cJSON *j2 = analyze("alice", s2);
    ck_assert_int_eq((int)num(j2, "data.baseline_sessions"), 1);
    ck_assert(!boolean(j2, "data.is_first_session"));
    double left = angle_score(j2, "left");
    for (int a = 0; a < 6; a++) {
        if (a == 1)
            continue;
        double other = angle_score(j2, ANGLES[a]);
        ck_assert_msg(other < 0.05, "%s moved %g without a change", ANGLES[a], other);
        ck_assert_msg(left > 3 * other, "left %g vs %s %g", left, ANGLES[a], other);
    }
    ck_assert_msg(left > 0.05, "the spot moved left by %g only", left);
    double overall = num(j2, "data.scores.change_score");
    ck_assert(overall > 0.0);
    ck_assert_double_eq_tol(num(j2, "data.confidence_factors.baseline"), 0.5 + 0.5 / 3, 1e-6);
    const char *sum = str(j2, "data.session_analysis.overall_summary");
    ck_assert_ptr_nonnull(strstr(sum, "Largest change: left"));
    ck_assert_ptr_nonnull(strstr(sum, "1 earlier session"));
    /* per-angle summaries are written from the numbers */
    const cJSON *it;
    cJSON_ArrayForEach(it, at(j2, "data.session_analysis.per_angle"))
    {
        char score[32];
        snprintf(score, sizeof score, "%.4f", num(it, "change_score"));
        ck_assert_ptr_nonnull(strstr(str(it, "summary"), score));
        ck_assert_ptr_nonnull(strstr(str(it, "summary"), str(it, "angle_type")));
    }
    cJSON_Delete(j2);

    /* the third session: baseline = mean of s1 and s2; left still differs (spot gone) */
    cJSON *j3 = analyze("alice", s3);
    ck_assert_int_eq((int)num(j3, "data.baseline_sessions"), 2);
    ck_assert(angle_score(j3, "left") > angle_score(j3, "front"));
    cJSON_Delete(j3);

    /* re-analyzing the first session ignores later sessions: still the baseline */
    j1 = analyze("alice", s1);
    ck_assert(boolean(j1, "data.overwritten"));
    ck_assert_int_eq((int)num(j1, "data.baseline_sessions"), 0);
    ck_assert_double_eq(num(j1, "data.scores.change_score"), 0.0);
    cJSON_Delete(j1);
}
END_TEST

START_TEST(test_reanalysis_replaces_previous_result)
{
    char s1[37], s2[37], *out = NULL;
    make_session(s1, "alice", ALL, 1, 0, true);
    make_session(s2, "alice", ALL, 2, 0, true);
    cJSON_Delete(analyze("alice", s1));
    cJSON *a = analyze("alice", s2);
    ck_assert(!boolean(a, "data.overwritten"));
    char created[40];
    snprintf(created, sizeof created, "%s", str(a, "data.created_at"));
    cJSON_Delete(a);
    usleep(2000);
    /* a new photo in the analyzed check is refused (its analysis would no longer fit);
     * analyzing again replaces the stored result */
    ck_assert_int_eq(bcd_image_add(&out, svc, "alice", s2, "up", fixture(3, 2, LOOK_SPOT), -1), BCD_ESTATE);
    cJSON *b = analyze("alice", s2);
    ck_assert(boolean(b, "data.overwritten"));
    ck_assert_str_ne(str(b, "data.created_at"), created);
    ck_assert_int_eq((int)num(b, "data.session_analysis.per_angle.3.image_count"), 1);
    cJSON_Delete(b);
    char sql[200];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM angle_analysis WHERE session_id = '%s'", s2);
    ck_assert_int_eq(raw_sql(sql), 6);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM angle_embeddings WHERE session_id = '%s'", s2);
    ck_assert_int_eq(raw_sql(sql), 6);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM session_analysis"), 2);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM session_embeddings"), 2);
    OK(bcd_analysis_get(&out, svc, "alice", s2));
    cJSON *g = parse(out);
    ck_assert_int_eq((int)num(g, "data.session_analysis.per_angle.3.image_count"), 1);
    cJSON_Delete(g);
}
END_TEST

START_TEST(test_analysis_get_not_found_before_analysis)
{
    char id[37], *out = NULL;
    make_session(id, "alice", ALL, 1, 0, true);
    FAILS(bcd_analysis_get(&out, svc, "alice", id), BCD_ENOTFOUND, "analysis_not_found");
    ck_assert_ptr_null(out);
}
END_TEST

START_TEST(test_corrupt_image_fails_analysis_and_stores_nothing)
{
    char id[37], *out = NULL;
    make_session(id, "alice", 0x7, 1, 0, false);
    /* a registered file (not copied) that is good now and corrupt later */
    char path[300];
    snprintf(path, sizeof path, "%s/registered-up.png", tmpdir);
    write_png(path, 3, 1, LOOK_NORMAL);
    ck_assert_int_eq(bcd_ctx_set(ctx, "BCD_IMAGE_DIRS", tmpdir), BCD_OK); /* registered files are read there */
    OK(bcd_image_register(&out, svc, "alice", id, "up", path, -1));
    bcd_free(out);
    OK(bcd_session_complete(&out, svc, "alice", id));
    bcd_free(out);

    /* corrupt from the start: nothing stored */
    unsigned char *png = NULL;
    size_t len = 0;
    ck_assert_int_eq(bcd__read_file(ctx, path, 0, &png, &len), BCD_OK);
    FILE *f = fopen(path, "wb");
    fwrite(png, 1, len / 3, f);
    fclose(f);
    FAILS(bcd_session_analyze(&out, svc, "alice", id, NULL), BCD_EFORMAT, "image_corrupt");
    const bcd_error *e = bcd_service_last_error(svc);
    ck_assert_ptr_nonnull(strstr(bcd_error_message(e), "image up #0"));
    cJSON *d = cJSON_Parse(bcd_error_details_json(e));
    ck_assert_str_eq(str(d, "angle"), "up");
    ck_assert_str_eq(str(d, "storage_path"), path);
    cJSON_Delete(d);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM session_analysis"), 0);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM angle_analysis"), 0);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM session_embeddings"), 0);
    ck_assert_int_eq(raw_sql("SELECT count(*) FROM angle_embeddings"), 0);
    FAILS(bcd_analysis_get(&out, svc, "alice", id), BCD_ENOTFOUND, "analysis_not_found");

    /* good again: analyzed; corrupt afterwards: the stored analysis is kept as it was */
    f = fopen(path, "wb");
    fwrite(png, 1, len, f);
    fclose(f);
    cJSON_Delete(analyze("alice", id));
    OK(bcd_analysis_get(&out, svc, "alice", id));
    char *before = out;
    f = fopen(path, "wb");
    fwrite(png, 1, len - 40, f);
    fclose(f);
    FAILS(bcd_session_analyze(&out, svc, "alice", id, NULL), BCD_EFORMAT, "image_corrupt");
    OK(bcd_analysis_get(&out, svc, "alice", id));
    ck_assert_str_eq(out, before);
    bcd_free(out);
    bcd_free(before);
    /* a missing file is reported the same way */
    unlink(path);
    FAILS(bcd_session_analyze(&out, svc, "alice", id, NULL), BCD_ENOTFOUND, "image_file_missing");
    free(png);
}
END_TEST

START_TEST(test_interrupted_analysis_leaves_previous_intact)
{
    char s1[37], s2[37], *out = NULL;
    make_session(s1, "alice", ALL, 1, 0, true);
    make_session(s2, "alice", ALL, 2, 0x4, true);
    cJSON_Delete(analyze("alice", s1));
    cJSON_Delete(analyze("alice", s2));
    OK(bcd_analysis_get(&out, svc, "alice", s2));
    char *before = out;
    int failures = 0;
    for (int n = 0; n < 60; n++) {
        bcd__store_local_fail_after(svc->store, n, 0);
        bcd_status st = bcd_session_analyze(&out, svc, "alice", s2, NULL);
        bcd__store_local_fail_after(svc->store, -1, 0);
        if (st == BCD_OK) {
            cJSON *j = parse(out);
            ck_assert(boolean(j, "data.overwritten"));
            cJSON_Delete(j);
            break;
        }
        failures++;
        ck_assert_int_eq(st, BCD_EIO);
        ck_assert_str_eq(err_code(), "store_io_error");
        OK(bcd_analysis_get(&out, svc, "alice", s2));
        ck_assert_str_eq(out, before);
        bcd_free(out);
        char sql[200];
        snprintf(sql, sizeof sql, "SELECT count(*) FROM angle_embeddings WHERE session_id = '%s'", s2);
        ck_assert_int_eq(raw_sql(sql), 6);
    }
    /* every write of the save was a failure point: 4 deletes, 1 + 6 analysis rows, 6 + 1
     * embeddings, the commit */
    ck_assert_int_eq(failures, 19);
    OK(bcd_analysis_get(&out, svc, "alice", s2));
    ck_assert_str_ne(out, before); /* a new created_at */
    bcd_free(out);
    bcd_free(before);
}
END_TEST

START_TEST(test_compare_uses_embeddings_or_falls_back_to_scores)
{
    char s1[37], s2[37], s3[37], *out = NULL;
    make_session(s1, "alice", ALL, 1, 0, true);
    make_session(s2, "alice", ALL, 2, 0x2, true);
    make_session(s3, "alice", 0x7, 3, 0, true);
    cJSON_Delete(analyze("alice", s1));
    FAILS(bcd_session_compare(&out, svc, "alice", s2, s1), BCD_ESTATE, "session_not_analyzed");
    FAILS(bcd_session_compare(&out, svc, "alice", s1, s1), BCD_EINVAL, "same_session");
    cJSON_Delete(analyze("alice", s2));

    OK(bcd_session_compare(&out, svc, "alice", s2, s1));
    cJSON *j = parse(out);
    ck_assert(boolean(j, "success"));
    ck_assert_str_eq(str(j, "data.comparison_method"), "embedding");
    ck_assert_str_eq(str(j, "data.current_session_id"), s2);
    ck_assert_int_eq(cJSON_GetArraySize(at(j, "data.per_angle")), 6);
    double delta = num(j, "data.overall_delta");
    ck_assert(delta > 0.0);
    ck_assert_double_eq_tol(num(j, "data.stability_index"), 1.0 - delta, 1e-6);
    ck_assert_str_eq(str(j, "data.overall_trend"), bcd_trend_label(delta));
    const cJSON *it;
    double left_dist = 0, max_other = 0;
    cJSON_ArrayForEach(it, at(j, "data.per_angle"))
    {
        double d = num(it, "delta");
        ck_assert_double_eq_tol(d, num(it, "current_score") - num(it, "previous_score"), 2e-6);
        ck_assert_double_eq_tol(num(it, "delta_magnitude"), fabs(d), 2e-6);
        double dist = num(it, "embedding_distance");
        if (strcmp(str(it, "angle_type"), "left") == 0)
            left_dist = dist;
        else
            max_other = fmax(max_other, dist);
    }
    ck_assert_msg(left_dist > 3 * max_other, "left %g, others up to %g", left_dist, max_other);
    cJSON_Delete(j);

    /* angles only in one of them */
    cJSON_Delete(analyze("alice", s3));
    OK(bcd_session_compare(&out, svc, "alice", s3, s1));
    j = parse(out);
    ck_assert_int_eq(cJSON_GetArraySize(at(j, "data.per_angle")), 3);
    ck_assert_int_eq(cJSON_GetArraySize(at(j, "data.angles_only_in_previous")), 3);
    ck_assert_int_eq(cJSON_GetArraySize(at(j, "data.angles_only_in_current")), 0);
    cJSON_Delete(j);

    /* session embeddings missing (e.g. rows written by the seed's backend): score fallback */
    char sql[200];
    snprintf(sql, sizeof sql, "DELETE FROM session_embeddings WHERE session_id = '%s'", s1);
    raw_sql(sql);
    snprintf(sql, sizeof sql, "DELETE FROM angle_embeddings WHERE session_id = '%s' AND angle = 'front'", s1);
    raw_sql(sql);
    OK(bcd_session_compare(&out, svc, "alice", s2, s1));
    j = parse(out);
    ck_assert_str_eq(str(j, "data.comparison_method"), "score");
    double sc = 0, sp = 0;
    int n = 0;
    cJSON_ArrayForEach(it, at(j, "data.per_angle"))
    {
        sc += num(it, "current_score");
        sp += num(it, "previous_score");
        n++;
        if (strcmp(str(it, "angle_type"), "front") == 0)
            ck_assert(cJSON_IsNull(at(it, "embedding_distance")));
        else
            ck_assert(cJSON_IsNumber(at(it, "embedding_distance")));
    }
    ck_assert_double_eq_tol(num(j, "data.overall_delta"), fabs(sc / n - sp / n), 1e-5);
    ck_assert_str_eq(str(j, "data.overall_trend"), bcd_trend_label(num(j, "data.overall_delta")));
    cJSON_Delete(j);

    /* embeddings of another model are never compared: treated as missing */
    cJSON_Delete(analyze("alice", s1));
    snprintf(sql, sizeof sql, "UPDATE session_embeddings SET model = 'resnet50' WHERE session_id = '%s'", s1);
    raw_sql(sql);
    OK(bcd_session_compare(&out, svc, "alice", s2, s1));
    j = parse(out);
    ck_assert_str_eq(str(j, "data.comparison_method"), "score");
    cJSON_Delete(j);

    /* both must be completed */
    char s4[37];
    make_session(s4, "alice", ALL, 4, 0, false);
    FAILS(bcd_session_compare(&out, svc, "alice", s4, s1), BCD_ESTATE, "session_not_completed");
}
END_TEST

START_TEST(test_baseline_ignores_embeddings_of_other_models)
{
    char s1[37], s2[37];
    make_session(s1, "alice", ALL, 1, 0, true);
    make_session(s2, "alice", ALL, 2, 0, true);
    cJSON_Delete(analyze("alice", s1));
    raw_sql("UPDATE session_embeddings SET model = 'resnet50'");
    raw_sql("UPDATE angle_embeddings SET model = 'resnet50'");
    cJSON *j = analyze("alice", s2);
    ck_assert_int_eq((int)num(j, "data.baseline_sessions"), 0);
    ck_assert(!boolean(j, "data.is_first_session"));
    ck_assert_double_eq(num(j, "data.scores.change_score"), 0.0);
    ck_assert_ptr_nonnull(strstr(str(j, "data.session_analysis.overall_summary"), "No earlier session has an analysis"));
    cJSON_Delete(j);
}
END_TEST

START_TEST(test_confidence_follows_coverage_and_quality)
{
    char full[37], few[37], flat[37], *out = NULL;
    make_session(full, "alice", ALL, 1, 0, true);
    make_session(few, "bob", 0x7, 1, 0, true);
    /* carol's photos are featureless (blurred) */
    OK(bcd_session_create(&out, svc, "carol"));
    cJSON *j = parse(out);
    snprintf(flat, sizeof flat, "%s", str(j, "session_id"));
    cJSON_Delete(j);
    for (int a = 0; a < 6; a++) {
        OK(bcd_image_add(&out, svc, "carol", flat, ANGLES[a], fixture(a, 1, LOOK_FLAT), -1));
        bcd_free(out);
    }
    OK(bcd_session_complete(&out, svc, "carol", flat));
    bcd_free(out);

    cJSON *a = analyze("alice", full), *b = analyze("bob", few), *c = analyze("carol", flat);
    ck_assert_double_eq_tol(num(b, "data.confidence_factors.angle_coverage"), 0.5, 1e-9);
    ck_assert_double_eq_tol(num(b, "data.scores.confidence"), 0.5 * num(a, "data.scores.confidence"), 0.02);
    ck_assert(num(c, "data.confidence_factors.image_quality") < 0.5 * num(a, "data.confidence_factors.image_quality"));
    ck_assert(num(c, "data.scores.confidence") < num(a, "data.scores.confidence"));
    ck_assert_ptr_nonnull(strstr(str(c, "data.session_analysis.per_angle.0.summary"), "blurred"));
    ck_assert(num(c, "data.session_analysis.per_angle.0.quality.sharpness") < 0.5);
    cJSON_Delete(a);
    cJSON_Delete(b);
    cJSON_Delete(c);
}
END_TEST

START_TEST(test_session_info_reports_position_and_previous_session)
{
    char s[3][37], *out = NULL;
    for (int i = 0; i < 3; i++)
        make_session(s[i], "alice", 0, 1, 0, false);
    char other[37];
    make_session(other, "bob", 0, 1, 0, false);

    OK(bcd_session_info(&out, svc, "alice", s[0]));
    cJSON *j = parse(out);
    ck_assert(boolean(j, "is_first_session"));
    ck_assert(!boolean(j, "is_current"));
    ck_assert_int_eq((int)num(j, "total_sessions"), 3);
    ck_assert(cJSON_IsNull(at(j, "previous_session_id")));
    ck_assert_str_eq(str(j, "next_session_id"), s[1]);
    cJSON_Delete(j);

    OK(bcd_session_info(&out, svc, "alice", s[1]));
    j = parse(out);
    ck_assert(!boolean(j, "is_first_session"));
    ck_assert(!boolean(j, "is_current"));
    ck_assert_str_eq(str(j, "previous_session_id"), s[0]);
    cJSON_Delete(j);

    /* the session just before this one, not "the second newest" */
    OK(bcd_session_info(&out, svc, "alice", s[2]));
    j = parse(out);
    ck_assert(boolean(j, "is_current"));
    ck_assert_str_eq(str(j, "previous_session_id"), s[1]);
    ck_assert_int_eq(strlen(str(j, "created_at")), 27);
    cJSON_Delete(j);

    OK(bcd_session_info(&out, svc, "bob", other));
    j = parse(out);
    ck_assert(boolean(j, "is_first_session"));
    ck_assert(boolean(j, "is_current"));
    ck_assert_int_eq((int)num(j, "total_sessions"), 1);
    cJSON_Delete(j);
}
END_TEST

START_TEST(test_session_list_is_ordered_and_per_user)
{
    char s[5][37], *out = NULL;
    for (int i = 0; i < 5; i++) {
        make_session(s[i], i == 2 ? "bob" : "alice", 0, 1, 0, false);
    }
    OK(bcd_image_register(&out, svc, "alice", s[0], "front", "/p/a.jpg", 0));
    bcd_free(out);
    OK(bcd_session_list(&out, svc, "alice"));
    cJSON *j = parse(out);
    ck_assert_int_eq((int)num(j, "count"), 4);
    ck_assert_str_eq(str(j, "sessions.0.session_id"), s[0]);
    ck_assert_str_eq(str(j, "sessions.1.session_id"), s[1]);
    ck_assert_str_eq(str(j, "sessions.2.session_id"), s[3]);
    ck_assert_str_eq(str(j, "sessions.3.session_id"), s[4]);
    ck_assert_int_eq((int)num(j, "sessions.0.image_count"), 1);
    ck_assert(!boolean(j, "sessions.0.analyzed"));
    ck_assert_str_eq(str(j, "sessions.0.status"), "created");
    for (int i = 1; i < 4; i++) {
        char a[32], b[32];
        snprintf(a, sizeof a, "sessions.%d.created_at", i - 1);
        snprintf(b, sizeof b, "sessions.%d.created_at", i);
        ck_assert(strcmp(str(j, a), str(j, b)) <= 0);
    }
    cJSON_Delete(j);
    OK(bcd_session_list(&out, svc, "nobody"));
    j = parse(out);
    ck_assert_int_eq((int)num(j, "count"), 0);
    ck_assert_int_eq(cJSON_GetArraySize(at(j, "sessions")), 0);
    cJSON_Delete(j);
}
END_TEST

START_TEST(test_preview_and_thumbnails_give_local_files)
{
    char id[37], *out = NULL;
    make_session(id, "alice", 0x13, 1, 0, false); /* front, left, down */
    OK(bcd_image_preview(&out, svc, "alice", id, "left"));
    cJSON *j = parse(out);
    ck_assert_str_eq(str(j, "image_type"), "left");
    const char *path = str(j, "path");
    ck_assert_int_eq(path[0], '/');
    ck_assert_int_eq(access(path, R_OK), 0);
    char url[600];
    snprintf(url, sizeof url, "file://%s", path);
    ck_assert_str_eq(str(j, "preview_url"), url);
    ck_assert(cJSON_IsNull(at(j, "expires_in")));
    ck_assert_str_eq(str(j, "content_type"), "image/png");
    cJSON_Delete(j);
    FAILS(bcd_image_preview(&out, svc, "alice", id, "up"), BCD_ENOTFOUND, "image_not_found");

    OK(bcd_session_thumbnails(&out, svc, "alice", id));
    j = parse(out);
    ck_assert_int_eq((int)num(j, "count"), 3);
    ck_assert_int_eq(strncmp(str(j, "thumbnails.front"), "file:///", 8), 0);
    ck_assert_int_eq(access(str(j, "paths.down"), R_OK), 0);
    ck_assert_ptr_null(cJSON_GetObjectItem(at(j, "thumbnails"), "up"));
    ck_assert_int_eq(cJSON_GetArraySize(at(j, "missing")), 0);
    /* a file removed behind the store's back is listed as missing */
    ck_assert_int_eq(unlink(str(j, "paths.down")), 0);
    cJSON_Delete(j);
    OK(bcd_session_thumbnails(&out, svc, "alice", id));
    j = parse(out);
    ck_assert_int_eq((int)num(j, "count"), 2);
    ck_assert_str_eq(str(j, "missing.0"), "down");
    cJSON_Delete(j);
    FAILS(bcd_image_preview(&out, svc, "alice", id, "down"), BCD_ENOTFOUND, "image_file_missing");
}
END_TEST

START_TEST(test_data_survives_reopen)
{
    char id[37], *out = NULL;
    make_session(id, "alice", ALL, 1, 0, true);
    cJSON_Delete(analyze("alice", id));
    OK(bcd_analysis_get(&out, svc, "alice", id));
    char *before = out;
    bcd_service_free(svc);
    svc = NULL;
    ck_assert_int_eq(bcd_service_open(&svc, ctx), BCD_OK);
    OK(bcd_analysis_get(&out, svc, "alice", id));
    ck_assert_str_eq(out, before);
    bcd_free(out);
    bcd_free(before);
    /* two services on one data directory see each other's writes */
    bcd_service *other = NULL;
    ck_assert_int_eq(bcd_service_open(&other, ctx), BCD_OK);
    ck_assert_int_eq(bcd_session_create(&out, other, "alice"), BCD_OK);
    bcd_free(out);
    bcd_service_free(other);
    OK(bcd_session_list(&out, svc, "alice"));
    cJSON *j = parse(out);
    ck_assert_int_eq((int)num(j, "count"), 2);
    cJSON_Delete(j);
}
END_TEST

static Suite *service_suite(void)
{
    Suite *s = suite_create("service");
    TCase *tc = tcase_create("local");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_service_open_rejects_supabase_and_null);
    tcase_add_test(tc, test_session_create_returns_id_and_status);
    tcase_add_test(tc, test_inputs_are_validated_before_anything_is_written);
    tcase_add_test(tc, test_other_users_session_is_not_found);
    tcase_add_test(tc, test_image_register_is_idempotent_and_contiguous);
    tcase_add_test(tc, test_image_add_copies_validated_images_only);
    tcase_add_test(tc, test_session_complete_needs_three_angles);
    tcase_add_test(tc, test_delete_image_session_and_user);
    tcase_add_test(tc, test_analyze_requires_completed_session_with_three_angles);
    tcase_add_test(tc, test_analyze_first_session_establishes_baseline);
    tcase_add_test(tc, test_analyze_scores_against_earlier_sessions_only);
    tcase_add_test(tc, test_reanalysis_replaces_previous_result);
    tcase_add_test(tc, test_analysis_get_not_found_before_analysis);
    tcase_add_test(tc, test_corrupt_image_fails_analysis_and_stores_nothing);
    tcase_add_test(tc, test_interrupted_analysis_leaves_previous_intact);
    tcase_add_test(tc, test_compare_uses_embeddings_or_falls_back_to_scores);
    tcase_add_test(tc, test_baseline_ignores_embeddings_of_other_models);
    tcase_add_test(tc, test_confidence_follows_coverage_and_quality);
    tcase_add_test(tc, test_session_info_reports_position_and_previous_session);
    tcase_add_test(tc, test_session_list_is_ordered_and_per_user);
    tcase_add_test(tc, test_preview_and_thumbnails_give_local_files);
    tcase_add_test(tc, test_data_survives_reopen);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(service_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

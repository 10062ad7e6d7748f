/* bcd-cli commands on single images and vectors: preprocess, embed, distance, config. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Write floats as little-endian float32, whatever the host order. */
static int cmd_preprocess(struct cli *c)
{
    const char *out = c->out;
    if (!out)
        return cli_usage_error("preprocess needs --out FILE.png or --out FILE.f32");
    bool png = ends_with(out, ".png"), f32 = ends_with(out, ".f32");
    if (!png && !f32)
        return cli_usage_error("--out must end in .png (224x224 image) or .f32 (normalized tensor)");

    bcd_image *img = NULL, *eq = NULL, *small = NULL;
    float *tensor = NULL;
    int rc = EXIT_OK;
    bcd_status st = bcd_image_decode_file(&img, c->ctx, c->pos[0]);
    if (st == BCD_OK)
        st = bcd_image_equalize(&eq, img);
    if (st == BCD_OK)
        st = bcd_image_crop_resize(&small, eq, BCD_INPUT_SIZE);
    if (st != BCD_OK) {
        rc = cli_fail_ctx(c, st);
        goto done;
    }
    if (png) {
        st = bcd_image_write_png(c->ctx, small, out);
        if (st != BCD_OK) {
            rc = cli_fail_ctx(c, st);
            goto done;
        }
    } else {
        tensor = malloc(sizeof(float) * BCD_TENSOR_LEN);
        if (!tensor) {
            rc = cli_fail(BCD_ENOMEM, "out of memory");
            goto done;
        }
        st = bcd_image_to_tensor(tensor, BCD_TENSOR_LEN, small);
        if (st != BCD_OK) {
            rc = cli_fail_ctx(c, st);
            goto done;
        }
        st = bcd_image_write_tensor(c->ctx, tensor, BCD_TENSOR_LEN, out);
        if (st != BCD_OK) {
            rc = cli_fail_ctx(c, st);
            goto done;
        }
    }
    if (c->json)
        printf("{\"file\":\"%s\",\"width\":%d,\"height\":%d,\"out\":\"%s\"}\n", c->pos[0], BCD_INPUT_SIZE,
               BCD_INPUT_SIZE, out);
    else
        printf("wrote %s (%s)\n", out, png ? "224x224 RGB PNG" : "float32 CHW 3x224x224, little-endian");
done:
    free(tensor);
    bcd_image_free(small);
    bcd_image_free(eq);
    bcd_image_free(img);
    return rc;
}

/* Decode and preprocess n files into one batch, embed it. *vecs: n * dim floats. */
static bcd_status embed_files(struct cli *c, bcd_embedder **emb, float **vecs, const char *const *files, int n)
{
    float *batch = malloc(sizeof(float) * BCD_TENSOR_LEN * (size_t)n);
    if (!batch)
        return BCD_ENOMEM;
    bcd_status st = BCD_OK;
    for (int i = 0; i < n && st == BCD_OK; i++) {
        bcd_image *img = NULL;
        st = bcd_image_decode_file(&img, c->ctx, files[i]);
        if (st == BCD_OK)
            st = bcd_image_preprocess(batch + (size_t)i * BCD_TENSOR_LEN, BCD_TENSOR_LEN, img);
        bcd_image_free(img);
    }
    if (st == BCD_OK)
        st = bcd_embedder_open(emb, c->ctx, NULL);
    if (st == BCD_OK) {
        *vecs = malloc(sizeof(float) * bcd_embedder_dim(*emb) * (size_t)n);
        st = *vecs ? bcd_embedder_embed(*emb, *vecs, batch, (size_t)n) : BCD_ENOMEM;
    }
    free(batch);
    return st;
}

static void print_json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

static int cmd_embed(struct cli *c)
{
    bcd_embedder *emb = NULL;
    float *vecs = NULL;
    bcd_status st = embed_files(c, &emb, &vecs, c->pos, c->npos);
    if (st != BCD_OK) {
        int rc = cli_fail_ctx(c, st);
        free(vecs);
        bcd_embedder_free(emb);
        return rc;
    }
    size_t dim = bcd_embedder_dim(emb);
    printf("{\"model\":");
    print_json_string(bcd_embedder_name(emb));
    printf(",\"dim\":%zu,\"embeddings\":[", dim);
    for (int i = 0; i < c->npos; i++) {
        printf("%s{\"file\":", i ? "," : "");
        print_json_string(c->pos[i]);
        printf(",\"vector\":[");
        for (size_t k = 0; k < dim; k++)
            printf("%s%.9g", k ? "," : "", (double)vecs[(size_t)i * dim + k]);
        printf("]}");
    }
    printf("]}\n");
    free(vecs);
    bcd_embedder_free(emb);
    return EXIT_OK;
}

/* A JSON document starts with '{' or '[' after white space; anything else is an image.
 * -1: the file cannot be opened. */
static int looks_like_json(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    int ch;
    while ((ch = fgetc(f)) == ' ' || ch == '\n' || ch == '\r' || ch == '\t')
        ;
    fclose(f);
    return ch == '{' || ch == '[';
}

/* Read an embedding JSON file; prints the error envelope and returns its exit code. */
static int read_vector(struct cli *c, const char *path, float **v, size_t *dim)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return cli_fail(BCD_ENOTFOUND, "cannot open %s", path);
    size_t cap = 1 << 16, len = 0, got;
    char *buf = malloc(cap);
    while (buf && (got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (len + 1 == cap) {
            char *nb = cap < (64u << 20) ? realloc(buf, cap * 2) : NULL;
            if (!nb)
                free(buf);
            buf = nb;
            cap *= 2;
        }
    }
    fclose(f);
    if (!buf)
        return cli_fail(BCD_ELIMIT, "%s is too large for an embedding file", path);
    buf[len] = '\0';
    bcd_status st = bcd_vector_from_json(v, dim, c->ctx, buf);
    free(buf);
    return st == BCD_OK ? EXIT_OK : cli_fail_ctx(c, st);
}

static int cmd_distance(struct cli *c)
{
    int ja = looks_like_json(c->pos[0]), jb = looks_like_json(c->pos[1]);
    if (ja < 0 || jb < 0)
        return cli_fail(BCD_ENOTFOUND, "cannot open %s", c->pos[ja < 0 ? 0 : 1]);
    if (ja != jb)
        return cli_usage_error("distance takes two embedding JSON files or two images");
    float *a = NULL, *b = NULL, *vecs = NULL;
    size_t na = 0, nb = 0;
    bcd_embedder *emb = NULL;
    bcd_status st = BCD_OK;
    if (ja) {
        int rc = read_vector(c, c->pos[0], &a, &na);
        if (rc == EXIT_OK)
            rc = read_vector(c, c->pos[1], &b, &nb);
        if (rc != EXIT_OK) {
            bcd_free(a);
            return rc;
        }
    } else {
        st = embed_files(c, &emb, &vecs, c->pos, 2);
        if (st == BCD_OK) {
            na = nb = bcd_embedder_dim(emb);
            a = vecs;
            b = vecs + na;
        }
    }
    double d = 0;
    if (st == BCD_OK)
        st = bcd_vector_cosine_distance(&d, c->ctx, a, na, b, nb);
    int rc = EXIT_OK;
    if (st == BCD_OK) {
        const char *label = bcd_trend_label(d);
        if (c->json)
            printf("{\"distance\":%.9g,\"trend\":\"%s\"}\n", d, label);
        else
            printf("cosine distance %.6f: %s\n", d, label);
    } else {
        rc = cli_fail_ctx(c, st);
    }
    if (ja) {
        bcd_free(a);
        bcd_free(b);
    }
    free(vecs);
    bcd_embedder_free(emb);
    return rc;
}

static int cmd_config(struct cli *c)
{
    char *json = NULL;
    bcd_status st = bcd_ctx_config_json(&json, c->ctx);
    if (st != BCD_OK)
        return cli_fail_ctx(c, st);
    /* which .env file was read, and why not when it could not be */
    cJSON *doc = cJSON_Parse(json);
    bcd_free(json);
    json = NULL;
    cJSON *file = !c->env_file || c->env_error[0] ? cJSON_CreateNull() : cJSON_CreateString(c->env_file);
    if (doc && file && cJSON_AddItemToObject(doc, "env_file", file)) {
        file = NULL;
        if (c->env_error[0])
            cJSON_AddStringToObject(doc, "env_file_error", c->env_error);
        json = cJSON_PrintUnformatted(doc);
    }
    cJSON_Delete(file);
    cJSON_Delete(doc);
    if (!json)
        return cli_fail(BCD_ENOMEM, "out of memory");
    puts(json);
    free(json);
    return EXIT_OK;
}

const struct cli_command cli_image_commands[] = {
    {"preprocess", "IMAGE --out FILE.png|FILE.f32", "Run the preprocessing pipeline on one image",
     "Decodes IMAGE (JPEG or PNG, EXIF orientation applied), equalizes the luma histogram,\n"
     "crops the centred square and resizes it to 224x224 (area interpolation).\n"
     "  --out FILE.png   write the 224x224 RGB image (rounded to uint8)\n"
     "  --out FILE.f32   write the normalized tensor: raw little-endian float32, CHW, 3x224x224",
     1, 1, cmd_preprocess},
    {"embed", "[--model builtin|PATH] IMAGE...", "Embed images, print {\"model\",\"dim\",\"embeddings\"}",
     "All images are decoded, preprocessed and embedded in one batch. The output is JSON:\n"
     "  {\"model\":NAME,\"dim\":N,\"embeddings\":[{\"file\":PATH,\"vector\":[...]}]}",
     1, -1, cmd_embed},
    {"distance", "A B", "Cosine distance and trend label of two embeddings or two images",
     "A and B are both embedding JSON files (output of 'embed', a plain array, or an object with\n"
     "\"vector\") or both images (embedded with --model). Prints the cosine distance and its\n"
     "label: stable (< 0.1), mild_variation (< 0.25) or significant_shift.",
     2, 2, cmd_distance},
    {"config", "", "Print the effective configuration as JSON (secrets redacted)",
     "Shows every configuration key after precedence (options, environment, .env, defaults),\n"
     "and \"env_file\": the .env file read (--env-file or BCD_ENV_FILE), null when none was.\n"
     "A file that cannot be used is named in \"env_file_error\" (and a warning on stderr)\n"
     "instead of failing the command. The service-role key is shown only as \"<set>\".",
     0, 0, cmd_config, true},
};
const int cli_image_ncommands = sizeof cli_image_commands / sizeof cli_image_commands[0];

/*
 * Decode one photo, preprocess it and embed it with the built-in embedder (or the
 * model named by BCD_MODEL / the second argument), then print the first values.
 *
 *     embed_one IMAGE [MODEL]
 *
 * Build against an installed libbcd:
 *     cc -o embed_one embed_one.c $(pkg-config --cflags --libs bcd)
 */
#include <stdio.h>
#include <stdlib.h>

#include <bcd.h>

static int fail(const char *what, bcd_status st, bcd_ctx *ctx)
{
    const bcd_error *e = bcd_ctx_last_error(ctx);
    fprintf(stderr, "embed_one: %s failed: %s (%s): %s\n", what, bcd_error_code(e), bcd_status_name(st),
            bcd_error_message(e));
    return EXIT_FAILURE;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s IMAGE [MODEL]\n", argv[0]);
        return 2;
    }
    bcd_ctx *ctx = NULL;
    bcd_image *img = NULL;
    bcd_embedder *emb = NULL;
    float *tensor = NULL, *vec = NULL;
    int rc = EXIT_FAILURE;
    bcd_status st = bcd_ctx_new(&ctx);
    if (st != BCD_OK) {
        fprintf(stderr, "embed_one: bcd_ctx_new: %s\n", bcd_strerror(st));
        return EXIT_FAILURE;
    }
    if ((st = bcd_ctx_load_env(ctx, NULL)) != BCD_OK) {
        rc = fail("reading the environment", st, ctx);
        goto done;
    }
    if ((st = bcd_image_decode_file(&img, ctx, argv[1])) != BCD_OK) {
        rc = fail("decode", st, ctx);
        goto done;
    }
    printf("%s: %ux%u RGB\n", argv[1], img->width, img->height);

    tensor = malloc(sizeof *tensor * BCD_TENSOR_LEN);
    if (!tensor) {
        fprintf(stderr, "embed_one: out of memory\n");
        goto done;
    }
    if ((st = bcd_image_preprocess(tensor, BCD_TENSOR_LEN, img)) != BCD_OK) {
        fprintf(stderr, "embed_one: preprocess failed: %s\n", bcd_strerror(st));
        goto done;
    }

    if ((st = bcd_embedder_open(&emb, ctx, argc > 2 ? argv[2] : NULL)) != BCD_OK) {
        rc = fail("opening the embedder", st, ctx);
        goto done;
    }
    size_t dim = bcd_embedder_dim(emb);
    vec = malloc(sizeof *vec * dim);
    if (!vec) {
        fprintf(stderr, "embed_one: out of memory\n");
        goto done;
    }
    if ((st = bcd_embedder_embed(emb, vec, tensor, 1)) != BCD_OK) {
        rc = fail("embed", st, ctx);
        goto done;
    }
    printf("model %s, %zu dimensions:", bcd_embedder_name(emb), dim);
    for (size_t i = 0; i < dim && i < 8; i++)
        printf(" %.6f", (double)vec[i]);
    printf("%s\n", dim > 8 ? " ..." : "");
    rc = EXIT_SUCCESS;
done:
    free(vec);
    free(tensor);
    bcd_embedder_free(emb);
    bcd_image_free(img);
    bcd_ctx_free(ctx);
    return rc;
}

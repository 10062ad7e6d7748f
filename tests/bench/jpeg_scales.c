/* Benchmark helper for tests/bench/bench_decode.py --libjpeg-scales: libjpeg-turbo alone
 * (no libbcd) decoding JPEGs at every scale M/8, M = 1..8, to RGB in memory, ISLOW IDCT
 * and fancy upsampling (libjpeg's defaults, as libbcd uses them).
 *
 *   jpeg_scales RUNS IMAGE...
 *
 * Prints "M WxH SECONDS" per scale: the least over RUNS of the CPU time of this thread to
 * decode all images (CPU time and the minimum: the machine may be shared).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <jpeglib.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static unsigned char *slurp(const char *path, unsigned long *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    unsigned char *buf = n > 0 ? malloc((size_t)n) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (unsigned long)n;
    return buf;
}

/* Decode at m/8; returns the output size through w, h. */
static void decode(const unsigned char *data, unsigned long len, unsigned m, unsigned *w, unsigned *h)
{
    struct jpeg_decompress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_decompress(&c);
    jpeg_mem_src(&c, data, len);
    jpeg_read_header(&c, TRUE);
    c.out_color_space = JCS_RGB;
    c.scale_num = m;
    c.scale_denom = 8;
    jpeg_start_decompress(&c);
    *w = c.output_width;
    *h = c.output_height;
    unsigned char *img = malloc((size_t)c.output_width * c.output_height * 3);
    while (c.output_scanline < c.output_height) {
        JSAMPROW row = img + (size_t)c.output_scanline * c.output_width * 3;
        jpeg_read_scanlines(&c, &row, 1);
    }
    jpeg_finish_decompress(&c);
    jpeg_destroy_decompress(&c);
    free(img);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: jpeg_scales RUNS IMAGE...\n");
        return 2;
    }
    int runs = atoi(argv[1]);
    if (runs < 1)
        runs = 1;
    int n = argc - 2;
    unsigned char **data = calloc((size_t)n, sizeof *data);
    unsigned long *len = calloc((size_t)n, sizeof *len);
    double *t = calloc((size_t)runs, sizeof *t);
    if (!data || !len || !t)
        return 1;
    for (int i = 0; i < n; i++)
        if (!(data[i] = slurp(argv[i + 2], &len[i]))) {
            fprintf(stderr, "jpeg_scales: cannot read %s\n", argv[i + 2]);
            return 1;
        }
    for (unsigned m = 8; m >= 1; m--) {
        unsigned w = 0, h = 0;
        for (int r = 0; r < runs; r++) {
            double a = now();
            for (int i = 0; i < n; i++)
                decode(data[i], len[i], m, &w, &h);
            t[r] = now() - a;
        }
        qsort(t, (size_t)runs, sizeof *t, cmp_double);
        printf("%u %ux%u %.6f\n", m, w, h, t[0]);
    }
    for (int i = 0; i < n; i++)
        free(data[i]);
    free(data);
    free(len);
    free(t);
    return 0;
}

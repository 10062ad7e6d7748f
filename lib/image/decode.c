#include "core/core.h"
#include "bcd/image.h"
#include <stdlib.h>

bcd_status bcd_image_decode(bcd_image **out, bcd_ctx *ctx, const void *data, size_t len)
{
    (void)out; (void)data; (void)len;
    return bcd__ctx_fail(ctx, BCD_EUNSUPPORTED, NULL, "not yet implemented");
}
bcd_status bcd_image_decode_file(bcd_image **out, bcd_ctx *ctx, const char *path)
{
    (void)out; (void)path;
    return bcd__ctx_fail(ctx, BCD_EUNSUPPORTED, NULL, "not yet implemented");
}
void bcd_image_free(bcd_image *img)
{
    if (img) { free(img->data); free(img); }
}

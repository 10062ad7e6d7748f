/* placeholder: decoding is being written */
#include "image_internal.h"

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

#include "embed.h"
bcd_status bcd__builtin_open(bcd_embedder *e, bcd_ctx *ctx)
{
    (void)e;
    return bcd__ctx_fail(ctx, BCD_EUNSUPPORTED, NULL, "not yet implemented");
}

#ifndef BCD_H
#define BCD_H
/**
 * @file bcd.h
 * libbcd: longitudinal body-photo change detection. Umbrella header.
 *
 * A handle is used by one thread at a time; different handles may be used in different
 * threads at once. Embeddings and analysis results never change once made and may be
 * read from any thread. bcd_strerror() and the version functions are always safe.
 * The library never writes to stdout or stderr.
 */
#include "bcd/common.h"
#include "bcd/version.h"
#include "bcd/ctx.h"
#include "bcd/image.h"
#include "bcd/embed.h"
#include "bcd/detect.h"
#include "bcd/lesion.h"
#include "bcd/analysis.h"
#include "bcd/service.h"
#include "bcd/auth.h"
#include "bcd/report.h"

#endif

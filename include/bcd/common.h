#ifndef BCD_COMMON_H
#define BCD_COMMON_H
/**
 * @file bcd/common.h
 * Export macros, status codes, memory release and version queries shared by every
 * libbcd header.
 *
 * Threads: a handle is used by one thread at a time; different handles may be used in
 * different threads at once. Embeddings and analysis results never change once made and
 * may be read from any thread. bcd_strerror(), bcd_status_name() and the version
 * functions are always safe. The library never writes to stdout or stderr.
 *
 * How the doc comments of every public header say things:
 *  - Ownership, in the same words everywhere: "caller frees with X()" (the caller owns
 *    the result and releases it with exactly that function, never with free());
 *    "borrowed, valid until ..." (owned by a handle, do not free); "copied" (the library
 *    keeps its own copy, the caller may release the argument after the call);
 *    "borrowed for the call" (read during the call only, not kept).
 *  - Out-parameters come first; on failure they are left untouched.
 *  - Errors: @return lists the statuses a caller should expect; a call may in addition
 *    fail with BCD_ENOMEM, and with BCD_EINVAL when a required pointer is NULL. Where a
 *    call takes a handle, the detail of a failure (stable string code, message, details
 *    JSON) is recorded on that handle, or on the ctx the call takes, and read with
 *    bcd_ctx_last_error() / bcd_service_last_error(); every fallible call clears it on
 *    entry. Calls that take no handle report through their status only.
 *  - Threads: "one thread per ctx at a time" means the call uses the ctx (or a handle
 *    made from it) and must not run concurrently with any other call on that ctx or on
 *    the handles that borrow it; "any thread" means no shared mutable state is touched.
 */
#include <stddef.h>
#include <stdint.h>

#include "bcd/version.h"

#if defined(_WIN32) && defined(BCD_BUILDING)
#define BCD_API __declspec(dllexport)
#elif defined(_WIN32) && !defined(BCD_STATIC)
#define BCD_API __declspec(dllimport)
#elif defined(__GNUC__)
#define BCD_API __attribute__((visibility("default")))
#else
#define BCD_API
#endif

#ifdef __cplusplus
#define BCD_BEGIN_DECLS extern "C" {
#define BCD_END_DECLS }
#else
#define BCD_BEGIN_DECLS
#define BCD_END_DECLS
#endif

BCD_BEGIN_DECLS

/**
 * Result of every fallible call: 0 on success, negative on failure. Values are
 * appended only and never renumbered or reused. The string code on the handle's
 * bcd_error can be finer ("session_not_completed"); the status is what callers
 * branch on.
 */
typedef enum bcd_status {
    BCD_OK = 0,
    BCD_ERROR = -1,        /**< internal or unexpected failure */
    BCD_EINVAL = -2,       /**< invalid argument or input (bad angle, malformed id, ...) */
    BCD_ENOMEM = -3,       /**< out of memory */
    BCD_EIO = -4,          /**< file system or device I/O failure */
    BCD_EFORMAT = -5,      /**< data is corrupt, truncated or in an unsupported format */
    BCD_ELIMIT = -6,       /**< input exceeds a configured limit (image size, response size) */
    BCD_ENOTFOUND = -7,    /**< no such session, image, analysis or file (or not the caller's) */
    BCD_ECONFLICT = -8,    /**< conflicts with stored state (slot taken, order out of sequence) */
    BCD_ESTATE = -9,       /**< a precondition does not hold (not completed, too few angles) */
    BCD_EUNSUPPORTED = -10,/**< feature not available in this build (e.g. built without libtorch) */
    BCD_EAUTH = -11,       /**< token or key rejected (expired, forged, wrong key) */
    BCD_ENET = -12,        /**< network failure or server error */
    BCD_EDOMAIN = -13      /**< mathematically undefined (zero vector, NaN or infinity) */
} bcd_status;

/**
 * Human-readable text for any status value ("not found"); unknown values give
 * "unknown status".
 * @return static, never NULL, never freed.
 * Threads: any thread.
 */
BCD_API const char *bcd_strerror(int status);

/**
 * Stable snake_case name of a status ("invalid_argument"); unknown values give "unknown".
 * @return static, never NULL, never freed.
 * Threads: any thread.
 */
BCD_API const char *bcd_status_name(int status);

/**
 * Release memory the library handed to the caller and documented as "caller frees with
 * bcd_free()" (JSON strings, vectors). Never use free() on such memory (the library may
 * use another allocator), and never bcd_free() a handle (each has its own _free()).
 * @param ptr  NULL: no-op.
 * Threads: any thread.
 */
BCD_API void bcd_free(void *ptr);

/**
 * Version of the library actually loaded, e.g. "0.1.0" (BCD_VERSION_STRING is the
 * version of the headers a program was compiled with).
 * @return static, never NULL, never freed.
 * Threads: any thread.
 */
BCD_API const char *bcd_version(void);

/**
 * BCD_VERSION_NUMBER of the library actually loaded (major * 10000 + minor * 100 +
 * patch). A program or binding compiled against major M works with any loaded library
 * of major M that is at least as new as its headers.
 * Threads: any thread.
 */
BCD_API int bcd_version_number(void);

BCD_END_DECLS

#endif

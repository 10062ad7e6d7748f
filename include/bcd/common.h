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

/** Static human-readable text for any status value; never NULL, never freed. */
BCD_API const char *bcd_strerror(int status);

/** Stable snake_case name of a status ("invalid_argument"); never NULL. */
BCD_API const char *bcd_status_name(int status);

/** Release memory the library handed to the caller (strings, vectors). NULL: no-op. */
BCD_API void bcd_free(void *ptr);

/** Version of the library actually loaded, e.g. "0.1.0"; static. */
BCD_API const char *bcd_version(void);

/** BCD_VERSION_NUMBER of the library actually loaded. */
BCD_API int bcd_version_number(void);

BCD_END_DECLS

#endif

#include <stdlib.h>

#include "bcd/common.h"
#include "bcd/version.h"

const char *bcd_strerror(int status)
{
    switch ((bcd_status)status) {
    case BCD_OK: return "success";
    case BCD_ERROR: return "internal error";
    case BCD_EINVAL: return "invalid argument";
    case BCD_ENOMEM: return "out of memory";
    case BCD_EIO: return "input/output error";
    case BCD_EFORMAT: return "corrupt or unsupported data";
    case BCD_ELIMIT: return "limit exceeded";
    case BCD_ENOTFOUND: return "not found";
    case BCD_ECONFLICT: return "conflict with stored state";
    case BCD_ESTATE: return "precondition not met";
    case BCD_EUNSUPPORTED: return "not supported by this build";
    case BCD_EAUTH: return "authentication failed";
    case BCD_ENET: return "network or server error";
    case BCD_EDOMAIN: return "mathematically undefined";
    }
    return "unknown status";
}

const char *bcd_status_name(int status)
{
    switch ((bcd_status)status) {
    case BCD_OK: return "ok";
    case BCD_ERROR: return "internal_error";
    case BCD_EINVAL: return "invalid_argument";
    case BCD_ENOMEM: return "out_of_memory";
    case BCD_EIO: return "io_error";
    case BCD_EFORMAT: return "bad_format";
    case BCD_ELIMIT: return "limit_exceeded";
    case BCD_ENOTFOUND: return "not_found";
    case BCD_ECONFLICT: return "conflict";
    case BCD_ESTATE: return "precondition_failed";
    case BCD_EUNSUPPORTED: return "unsupported";
    case BCD_EAUTH: return "unauthorized";
    case BCD_ENET: return "network_error";
    case BCD_EDOMAIN: return "domain_error";
    }
    return "unknown";
}

void bcd_free(void *ptr)
{
    free(ptr);
}

const char *bcd_version(void)
{
    return BCD_VERSION_STRING;
}

int bcd_version_number(void)
{
    return BCD_VERSION_NUMBER;
}

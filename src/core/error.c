/*
 * error.c — names and messages of the WEFT_E* codes, generated from the one list in
 * weft/core.h (WEFT_ERRNO_MAP, WEFT_OWN_ERROR_MAP) so they cannot drift from the enum, and
 * the one errno converter (weft__errno), generated from the same list.
 */
#include "core_internal.h"

int weft__errno(int e)
{
    switch (e) {
#define XX(name, msg)                                                                              \
    case name:                                                                                     \
        return WEFT_##name;
        WEFT_ERRNO_MAP(XX)
#undef XX
    default:
        return WEFT_ESYSTEM;
    }
}

const char *weft_error_message(int code)
{
    switch (code) {
#define XX(name, msg)                                                                              \
    case WEFT_##name:                                                                              \
        return msg;
        WEFT_ERRNO_MAP(XX)
#undef XX
#define XX(name, value, msg)                                                                       \
    case WEFT_##name:                                                                              \
        return msg;
        WEFT_OWN_ERROR_MAP(XX)
#undef XX
    case 0:
        return "success";
    default:
        return "unknown error";
    }
}

const char *weft_error_name(int code)
{
    switch (code) {
#define XX(name, msg)                                                                              \
    case WEFT_##name:                                                                              \
        return "WEFT_" #name;
        WEFT_ERRNO_MAP(XX)
#undef XX
#define XX(name, value, msg)                                                                       \
    case WEFT_##name:                                                                              \
        return "WEFT_" #name;
        WEFT_OWN_ERROR_MAP(XX)
#undef XX
    case 0:
        return "WEFT_OK";
    default:
        return "WEFT_UNKNOWN";
    }
}

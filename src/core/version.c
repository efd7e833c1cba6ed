/*
 * version.c — the running library's version, from the macros of weft/version.h as this
 * library was compiled with them.
 */
#include "weft/version.h"

const char *weft_version_string(void)
{
    return WEFT_VERSION_STRING;
}

int weft_version_number(void)
{
    return WEFT_VERSION_NUMBER;
}

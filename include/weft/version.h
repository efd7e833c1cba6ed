/*
 * weft/version.h — which weft this is: the version the headers were written for (macros, at
 * compile time) and the version of the library a program runs with (functions, at run time).
 *
 * Versions follow the ABI policy of docs/API.md: the MAJOR number is the shared library's
 * SONAME (libweft.so.1); a 1.x release only adds to the API and ABI of 1.0 (new functions,
 * new enumerators, fields taken from a struct's reserved space), so a program built against
 * 1.y runs with any 1.x where x >= y. The CMake project VERSION (CMakeLists.txt) is the one
 * source: the test build.api_version_matches_cmake fails if these macros differ from it.
 *
 * Thread safety: both functions are pure and safe from any thread, coroutine or signal
 * handler, before or after fork.
 */
#ifndef WEFT_VERSION_H
#define WEFT_VERSION_H

#include "weft/core.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The version of these headers: major, minor, patch (the library's own is
 * weft_version_string()). */
#define WEFT_VERSION_MAJOR 1
#define WEFT_VERSION_MINOR 1
#define WEFT_VERSION_PATCH 0

#define WEFT__VERSION_STR(x)  #x
#define WEFT__VERSION_XSTR(x) WEFT__VERSION_STR(x)
/* "1.1.0" */
#define WEFT_VERSION_STRING                                                                        \
    WEFT__VERSION_XSTR(WEFT_VERSION_MAJOR)                                                         \
    "." WEFT__VERSION_XSTR(WEFT_VERSION_MINOR) "." WEFT__VERSION_XSTR(WEFT_VERSION_PATCH)
/* One comparable number: MAJOR * 1000000 + MINOR * 1000 + PATCH (1.2.3 is 1002003), so that
 * `#if WEFT_VERSION_NUMBER >= 1002000` selects code for 1.2 and later. */
#define WEFT_VERSION_NUMBER                                                                        \
    (WEFT_VERSION_MAJOR * 1000000 + WEFT_VERSION_MINOR * 1000 + WEFT_VERSION_PATCH)

/* The running library's version as "MAJOR.MINOR.PATCH" (WEFT_VERSION_STRING of the headers
 * it was built from).
 * Returns the version string: never NULL; a static string, not to be freed. */
WEFT_EXTERN const char *weft_version_string(void);

/* The running library's WEFT_VERSION_NUMBER. A program can compare it with the macro of the
 * headers it was compiled with: weft_version_number() / 1000000 == WEFT_VERSION_MAJOR always
 * holds for a program the dynamic linker accepted (same SONAME).
 * Returns MAJOR * 1000000 + MINOR * 1000 + PATCH of the running library (1.2.3 is 1002003). */
WEFT_EXTERN int weft_version_number(void);

#ifdef __cplusplus
}
#endif
#endif /* WEFT_VERSION_H */

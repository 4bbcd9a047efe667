/* util.h - small helpers shared by the configuration, endpoint and module
 * code: error texts into caller buffers, and JSON values read the way
 * Perl reads them. */
#ifndef AEMP_UTIL_H
#define AEMP_UTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* printf into err[errlen] (nothing if err is NULL or errlen 0). */
void aemp__seterr(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The name of a JSON value's type for error messages ("object", "array",
 * "string", "number", "boolean", "null"). */
const char *aemp__json_type_name(const json_t *v);

/* Perl's idea of truth: false are NULL, null, false, 0, "" and "0". */
bool aemp__json_truthy(const json_t *v);

#endif

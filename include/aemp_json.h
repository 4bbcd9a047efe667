/* aemp_json.h - converting between libaemp messages and jansson values,
 * for programs that like jansson.  Include it after (or instead of)
 * aemp.h; it needs jansson's header (Debian: libjansson-dev) and linking
 * with -ljansson, which pkg-config's libaemp.pc provides.
 */
#ifndef AEMP_JSON_H
#define AEMP_JSON_H

#include <jansson.h>

#include "aemp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A new message whose root is a copy of j (borrowed): objects become maps
 * (in jansson's key order), integers INT, reals DOUBLE, strings STR.
 * Returns NULL if j is NULL or nested beyond AEMP_MSG_MAX_DEPTH.  An array
 * j gives a message that aemp_snd accepts. */
aemp_msg_t *aemp_msg_from_json(const json_t *j);

/* A new jansson value (new reference) for the root of m, or for the value
 * v: byte strings become strings of their bytes read as Latin-1 (as Perl
 * writes them to JSON), UINT values reals, map keys with NUL bytes are cut
 * at the NUL (jansson's object keys are C strings), non-finite doubles
 * null.  NULL only for a NULL argument. */
json_t *aemp_msg_to_json(const aemp_msg_t *m);
json_t *aemp_val_to_json(const aemp_val_t *v);

#ifdef __cplusplus
}
#endif

#endif

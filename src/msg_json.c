/* msg_json.c - conversion between messages and jansson values
 * (aemp_json.h), for users who like jansson and for the configuration code,
 * which keeps the relaxed-JSON rc file in jansson.
 */
#include "aemp_json.h"
#include "msg.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Append j to b.  The builder's depth limit ends the recursion: a
 * container it refuses is not entered. */
static void from_json(aemp_build_t *b, const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_NULL:
        aemp_build_null(b);
        break;
    case JSON_TRUE:
        aemp_build_bool(b, 1);
        break;
    case JSON_FALSE:
        aemp_build_bool(b, 0);
        break;
    case JSON_INTEGER:
        aemp_build_int(b, json_integer_value(j));
        break;
    case JSON_REAL:
        aemp_build_double(b, json_real_value(j));
        break;
    case JSON_STRING:
        aemp_build_strn(b, json_string_value(j), json_string_length(j));
        break;
    case JSON_ARRAY: {
        if (aemp_build_array(b))
            return;
        size_t i;
        json_t *e;
        json_array_foreach(j, i, e)
            from_json(b, e);
        aemp_build_close(b);
        break;
    }
    case JSON_OBJECT: {
        if (aemp_build_map(b))
            return;
        const char *k;
        json_t *e;
        json_object_foreach((json_t *)j, k, e) {
            aemp_build_str(b, k);
            from_json(b, e);
        }
        aemp_build_close(b);
        break;
    }
    }
}

aemp_msg_t *aemp_msg_from_json(const json_t *j)
{
    if (!j)
        return NULL;
    aemp_build_t *b = aemp_build_new();
    b->maxdepth = AEMP_MSG_MAX_DEPTH;
    from_json(b, j);
    return aemp_build_root(b);
}

/* A jansson string of the string value v: its bytes if v is valid UTF-8
 * text, else each byte as the character of that code point (Latin-1, as
 * Perl writes a byte string to JSON). */
static json_t *str_to_json(const struct aemp_val *v)
{
    const uint8_t *s = (const uint8_t *)aemp__val_strp(v);
    size_t n = v->n;
    if (v->type == AEMP_T_STR && aemp__utf8_valid(s, n))
        return json_stringn((const char *)s, n);
    char *o = malloc(2 * n + 1);
    if (!o)
        abort();
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x80) {
            o[k++] = (char)s[i];
        } else {
            o[k++] = (char)(0xc0 | (s[i] >> 6));
            o[k++] = (char)(0x80 | (s[i] & 0x3f));
        }
    }
    json_t *r = json_stringn(o, k);
    free(o);
    return r;
}

json_t *aemp_val_to_json(const aemp_val_t *v)
{
    if (!v)
        return NULL;
    switch ((aemp_type_t)v->type) {
    case AEMP_T_NULL:
        return json_null();
    case AEMP_T_BOOL:
        return json_boolean(v->v.i);
    case AEMP_T_INT:
        return json_integer(v->v.i);
    case AEMP_T_UINT:
        return json_real((double)v->v.u);
    case AEMP_T_DOUBLE:
        return isfinite(v->v.d) ? json_real(v->v.d) : json_null();
    case AEMP_T_STR:
    case AEMP_T_BYTES:
        return str_to_json(v);
    case AEMP_T_ARRAY: {
        json_t *a = json_array();
        for (size_t i = 0; i < v->n; i++)
            json_array_append_new(a, aemp_val_to_json(aemp_val_at(v, i)));
        return a;
    }
    case AEMP_T_MAP: {
        json_t *o = json_object();
        for (size_t i = 0; i < v->n; i++) {
            json_t *k = str_to_json(aemp_val_key(v, i));
            json_object_set_new(o, json_string_value(k), aemp_val_to_json(aemp_val_value(v, i)));
            json_decref(k);
        }
        return o;
    }
    }
    return json_null();
}

json_t *aemp_msg_to_json(const aemp_msg_t *m)
{
    return m ? aemp_val_to_json(aemp_msg_root(m)) : NULL;
}

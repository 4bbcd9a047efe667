/* config.h - the rc file, profiles, configuration resolution, node IDs.
 *
 * The rc file is the one the Perl tool uses (so C and Perl nodes share
 * profiles and secrets): one JSON object, read in "relaxed" mode (`#`
 * comments and trailing commas allowed), with global settings at the top
 * level and named profiles under "profile".  See docs/configuration.md.
 *
 * An aemp_config_t is an in-memory copy of that file plus an editing target
 * (the global section or one profile) for the `aemp` configuration commands.
 * It is written back only by aemp__config_save().
 *
 * Failing functions return 0 or -1 and put a one-line message (no trailing
 * newline) into the caller's err[errlen] buffer (err may be NULL).
 */
#ifndef AEMP_CONFIG_H
#define AEMP_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct aemp_config aemp_config_t;

/* Flags of aemp__config_resolve(). */
enum {
    AEMP_CONFIG_NORC = 1,   /* ignore the rc file: defaults + args only */
    AEMP_CONFIG_FORCE = 2,  /* args override the rc file (see resolve) */
};

/* Length of a secret made by aemp__config_gensecret() (without the NUL). */
#define AEMP_CONFIG_SECRET_LEN 86

/* Length of the random part of node IDs (%u, trailing '/'). */
#define AEMP_CONFIG_RUNIQ_LEN 10

/* Built-in default for max_frame: 16 MiB. */
#define AEMP_CONFIG_MAX_FRAME_DEFAULT (16u * 1024 * 1024)

/* ------------------------------------------------------------ the file */

/* The rc file path: $PERL_ANYEVENT_MP_RC, else $HOME/.perl-anyevent-mp,
 * else $APPDATA/perl-anyevent-mp (variables set to "" count as unset).
 * *path receives a malloc'd string the caller frees.
 * Errors: none of the variables set; out of memory. */
int aemp__config_default_path(char **path, char *err, size_t errlen);

/* A new, empty in-memory configuration {"version":1} for file `path`
 * (copied; NULL = not tied to a file, save fails).  NULL only when out of
 * memory.  Free with aemp__config_free(). */
aemp_config_t *aemp__config_new(const char *path);

/* Read the rc file `path` (NULL = aemp__config_default_path()).
 * A missing file gives an empty configuration {"version":1}, as does a file
 * that holds nothing but white space.  *cfg is set whenever memory allows,
 * even on error: if the file exists but cannot be read or parsed, the call
 * returns -1 with "<file>:<line>:<col>: invalid JSON: <why>" (or
 * "<file>: <strerror>") and *cfg is an empty configuration marked
 * unparsable, which aemp__config_save() refuses to write, so the user's file
 * is never clobbered.  The caller frees *cfg in every case. */
int aemp__config_load(const char *path, aemp_config_t **cfg, char *err, size_t errlen);

/* Parse `len` bytes of relaxed JSON (JSON plus `#` comments to end of line
 * outside strings and one trailing comma before `}` or `]`).  The value must
 * be an object.  `name` is used in error messages
 * ("<name>:<line>:<col>: invalid JSON: ...").  *out receives a new reference.
 * An input of only white space is an error here ("empty input"). */
int aemp__config_parse(const char *text, size_t len, const char *name,
                       json_t **out, char *err, size_t errlen);

/* Write the configuration to its file atomically: "<file>~new~" is written
 * (pretty JSON + newline; mode 0600 for a new file, else the old file's
 * mode) and synced, the old file is hard-linked to "<file>~" (the backup,
 * replacing an older backup), then "<file>~new~" is renamed over "<file>".
 * Writes even when nothing was modified (see aemp__config_modified).
 * Errors: the configuration came from an unparsable file; no path; any
 * system error ("cannot write '<path>': <strerror>").  Comments in the old
 * file are not preserved. */
int aemp__config_save(aemp_config_t *cfg, char *err, size_t errlen);

/* Release everything (NULL is fine). */
void aemp__config_free(aemp_config_t *cfg);

/* The file path (borrowed; NULL if none). */
const char *aemp__config_path(const aemp_config_t *cfg);

/* The whole rc object (borrowed reference; do not modify behind the
 * editing functions' back, or call aemp__config_touch() afterwards). */
json_t *aemp__config_root(const aemp_config_t *cfg);

/* True if edited since loading or saving. */
bool aemp__config_modified(const aemp_config_t *cfg);

/* Mark as modified (after editing aemp__config_root() directly). */
void aemp__config_touch(aemp_config_t *cfg);

/* True if loaded from a file that could not be read or parsed. */
bool aemp__config_unparsable(const aemp_config_t *cfg);

/* True if the file existed when loaded (or has been saved since). */
bool aemp__config_exists(const aemp_config_t *cfg);

/* --------------------------------------------------------------- editing */

/* Make profile `name` the editing target, creating it (empty) if missing;
 * NULL makes the global (top-level) section the target.
 * Errors: empty name; "profile" in the file is not an object. */
int aemp__config_select(aemp_config_t *cfg, const char *name, char *err, size_t errlen);

/* Name of the current target (borrowed), NULL for the global section. */
const char *aemp__config_target(const aemp_config_t *cfg);

/* The target's own value of `key` (borrowed), NULL if unset. */
json_t *aemp__config_get(const aemp_config_t *cfg, const char *key);

/* Set `key` of the target to `value` (reference stolen, also on error).
 * Known keys are type-checked (aemp__config_check); "parent" goes through
 * aemp__config_set_parent.  Errors: bad type; reserved keys "profile" and
 * "version". */
int aemp__config_set(aemp_config_t *cfg, const char *key, json_t *value,
                     char *err, size_t errlen);

/* Remove `key` from the target (no-op if unset).
 * Errors: reserved keys "profile" and "version". */
int aemp__config_del(aemp_config_t *cfg, const char *key, char *err, size_t errlen);

/* Append `item` (reference stolen, also on error) to the list `key` of the
 * target, creating the list if needed.  unique: first remove every equal
 * entry (addseed/addbind); otherwise duplicates are allowed (addservice).
 * Errors: the key holds a non-array; item fails the key's type check. */
int aemp__config_add_item(aemp_config_t *cfg, const char *key, json_t *item, bool unique,
                          char *err, size_t errlen);

/* Remove entries equal to `item` (borrowed) from the list `key` of the
 * target: all of them (delseed/delbind) or only the first (delservice).
 * Missing key or no equal entry is not an error.
 * Errors: the key holds a non-array. */
int aemp__config_del_item(aemp_config_t *cfg, const char *key, const json_t *item, bool all,
                          char *err, size_t errlen);

/* Set the parent of the current target (must be a profile).  A parent that
 * does not exist yet is accepted (it may be created later).
 * Errors: target is the global section; name empty; the chain would loop. */
int aemp__config_set_parent(aemp_config_t *cfg, const char *parent, char *err, size_t errlen);

/* Remove the parent of the current target (no-op for the global section). */
void aemp__config_del_parent(aemp_config_t *cfg);

/* Delete profile `name`; if it is the target, the global section becomes
 * the target.  Errors: no such profile. */
int aemp__config_del_profile(aemp_config_t *cfg, const char *name, char *err, size_t errlen);

/* The own values of profile `name` (NULL = the global section without its
 * "profile" key) as a new deep copy in *out.  Errors: no such profile. */
int aemp__config_show(const aemp_config_t *cfg, const char *name, json_t **out,
                      char *err, size_t errlen);

/* The profile names, sorted, as a new JSON array of strings (never NULL
 * unless out of memory). */
json_t *aemp__config_profiles(const aemp_config_t *cfg);

/* Put a fresh random secret in the global section if it has none
 * (what the Perl tool does for a new rc file).  Returns 1 if one was added,
 * 0 if a secret existed, -1 on error (randomness failure). */
int aemp__config_ensure_secret(aemp_config_t *cfg, char *err, size_t errlen);

/* ------------------------------------------------------------ resolution */

/* The effective configuration for profile `profile` (NULL: the string
 * args.profile if present, else the host name), as a new object in *out.
 * args (borrowed, may be NULL) are configure-style key/values; truthy
 * args.norc / args.force act like the flags.  Merge, lowest priority first:
 *   built-in defaults < args < top-level section < parent chain (farthest
 *   ancestor first) < the profile itself.
 * AEMP_CONFIG_NORC (or cfg NULL): defaults + args only.
 * AEMP_CONFIG_FORCE: top-level < chain < profile < defaults of
 *   monitor_timeout, connect_interval, framing_format, auth_offer,
 *   auth_accept < args -- so, as in Perl, rc values of those five keys are
 *   ignored; the other built-in defaults only fill keys still missing.
 * A missing named profile counts as empty.  Known keys are type-checked in
 * each layer and normalised in the result (numeric strings become numbers,
 * Perl-style truth values become true/false).  The keys profile, parent,
 * version, norc and force are removed.  If profile_used is non-NULL it
 * receives the malloc'd effective profile name.
 * Errors: a parent chain that loops ("profile parent chain loops: a -> b ->
 * a"), an unknown parent ("profile 'x' names unknown parent 'y'"), a type
 * error ("profile 'x': key 'k' must be ..."), args not an object. */
int aemp__config_resolve(const aemp_config_t *cfg, const char *profile, const json_t *args,
                         unsigned flags, json_t **out, char **profile_used,
                         char *err, size_t errlen);

/* The value of `key` (borrowed) set in profile `profile` itself or, failing
 * that, in its parent chain (nearest first) -- not in the global section or
 * the defaults.  NULL if none of them sets it, or the chain is broken (a
 * loop, an unknown parent: aemp__config_resolve reports those). */
json_t *aemp__config_chain_get(const aemp_config_t *cfg, const char *profile, const char *key);

/* Check one value of a known key: returns 0 if it is acceptable or the key
 * is unknown, else -1 with "key 'K' must be <type>, got <type>" (or what is
 * wrong with an element, e.g. a malformed endpoint of binds or seeds).
 * Numbers may be numeric strings, as the Perl tool stores command line
 * arguments as strings; booleans are true/false, numbers, null or one of
 * the words true/false, yes/no, on/off, 1/0 and "" (any case); list keys
 * take a comma-separated string too.  This is the one check of the command
 * line, the rc file and configure arguments. */
int aemp__config_check(const char *key, const json_t *value, char *err, size_t errlen);

/* The message for a key that aemp__config_known_key does not know, the same
 * wherever it is said (aemp set, configure arguments): "'K' is not a
 * configuration key libaemp knows" plus "(did you mean 'nodeid'?)" when a
 * known key is one or two edits away. */
void aemp__config_unknown_msg(const char *key, char *err, size_t errlen);

/* The value to store for `key` (new reference; v borrowed): a string for a
 * key holding a list of strings, endpoints or services (seeds, binds,
 * services, framing_format, auth_offer, auth_accept) becomes the list of
 * its comma-separated parts, as Perl's split /,/ makes it (trailing empty
 * parts dropped); anything else is v itself.  The command line and
 * configure arguments both go through it. */
json_t *aemp__config_list_value(const char *key, json_t *v);

/* The canonical form of a value of `key` that passed aemp__config_check
 * (new reference; v borrowed): numbers for numeric strings, true/false for
 * boolean words and truth values, lists for comma-separated strings. */
json_t *aemp__config_normalise(const char *key, json_t *v);

/* True if `key` is a key libaemp or AnyEvent::MP understands. */
bool aemp__config_known_key(const char *key);

/* The known keys, a NULL-terminated static array. */
const char *const *aemp__config_known_keys(void);

/* A new object with the built-in defaults of a libaemp node. */
json_t *aemp__config_defaults(void);

/* ------------------------------------------------------------- identity */

/* The host name (uname -n) into buf (truncated to n-1 bytes; "localhost"
 * if unavailable). */
void aemp__config_hostname(char *buf, size_t n);

/* A random secret: AEMP_CONFIG_SECRET_LEN base-62 characters (512 bits)
 * from the kernel's generator (getrandom), NUL-terminated into out (n
 * must be at least AEMP_CONFIG_SECRET_LEN + 1).  Errors: n too small, the
 * generator fails. */
int aemp__config_gensecret(char *out, size_t n, char *err, size_t errlen);

/* The node ID for resolved configuration `cfg` (borrowed) and profile name
 * `profile` (NULL = host name): cfg.nodeid if present, else "<profile>/";
 * every "%n" becomes the host name; every "%u", and a trailing '/', becomes
 * one random string of AEMP_CONFIG_RUNIQ_LEN base-62 characters (the same
 * string everywhere).  "anon/" thus gives "anon/<random>".  *id receives a
 * malloc'd string; *random_part (may be NULL) whether random characters were
 * inserted (then port names need no unique prefix).
 * Errors: nodeid not a string; the result is empty or contains '#', ';',
 * ',', LF or CR. */
int aemp__config_nodeid(const json_t *cfg, const char *profile, char **id, bool *random_part,
                        char *err, size_t errlen);

#endif

/* aemp_dot.c - the network as a Graphviz graph for `trace --dot` and
 * `nodes --dot`: nodes with what they are (seed, global, unreachable) and
 * the connections between them, printed in a stable (sorted) order.
 */
#include "aemp_cli.h"

#include <stdlib.h>
#include <string.h>

struct cli_graph {
    json_t *nodes;   /* node ID -> integer: CLI_NODE_* flags */
    json_t *edges;   /* "a\nb" (a < b) -> [a, b] */
};

/* A new, empty graph. */
cli_graph_t *cli_graph_new(void)
{
    cli_graph_t *g = malloc(sizeof *g);
    if (!g)
        abort();   /* no memory: as the message code does */
    g->nodes = json_object();
    g->edges = json_object();
    return g;
}

/* Release g (NULL is fine). */
void cli_graph_free(cli_graph_t *g)
{
    if (!g)
        return;
    json_decref(g->nodes);
    json_decref(g->edges);
    free(g);
}

/* Add node id (if new) and OR flags into what is known of it. */
void cli_graph_node(cli_graph_t *g, const char *id, unsigned flags)
{
    json_t *old = json_object_get(g->nodes, id);
    unsigned have = old ? (unsigned)json_integer_value(old) : 0;
    json_object_set_new(g->nodes, id, json_integer(have | flags));
}

/* Add the connection a -- b (both become nodes); one edge per pair. */
void cli_graph_edge(cli_graph_t *g, const char *a, const char *b)
{
    if (!strcmp(a, b))
        return;
    if (strcmp(a, b) > 0) {
        const char *t = a;
        a = b;
        b = t;
    }
    cli_graph_node(g, a, 0);
    cli_graph_node(g, b, 0);
    size_t la = strlen(a), lb = strlen(b);
    char *key = malloc(la + lb + 2);
    if (!key)
        abort();
    memcpy(key, a, la);
    key[la] = '\n';
    memcpy(key + la + 1, b, lb + 1);
    json_object_set_new(g->edges, key, json_pack("[ss]", a, b));
    free(key);
}

/* Print s as a DOT quoted string. */
static void put_id(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static int cmp_key(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The keys of object o, sorted (a malloc'd array of borrowed strings). */
static const char **sorted_keys(const json_t *o, size_t *n)
{
    *n = json_object_size(o);
    const char **keys = calloc(*n ? *n : 1, sizeof *keys);
    if (!keys)
        abort();
    size_t i = 0;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) keys[i++] = k;
    qsort(keys, *n, sizeof *keys, cmp_key);
    return keys;
}

/* Print the graph: seeds as boxes, global nodes with a double outline,
 * unreachable nodes dashed; then the connections. */
void cli_graph_print(const cli_graph_t *g, FILE *f)
{
    size_t n;
    const char **keys = sorted_keys(g->nodes, &n);
    fputs("graph aemp {\n  node [shape=ellipse];\n", f);
    for (size_t i = 0; i < n; i++) {
        unsigned fl = (unsigned)json_integer_value(json_object_get(g->nodes, keys[i]));
        fputs("  ", f);
        put_id(f, keys[i]);
        const char *sep = " [";
        if (fl & CLI_NODE_SEED) {
            fprintf(f, "%sshape=box", sep);
            sep = ", ";
        }
        if (fl & CLI_NODE_GLOBAL) {
            fprintf(f, "%speripheries=2", sep);
            sep = ", ";
        }
        if (fl & CLI_NODE_UNREACHABLE) {
            fprintf(f, "%sstyle=dashed", sep);
            sep = ", ";
        }
        if (fl & CLI_NODE_CLIENT)
            fprintf(f, "%sstyle=dotted", sep);
        fputs(fl ? "];\n" : ";\n", f);
    }
    free(keys);
    keys = sorted_keys(g->edges, &n);
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_object_get(g->edges, keys[i]);
        fputs("  ", f);
        put_id(f, json_string_value(json_array_get(e, 0)));
        fputs(" -- ", f);
        put_id(f, json_string_value(json_array_get(e, 1)));
        fputs(";\n", f);
    }
    free(keys);
    fputs("}\n", f);
    fflush(f);
}

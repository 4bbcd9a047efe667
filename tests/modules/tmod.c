/* tmod.c - test modules for tests/test_module.c, one source built several
 * times with TMOD_<KIND> defined (tests/CMakeLists.txt):
 *
 *   TMOD_GOOD      tmod::good: "tmod::good::echo" (spawn: SELF answers
 *                  [x..., REPLYPORT] with [x...]), "tmod::good::inits"
 *                  ([PORT] -> [number of inits, SELF was NULL in init])
 *   TMOD_CHAIN     tmod::chain: only "tmod::chain::a::b::fn" ([PORT] -> PORT
 *                  gets ["chain-ok"]); loaded through the package chain
 *   TMOD_RPC       tmod::rpc: "tmod::rpc::hello" ([PORT] -> ["hello from rpc"])
 *   TMOD_SVC       tmod::svc: records its init and calls; "tmod::svc::start",
 *                  "tmod::svc::noargs", "tmod::svc::report" ([PORT] -> the
 *                  record as one array)
 *   TMOD_INITFAIL  tmod::initfail: registers a function, then fails (7)
 *   TMOD_NOINIT    tmod::noinit: no entry point
 *   TMOD_UNDEF     tmod::undef: needs a symbol nobody defines
 */
#include "aemp_module.h"

#include <string.h>

#if defined TMOD_GOOD

static int inits, self_null;

static void echo_msg(json_t *msg, void *arg)
{
    size_t n = json_array_size(msg);
    json_t *to = n ? json_array_get(msg, n - 1) : NULL;
    if (!json_is_string(to))
        return;
    json_t *reply = json_array();
    for (size_t i = 0; i + 1 < n; i++)
        json_array_append(reply, json_array_get(msg, i));
    aemp_snd(json_string_value(to), reply);
}

static void echo_init(json_t *args, void *arg)
{
    aemp_rcv(aemp_self(), echo_msg, NULL);
}

static void report_inits(json_t *args, void *arg)
{
    const char *to = json_string_value(json_array_get(args, 0));
    if (to)
        aemp_sndf(to, "ib", inits, self_null);
}

int aemp_module_init(const char *name)
{
    inits++;
    self_null = aemp_self() == NULL;
    aemp_func_register("tmod::good::echo", echo_init, NULL);
    aemp_func_register("tmod::good::inits", report_inits, NULL);
    return 0;
}

#elif defined TMOD_CHAIN

static void chain_fn(json_t *args, void *arg)
{
    const char *to = json_string_value(json_array_get(args, 0));
    if (to)
        aemp_sndf(to, "s", "chain-ok");
}

int aemp_module_init(const char *name)
{
    return aemp_func_register("tmod::chain::a::b::fn", chain_fn, NULL);
}

#elif defined TMOD_RPC

static void hello(json_t *args, void *arg)
{
    const char *to = json_string_value(json_array_get(args, 0));
    if (to)
        aemp_sndf(to, "s", "hello from rpc");
}

int aemp_module_init(const char *name)
{
    return aemp_func_register("tmod::rpc::hello", hello, NULL);
}

#elif defined TMOD_SVC

static json_t *record;

static void start(json_t *args, void *arg)
{
    json_t *e = json_pack("[s]", "start");
    json_array_extend(e, args);
    json_array_append_new(record, e);
}

static void noargs(json_t *args, void *arg)
{
    json_array_append_new(record, json_pack("[si]", "noargs", (int)json_array_size(args)));
}

static void report(json_t *args, void *arg)
{
    const char *to = json_string_value(json_array_get(args, 0));
    if (to)
        aemp_snd(to, json_pack("[O]", record));
}

int aemp_module_init(const char *name)
{
    record = json_pack("[[ss]]", "init", name);
    aemp_func_register("tmod::svc::start", start, NULL);
    aemp_func_register("tmod::svc::noargs", noargs, NULL);
    aemp_func_register("tmod::svc::report", report, NULL);
    return 0;
}

#elif defined TMOD_INITFAIL

static void partial(json_t *args, void *arg)
{
}

int aemp_module_init(const char *name)
{
    aemp_func_register("tmod::initfail::partial", partial, NULL);
    return 7;
}

#elif defined TMOD_NOINIT

int tmod_noinit_something(void)
{
    return 1;
}

#elif defined TMOD_UNDEF

int aemp_no_such_function_anywhere(void);

int aemp_module_init(const char *name)
{
    return aemp_no_such_function_anywhere();
}

#else
#error "define one TMOD_<KIND>"
#endif

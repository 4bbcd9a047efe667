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
 *   TMOD_CWD       mymod::chatserver, built as mymod/chatserver.so (Perl's
 *                  layout) for a node to find in its current directory:
 *                  "mymod::chatserver::client_connect" (spawn, [PORT]: PORT
 *                  gets ["connected", SELF], then SELF answers
 *                  [x..., REPLYPORT] with [x...])
 */
#include "aemp_module.h"

#include <string.h>

#if defined TMOD_GOOD || defined TMOD_CWD

/* [x..., REPLYPORT]: send [x...] to REPLYPORT. */
static void echo_msg(aemp_msg_t *msg, void *arg)
{
    size_t n = aemp_msg_len(msg);
    const char *to = n ? aemp_msg_str(msg, n - 1, NULL) : NULL;
    if (!to)
        return;
    aemp_build_t *b = aemp_build_new();
    for (size_t i = 0; i + 1 < n; i++)
        aemp_build_val(b, aemp_msg_at(msg, i));
    aemp_msg_t *reply = aemp_build_msg(b);
    if (reply)
        aemp_snd(to, reply);
}

#endif

#if defined TMOD_GOOD

static int inits, self_null;

static void echo_init(aemp_msg_t *args, void *arg)
{
    aemp_rcv(aemp_self(), echo_msg, NULL);
}

static void report_inits(aemp_msg_t *args, void *arg)
{
    const char *to = aemp_msg_str(args, 0, NULL);
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

static void chain_fn(aemp_msg_t *args, void *arg)
{
    const char *to = aemp_msg_str(args, 0, NULL);
    if (to)
        aemp_sndf(to, "s", "chain-ok");
}

int aemp_module_init(const char *name)
{
    return aemp_func_register("tmod::chain::a::b::fn", chain_fn, NULL);
}

#elif defined TMOD_RPC

static void hello(aemp_msg_t *args, void *arg)
{
    const char *to = aemp_msg_str(args, 0, NULL);
    if (to)
        aemp_sndf(to, "s", "hello from rpc");
}

int aemp_module_init(const char *name)
{
    return aemp_func_register("tmod::rpc::hello", hello, NULL);
}

#elif defined TMOD_SVC

static aemp_msg_t *record;   /* [entry, ...]; messages are immutable, so
                                each addition makes a new one */

/* Append entry (stolen) to the record. */
static void record_add(aemp_msg_t *entry)
{
    if (!entry)
        return;
    aemp_build_t *b = aemp_build_new();
    aemp_build_fmt(b, "m", record);
    aemp_build_val(b, aemp_msg_root(entry));
    aemp_msg_t *next = aemp_build_msg(b);
    aemp_msg_unref(entry);
    if (next) {
        aemp_msg_unref(record);
        record = next;
    }
}

static void start(aemp_msg_t *args, void *arg)
{
    record_add(aemp_msgf("sm", "start", args));
}

static void noargs(aemp_msg_t *args, void *arg)
{
    record_add(aemp_msgf("si", "noargs", (int)aemp_msg_len(args)));
}

static void report(aemp_msg_t *args, void *arg)
{
    const char *to = aemp_msg_str(args, 0, NULL);
    if (to)
        aemp_sndf(to, "v", aemp_msg_root(record));
}

int aemp_module_init(const char *name)
{
    record = aemp_msgf("[ss]", "init", name);
    aemp_func_register("tmod::svc::start", start, NULL);
    aemp_func_register("tmod::svc::noargs", noargs, NULL);
    aemp_func_register("tmod::svc::report", report, NULL);
    return 0;
}

#elif defined TMOD_INITFAIL

static void partial(aemp_msg_t *args, void *arg)
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

#elif defined TMOD_CWD

static void client_connect(aemp_msg_t *args, void *arg)
{
    const char *to = aemp_msg_str(args, 0, NULL);
    aemp_rcv(aemp_self(), echo_msg, NULL);
    if (to)
        aemp_sndf(to, "ss", "connected", aemp_self());
}

int aemp_module_init(const char *name)
{
    return aemp_func_register("mymod::chatserver::client_connect", client_connect, NULL);
}

#else
#error "define one TMOD_<KIND>"
#endif

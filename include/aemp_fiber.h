/* aemp_fiber.h - selective receive: ports served by fibers (Coro::MP).
 *
 * A fiber is a coroutine with its own stack (ucontext).  A port served by a
 * fiber does not get a callback per message: every message that no tag
 * callback takes is appended to the fiber's private queue, and the fiber's
 * code pulls the messages it wants with aemp_get / aemp_get_cond, blocking
 * only itself until one arrives.  Everything else in aemp.h works as usual
 * inside a fiber (SELF is the fiber's port, aemp_snd, aemp_mon, ...).
 * See docs/fibers.md for the model and the differences from Coro::MP.
 *
 * Scheduling: fibers are cooperative and run on the node's thread.  A
 * fiber runs only when it is started (from the event loop, never inside
 * the call that creates it) and when what it waits for happens; it runs
 * until it blocks again or its body returns.
 *
 * Ending: when the body of a receiving fiber (aemp_port_async,
 * aemp_rcv_async) returns, its port is killed: normally, or - if the body
 * called aemp_die() - with ("die", <message>).  aemp_die() does NOT unwind
 * the fiber: the body should return right after calling it (the kill
 * happens when it returns).  aemp_fiber_exit() ends the fiber at once.
 *
 * Cancellation: when the port of a receiving fiber dies (aemp_kil, a link,
 * an unhandled error) while the fiber waits, the wait returns
 * AEMP_ECANCELED, and so does every later blocking call of that fiber.
 * Code after a blocking call MUST handle that return by cleaning up and
 * returning from the body; the fiber's stack is freed when it returns.
 * Messages still queued for it are dropped when the port dies.
 *
 * Stacks: every fiber has its own mmap'd stack (aemp_fiber_set_stack_size,
 * default 256 KiB, only touched pages use memory) with a PROT_NONE guard
 * area below it.  A fiber that overflows its stack is detected: the
 * process prints "aemp: fiber stack overflow in port <id> (stack size N
 * bytes)" to stderr and aborts.  Frames bigger than the guard area
 * (16 KiB) can skip over it: keep large buffers off fiber stacks.
 *
 * Fibers are opt-in per port; ordinary ports cost nothing extra.
 */
#ifndef AEMP_FIBER_H
#define AEMP_FIBER_H

#include "aemp.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The body of a fiber: runs with SELF set to its port. */
typedef void (*aemp_fiber_fn)(void *arg);

/* A predicate for aemp_get_cond: msg is the whole message (borrowed,
 * read-only); return non-zero to take it.  It may be called from the
 * delivering code instead of the fiber (SELF is the port in both cases),
 * so it must not block and should have no side effects. */
typedef int (*aemp_get_pred)(aemp_msg_t *msg, void *arg);

/* ------------------------------------------------------ creating fibers */

/* Perl's port_async: create a local port served by a new fiber that runs
 * fn(arg) with SELF = the port.  The fiber starts from the event loop
 * (never inside this call); messages sent before it starts are queued.
 * When fn returns the port is killed (see "Ending" above).  Returns the
 * port ID (owned by the library, valid while the port lives), or NULL if
 * fn is NULL or no stack could be allocated.  Cost: one mmap (or a cached
 * stack) + O(1). */
const char *aemp_port_async(aemp_fiber_fn fn, void *arg);

/* Perl's rcv_async: attach a new fiber running fn(arg) to an existing (or,
 * like aemp_rcv, not yet existing) local port: the port's default callback
 * becomes "append to the fiber's queue and wake it"; tag callbacks
 * registered with aemp_rcv_tag still take precedence.  Ending and
 * cancellation as for aemp_port_async.  One fiber per port.
 * Errors: AEMP_EINVAL (NULL argument), AEMP_EPORTID, AEMP_ENOTLOCAL,
 * AEMP_ENODEPORT, AEMP_EAGAIN (the port already has a fiber), AEMP_EIO (no
 * stack could be allocated). */
int aemp_rcv_async(const char *port, aemp_fiber_fn fn, void *arg);

/* Perl's peval_async: run fn(arg) in a new fiber with SELF = port (local or
 * remote ID).  The fiber has no message queue (aemp_get there returns
 * AEMP_ENOFIBER) but may block in aemp_syncal and aemp_fiber_sleep.  It is
 * not linked to the port: returning does not kill it, but aemp_die() does
 * (when the body returns), and the port's death does not cancel it.
 * Errors: AEMP_EINVAL, AEMP_EPORTID, AEMP_EIO (no stack). */
int aemp_peval_async(const char *port, aemp_fiber_fn fn, void *arg);

/* ------------------------------------------------- inside a fiber only */

/* Perl's get: take the oldest queued message whose element 0 is the string
 * tag (text or byte string), waiting for one if there is none.  *msg
 * receives the whole message, tag included as element 0 (new reference:
 * the caller unrefs it).  Messages that
 * do not match stay queued in arrival order.  timeout: < 0 waits forever,
 * 0 does not wait, > 0 waits at most that many seconds.
 * Returns 0, AEMP_ETIMEDOUT (nothing matched in time), AEMP_ECANCELED (the
 * port died: return from the body), AEMP_ENOFIBER (not in a receiving
 * fiber), AEMP_EINVAL (tag or msg NULL).  *msg is NULL on error.
 * Cost: O(queue length) per call; waiting costs nothing per arriving
 * message except one tag comparison. */
int aemp_get(const char *tag, double timeout, aemp_msg_t **msg);

/* Perl's get_cond: like aemp_get, but takes the oldest message for which
 * pred(message, arg) returns non-zero (pred NULL: the oldest message), and
 * returns it in *msg (new reference).  Same
 * timeout rules, results and errors.  Perl's "switch" idiom (the predicate
 * returning code to run) is done in C by dispatching on the result. */
int aemp_get_cond(aemp_get_pred pred, void *arg, double timeout, aemp_msg_t **msg);

/* Perl's syncal: synchronous aemp_cal.  Append a fresh reply port's ID to
 * msg (a message, STOLEN), send it to port, and block the calling fiber
 * until the first reply arrives.  *reply receives the reply message (new
 * reference).  timeout > 0: give up after that many seconds
 * (AEMP_ETIMEDOUT); timeout < 0: wait until the reply or until the
 * destination dies (AEMP_ENOPORT).  Works in every fiber, including
 * aemp_peval_async ones.  Errors: AEMP_EINVAL (timeout 0, msg not an
 * array, NULL argument), AEMP_EPORTID, AEMP_ENOFIBER, AEMP_ECANCELED. */
int aemp_syncal(double timeout, const char *port, aemp_msg_t *msg, aemp_msg_t **reply);

/* Block the calling fiber for `seconds` (<= 0: let the loop run once).
 * Returns 0, AEMP_ECANCELED or AEMP_ENOFIBER. */
int aemp_fiber_sleep(double seconds);

/* End the calling fiber now, as if its body returned, without unwinding
 * its stack (memory the body owns is leaked, so prefer returning).  A
 * receiving fiber's port is killed with reason (a message, STOLEN);
 * NULL means: ("die", message) after aemp_die(), else a normal kill.  A
 * peval_async fiber kills its port only if reason is not NULL or after
 * aemp_die().  Never returns inside a fiber; outside one it returns
 * AEMP_ENOFIBER (reason is released). */
int aemp_fiber_exit(aemp_msg_t *reason);

/* 1 inside a fiber, else 0. */
int aemp_in_fiber(void);

/* Number of messages queued for the calling fiber (0 outside a receiving
 * fiber).  Queues are unbounded: long-lived fibers should have a catch-all
 * aemp_get_cond(NULL, ...) so unmatched messages do not pile up. */
size_t aemp_fiber_queued(void);

/* -------------------------------------------------------------- global */

/* Set the stack size (bytes, rounded up to whole pages) of fibers created
 * from now on; the guard area comes on top.  Default 256 KiB.  Memory is
 * only used for the pages a fiber touches.  Errors: AEMP_EINVAL (less than
 * 8 KiB or more than 1 GiB). */
int aemp_fiber_set_stack_size(size_t bytes);

/* The current stack size for new fibers, in bytes. */
size_t aemp_fiber_stack_size(void);

/* Number of live fibers (started or not). */
size_t aemp_fiber_count(void);

#ifdef __cplusplus
}
#endif

#endif

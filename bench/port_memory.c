/* port_memory.c - what an idle port costs: heap bytes (malloc's own
 * accounting, so allocator overhead and the port table's share included)
 * per port for 100,000 ports with a default callback and nothing else.
 *
 *   RESULT idle_port_memory <n> bytes/port
 */
#include <aemp.h>
#include <malloc.h>
#include <stdio.h>

static void ignore(aemp_msg_t *msg, void *arg)
{
}

int main(void)
{
    enum { N = 100000 };
    aemp_init(NULL);
    aemp_port(ignore, NULL);   /* first-use allocations out of the way */
    struct mallinfo2 before = mallinfo2();
    for (int i = 0; i < N; i++)
        aemp_port(ignore, NULL);
    struct mallinfo2 after = mallinfo2();
    printf("RESULT idle_port_memory %.1f bytes/port\n", (double)(after.uordblks - before.uordblks) / N);
    aemp_shutdown();
    return 0;
}

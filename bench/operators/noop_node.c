/* The dispatch benchmark's reference: a node that takes each event and does nothing, timing
 * the loop between successive events while its input is backlogged. */
#include <apus.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

int main(void)
{
    apus_node_t *node = apus_node_init_from_env();
    if (node == NULL)
        return 1;
    uint64_t last = 0, total = 0, calls = 0;
    apus_event_t *event;
    while ((event = apus_node_next(node, -1)) != NULL) {
        if (apus_event_type(event) == APUS_EVENT_INPUT) {
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            uint64_t now = (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
            if (last != 0 && now - last < 100000) {
                total += now - last;
                calls++;
            }
            last = now;
        }
        apus_event_free(event);
    }
    apus_node_free(node);
    if (calls > 0)
        printf("per event %.1f ns over %llu events\n", (double)total / (double)calls, (unsigned long long)calls);
    return 0;
}

/* Counts what arrives and times it: with the operator's input backlogged, the gap between
 * arrivals is the operator's time per message. */
#include <apus.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

int main(void)
{
    apus_node_t *node = apus_node_init_from_env();
    if (node == NULL)
        return 1;
    uint64_t first = 0, last = 0, count = 0, bytes = 0;
    apus_event_t *event;
    while ((event = apus_node_next(node, -1)) != NULL) {
        if (apus_event_type(event) == APUS_EVENT_INPUT) {
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            last = (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
            if (count++ == 0)
                first = last;
            size_t length;
            apus_event_data(event, &length);
            bytes += length;
        }
        apus_event_free(event);
    }
    apus_node_free(node);
    if (count > 1)
        printf("per message %.3f us over %llu\n", (double)(last - first) / 1000.0 / (double)(count - 1), (unsigned long long)count);
    return 0;
}

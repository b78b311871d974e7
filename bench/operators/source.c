/* The chain benchmark's source: on each tick sends BENCH_SIZE bytes whose first 8 are the send
 * time (CLOCK_MONOTONIC ns), BENCH_COUNT times, then ends. */
#include <apus.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "stage.h"

static uint64_t now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

int main(void)
{
    size_t size = (size_t)atol(getenv("BENCH_SIZE"));
    long count = atol(getenv("BENCH_COUNT"));
    apus_node_t *node = apus_node_init_from_env();
    if (node == NULL) {
        fprintf(stderr, "%s\n", apus_last_error());
        return 1;
    }
    /* BENCH_BURST: everything at the first tick, as fast as the consumer takes it; BENCH_PER_TICK:
     * that many messages on each tick (a high rate from a timer the node need not chase). */
    long per_tick = getenv("BENCH_BURST") != NULL ? count : getenv("BENCH_PER_TICK") != NULL ? atol(getenv("BENCH_PER_TICK")) : 1;
    /* BENCH_GO: ticks are ignored until this file exists (a benchmark attaches something first). */
    const char *go = getenv("BENCH_GO");
    long sent = 0;
    meter_t meter = {0};
    apus_event_t *event;
    while (sent < count && (event = apus_node_next(node, -1)) != NULL) {
        int waiting = go != NULL && access(go, F_OK) != 0;
        for (long n = 0; !waiting && n < per_tick && sent < count && apus_event_type(event) == APUS_EVENT_INPUT; n++) {
            apus_sample_t *sample;
            if (apus_node_allocate(node, "out", size, &sample) == APUS_OK) {
                unsigned char *data = apus_sample_data(sample);
                memset(data + 8, 1, size - 8);
                uint64_t stamp = now();
                memcpy(data, &stamp, 8);
                if (apus_node_send_sample(node, sample, NULL) == APUS_OK) {
                    sent++;
                    meter_count(&meter);
                }
            }
        }
        apus_event_free(event);
    }
    apus_node_free(node);
    meter_report(&meter);
    return 0;
}

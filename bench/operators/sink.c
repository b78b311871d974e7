/* The chain benchmark's sink: the latency of each message (now minus the send time in its first
 * 8 bytes), printed as p50 and p99 in microseconds at the end. */
#include <apus.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "stage.h"

static int compare(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(void)
{
    apus_node_t *node = apus_node_init_from_env();
    if (node == NULL)
        return 1;
    size_t capacity = 1 << 16, count = 0;
    uint64_t first = 0;
    meter_t meter = {0};
    uint64_t *latencies = malloc(capacity * sizeof *latencies);
    apus_event_t *event;
    while ((event = apus_node_next(node, -1)) != NULL) {
        if (apus_event_type(event) == APUS_EVENT_INPUT) {
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            uint64_t now = (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec, sent;
            size_t length;
            memcpy(&sent, apus_event_data(event, &length), 8);
            meter_count(&meter);
            if (meter.messages == 1)
                first = now - sent;
            if (meter.messages > WARMUP && count < capacity)
                latencies[count++] = now - sent;
        }
        apus_event_free(event);
    }
    apus_node_free(node);
    meter_report(&meter);
    qsort(latencies, count, sizeof *latencies, compare);
    if (count > 0)
        printf("latency p50 %.1f us p99 %.1f us over %zu; the first message %.1f ms\n", latencies[count / 2] / 1000.0,
               latencies[count * 99 / 100] / 1000.0, count, first / 1e6);
    return 0;
}

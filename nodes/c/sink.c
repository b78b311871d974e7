/* sink: prints the rate and latency of the masks it receives.
 *
 * Once a second (and at the end) it prints the frames per second, the latency from capture to
 * arrival (median and maximum, from `captured_ns` in the metadata) and the share of white pixels.
 * At the end it prints how many frames arrived and how many the frame numbers say were skipped. */
#define _POSIX_C_SOURCE 200809L
#include <apus.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int compare(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

enum { WINDOW = 4096 };

struct stats {
    uint64_t latencies[WINDOW];
    size_t count;
    double white;
    uint64_t since;
};

static void report(struct stats *s, uint64_t now) {
    if (s->count == 0) return;
    qsort(s->latencies, s->count, sizeof s->latencies[0], compare);
    double seconds = (double)(now - s->since) / 1e9;
    printf("sink: %.1f frames/s, latency p50 %.3f ms, max %.3f ms, %.1f%% white\n", (double)s->count / seconds,
           (double)s->latencies[s->count / 2] / 1e6, (double)s->latencies[s->count - 1] / 1e6, 100.0 * s->white / (double)s->count);
    s->count = 0;
    s->white = 0;
    s->since = now;
}

int main(void) {
    apus_node_t *node = apus_node_init_from_env();
    if (node == NULL) {
        fprintf(stderr, "sink: %s\n", apus_last_error());
        return 1;
    }
    static struct stats stats;
    stats.since = now_ns();
    long received = 0, skipped = 0;
    int64_t last = -1;
    apus_event_t *event;
    while ((event = apus_node_next(node, 1000000000)) != NULL || apus_last_status() == APUS_TIMEOUT) {
        uint64_t now = now_ns();
        if (event != NULL && apus_event_type(event) == APUS_EVENT_INPUT) {
            size_t length;
            const uint8_t *mask = apus_event_data(event, &length);
            int64_t frame = -1, captured = 0;
            apus_event_param_int(event, "frame", &frame);
            apus_event_param_int(event, "captured_ns", &captured);
            if (last >= 0 && frame > last + 1) skipped += (long)(frame - last - 1);
            last = frame;
            size_t white = 0;
            for (size_t i = 0; i < length; i++) white += mask[i] != 0;
            if (stats.count < WINDOW) {
                stats.latencies[stats.count++] = now - (uint64_t)captured;
                stats.white += length ? (double)white / (double)length : 0;
            }
            received++;
        }
        if (now - stats.since >= 1000000000u) report(&stats, now);
        apus_event_free(event);
    }
    report(&stats, now_ns());
    printf("sink: received %ld frames, %ld skipped\n", received, skipped);
    apus_node_free(node);
    return 0;
}

#define _POSIX_C_SOURCE 200809L
/* The soak's source: on each tick sends its sequence number (uint64) on `out` for $SOAK_SECONDS
 * seconds, then prints how many it sent and exits, closing its output. */
#include <apus.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) {
    struct timespec time;
    clock_gettime(CLOCK_MONOTONIC, &time);
    return (double)time.tv_sec + (double)time.tv_nsec / 1e9;
}

int main(void) {
    const char *text = getenv("SOAK_SECONDS");
    double seconds = text != NULL ? atof(text) : 60;
    apus_node_t *node = apus_node_init_from_env();
    if (node == NULL) {
        fprintf(stderr, "%s\n", apus_last_error());
        return 1;
    }
    apus_metadata_t *metadata = apus_metadata_new();
    apus_metadata_set_type(metadata, APUS_TYPE_UINT64);
    double end = now() + seconds;
    uint64_t sent = 0;
    apus_event_t *event;
    while (now() < end && (event = apus_node_next(node, -1)) != NULL) {
        if (apus_event_type(event) == APUS_EVENT_INPUT) {
            if (apus_node_send(node, "out", &sent, sizeof sent, metadata) == APUS_OK) {
                sent++;
            } else {
                fprintf(stderr, "source: %s\n", apus_last_error());
            }
        }
        apus_event_free(event);
    }
    printf("sent %llu\n", (unsigned long long)sent);
    apus_metadata_free(metadata);
    apus_node_free(node);
    return 0;
}

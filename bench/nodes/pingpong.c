/* Ping-pong over the Apus C API, for bench/bench.py. Zero-copy both ways: each side allocates a
 * sample of the size in place and writes a sequence number into it (no payload copy), as a C node
 * that produces its data in shared memory does.
 *   pingpong ping   (env SIZES, ROUNDS, WARMUP, BUDGET as bench/pingpong/ping.py)
 *   pingpong pong
 * ping prints one JSON line per size: RTT/2 percentiles in microseconds. */
#include <apus.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static long env_long(const char *name, long fallback) {
    const char *text = getenv(name);
    return text ? atol(text) : fallback;
}

static int send_sized(apus_node_t *node, const char *output, size_t size, uint64_t sequence) {
    apus_sample_t *sample = NULL;
    if (apus_node_allocate(node, output, size, &sample) != APUS_OK) return -1;
    memcpy(apus_sample_data(sample), &sequence, size < 8 ? size : 8);
    return apus_node_send_sample(node, sample, NULL);
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double round_trip(apus_node_t *node, size_t size, uint64_t sequence) {
    uint64_t start = now_ns();
    if (send_sized(node, "ping", size, sequence) != APUS_OK) {
        fprintf(stderr, "ping: %s\n", apus_last_error());
        exit(1);
    }
    for (;;) {
        apus_event_t *event = apus_node_next(node, -1);
        if (event == NULL) {
            fprintf(stderr, "ping: the event stream ended before the reply: %s\n", apus_last_error());
            exit(1);
        }
        if (apus_event_type(event) == APUS_EVENT_INPUT) {
            size_t length = 0;
            apus_event_data(event, &length);
            apus_event_free(event);
            if (length != size) {
                fprintf(stderr, "ping: sent %zu bytes, got %zu back\n", size, length);
                exit(1);
            }
            return (double)(now_ns() - start) / 2000.0;
        }
        apus_event_free(event);
    }
}

static int ping(apus_node_t *node) {
    const char *sizes = getenv("SIZES") ? getenv("SIZES") : "8,4096,65536";
    long rounds = env_long("ROUNDS", 200), warmup = env_long("WARMUP", 20);
    double budget = getenv("BUDGET") ? atof(getenv("BUDGET")) : 5.0;
    double *halves = malloc(sizeof(double) * (size_t)(rounds > 10 ? rounds : 10));
    uint64_t sequence = 0;
    for (const char *cursor = sizes; *cursor;) {
        size_t size = strtoull(cursor, (char **)&cursor, 10);
        if (*cursor == ',') cursor++;
        for (long i = 0; i < warmup; i++) round_trip(node, size, sequence++);
        uint64_t deadline = now_ns() + (uint64_t)(budget * 1e9);
        long count = 0;
        while (count < rounds && (count < 10 || now_ns() < deadline)) halves[count++] = round_trip(node, size, sequence++);
        qsort(halves, (size_t)count, sizeof(double), compare);
        printf("{\"size\": %zu, \"rounds\": %ld, \"p50_us\": %.3f, \"p90_us\": %.3f, \"p99_us\": %.3f}\n", size, count,
               halves[count / 2], halves[count * 9 / 10], halves[count * 99 / 100]);
        fflush(stdout);
    }
    free(halves);
    return 0;
}

static int pong(apus_node_t *node) {
    apus_event_t *event;
    while ((event = apus_node_next(node, -1)) != NULL) {
        if (apus_event_type(event) == APUS_EVENT_INPUT) {
            size_t length = 0;
            const void *data = apus_event_data(event, &length);
            uint64_t sequence = 0;
            memcpy(&sequence, data, length < 8 ? length : 8);
            apus_event_free(event);
            if (send_sized(node, "pong", length, sequence) != APUS_OK) {
                fprintf(stderr, "pong: %s\n", apus_last_error());
                return 1;
            }
            continue;
        }
        apus_event_free(event);
    }
    return 0;
}

int main(int argc, char **argv) {
    apus_node_t *node = apus_node_init_from_env();
    if (node == NULL) {
        fprintf(stderr, "%s\n", apus_last_error());
        return 1;
    }
    int status = argc > 1 && strcmp(argv[1], "pong") == 0 ? pong(node) : ping(node);
    apus_node_free(node);
    return status;
}

/* What the two C ping-pong references share: the clock and the report. Header-only, so each
 * reference still builds with one `cc` command. */
#ifndef APUS_BENCH_PINGPONG_H
#define APUS_BENCH_PINGPONG_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int compare_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Prints "p50_ns p99_ns" of `count` RTT/2 samples (sorting them). */
static void report(uint64_t *samples, int count) {
    qsort(samples, (size_t)count, sizeof(uint64_t), compare_u64);
    printf("%llu %llu\n", (unsigned long long)samples[count / 2], (unsigned long long)samples[count * 99 / 100]);
}

#endif

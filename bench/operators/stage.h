/* What one stage of the chain does with a message, as a node or as an operator: the same work,
 * a copy of the payload into a new sample of `out`. */
#include <apus.h>
#include <stdio.h>
#include <sys/resource.h>

static inline apus_status_t forward(apus_node_t *node, const apus_event_t *event)
{
    size_t length;
    const void *data = apus_event_data(event, &length);
    return apus_node_send(node, "out", data, length, NULL);
}

/* The first messages make and map the pools of every size class (at 2 MiB the first one takes
 * hundreds of ms, and a backlog forms behind it): they are left out of the
 * figures, which are for the steady state. 500 of them, or BENCH_WARMUP (slow streams). */
#include <stdlib.h>
#define WARMUP warmup_messages()

static inline long warmup_messages(void)
{
    static long count = 0;
    if (count == 0) {
        const char *text = getenv("BENCH_WARMUP");
        count = text != NULL && atol(text) > 0 ? atol(text) : 500;
    }
    return count;
}

/* This process's CPU time so far (user + system), in microseconds. */
static inline long cpu_us(void)
{
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000L + usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
}

/* Counts a message; at the end of warm-up remembers the CPU time, and `report` prints the CPU
 * time spent since then and over how many messages. */
typedef struct {
    long messages, cpu_at_warmup;
} meter_t;

static inline void meter_count(meter_t *meter)
{
    if (++meter->messages == WARMUP)
        meter->cpu_at_warmup = cpu_us();
}

static inline void meter_report(const meter_t *meter)
{
    if (meter->messages > WARMUP)
        printf("steady cpu_us %ld over %ld\n", cpu_us() - meter->cpu_at_warmup, meter->messages - WARMUP);
    fflush(stdout);
}

/* A stage of the chain as an operator (Apus's ABI). With -DNOOP it does nothing: for the
 * dispatch cost, it records the time between successive calls while its input is backlogged. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "stage.h"

typedef struct {
    uint64_t last, total, calls;
    meter_t meter;
} state_t;

apus_status_t apus_operator_init(apus_node_t *node, void **state)
{
    (void)node;
    *state = calloc(1, sizeof(state_t));
    return APUS_OK;
}

apus_operator_status_t apus_operator_on_event(apus_node_t *node, const apus_event_t *event, void *opaque)
{
    if (apus_event_type(event) != APUS_EVENT_INPUT)
        return APUS_OPERATOR_CONTINUE;
#ifdef NOOP
    (void)node;
    state_t *state = opaque;
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    uint64_t now = (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
    if (state->last != 0 && now - state->last < 100000) { /* only back-to-back calls */
        state->total += now - state->last;
        state->calls++;
    }
    state->last = now;
    return APUS_OPERATOR_CONTINUE;
#else
    state_t *state = opaque;
    meter_count(&state->meter); /* the runtime process's CPU: each stage reports the same process */
    return forward(node, event) == APUS_OK ? APUS_OPERATOR_CONTINUE : APUS_OPERATOR_ERROR;
#endif
}

void apus_operator_drop(apus_node_t *node, void *opaque)
{
    (void)node;
    state_t *state = opaque;
#ifndef NOOP
    meter_report(&state->meter);
#endif
    if (state->calls > 0)
        printf("per event %.1f ns over %llu events\n", (double)state->total / (double)state->calls,
               (unsigned long long)state->calls);
    free(state);
}

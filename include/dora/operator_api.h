/*
 * dora-rs's C operator API: the three functions an operator library defines. The Apus operator
 * runtime loads the library (`shared-library:` under `operators:` in the dataflow), calls
 * dora_init_operator once, dora_on_event for each event of the operator's inputs (and STOP), and
 * dora_drop_operator once at the end, all from one thread. Types and helpers: operator_types.h.
 */
#ifndef DORA_OPERATOR_API_H
#define DORA_OPERATOR_API_H

#include <stddef.h>
#include "operator_types.h"

#ifdef __cplusplus
extern "C" {
#endif

DoraInitResult_t dora_init_operator(void);

DoraResult_t dora_drop_operator(void *operator_context);

OnEventResult_t dora_on_event(RawEvent_t *event, const SendOutput_t *send_output, void *operator_context);

/* Compile-time checks that the definitions match the types the runtime calls them through. */
static inline void dora_operator_type_assertions(void)
{
    DoraInitOperator_t init = {.init_operator = dora_init_operator};
    DoraDropOperator_t drop = {.drop_operator = dora_drop_operator};
    DoraOnEvent_t on_event = {.on_event = dora_on_event};
    (void)init;
    (void)drop;
    (void)on_event;
}

#ifdef __cplusplus
}
#endif

#endif /* DORA_OPERATOR_API_H */

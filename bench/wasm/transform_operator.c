/* The C operator (Apus's ABI): transforms each input into a new sample of `out`. With -DTRIVIAL
 * it sends the first 8 bytes as they are: the per-event cost without work. */
#include <apus.h>
#include <stddef.h>
#include "transform.h"

apus_status_t apus_operator_init(apus_node_t *node, void **state)
{
    (void)node;
    *state = NULL;
    return APUS_OK;
}

apus_operator_status_t apus_operator_on_event(apus_node_t *node, const apus_event_t *event, void *state)
{
    (void)state;
    if (apus_event_type(event) != APUS_EVENT_INPUT)
        return APUS_OPERATOR_CONTINUE;
    size_t length;
    const unsigned char *data = apus_event_data(event, &length);
#ifdef TRIVIAL
    return apus_node_send(node, "out", data, length < 8 ? length : 8, NULL) == APUS_OK ? APUS_OPERATOR_CONTINUE : APUS_OPERATOR_ERROR;
#else
    apus_sample_t *sample;
    if (apus_node_allocate(node, "out", length, &sample) != APUS_OK)
        return APUS_OPERATOR_ERROR;
    transform(apus_sample_data(sample), data, length);
    return apus_node_send_sample(node, sample, NULL) == APUS_OK ? APUS_OPERATOR_CONTINUE : APUS_OPERATOR_ERROR;
#endif
}

void apus_operator_drop(apus_node_t *node, void *state)
{
    (void)node;
    (void)state;
}

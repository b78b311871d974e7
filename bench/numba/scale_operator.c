/* The C operator of the comparison: multiplies each input's float32 samples by 0.5 into a new
 * sample of `out` (what dataflows/numba/filters.py's gain and scale_operator.py do). */
#include <apus.h>
#include <stddef.h>

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
    const float *samples = apus_event_data(event, &length);
    size_t count = length / sizeof(float);
    apus_sample_t *sample;
    if (apus_node_allocate(node, "out", count * sizeof(float), &sample) != APUS_OK)
        return APUS_OPERATOR_ERROR;
    float *scaled = apus_sample_data(sample);
    for (size_t i = 0; i < count; i++)
        scaled[i] = samples[i] * 0.5f;
    return apus_node_send_sample(node, sample, NULL) == APUS_OK ? APUS_OPERATOR_CONTINUE : APUS_OPERATOR_ERROR;
}

void apus_operator_drop(apus_node_t *node, void *state)
{
    (void)node;
    (void)state;
}

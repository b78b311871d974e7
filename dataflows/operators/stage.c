/* One stage of the operator chain, built three times: -DSTAGE_DOUBLE, -DSTAGE_INCREMENT or
 * -DSTAGE_DESCRIBE. Each is an operator with Apus's ABI (apus.h): it reads its input `in` in
 * place and sends on its output `out`; the first two write their int64 result straight into a
 * shared-memory sample (apus_node_allocate), the last sends text. */
#include <apus.h>
#include <stdio.h>
#include <string.h>

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
    const int64_t *value = apus_event_data(event, &length);
    if (apus_event_data_type(event) != APUS_TYPE_INT64 || length != sizeof(int64_t)) {
        apus_operator_fail(node, "input 'in' is not one int64");
        return APUS_OPERATOR_ERROR;
    }
#ifdef STAGE_DESCRIBE
    char text[64];
    int written = snprintf(text, sizeof text, "value %lld", (long long)*value);
    apus_metadata_t *metadata = apus_metadata_new();
    apus_metadata_set_type(metadata, APUS_TYPE_UTF8);
    apus_status_t status = apus_node_send(node, "out", text, (size_t)written, metadata);
    apus_metadata_free(metadata);
#else
    apus_sample_t *sample;
    apus_status_t status = apus_node_allocate(node, "out", sizeof(int64_t), &sample);
    if (status != APUS_OK) {
        apus_operator_fail(node, apus_last_error());
        return APUS_OPERATOR_ERROR;
    }
#ifdef STAGE_DOUBLE
    *(int64_t *)apus_sample_data(sample) = *value * 2;
#else
    *(int64_t *)apus_sample_data(sample) = *value + 1;
#endif
    apus_metadata_t *metadata = apus_metadata_new();
    apus_metadata_set_type(metadata, APUS_TYPE_INT64);
    status = apus_node_send_sample(node, sample, metadata);
    apus_metadata_free(metadata);
#endif
    if (status != APUS_OK) {
        apus_operator_fail(node, apus_last_error());
        return APUS_OPERATOR_ERROR;
    }
    return APUS_OPERATOR_CONTINUE;
}

void apus_operator_drop(apus_node_t *node, void *state)
{
    (void)node;
    (void)state;
}

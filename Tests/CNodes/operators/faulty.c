/* An operator with Apus's ABI that misbehaves on its third message, as chosen at build time:
 * -DFAULT_ERROR returns APUS_OPERATOR_ERROR with a message, -DFAULT_SEGV writes through NULL,
 * -DFAULT_STOP_ALL asks to stop the whole dataflow, -DFAULT_NO_ON_EVENT leaves on_event out,
 * -DFAULT_SLOW takes 2 s over its first message.
 * Otherwise it forwards its input `in` to its output `out`, with its `seq` parameter. */
#include <apus.h>
#include <stdio.h>
#include <unistd.h>

apus_status_t apus_operator_init(apus_node_t *node, void **state)
{
    static int seen;
    (void)node;
    *state = &seen;
    return APUS_OK;
}

#ifndef FAULT_NO_ON_EVENT
apus_operator_status_t apus_operator_on_event(apus_node_t *node, const apus_event_t *event, void *state)
{
    int *seen = state;
    if (apus_event_type(event) != APUS_EVENT_INPUT)
        return APUS_OPERATOR_CONTINUE;
    *seen += 1;
#ifdef FAULT_SLOW
    if (*seen == 1)
        sleep(2);
#endif
    if (*seen == 3) {
#if defined(FAULT_ERROR)
        apus_operator_fail(node, "the third message is one too many");
        return APUS_OPERATOR_ERROR;
#elif defined(FAULT_SEGV)
        *(volatile int *)0 = 1;
#elif defined(FAULT_STOP_ALL)
        return APUS_OPERATOR_STOP_ALL;
#endif
    }
    size_t length;
    const void *data = apus_event_data(event, &length);
    /* The sequence number goes along, for receivers that check what they got. */
    apus_metadata_t *metadata = apus_metadata_new();
    int64_t seq;
    if (apus_event_param_int(event, "seq", &seq) == APUS_OK)
        apus_metadata_set_int(metadata, "seq", seq);
    apus_status_t status = apus_node_send(node, "out", data, length, metadata);
    apus_metadata_free(metadata);
    return status == APUS_OK ? APUS_OPERATOR_CONTINUE : APUS_OPERATOR_ERROR;
}
#endif

void apus_operator_drop(apus_node_t *node, void *state)
{
    (void)node;
    printf("dropped after %d messages\n", *(int *)state);
}

/* A C operator written against dora-rs's C operator API only (operator_api.h), as in dora's
 * c-dataflow example: it counts the messages on its input `message` and sends "The current
 * counter value is N" on its output `counter`. Runs unchanged in an Apus runtime node. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "operator_api.h"

DoraInitResult_t dora_init_operator(void)
{
    int *counter = malloc(sizeof *counter);
    *counter = 0;
    DoraInitResult_t result = {.operator_context = counter};
    return result;
}

DoraResult_t dora_drop_operator(void *operator_context)
{
    printf("C operator dropped after %d messages\n", *(int *)operator_context);
    free(operator_context);
    DoraResult_t result = {0};
    return result;
}

OnEventResult_t dora_on_event(RawEvent_t *event, const SendOutput_t *send_output, void *operator_context)
{
    OnEventResult_t result = {.status = DORA_STATUS_CONTINUE};
    int *counter = operator_context;
    if (event->input != NULL)
    {
        char *id = dora_read_input_id(event->input);
        if (strcmp(id, "message") == 0)
        {
            Vec_uint8_t data = dora_read_data(event->input);
            *counter += 1;
            printf("C operator received message `%.*s`, counter: %d\n", (int)data.len, data.ptr, *counter);
            char text[64];
            int length = snprintf(text, sizeof text, "The current counter value is %d", *counter);
            result.result = dora_send_operator_output(send_output, "counter", (const uint8_t *)text, (size_t)length);
            dora_free_data(data);
        }
        else
        {
            printf("C operator received unexpected input %s\n", id);
        }
        dora_free_input_id(id);
    }
    if (event->stop)
        printf("C operator received stop event\n");
    return result;
}

/* A C node written against dora-rs's C node API only (node_api.h), as in dora's c-dataflow
 * example: on each timer tick it sends a one-byte counter and a text message, 20 times, then it
 * exits. Runs unchanged under `apus run`. */
#include <stdio.h>
#include <string.h>
#include "node_api.h"

int main(void)
{
    void *dora_context = init_dora_context_from_env();
    if (dora_context == NULL)
    {
        fprintf(stderr, "failed to init dora context\n");
        return -1;
    }

    unsigned char counter = 0;
    int failures = 0;
    while (counter < 20)
    {
        void *event = dora_next_event(dora_context);
        if (event == NULL)
        {
            printf("[c node] ERROR: unexpected end of event\n");
            return -1;
        }

        enum DoraEventType ty = read_dora_event_type(event);
        if (ty == DoraEventType_Input)
        {
            char *id;
            size_t id_len;
            read_dora_input_id(event, &id, &id_len);

            char *data;
            size_t data_len;
            read_dora_input_data(event, &data, &data_len);

            if (id_len != 4 || memcmp(id, "tick", 4) != 0 || data_len != 0 || data == NULL)
            {
                printf("unexpected input `%.*s` with %zu bytes\n", (int)id_len, id, data_len);
                failures++;
            }
            if (read_dora_input_timestamp(event) == 0)
            {
                printf("tick without timestamp\n");
                failures++;
            }

            counter += 1;
            char out_id[] = "counter";
            if (dora_send_output(dora_context, out_id, strlen(out_id), (char *)&counter, 1) != 0)
                failures++;

            char message[32];
            int length = snprintf(message, sizeof message, "message %d", counter);
            if (dora_send_output(dora_context, "message", 7, message, (size_t)length) != 0)
                failures++;
        }
        else if (ty == DoraEventType_Stop)
        {
            printf("[c node] received stop\n");
        }
        free_dora_event(event);
    }

    if (dora_log(dora_context, "info", 4, "sent 20 ticks", 13) != 0)
        failures++;
    free_dora_context(dora_context);
    printf("node: %s %d\n", failures == 0 ? "ok" : "FAILED", counter);
    return failures == 0 ? 0 : 1;
}

/* A C sink written against dora-rs's C node API only (node_api.h): prints every message of its
 * input `counter` (text) and how many came. */
#include <stdio.h>
#include <string.h>
#include "node_api.h"

int main(void)
{
    void *context = init_dora_context_from_env();
    if (context == NULL)
        return 1;
    int received = 0;
    void *event;
    while ((event = dora_next_event(context)) != NULL)
    {
        if (read_dora_event_type(event) == DoraEventType_Input)
        {
            char *data;
            size_t length;
            read_dora_input_data(event, &data, &length);
            printf("C sink received: %.*s\n", (int)length, data);
            received++;
        }
        free_dora_event(event);
    }
    free_dora_context(context);
    printf("sink: %d messages\n", received);
    return 0;
}

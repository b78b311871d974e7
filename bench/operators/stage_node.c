/* A stage of the chain as a node process. */
#include <stdio.h>
#include "stage.h"

int main(void)
{
    apus_node_t *node = apus_node_init_from_env();
    if (node == NULL)
        return 1;
    meter_t meter = {0};
    apus_event_t *event;
    while ((event = apus_node_next(node, -1)) != NULL) {
        if (apus_event_type(event) == APUS_EVENT_INPUT) {
            if (forward(node, event) != APUS_OK)
                fprintf(stderr, "%s\n", apus_last_error());
            meter_count(&meter);
        }
        apus_event_free(event);
    }
    apus_node_free(node);
    meter_report(&meter);
    return 0;
}

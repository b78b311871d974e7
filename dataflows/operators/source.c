/* The chain's source: on each tick sends the next number (1, 2, ... 20) as one int64, then ends. */
#include <apus.h>
#include <stdio.h>

int main(void)
{
    apus_node_t *node = apus_node_init_from_env();
    if (node == NULL) {
        fprintf(stderr, "%s\n", apus_last_error());
        return 1;
    }
    apus_metadata_t *metadata = apus_metadata_new();
    apus_metadata_set_type(metadata, APUS_TYPE_INT64);
    int64_t next = 1;
    apus_event_t *event;
    while (next <= 20 && (event = apus_node_next(node, -1)) != NULL) {
        if (apus_event_type(event) == APUS_EVENT_INPUT && apus_node_send(node, "number", &next, sizeof next, metadata) == APUS_OK)
            next++;
        apus_event_free(event);
    }
    apus_metadata_free(metadata);
    apus_node_free(node);
    return 0;
}

/* What one stage of the chain does with a message, as a node or as an operator: the same work,
 * a copy of the payload into a new sample of `out`. */
#include <apus.h>

static inline apus_status_t forward(apus_node_t *node, const apus_event_t *event)
{
    size_t length;
    const void *data = apus_event_data(event, &length);
    return apus_node_send(node, "out", data, length, NULL);
}

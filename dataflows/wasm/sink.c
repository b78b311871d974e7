/* The Wasm example's sink: for each mask, its input (even or odd), frame number and how many
 * pixels are set. */
#include <apus.h>
#include <stdio.h>

int main(void)
{
    apus_node_t *node = apus_node_init_from_env();
    if (node == NULL)
        return 1;
    int masks = 0;
    apus_event_t *event;
    while ((event = apus_node_next(node, -1)) != NULL) {
        if (apus_event_type(event) == APUS_EVENT_INPUT) {
            size_t length;
            const unsigned char *mask = apus_event_data(event, &length);
            int64_t frame = -1;
            apus_event_param_int(event, "frame", &frame);
            size_t set = 0;
            for (size_t i = 0; i < length; i++)
                set += mask[i] == 255;
            printf("%s frame %lld: %zu of %zu pixels set\n", apus_event_id(event), (long long)frame, set, length);
            masks++;
        }
        apus_event_free(event);
    }
    apus_node_free(node);
    printf("received %d masks\n", masks);
    return 0;
}

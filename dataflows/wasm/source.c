/* The Wasm example's camera: 20 grayscale frames of 48×64 pixels (a gradient that moves), sent
 * as uint8 with their shape and a `frame` number, one every 20 ms. */
#include <apus.h>
#include <stdint.h>
#include <stdio.h>

int main(void)
{
    apus_node_t *node = apus_node_init_from_env();
    if (node == NULL) {
        fprintf(stderr, "%s\n", apus_last_error());
        return 1;
    }
    const uint64_t shape[2] = {48, 64};
    apus_metadata_t *metadata = apus_metadata_new();
    apus_metadata_set_shape(metadata, shape, 2);
    int64_t frame = 0;
    apus_event_t *event;
    while (frame < 20 && (event = apus_node_next(node, -1)) != NULL) {
        if (apus_event_type(event) == APUS_EVENT_INPUT) {
            uint8_t pixels[48 * 64];
            for (int i = 0; i < 48 * 64; i++)
                pixels[i] = (uint8_t)((i % 64) * 4 + frame);
            apus_metadata_set_int(metadata, "frame", frame);
            if (apus_node_send(node, "frame", pixels, sizeof pixels, metadata) == APUS_OK)
                frame++;
        }
        apus_event_free(event);
    }
    apus_metadata_free(metadata);
    apus_node_free(node);
    return 0;
}

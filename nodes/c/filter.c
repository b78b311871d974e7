/* filter: grayscale + threshold.
 *
 * For each RGB frame on `frame` (uint8, shape H×W×3) it sends a mask on `mask`: uint8, shape H×W,
 * 255 where the pixel's luma is at least THRESHOLD (default 128), else 0. The frame is read in
 * place from the camera's shared memory and the mask is written in place into the filter's own,
 * so no copy is made on either side. `frame` and `captured_ns` are passed on in the metadata. */
#include <apus.h>

#include <stdio.h>
#include <stdlib.h>

static int filter(apus_node_t *node, apus_event_t *event, apus_metadata_t *metadata, int threshold) {
    const uint64_t *dims;
    size_t rank, length;
    const uint8_t *rgb = apus_event_data(event, &length);
    if (apus_event_data_type(event) != APUS_TYPE_UINT8 || apus_event_shape(event, &dims, &rank) != APUS_OK || rank != 3 ||
        dims[2] != 3) {
        apus_node_log(node, APUS_LOG_WARN, "skipping a frame that is not uint8 H×W×3");
        return 0;
    }
    const size_t pixels = (size_t)(dims[0] * dims[1]);
    apus_sample_t *sample;
    if (apus_node_allocate(node, "mask", pixels, &sample) != APUS_OK) return -1;
    uint8_t *mask = apus_sample_data(sample);
    for (size_t i = 0; i < pixels; i++) {
        const uint8_t *p = rgb + 3 * i;
        int luma = (77 * p[0] + 150 * p[1] + 29 * p[2]) >> 8;
        mask[i] = luma >= threshold ? 255 : 0;
    }
    const uint64_t shape[2] = {dims[0], dims[1]};
    int64_t frame = -1, captured = 0;
    apus_event_param_int(event, "frame", &frame);
    apus_event_param_int(event, "captured_ns", &captured);
    apus_metadata_clear(metadata);
    apus_metadata_set_shape(metadata, shape, 2);
    apus_metadata_set_int(metadata, "frame", frame);
    apus_metadata_set_int(metadata, "captured_ns", captured);
    return apus_node_send_sample(node, sample, metadata) == APUS_OK ? 0 : -1;
}

int main(void) {
    const char *text = getenv("THRESHOLD");
    const int threshold = text != NULL ? atoi(text) : 128;

    apus_node_t *node = apus_node_init_from_env();
    if (node == NULL) {
        fprintf(stderr, "filter: %s\n", apus_last_error());
        return 1;
    }
    apus_metadata_t *metadata = apus_metadata_new();
    int status = 0;
    long frames = 0;
    apus_event_t *event;
    while ((event = apus_node_next(node, -1)) != NULL) {
        if (apus_event_type(event) == APUS_EVENT_INPUT) {
            if (filter(node, event, metadata, threshold) != 0) {
                fprintf(stderr, "filter: %s\n", apus_last_error());
                status = 1;
            }
            frames++;
        }
        apus_event_free(event);
    }
    printf("filter: %ld frames\n", frames);
    apus_metadata_free(metadata);
    apus_node_free(node);
    return status;
}

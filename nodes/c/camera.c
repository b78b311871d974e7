/* camera: a frame generator standing in for a camera driver.
 *
 * On each `tick` input it fills a WIDTH×HEIGHT×3 uint8 RGB frame in shared memory (allocated
 * with apus_node_allocate, sent without a copy) and sends it on `frame`, with the frame number
 * and the capture time in the metadata. After FRAMES frames (0: no limit) it closes `frame` and
 * exits. Settings come from the environment: WIDTH (640), HEIGHT (480), FRAMES (0). */
#include <apus.h>

#include <stdio.h>
#include <stdlib.h>

static long setting(const char *name, long fallback) {
    const char *text = getenv(name);
    if (text == NULL || *text == '\0') return fallback;
    char *end = NULL;
    long value = strtol(text, &end, 10);
    if (*end != '\0' || value < 0) {
        fprintf(stderr, "camera: %s=%s is not a non-negative integer\n", name, text);
        exit(2);
    }
    return value;
}

/* A bright disc moving over a dark gradient, so that the filter downstream has something to find. */
static void draw(uint8_t *rgb, size_t width, size_t height, long frame) {
    long cx = (long)((frame * 7) % (long)width), cy = (long)height / 2, r = (long)height / 6;
    for (size_t y = 0; y < height; y++) {
        for (size_t x = 0; x < width; x++) {
            uint8_t *pixel = rgb + 3 * (y * width + x);
            long dx = (long)x - cx, dy = (long)y - cy;
            int inside = dx * dx + dy * dy <= r * r;
            pixel[0] = inside ? 250 : (uint8_t)(x * 100 / width);
            pixel[1] = inside ? 240 : (uint8_t)(y * 100 / height);
            pixel[2] = inside ? 230 : 40;
        }
    }
}

int main(void) {
    const size_t width = (size_t)setting("WIDTH", 640), height = (size_t)setting("HEIGHT", 480);
    const long frames = setting("FRAMES", 0);

    apus_node_t *node = apus_node_init_from_env();
    if (node == NULL) {
        fprintf(stderr, "camera: %s\n", apus_last_error());
        return 1;
    }
    apus_metadata_t *metadata = apus_metadata_new();
    const uint64_t shape[3] = {height, width, 3};
    apus_metadata_set_type(metadata, APUS_TYPE_UINT8);
    apus_metadata_set_shape(metadata, shape, 3);
    apus_metadata_set_string(metadata, "encoding", "rgb8");

    int status = 0;
    long sent = 0;
    apus_event_t *event;
    while ((frames == 0 || sent < frames) && (event = apus_node_next(node, -1)) != NULL) {
        if (apus_event_type(event) == APUS_EVENT_INPUT) {
            apus_sample_t *sample;
            if (apus_node_allocate(node, "frame", width * height * 3, &sample) != APUS_OK) {
                fprintf(stderr, "camera: %s\n", apus_last_error());
                status = 1;
            } else {
                draw(apus_sample_data(sample), width, height, sent);
                apus_metadata_set_int(metadata, "frame", sent);
                apus_metadata_set_int(metadata, "captured_ns", (int64_t)apus_event_timestamp(event));
                if (apus_node_send_sample(node, sample, metadata) != APUS_OK) {
                    fprintf(stderr, "camera: %s\n", apus_last_error());
                    status = 1;
                }
                sent++;
            }
        }
        int stop = apus_event_type(event) == APUS_EVENT_STOP;
        apus_event_free(event);
        if (stop || status != 0) break;
    }
    printf("camera: sent %ld frames of %zux%zu\n", sent, width, height);
    apus_metadata_free(metadata);
    apus_node_free(node);
    return status;
}

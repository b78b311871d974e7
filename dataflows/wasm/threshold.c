/* A Wasm operator: turns each grayscale frame into a mask (255 where a pixel is above 128, else
 * 0), in its own copy of the frame, and sends it on `mask` with the frame's shape and number. */
#include <apus_wasm.h>

APUS_WASM_INPUT_BUFFER

APUS_WASM_EXPORT("apus_on_event") int32_t apus_on_event(unsigned char *pixels, uint32_t length)
{
    for (uint32_t i = 0; i < length; i++)
        pixels[i] = pixels[i] > 128 ? 255 : 0;
    return apus_send_forward("mask", 4, pixels, length) == 0 ? APUS_WASM_CONTINUE : APUS_WASM_ERROR;
}

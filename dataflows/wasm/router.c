/* A Wasm operator: routes each message by its `frame` parameter, even frames to `even` and odd
 * ones to `odd`, unchanged. */
#include <apus_wasm.h>

APUS_WASM_INPUT_BUFFER

APUS_WASM_EXPORT("apus_on_event") int32_t apus_on_event(const unsigned char *data, uint32_t length)
{
    int64_t frame;
    if (apus_param_int("frame", 5, &frame) != 0) {
        apus_fail("a message without a frame number", 32);
        return APUS_WASM_ERROR;
    }
    int32_t status = frame % 2 == 0 ? apus_send_forward("even", 4, data, length) : apus_send_forward("odd", 3, data, length);
    return status == 0 ? APUS_WASM_CONTINUE : APUS_WASM_ERROR;
}

/* The Wasm operator: the same transform, in its copy of the input, then sent. With -DTRIVIAL it
 * sends the first 8 bytes as they are. */
#include <apus_wasm.h>
#include "transform.h"

APUS_WASM_INPUT_BUFFER

APUS_WASM_EXPORT("apus_on_event") int32_t apus_on_event(unsigned char *data, uint32_t length)
{
#ifdef TRIVIAL
    return apus_send("out", 3, data, length < 8 ? length : 8, APUS_WASM_UINT8) == 0 ? APUS_WASM_CONTINUE : APUS_WASM_ERROR;
#else
    transform(data, data, length);
    return apus_send("out", 3, data, length, APUS_WASM_UINT8) == 0 ? APUS_WASM_CONTINUE : APUS_WASM_ERROR;
#endif
}

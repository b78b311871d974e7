/* A Wasm operator for the tests (include/apus_wasm.h). By default it forwards each input to its
 * output `out`, with its element type. Built with one of these, it misbehaves on its third input:
 * -DLOOP loops for ever (fuel ends it), -DOUT_OF_BOUNDS stores far outside its memory,
 * -DGROW grows its memory by 256 MiB, -DUNDECLARED sends on an output it does not declare,
 * -DUNGRANTED imports a function it is not granted, -DNO_ON_EVENT exports no apus_on_event. */
#include <apus_wasm.h>

APUS_WASM_INPUT_BUFFER

#ifdef UNGRANTED
__attribute__((import_module("wasi_snapshot_preview1"), import_name("fd_write"))) int fd_write(int, int, int, int);
#endif

static int seen;

#ifndef NO_ON_EVENT
APUS_WASM_EXPORT("apus_on_event") int32_t apus_on_event(const unsigned char *data, uint32_t length)
{
    seen++;
    if (seen == 3) {
#if defined(LOOP)
        for (volatile int i = 0;; i++) {
        }
#elif defined(OUT_OF_BOUNDS)
        *(volatile int *)0x7ffffff0 = 1;
#elif defined(GROW)
        if (__builtin_wasm_memory_grow(0, 4096) == (__SIZE_TYPE__)-1) {
            apus_fail("memory.grow was refused", 23);
            return APUS_WASM_ERROR;
        }
#elif defined(UNDECLARED)
        apus_send("elsewhere", 9, data, length, apus_element_type());
#elif defined(UNGRANTED)
        fd_write(1, 0, 0, 0);
#endif
    }
    return apus_send("out", 3, data, length, apus_element_type()) == 0 ? APUS_WASM_CONTINUE : APUS_WASM_ERROR;
}
#endif

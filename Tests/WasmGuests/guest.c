/* A Wasm operator for the tests (include/apus_wasm.h). By default it forwards each input to its
 * output `out`, with its element type (with -DFORWARD, with all its metadata). Built with one of these, it misbehaves on its third input:
 * -DLOOP loops for ever (fuel ends it), -DOUT_OF_BOUNDS stores far outside its memory,
 * -DGROW grows its memory by 256 MiB, -DUNDECLARED sends on an output it does not declare,
 * -DUNGRANTED imports a function it is not granted, -DNO_ON_EVENT exports no apus_on_event.
 * -DINSPECT logs the shape and the `count`, `ratio` and `name` parameters of what it gets;
 * -DANNOTATE sends with a shape {1, length / 8} (an int64 row) and those three parameters set. */
#include <apus_wasm.h>

APUS_WASM_INPUT_BUFFER

#ifdef UNGRANTED
__attribute__((import_module("wasi_snapshot_preview1"), import_name("fd_write"))) int fd_write(int, int, int, int);
#endif

static int seen;

#ifdef INSPECT
/* Logs "<label> <number>" (no libc in the guest). */
static void log_number(const char *label, uint32_t label_length, int64_t number)
{
    char text[48];
    uint32_t length = 0;
    for (; length < label_length; length++)
        text[length] = label[length];
    text[length++] = ' ';
    if (number < 0) {
        text[length++] = '-';
        number = -number;
    }
    char digits[20];
    int count = 0;
    do {
        digits[count++] = (char)('0' + number % 10);
        number /= 10;
    } while (number > 0);
    while (count > 0)
        text[length++] = digits[--count];
    apus_log(text, length);
}
#endif

#ifndef NO_ON_EVENT
APUS_WASM_EXPORT("apus_on_event") int32_t apus_on_event(const unsigned char *data, uint32_t length)
{
    seen++;
#ifdef INSPECT
    uint64_t dims[4];
    uint32_t rank = apus_shape(dims, 4);
    if (rank > 0)
        log_number("rank", 4, rank), log_number("dim0", 4, (int64_t)dims[0]), log_number("dim1", 4, (int64_t)dims[1]);
    int64_t count;
    double ratio;
    if (apus_param_int("count", 5, &count) == 0)
        log_number("count", 5, count);
    if (apus_param_float("ratio", 5, &ratio) == 0)
        log_number("ratio x100", 10, (int64_t)(ratio * 100));
    if (apus_param_int("ratio", 5, &count) == -7)
        log_number("ratio is no int", 15, 0);
    char id[8];
    log_number("input id length", 15, apus_input_id(id, sizeof id));
    char line[24] = "name ";
    int32_t named = apus_param_string("name", 4, line + 5, 16);
    if (named >= 0 && named <= 16)
        apus_log(line, 5 + (uint32_t)named);
#endif
#ifdef ANNOTATE
    uint64_t annotated[2] = {1, length / 8}; /* the tests send one int64 */
    apus_set_shape(annotated, 2);
    apus_set_int("count", 5, -42);
    apus_set_float("ratio", 5, 0.25);
    apus_set_string("name", 4, "wasm", 4);
#endif
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
#ifdef FORWARD
    return apus_send_forward("out", 3, data, length) == 0 ? APUS_WASM_CONTINUE : APUS_WASM_ERROR;
#else
    return apus_send("out", 3, data, length, apus_element_type()) == 0 ? APUS_WASM_CONTINUE : APUS_WASM_ERROR;
#endif
}
#endif

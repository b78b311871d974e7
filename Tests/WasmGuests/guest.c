/* A Wasm operator for the tests (include/apus_wasm.h). By default it forwards each input to its
 * output `out`, with its element type (with -DFORWARD, with all its metadata). Built with one of these, it misbehaves on its third input:
 * -DLOOP loops for ever (fuel ends it), -DOUT_OF_BOUNDS stores far outside its memory,
 * -DGROW grows its memory by 256 MiB, -DUNDECLARED sends on an output it does not declare,
 * -DUNGRANTED imports a function it is not granted, -DNO_ON_EVENT exports no apus_on_event,
 * -DBAD_POINTER hands host functions pointers outside its memory.
 * -DINSPECT logs the shape and the `count`, `ratio`, `name`, `flag`, `counts`, `ratios`, `flags` and
 * `names` parameters of what it gets; -DANNOTATE sends with a shape {1, length / 8} (an int64
 * row) and those parameters set. */
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
    int32_t flag;
    if (apus_param_bool("flag", 4, &flag) == 0)
        log_number("flag", 4, flag);
    int64_t ints[4];
    int32_t listed = apus_param_ints("counts", 6, ints, 4);
    if (listed >= 0)
        log_number("counts", 6, listed), log_number("counts[last]", 12, ints[listed - 1]);
    double floats[4];
    listed = apus_param_floats("ratios", 6, floats, 4);
    if (listed >= 0)
        log_number("ratios", 6, listed), log_number("ratios[0] x100", 14, (int64_t)(floats[0] * 100));
    uint8_t bools[4];
    listed = apus_param_bools("flags", 5, bools, 4);
    if (listed >= 0)
        log_number("flags", 5, listed), log_number("flags[1]", 8, bools[1]);
    char strings[24] = "names ";
    listed = apus_param_strings("names", 5, strings + 6, 16);
    if (listed >= 0 && listed <= 16) {
        for (int i = 6; i < 6 + listed; i++)
            strings[i] = strings[i] == 0 ? '|' : strings[i];
        apus_log(strings, 6 + (uint32_t)listed);
    }
#endif
#ifdef ANNOTATE
    uint64_t annotated[2] = {1, length / 8}; /* the tests send one int64 */
    apus_set_shape(annotated, 2);
    apus_set_int("count", 5, -42);
    apus_set_float("ratio", 5, 0.25);
    apus_set_string("name", 4, "wasm", 4);
    apus_set_bool("flag", 4, 1);
    int64_t ints[3] = {7, 8, -9};
    apus_set_ints("counts", 6, ints, 3);
    double floats[2] = {1.5, -2};
    apus_set_floats("ratios", 6, floats, 2);
    uint8_t bools[2] = {0, 1};
    apus_set_bools("flags", 5, bools, 2);
    apus_set_strings("names", 5, "ab\0\0cde", 7); /* "ab", "", "cde" */
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
#elif defined(BAD_POINTER)
        int64_t *outside = (int64_t *)0x7ffffff0;
        if (apus_param_ints((const char *)outside, 6, outside, 4) != -2)
            apus_log("a pointer outside its memory was accepted", 41);
        apus_set_strings("names", 5, (const char *)outside, 1u << 20);
#endif
    }
#ifdef FORWARD
    return apus_send_forward("out", 3, data, length) == 0 ? APUS_WASM_CONTINUE : APUS_WASM_ERROR;
#else
    return apus_send("out", 3, data, length, apus_element_type()) == 0 ? APUS_WASM_CONTINUE : APUS_WASM_ERROR;
#endif
}
#endif

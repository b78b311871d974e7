/*
 * apus_wasm.h — the guest side of a Wasm operator, for C compiled to WebAssembly:
 *
 *     apus wasm-cc op.c -o op.wasm
 *
 * which runs clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -I<this folder> (the Swift
 * toolchain's clang has the wasm32 target and wasm-ld). Example: dataflows/wasm-filters.yml. A Wasm operator runs in its
 * runtime node's process, sandboxed: it sees its own linear memory and the functions below, nothing
 * else — no files, no clock but its input's timestamp, no network. In the dataflow:
 *
 *     operators:
 *       - id: threshold
 *         wasm: build/threshold.wasm
 *         limits: {fuel_per_event: 100000000, memory: 64MiB}   # these are the defaults
 *
 * The guest exports
 * - `memory` (wasm-ld exports it by default);
 * - apus_alloc(size): a place for `size` bytes in its memory, where the host copies each input's
 *   payload (the one copy a sandbox needs). The place stays the input buffer for every input up
 *   to that size; the host asks again only for a larger input. APUS_WASM_INPUT_BUFFER below is
 *   such an apus_alloc.
 * - apus_on_event(data, length): called for each message on one of the operator's inputs, with the
 *   payload at `data`. Returns APUS_WASM_CONTINUE, APUS_WASM_STOP (this operator is done),
 *   APUS_WASM_STOP_ALL (stop the dataflow) or APUS_WASM_ERROR (after apus_fail says why).
 * - optionally apus_init() (returns APUS_WASM_CONTINUE to start) and apus_drop(), called once each.
 *
 * Each call gets `fuel_per_event` of fuel (about one per instruction): an endless loop ends there.
 * Linear memory may not grow past `memory`. A trap (out-of-bounds access, unreachable, division by
 * zero), running out of fuel, memory past its limit, sending on an output it does not declare, and
 * passing memory outside its own to a host function all stop this operator with the reason, named
 * with node and operator; the runtime and the other operators carry on. With `restart_policy:
 * on-failure` (or `always`, which also replaces an instance that returned APUS_WASM_STOP) and
 * optionally `max_restarts` under the operator, a fresh instance of the module takes its place. A module that imports
 * anything but the functions below, or lacks apus_on_event or apus_alloc, is refused at load.
 */
#ifndef APUS_WASM_H
#define APUS_WASM_H

#include <stdint.h>

#define APUS_WASM_IMPORT(name) __attribute__((import_module("apus"), import_name(name)))
#define APUS_WASM_EXPORT(name) __attribute__((export_name(name)))

enum { APUS_WASM_CONTINUE = 0, APUS_WASM_STOP = 1, APUS_WASM_STOP_ALL = 2, APUS_WASM_ERROR = 3 };

/* Element types, as apus_type_t in apus.h. */
enum {
    APUS_WASM_UINT8 = 0, APUS_WASM_UINT16, APUS_WASM_UINT32, APUS_WASM_UINT64, APUS_WASM_INT8, APUS_WASM_INT16,
    APUS_WASM_INT32, APUS_WASM_INT64, APUS_WASM_FLOAT16, APUS_WASM_FLOAT32, APUS_WASM_FLOAT64, APUS_WASM_BOOL,
    APUS_WASM_UTF8
};

/* Sends `length` bytes at `data` on the output named by `output` (`output_length` bytes, UTF-8),
 * as elements of `element_type`. The bytes are copied into a shared-memory sample. Returns 0, or a
 * negative apus_status_t (an undeclared output also stops the operator). */
APUS_WASM_IMPORT("send")
int32_t apus_send(const char *output, uint32_t output_length, const void *data, uint32_t length, uint32_t element_type);

/* Sends like apus_send, with the metadata of the input being handled: its element type, shape
 * and parameters (a filter or router that passes messages on). */
APUS_WASM_IMPORT("send_forward")
int32_t apus_send_forward(const char *output, uint32_t output_length, const void *data, uint32_t length);

/* The shape of the input being handled: writes up to `capacity` dimensions to `dims` and returns
 * its rank (0: no shape). */
APUS_WASM_IMPORT("shape")
uint32_t apus_shape(uint64_t *dims, uint32_t capacity);

/* A parameter of the input being handled, by key: 0, or -6 (not found) or -7 (another type). */
APUS_WASM_IMPORT("param_int")
int32_t apus_param_int(const char *key, uint32_t key_length, int64_t *value);
APUS_WASM_IMPORT("param_float")
int32_t apus_param_float(const char *key, uint32_t key_length, double *value);

/* A string parameter of the input being handled: copies up to `capacity` bytes (no NUL) and
 * returns its full length, or -6 (not found) or -7 (another type). */
APUS_WASM_IMPORT("param_string")
int32_t apus_param_string(const char *key, uint32_t key_length, char *buffer, uint32_t capacity);

/* A bool parameter of the input being handled (*value is 0 or 1): 0, -6 or -7 as above. */
APUS_WASM_IMPORT("param_bool")
int32_t apus_param_bool(const char *key, uint32_t key_length, int32_t *value);

/* A list parameter of the input being handled: copies up to `capacity` elements and returns the
 * list's full length, or -6 (not found) or -7 (another type). Bools are one byte each (0 or 1).
 * Strings come back to back, each ended by a NUL; for them `capacity` and the result count bytes. */
APUS_WASM_IMPORT("param_ints")
int32_t apus_param_ints(const char *key, uint32_t key_length, int64_t *values, uint32_t capacity);
APUS_WASM_IMPORT("param_floats")
int32_t apus_param_floats(const char *key, uint32_t key_length, double *values, uint32_t capacity);
APUS_WASM_IMPORT("param_bools")
int32_t apus_param_bools(const char *key, uint32_t key_length, uint8_t *values, uint32_t capacity);
APUS_WASM_IMPORT("param_strings")
int32_t apus_param_strings(const char *key, uint32_t key_length, char *buffer, uint32_t capacity);

/* Shape and parameters for the next apus_send (which clears them): set any before sending. Lists
 * are laid out as the param_ functions give them (set_strings: `length` bytes of NUL-ended strings). */
APUS_WASM_IMPORT("set_shape")
int32_t apus_set_shape(const uint64_t *dims, uint32_t rank);
APUS_WASM_IMPORT("set_int")
int32_t apus_set_int(const char *key, uint32_t key_length, int64_t value);
APUS_WASM_IMPORT("set_float")
int32_t apus_set_float(const char *key, uint32_t key_length, double value);
APUS_WASM_IMPORT("set_string")
int32_t apus_set_string(const char *key, uint32_t key_length, const char *text, uint32_t text_length);
APUS_WASM_IMPORT("set_bool")
int32_t apus_set_bool(const char *key, uint32_t key_length, int32_t value);
APUS_WASM_IMPORT("set_ints")
int32_t apus_set_ints(const char *key, uint32_t key_length, const int64_t *values, uint32_t count);
APUS_WASM_IMPORT("set_floats")
int32_t apus_set_floats(const char *key, uint32_t key_length, const double *values, uint32_t count);
APUS_WASM_IMPORT("set_bools")
int32_t apus_set_bools(const char *key, uint32_t key_length, const uint8_t *values, uint32_t count);
APUS_WASM_IMPORT("set_strings")
int32_t apus_set_strings(const char *key, uint32_t key_length, const char *texts, uint32_t length);

/* Writes a line to the runtime node's log, prefixed with NODE/OPERATOR. */
APUS_WASM_IMPORT("log")
void apus_log(const char *text, uint32_t length);

/* Says why the operator fails; return APUS_WASM_ERROR next. */
APUS_WASM_IMPORT("fail")
void apus_fail(const char *reason, uint32_t length);

/* The id of the input being handled (as written under the operator's `inputs`): copies up to
 * `capacity` bytes to `buffer` (no NUL) and returns the id's full length. */
APUS_WASM_IMPORT("input_id")
uint32_t apus_input_id(char *buffer, uint32_t capacity);

/* The element type of the input being handled. */
APUS_WASM_IMPORT("element_type")
uint32_t apus_element_type(void);

/* When the input being handled was sent: CLOCK_MONOTONIC nanoseconds. */
APUS_WASM_IMPORT("timestamp")
uint64_t apus_timestamp(void);

/* An apus_alloc that keeps one buffer for every input, grown (by memory.grow) when an input is
 * larger than any before. Put APUS_WASM_INPUT_BUFFER once in the guest, at file scope. */
#define APUS_WASM_INPUT_BUFFER                                                                  \
    extern unsigned char __heap_base;                                                           \
    static unsigned char *apus_wasm_buffer;                                                     \
    static uint32_t apus_wasm_capacity;                                                         \
    APUS_WASM_EXPORT("apus_alloc") void *apus_alloc(uint32_t size)                              \
    {                                                                                           \
        if (apus_wasm_buffer == 0)                                                              \
            apus_wasm_buffer = &__heap_base;                                                    \
        uint32_t end = (uint32_t)(uintptr_t)apus_wasm_buffer + size;                            \
        uint32_t have = (uint32_t)__builtin_wasm_memory_size(0) * 65536u;                       \
        if (size > apus_wasm_capacity && end > have &&                                          \
            __builtin_wasm_memory_grow(0, (end - have + 65535u) / 65536u) == (__SIZE_TYPE__)-1) \
            return 0;                                                                           \
        if (size > apus_wasm_capacity)                                                          \
            apus_wasm_capacity = size;                                                          \
        return apus_wasm_buffer;                                                                \
    }

#endif /* APUS_WASM_H */

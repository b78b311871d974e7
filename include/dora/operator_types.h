/*
 * dora-rs's C operator types, for operators written against dora's C operator API
 * (operator_api.h next to this file). Layouts, names and values are dora's (dora-rs 1.x,
 * apis/c/operator), so an operator built for dora builds unchanged against Apus; the functions
 * declared at the end are implemented by libapus.so, which the Apus operator runtime has loaded
 * before it loads an operator (so an operator needs no -l flag, but `$(apus config --libs)`
 * does no harm).
 *
 * Semantics, as in dora:
 * - dora_read_input_id returns a NUL-terminated copy of the input's id (its own id, as written
 *   under the operator's `inputs`), to be freed with dora_free_input_id.
 * - dora_read_data returns a copy of the input's payload, to be freed with dora_free_data; a
 *   timer tick gives an empty one. (Apus's own operator ABI, in apus.h, reads in place.)
 * - dora_send_operator_output copies data_len bytes to the operator's output `id` (as declared
 *   under its `outputs`). It returns a DoraResult_t whose error.ptr is NULL on success; on failure
 *   it holds the reason (not NUL-terminated, error.len bytes), which the runtime frees once the
 *   result is returned from dora_on_event, or the operator frees with dora_free_data.
 * - SendOutput_t's send_output.call is NULL: send with dora_send_operator_output.
 * Handles the runtime passes in are checked: a NULL or foreign Input_t or SendOutput_t gives an
 * error result or NULL, never a crash.
 */
#ifndef DORA_OPERATOR_TYPES_H
#define DORA_OPERATOR_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bytes with their length and capacity (dora's repr(C) Vec<u8>). */
typedef struct Vec_uint8 {
    uint8_t *ptr;
    size_t len;
    size_t cap;
} Vec_uint8_t;

/* The outcome of a call: error.ptr is NULL on success, else the reason as UTF-8. */
typedef struct DoraResult {
    Vec_uint8_t error;
} DoraResult_t;

typedef struct DoraDropOperator {
    DoraResult_t (*drop_operator)(void *);
} DoraDropOperator_t;

/* What dora_init_operator returns: a result, and the context passed to every later call. */
typedef struct DoraInitResult {
    DoraResult_t result;
    void *operator_context;
} DoraInitResult_t;

typedef struct DoraInitOperator {
    DoraInitResult_t (*init_operator)(void);
} DoraInitOperator_t;

/* What the operator asks for after an event: carry on, stop itself, or stop the whole dataflow.
 * The same size as uint8_t. */
enum DoraStatus {
    DORA_STATUS_CONTINUE = 0,
    DORA_STATUS_STOP = 1,
    DORA_STATUS_STOP_ALL = 2,
};
typedef uint8_t DoraStatus_t;

typedef struct OnEventResult {
    DoraResult_t result;
    DoraStatus_t status;
} OnEventResult_t;

/* An input message, read with dora_read_input_id and dora_read_data. */
typedef struct Input Input_t;

/* One event: exactly one of input (non-NULL), input_closed (ptr non-NULL: the id), stop (true)
 * or error (ptr non-NULL: the message) is set. */
typedef struct RawEvent {
    Input_t *input;
    Vec_uint8_t input_closed;
    bool stop;
    Vec_uint8_t error;
} RawEvent_t;

typedef struct Output Output_t;

typedef struct ArcDynFn1_DoraResult_Output {
    void *env_ptr;
    DoraResult_t (*call)(void *, Output_t);
    void (*release)(void *);
    void (*retain)(void *);
} ArcDynFn1_DoraResult_Output_t;

/* How an operator sends: pass it to dora_send_operator_output. */
typedef struct SendOutput {
    ArcDynFn1_DoraResult_Output_t send_output;
} SendOutput_t;

typedef struct DoraOnEvent {
    OnEventResult_t (*on_event)(RawEvent_t *, SendOutput_t const *, void *);
} DoraOnEvent_t;

typedef struct Metadata {
    Vec_uint8_t open_telemetry_context;
} Metadata_t;

void dora_free_data(Vec_uint8_t _data);
void dora_free_input_id(char *_input_id);
Vec_uint8_t dora_read_data(Input_t *input);
char *dora_read_input_id(Input_t const *input);
DoraResult_t dora_send_operator_output(SendOutput_t const *send_output, char const *id, uint8_t const *data_ptr,
                                       size_t data_len);

#ifdef __cplusplus
}
#endif

#endif /* DORA_OPERATOR_TYPES_H */

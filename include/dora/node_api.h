/*
 * dora-rs's C node API, provided by libapus.so so C nodes written for dora build and run under
 * `apus run` unchanged: `#include "node_api.h"` with `-I $(apus config --include-dir)/dora` (or
 * `#include <dora/node_api.h>`) and link with `$(apus config --libs)`.
 *
 * The functions, the event enum and their behaviour are dora's (dora-rs 1.x, apis/c/node):
 * - init_dora_context_from_env returns NULL when the node cannot join its dataflow (the reason
 *   is printed to stderr), e.g. when it was not started by `apus run`.
 * - dora_next_event blocks for the next event; it returns NULL once the event stream has ended:
 *   after STOP was delivered (which follows the closing of all inputs, or a stop of the run).
 * - read_dora_input_id / read_dora_input_data give pointers into the event, valid until
 *   free_dora_event; the id is not NUL-terminated. For events other than INPUT both write
 *   NULL and 0. A timer tick's data is empty (a valid pointer, length 0). The data points into
 *   the sender's shared memory (zero-copy) and must not be written.
 * - read_dora_input_timestamp: when the message was sent, in nanoseconds of CLOCK_MONOTONIC
 *   (dora gives its hybrid logical clock; both only order messages and measure latency).
 * - dora_send_output copies data_len bytes to the output named by id_ptr/id_len (UTF-8, not
 *   NUL-terminated); it returns 0, or -1 with the reason printed to stderr.
 * - dora_log writes "LEVEL message" to the node's log; level is error, warn, info, debug or trace.
 *   It returns 0, or -1 for an unknown level or invalid UTF-8.
 * - An upstream node crashing is seen as its inputs closing (INPUT_CLOSED), as in dora; the
 *   apus.h API also reports it as APUS_EVENT_NODE_FAILED.
 *
 * Threading: a context and its events are used by one thread at a time. Contexts and events are
 * checked handles, like apus.h's: NULL or a freed one is refused (with a message on stderr),
 * never a crash. Everything in apus.h can be used alongside: a context is an apus_node_t *, an
 * event an apus_event_t *.
 */
#ifndef DORA_NODE_API_H
#define DORA_NODE_API_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

void *init_dora_context_from_env(void);
void free_dora_context(void *dora_context);

void *dora_next_event(void *dora_context);
void free_dora_event(void *dora_event);

enum DoraEventType {
    DoraEventType_Stop,
    DoraEventType_Input,
    DoraEventType_InputClosed,
    DoraEventType_Error,
    DoraEventType_Unknown
};
typedef enum DoraEventType DoraEventType;

enum DoraEventType read_dora_event_type(void *dora_event);

void read_dora_input_id(void *dora_event, char **out_ptr, size_t *out_len);
void read_dora_input_data(void *dora_event, char **out_ptr, size_t *out_len);
unsigned long long read_dora_input_timestamp(void *dora_event);

int dora_send_output(void *dora_context, const char *id_ptr, size_t id_len, const char *data_ptr, size_t data_len);
int dora_log(void *dora_context, const char *level_ptr, size_t level_len, const char *msg_ptr, size_t msg_len);

#ifdef __cplusplus
}
#endif

#endif /* DORA_NODE_API_H */

/*
 * apus.h — the node API of Apus, for C (C99 or later) and C++.
 *
 * A node is a process started by `apus run dataflow.yml`. It joins the dataflow with
 * apus_node_init_from_env(), then loops on apus_node_next() for events (messages on its inputs,
 * closed inputs, STOP) and sends on its outputs with apus_node_send() or, without a copy, with
 * apus_node_allocate() → fill → apus_node_send_sample(). Messages live in shared memory: an input's
 * payload is read in place, and stays valid until its event is freed.
 *
 *     apus_node_t *node = apus_node_init_from_env();
 *     if (node == NULL) { fprintf(stderr, "%s\n", apus_last_error()); return 1; }
 *     apus_event_t *event;
 *     while ((event = apus_node_next(node, -1)) != NULL) {
 *         if (apus_event_type(event) == APUS_EVENT_INPUT) {
 *             size_t length;
 *             const void *data = apus_event_data(event, &length);
 *             apus_node_send(node, "out", data, length, NULL);
 *         }
 *         apus_event_free(event);
 *     }
 *     apus_node_free(node);
 *
 * Build a node with `cc node.c $(apus config --cflags --libs)`, or with pkg-config (`apus.pc`).
 *
 * Conventions
 * - Handles (apus_node_t, apus_event_t, apus_sample_t, apus_metadata_t) are opaque and checked:
 *   NULL, a handle of another kind, or a handle that was freed already is reported as an error
 *   (APUS_ERROR_INVALID_HANDLE), never dereferenced.
 * - Functions that can fail return an apus_status_t (APUS_OK is 0, errors are negative) or NULL.
 *   apus_last_error() then describes the failure, naming the node, output, key or length involved.
 *   Functions that return a plain value (a count, a timestamp, a type) return 0 on a bad handle and
 *   set the last error too.
 * - Strings are NUL-terminated UTF-8. Lengths and counts are size_t.
 * - Ownership: every pointer this API returns belongs to Apus. The comment of each function says
 *   how long it stays valid. Pointers you pass in are only read during the call, except where said.
 *
 * Threads
 * - apus_node_next() is called by one thread at a time. apus_node_send(), apus_node_allocate(),
 *   apus_node_send_sample(), apus_node_close_output() and apus_node_log() may be called from any
 *   thread, also while another thread waits in apus_node_next().
 * - An event, a sample or a metadata object is used by one thread at a time; it may be handed to
 *   another thread and freed there.
 * - apus_node_free() must not run while another thread uses the node.
 * - apus_last_status() and apus_last_error() are per thread.
 */
#ifndef APUS_H
#define APUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version of Apus these declarations belong to: the one place it is written. The library's
 * apus_version() returns the version it was built with, the daemon and the CLI must agree on it,
 * and the Python package takes its own from here. */
#define APUS_VERSION "0.1.0"

/* CDEF-BEGIN: the declarations below are read by the Python binding (cffi); keep them plain C. */

/* The version the library was built with: APUS_VERSION of its apus.h. */
const char *apus_version(void);

/* ------------------------------------------------------------------------------------------------
 * Status codes and errors
 */

typedef enum apus_status {
    APUS_OK = 0,
    /* apus_node_next(): nothing arrived within the timeout. */
    APUS_TIMEOUT = 1,
    /* apus_node_next(): the event stream has ended (STOP was delivered); nothing more will come. */
    APUS_FINISHED = 2,
    /* A NULL, freed, or wrong-kind handle. */
    APUS_ERROR_INVALID_HANDLE = -1,
    /* A NULL pointer where one is required, or a value out of range. */
    APUS_ERROR_INVALID_ARGUMENT = -2,
    /* The output id is not declared by this node in the dataflow. */
    APUS_ERROR_UNKNOWN_OUTPUT = -3,
    /* The output was closed with apus_node_close_output(). */
    APUS_ERROR_OUTPUT_CLOSED = -4,
    /* The length does not fit: larger than a sample may be, or not a whole number of elements of
     * the metadata's type, or not the size its shape says. */
    APUS_ERROR_LENGTH = -5,
    /* The event has no such metadata parameter. */
    APUS_ERROR_NOT_FOUND = -6,
    /* The parameter, or the event, is of another type than the accessor reads. */
    APUS_ERROR_WRONG_TYPE = -7,
    /* The process was not started by `apus run` (APUS_NODE_ID / APUS_CONTROL_FD are not set). */
    APUS_ERROR_NOT_IN_DATAFLOW = -8,
    /* The connection to the daemon closed: `apus run` has exited. */
    APUS_ERROR_DISCONNECTED = -9,
    /* Shared memory failed: out of memory, a full queue under backpressure that did not drain in
     * time, a peer that wrote something invalid. */
    APUS_ERROR_TRANSPORT = -10
} apus_status_t;

/* The status of the last call on this thread that failed, returned NULL, or timed out. */
apus_status_t apus_last_status(void);

/* What went wrong in the last failing call on this thread; "" if nothing failed yet.
 * Valid until the next failing call on this thread. */
const char *apus_last_error(void);

/* The name of a status, e.g. "APUS_ERROR_UNKNOWN_OUTPUT"; a static string. */
const char *apus_status_name(apus_status_t status);

/* ------------------------------------------------------------------------------------------------
 * Types of payloads and metadata
 */

/* The element type of a payload; arrays arrive with the type they were sent with. */
typedef enum apus_type {
    APUS_TYPE_UINT8 = 0,
    APUS_TYPE_UINT16 = 1,
    APUS_TYPE_UINT32 = 2,
    APUS_TYPE_UINT64 = 3,
    APUS_TYPE_INT8 = 4,
    APUS_TYPE_INT16 = 5,
    APUS_TYPE_INT32 = 6,
    APUS_TYPE_INT64 = 7,
    APUS_TYPE_FLOAT16 = 8,
    APUS_TYPE_FLOAT32 = 9,
    APUS_TYPE_FLOAT64 = 10,
    APUS_TYPE_BOOL = 11,
    APUS_TYPE_UTF8 = 12
} apus_type_t;

/* The type of a metadata parameter. */
typedef enum apus_param_type {
    APUS_PARAM_BOOL = 1,
    APUS_PARAM_INT = 2,
    APUS_PARAM_FLOAT = 3,
    APUS_PARAM_STRING = 4,
    APUS_PARAM_BOOL_LIST = 5,
    APUS_PARAM_INT_LIST = 6,
    APUS_PARAM_FLOAT_LIST = 7,
    APUS_PARAM_STRING_LIST = 8
} apus_param_type_t;

typedef enum apus_event_type {
    /* A message on an input. Timer ticks are inputs with an empty payload. */
    APUS_EVENT_INPUT = 0,
    /* The producer of an input finished: nothing more arrives on it. */
    APUS_EVENT_INPUT_CLOSED = 1,
    /* The dataflow is stopping: finish up and return. apus_node_next() returns NULL afterwards. */
    APUS_EVENT_STOP = 2,
    /* A node feeding some of this node's inputs failed; they close next. */
    APUS_EVENT_NODE_FAILED = 3,
    /* Something went wrong receiving; the node can carry on. */
    APUS_EVENT_ERROR = 4
} apus_event_type_t;

typedef enum apus_log_level {
    APUS_LOG_ERROR = 0,
    APUS_LOG_WARN = 1,
    APUS_LOG_INFO = 2,
    APUS_LOG_DEBUG = 3
} apus_log_level_t;

typedef struct apus_node apus_node_t;
typedef struct apus_event apus_event_t;
typedef struct apus_sample apus_sample_t;
typedef struct apus_metadata apus_metadata_t;

/* ------------------------------------------------------------------------------------------------
 * The node
 */

/* Joins the dataflow this process was started in (from the environment `apus run` sets) and waits
 * until every node of the dataflow is connected. Returns NULL on failure: outside a dataflow,
 * apus_last_status() is APUS_ERROR_NOT_IN_DATAFLOW and apus_last_error() says how to run the node.
 * Call it once per process (a second call fails with APUS_ERROR_NOT_IN_DATAFLOW and says the
 * process has joined already); free the node with apus_node_free(). */
apus_node_t *apus_node_init_from_env(void);

/* Releases the node's handle. Events and samples of the node stay usable until they are freed.
 * The outputs stay open until the process exits (or apus_node_close_output closes them), so a
 * process that fails after this call is still reported to its consumers as failed (NODE_FAILED,
 * then INPUT_CLOSED). NULL is accepted and does nothing; a node freed already returns
 * APUS_ERROR_INVALID_HANDLE. */
apus_status_t apus_node_free(apus_node_t *node);

/* The node's id in the dataflow. Valid until the node is freed. */
const char *apus_node_id(const apus_node_t *node);

/* The node's declared inputs and outputs, in dataflow order. An id is valid until the node is
 * freed; an index out of range returns NULL with APUS_ERROR_INVALID_ARGUMENT. */
size_t apus_node_input_count(const apus_node_t *node);
const char *apus_node_input_id(const apus_node_t *node, size_t index);
/* Where input `index` comes from: "NODE/OUTPUT", or a timer in its canonical spelling
 * ("apus/timer/millis/100", also for inputs written as dora/timer/...). Valid until the node is
 * freed; an index out of range returns NULL with APUS_ERROR_INVALID_ARGUMENT. */
const char *apus_node_input_source(const apus_node_t *node, size_t index);
size_t apus_node_output_count(const apus_node_t *node);
const char *apus_node_output_id(const apus_node_t *node, size_t index);

/* Waits up to timeout_ns nanoseconds for the next event: a negative timeout waits without limit,
 * 0 takes only what is there already. Returns the event, which the caller frees with
 * apus_event_free(); or NULL, with apus_last_status() saying why:
 *   APUS_TIMEOUT   nothing came within the timeout;
 *   APUS_FINISHED  the stream ended: STOP was returned before, nothing more will come;
 *   negative       an error, described by apus_last_error().
 * Messages queued before STOP are delivered before it. Called by one thread at a time. */
apus_event_t *apus_node_next(apus_node_t *node, int64_t timeout_ns);

/* Receives several events in one call, for high message rates: waits as apus_node_next() does
 * for the first, then takes whatever else is ready now, up to `capacity`, without waiting again.
 * Stores them in out_events[0..n), and their types in out_types[0..n) unless out_types is NULL,
 * and returns n; each event is freed with apus_event_free(). On 0, apus_last_status() says why,
 * as for apus_node_next(). The order is that of apus_node_next(). */
size_t apus_node_next_many(apus_node_t *node, apus_event_t **out_events, apus_event_type_t *out_types,
                           size_t capacity, int64_t timeout_ns);

/* Sends a copy of `length` bytes at `data` on `output` (one copy, into shared memory).
 * `metadata` may be NULL (a uint8 payload without parameters); it is only read during the call.
 * `data` may be NULL when `length` is 0. The length must be a whole number of elements of the
 * metadata's type, and match its shape if one is set. */
apus_status_t apus_node_send(apus_node_t *node, const char *output, const void *data, size_t length,
                             const apus_metadata_t *metadata);

/* Sends `count` messages on `output` in one call, for high message rates: message i is a copy of
 * lengths[i] bytes at data[i], described by metadata[i] as in apus_node_send(). `metadata` may be
 * NULL (every message plain bytes), as may any of its entries. Each message is a sample of its
 * own with its own send timestamp, in order. Stops at the first failure; *out_sent (may be NULL)
 * is set to how many were sent either way. */
apus_status_t apus_node_send_many(apus_node_t *node, const char *output, const void *const *data,
                                  const size_t *lengths, const apus_metadata_t *const *metadata, size_t count,
                                  size_t *out_sent);

/* Reserves `length` bytes in shared memory for a message on `output`, to fill in place and send
 * with apus_node_send_sample() without a copy. On success *out_sample is set; on failure it is
 * set to NULL. A sample that is not sent must be given back with apus_sample_discard(). */
apus_status_t apus_node_allocate(apus_node_t *node, const char *output, size_t length,
                                 apus_sample_t **out_sample);

/* The writable payload of an allocated sample (64-byte aligned), valid until the sample is sent
 * or discarded. NULL for a bad handle. */
void *apus_sample_data(apus_sample_t *sample);

/* The payload length of an allocated sample, as requested. */
size_t apus_sample_length(const apus_sample_t *sample);

/* Sends an allocated sample on the output it was allocated for. The sample handle is consumed
 * whatever the result: on failure its memory goes back to the pool. `metadata` may be NULL. */
apus_status_t apus_node_send_sample(apus_node_t *node, apus_sample_t *sample,
                                    const apus_metadata_t *metadata);

/* Gives an allocated, unsent sample back to the pool and frees its handle. NULL is accepted and
 * does nothing; a sample discarded or sent already returns APUS_ERROR_INVALID_HANDLE. */
apus_status_t apus_sample_discard(apus_sample_t *sample);

/* Tells the consumers of `output` that nothing more will come (they get APUS_EVENT_INPUT_CLOSED).
 * Sending on it afterwards fails with APUS_ERROR_OUTPUT_CLOSED. Closing twice is not an error. */
apus_status_t apus_node_close_output(apus_node_t *node, const char *output);

/* Writes one log line, e.g. "INFO  camera started", to standard error, which `apus run` shows with
 * the node's name and stores in the node's log file. */
apus_status_t apus_node_log(apus_node_t *node, apus_log_level_t level, const char *message);

/* ------------------------------------------------------------------------------------------------
 * Events
 *
 * Every pointer an accessor returns points into the event (for an input, into the producer's
 * shared memory, read-only) and stays valid until apus_event_free(event).
 */

/* The kind of event; APUS_EVENT_ERROR for a bad handle. */
apus_event_type_t apus_event_type(const apus_event_t *event);

/* INPUT and INPUT_CLOSED: the input's id. NODE_FAILED: the id of the node that failed.
 * Other events: "". NULL for a bad handle. */
const char *apus_event_id(const apus_event_t *event);

/* ERROR and NODE_FAILED: what happened, e.g. "node 'camera' exited with status 1".
 * Other events: "". NULL for a bad handle. */
const char *apus_event_message(const apus_event_t *event);

/* INPUT: the payload in place, read-only, 64-byte aligned; *out_length (if not NULL) is set to its
 * length in bytes. An empty payload (a timer tick) is a non-NULL pointer with length 0.
 * Other events: NULL with APUS_ERROR_WRONG_TYPE. */
const void *apus_event_data(const apus_event_t *event, size_t *out_length);

/* INPUT: the payload's element type as sent (APUS_TYPE_UINT8 unless the sender set one). */
apus_type_t apus_event_data_type(const apus_event_t *event);

/* INPUT: the payload's shape as sent. *out_dims points to *out_rank dimensions (rank 0: no shape
 * was set, the payload is a flat array). */
apus_status_t apus_event_shape(const apus_event_t *event, const uint64_t **out_dims, size_t *out_rank);

/* An INPUT's payload and layout in one call (what apus_event_data, apus_event_data_type and
 * apus_event_shape give one by one), for bindings where each call costs. */
typedef struct apus_input_view {
    const void *data;     /* the payload in place, read-only; non-NULL */
    size_t length;        /* in bytes */
    apus_type_t type;     /* the element type as sent */
    size_t rank;          /* 0: no shape was set, the payload is a flat array */
    const uint64_t *dims; /* rank dimensions */
} apus_input_view_t;

/* INPUT: fills *out_view. Other events: APUS_ERROR_WRONG_TYPE, and *out_view is left alone. */
apus_status_t apus_event_view(const apus_event_t *event, apus_input_view_t *out_view);

/* INPUT: when the message was sent, in monotonic nanoseconds (CLOCK_MONOTONIC, comparable across
 * the nodes of one machine). A message from another machine: its send time carried through the
 * machines' wall clocks into this machine's monotonic clock, never later than its arrival here (it
 * means what it says when the machines' clocks are kept in step). 0 for other events. */
uint64_t apus_event_timestamp(const apus_event_t *event);

/* INPUT: the number of metadata parameters, and the key and type of the one at `index`, in the
 * order the sender set them. The key is valid until the event is freed. */
size_t apus_event_param_count(const apus_event_t *event);
apus_status_t apus_event_param_at(const apus_event_t *event, size_t index, const char **out_key,
                                  apus_param_type_t *out_type);

/* INPUT: the type of the parameter `key`; APUS_ERROR_NOT_FOUND if the message has none. */
apus_status_t apus_event_param_type(const apus_event_t *event, const char *key, apus_param_type_t *out_type);

/* INPUT: the value of the parameter `key`. APUS_ERROR_NOT_FOUND if there is none,
 * APUS_ERROR_WRONG_TYPE if it has another type (see apus_event_param_type). Lists and strings
 * point into the event; a string is NUL-terminated and *out_length is its length in bytes. */
apus_status_t apus_event_param_bool(const apus_event_t *event, const char *key, bool *out_value);
apus_status_t apus_event_param_int(const apus_event_t *event, const char *key, int64_t *out_value);
apus_status_t apus_event_param_float(const apus_event_t *event, const char *key, double *out_value);
apus_status_t apus_event_param_string(const apus_event_t *event, const char *key, const char **out_value,
                                      size_t *out_length);
apus_status_t apus_event_param_bools(const apus_event_t *event, const char *key, const bool **out_values,
                                     size_t *out_count);
apus_status_t apus_event_param_ints(const apus_event_t *event, const char *key, const int64_t **out_values,
                                    size_t *out_count);
apus_status_t apus_event_param_floats(const apus_event_t *event, const char *key, const double **out_values,
                                      size_t *out_count);
apus_status_t apus_event_param_strings(const apus_event_t *event, const char *key,
                                       const char *const **out_values, size_t *out_count);

/* Frees the event and, for an input, releases its shared memory back to the producer. Every
 * pointer obtained from the event becomes invalid. NULL is accepted and does nothing; an event
 * freed twice returns APUS_ERROR_INVALID_HANDLE. */
apus_status_t apus_event_free(apus_event_t *event);

/* ------------------------------------------------------------------------------------------------
 * Metadata to send: element type, shape and typed parameters
 *
 * A metadata object is built once and may be reused for many sends; sending only reads it.
 * Setting a key that is set already replaces its value and keeps its position.
 */

/* A new, empty metadata object (type uint8, no shape, no parameters); free it with
 * apus_metadata_free(). NULL only when memory is exhausted. */
apus_metadata_t *apus_metadata_new(void);

/* Frees a metadata object. NULL is accepted; freeing twice returns APUS_ERROR_INVALID_HANDLE. */
apus_status_t apus_metadata_free(apus_metadata_t *metadata);

/* Empties a metadata object for reuse: type uint8, no shape, no parameters. */
apus_status_t apus_metadata_clear(apus_metadata_t *metadata);

/* The element type of the payload; an unknown value is APUS_ERROR_INVALID_ARGUMENT. */
apus_status_t apus_metadata_set_type(apus_metadata_t *metadata, apus_type_t type);

/* The payload's shape (e.g. {480, 640, 3}); `rank` 0 removes it. At most 32 dimensions. */
apus_status_t apus_metadata_set_shape(apus_metadata_t *metadata, const uint64_t *dims, size_t rank);

/* Typed parameters. The key and values are copied. Lists may be empty (values may then be NULL). */
apus_status_t apus_metadata_set_bool(apus_metadata_t *metadata, const char *key, bool value);
apus_status_t apus_metadata_set_int(apus_metadata_t *metadata, const char *key, int64_t value);
apus_status_t apus_metadata_set_float(apus_metadata_t *metadata, const char *key, double value);
apus_status_t apus_metadata_set_string(apus_metadata_t *metadata, const char *key, const char *value);
apus_status_t apus_metadata_set_bools(apus_metadata_t *metadata, const char *key, const bool *values,
                                      size_t count);
apus_status_t apus_metadata_set_ints(apus_metadata_t *metadata, const char *key, const int64_t *values,
                                     size_t count);
apus_status_t apus_metadata_set_floats(apus_metadata_t *metadata, const char *key, const double *values,
                                       size_t count);
apus_status_t apus_metadata_set_strings(apus_metadata_t *metadata, const char *key, const char *const *values,
                                        size_t count);

/* CDEF-END */

/*
 * Allocators: shared memory for code that takes the caller's allocator
 *
 * A C library that lets its caller supply the allocator its results are written into can be
 * handed one whose memory is a shared-memory sample of an output: the result is then sent with no
 * copy. The size of each block is kept by Apus, out of the caller's reach, so `free` takes none,
 * and a pointer that is not one of its blocks is refused, never freed.
 *
 *     apus_allocator_t a = apus_node_output_allocator(node, "out");
 *     void *p = a.alloc(a.ctx, n, 64);       // in the pool of "out"; hand `a` to a library
 *     apus_node_send_allocated(node, "out", p, n, NULL);   // that very sample is queued
 *
 * - alloc(ctx, size, alignment) returns a block of `size` bytes (at least one), aligned to
 *   `alignment`: 0 or a power of two up to 64, the alignment every block has. It returns NULL,
 *   with apus_last_error() saying why, for a larger or odd alignment, a size above the node's
 *   largest sample, or a bad ctx.
 * - realloc(ctx, ptr, size, alignment) grows or shrinks a block in place while its slot has room
 *   (a pool slot is at least as large as asked, often larger), and otherwise moves it to a new
 *   block, copying the contents, and frees the old one. NULL ptr allocates. It returns NULL for a
 *   pointer that is not a live block of this allocator (the block is then left alone).
 * - free(ctx, ptr) returns the block to its pool. NULL is accepted. A pointer that is not a live
 *   block of this allocator (from elsewhere, freed already, or sent) is APUS_ERROR_INVALID_ARGUMENT
 *   and is left alone.
 * - The functions may be called from any thread. Blocks never sent nor freed return to their
 *   pool when the node (or operator) is freed.
 */
typedef struct apus_allocator {
    void *ctx;
    void *(*alloc)(void *ctx, size_t size, size_t alignment);
    void *(*realloc)(void *ctx, void *ptr, size_t size, size_t alignment);
    apus_status_t (*free)(void *ctx, void *ptr);
} apus_allocator_t;

/* The allocator of `output`'s samples. Valid until the node is freed. On failure (bad node,
 * unknown output) ctx is NULL, and the functions, called anyway, refuse it. */
apus_allocator_t apus_node_output_allocator(apus_node_t *node, const char *output);

/* Sends the first `length` bytes of a block of `output`'s allocator, zero-copy, with `metadata`
 * (may be NULL) as for apus_node_send. The block is consumed: it belongs to the receivers now, and
 * is no longer this allocator's to free or send. A pointer that is not a live block of this
 * output's allocator (from elsewhere, freed, sent already, or allocated for another output) is
 * APUS_ERROR_INVALID_ARGUMENT; a length beyond the block is APUS_ERROR_LENGTH. */
apus_status_t apus_node_send_allocated(apus_node_t *node, const char *output, void *ptr, size_t length,
                                       const apus_metadata_t *metadata);


/*
 * Operators
 *
 * An operator is a node without a process: a shared library that the operator runtime of a
 * runtime node loads (`operators:` with `shared-library:` in the dataflow) and calls once per
 * event. Build one with `cc -shared -fPIC op.c -o libop.so $(apus config --cflags)`; the runtime
 * has libapus.so loaded already. It defines three functions:
 *
 *     apus_status_t apus_operator_init(apus_node_t *node, void **state);
 *     apus_operator_status_t apus_operator_on_event(apus_node_t *node, const apus_event_t *event,
 *                                                   void *state);
 *     void apus_operator_drop(apus_node_t *node, void *state);
 *
 * - `node` is the operator's own view of its runtime node, valid from init to drop: apus_node_id
 *   is "NODE/OPERATOR"; its inputs and outputs are the operator's own, with the ids written under
 *   the operator in the dataflow; apus_node_send, _allocate, _send_sample, _close_output and _log
 *   work as for a node, zero-copy included. apus_node_next and apus_node_free refuse it
 *   (APUS_ERROR_INVALID_ARGUMENT): events come through on_event, and the runtime owns the handle.
 * - init stores what the operator keeps in *state (NULL is fine), passed to every later call. A
 *   status other than APUS_OK means the operator could not start: it is reported, with the message
 *   given to apus_operator_fail() if any, and the operator does not run (the others do).
 * - on_event gets every event of the operator's inputs (INPUT, INPUT_CLOSED, NODE_FAILED, ERROR),
 *   then STOP. The event belongs to the runtime: it and everything read from it are valid until
 *   on_event returns (do not free it; copy what you keep). Return APUS_OPERATOR_CONTINUE, or
 *   APUS_OPERATOR_STOP when the operator is done (its outputs close; the others carry on),
 *   APUS_OPERATOR_STOP_ALL to stop the whole dataflow, APUS_OPERATOR_ERROR when it failed: call
 *   apus_operator_fail() first to say why. The failure is reported with the node and operator
 *   ids and the message; that operator stops, the others keep running.
 * - drop is called once, last, from the thread that called on_event; the library is unloaded
 *   after it.
 * - Threads: all calls for one operator come from one thread. Operators of one runtime node that
 *   feed one another share a thread; operators that do not run on threads of their own, so a slow
 *   one does not delay the events of the others.
 * - A crash (a signal) takes the runtime node down; its restart_policy applies, and the report
 *   names the operator and the input it was handling.
 */
typedef enum apus_operator_status {
    APUS_OPERATOR_CONTINUE = 0,
    APUS_OPERATOR_STOP = 1,
    APUS_OPERATOR_STOP_ALL = 2,
    APUS_OPERATOR_ERROR = 3
} apus_operator_status_t;

typedef apus_status_t (*apus_operator_init_fn)(apus_node_t *node, void **state);
typedef apus_operator_status_t (*apus_operator_on_event_fn)(apus_node_t *node, const apus_event_t *event, void *state);
typedef void (*apus_operator_drop_fn)(apus_node_t *node, void *state);

/* Records why the operator fails, for the APUS_OPERATOR_ERROR (or failed init) it returns next.
 * The message is copied. APUS_ERROR_INVALID_ARGUMENT for a node that is not an operator's. */
apus_status_t apus_operator_fail(apus_node_t *node, const char *message);

/* The entry point of the operator runtime (the program a runtime node runs); not for operators. */
int apus_operator_runtime_main(int argc, char **argv);

#ifdef __cplusplus
}
#endif

#endif /* APUS_H */

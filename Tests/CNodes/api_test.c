/* api_test: a C node that exercises every function of apus.h inside a real dataflow.
 *
 * It takes its role as its argument; RunCommandTests.CAPI builds it with -Werror in a dataflow's
 * build step and runs the roles together:
 *   producer  / consumer   every function, all element types, every parameter type, zero-copy,
 *                          and the boundary cases (bad handles, lengths, ids, double frees)
 *   crash     / watcher    a producer that exits 3; the watcher sees NODE_FAILED, then the close
 *   burst / hoarder / fast a consumer that holds its events while it sleeps, and one that must
 *                          still get every message
 *   echo                   sends every input on `out` again (copied into a sample it allocates), with
 *                          its type, shape and parameters read back through the accessors
 *   floats / doubled       three float32 values out, and the same values doubled back (for the
 *                          README's example node, which sits between them)
 * Each role prints "<role>: ok, N checks" and exits 0, or names each failed check and exits 1. */
#define _POSIX_C_SOURCE 200809L
#include <apus.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int checks, failures;

#define CHECK(condition)                                                                                              \
    do {                                                                                                              \
        checks++;                                                                                                     \
        if (!(condition)) {                                                                                           \
            failures++;                                                                                               \
            fprintf(stderr, "api_test.c:%d: check failed: %s (last error: %s %s)\n", __LINE__, #condition,           \
                    apus_status_name(apus_last_status()), apus_last_error());                                         \
        }                                                                                                             \
    } while (0)

/* A call that must fail with `status`, and leave it as the thread's last status. */
#define CHECK_FAILS(call, status) CHECK((call) == (status) && apus_last_status() == (status))

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int finish(const char *role) {
    if (failures == 0) printf("%s: ok, %d checks\n", role, checks);
    else printf("%s: %d of %d checks failed\n", role, failures, checks);
    return failures == 0 ? 0 : 1;
}

static apus_node_t *join(void) {
    apus_node_t *node = apus_node_init_from_env();
    if (node == NULL) {
        fprintf(stderr, "api_test: %s\n", apus_last_error());
        exit(2);
    }
    return node;
}

/* Leaves the dataflow, then checks that the node handle is refused from then on. */
static void leave(apus_node_t *node) {
    CHECK(apus_node_free(node) == APUS_OK);
    CHECK_FAILS(apus_node_free(node), APUS_ERROR_INVALID_HANDLE);
    CHECK(apus_node_next(node, 0) == NULL && apus_last_status() == APUS_ERROR_INVALID_HANDLE);
    CHECK_FAILS(apus_node_send(node, "data", "x", 1, NULL), APUS_ERROR_INVALID_HANDLE);
    CHECK(apus_node_id(node) == NULL && apus_last_status() == APUS_ERROR_INVALID_HANDLE);
    CHECK(strstr(apus_last_error(), "freed already") != NULL);
}

/* ---- the four-byte test values of each element type, as the producer sends them ---- */

static size_t typed_values(apus_type_t type, uint8_t *out) {
    size_t width;
    switch (type) {
    case APUS_TYPE_UINT8: case APUS_TYPE_INT8: case APUS_TYPE_BOOL: case APUS_TYPE_UTF8: width = 1; break;
    case APUS_TYPE_UINT16: case APUS_TYPE_INT16: case APUS_TYPE_FLOAT16: width = 2; break;
    case APUS_TYPE_UINT32: case APUS_TYPE_INT32: case APUS_TYPE_FLOAT32: width = 4; break;
    default: width = 8; break;
    }
    for (int i = 0; i < 4; i++) {
        uint8_t *p = out + (size_t)i * width;
        switch (type) {
        case APUS_TYPE_UINT8: p[0] = (uint8_t)(200 + i); break;
        case APUS_TYPE_INT8: { int8_t v = (int8_t)(-100 - i); memcpy(p, &v, 1); } break;
        case APUS_TYPE_BOOL: p[0] = (uint8_t)(i % 2); break;
        case APUS_TYPE_UTF8: p[0] = (uint8_t)('w' + i); break;
        case APUS_TYPE_UINT16: { uint16_t v = (uint16_t)(60000 + i); memcpy(p, &v, 2); } break;
        case APUS_TYPE_INT16: { int16_t v = (int16_t)(-30000 - i); memcpy(p, &v, 2); } break;
        case APUS_TYPE_FLOAT16: { uint16_t v = (uint16_t)(0x3C00 + 0x400 * i); memcpy(p, &v, 2); } break;
        case APUS_TYPE_UINT32: { uint32_t v = 4000000000u + (uint32_t)i; memcpy(p, &v, 4); } break;
        case APUS_TYPE_INT32: { int32_t v = -2000000000 - i; memcpy(p, &v, 4); } break;
        case APUS_TYPE_FLOAT32: { float v = 1.5f * (float)(i + 1); memcpy(p, &v, 4); } break;
        case APUS_TYPE_UINT64: { uint64_t v = UINT64_MAX - (uint64_t)i; memcpy(p, &v, 8); } break;
        case APUS_TYPE_INT64: { int64_t v = INT64_MIN + i; memcpy(p, &v, 8); } break;
        case APUS_TYPE_FLOAT64: { double v = -0.125 * (double)(i + 1); memcpy(p, &v, 8); } break;
        }
    }
    return 4 * width;
}

enum { TYPE_COUNT = 13, ZERO_COPY_BYTES = 1 << 20 };

/* ---- producer ---- */

static void producer_boundaries(apus_node_t *node) {
    const uint64_t *dims;
    size_t rank, length = 7;
    bool flag;
    int64_t number;
    double real;
    const char *text;
    apus_param_type_t type;
    apus_sample_t *sample = (apus_sample_t *)&length;

    CHECK(strlen(apus_version()) > 0);
    CHECK(strcmp(apus_status_name(APUS_ERROR_LENGTH), "APUS_ERROR_LENGTH") == 0);
    CHECK(strcmp(apus_status_name(APUS_OK), "APUS_OK") == 0);
    CHECK(strcmp(apus_status_name((apus_status_t)77), "APUS_UNKNOWN_STATUS") == 0);

    /* NULL handles, to every kind of function. */
    CHECK(apus_node_next(NULL, 0) == NULL && apus_last_status() == APUS_ERROR_INVALID_HANDLE);
    CHECK(strstr(apus_last_error(), "apus_node_next") != NULL);
    CHECK_FAILS(apus_node_send(NULL, "data", "x", 1, NULL), APUS_ERROR_INVALID_HANDLE);
    CHECK(apus_node_id(NULL) == NULL);
    CHECK(apus_node_input_count(NULL) == 0 && apus_last_status() == APUS_ERROR_INVALID_HANDLE);
    CHECK(apus_node_output_count(NULL) == 0);
    CHECK(apus_node_input_id(NULL, 0) == NULL && apus_node_output_id(NULL, 0) == NULL);
    CHECK(apus_node_input_source(NULL, 0) == NULL && apus_last_status() == APUS_ERROR_INVALID_HANDLE);
    CHECK_FAILS(apus_node_allocate(NULL, "data", 8, &sample), APUS_ERROR_INVALID_HANDLE);
    CHECK(sample == NULL);
    CHECK_FAILS(apus_node_send_sample(node, NULL, NULL), APUS_ERROR_INVALID_HANDLE);
    CHECK_FAILS(apus_node_close_output(NULL, "data"), APUS_ERROR_INVALID_HANDLE);
    CHECK_FAILS(apus_node_log(NULL, APUS_LOG_INFO, "x"), APUS_ERROR_INVALID_HANDLE);
    CHECK(apus_node_free(NULL) == APUS_OK);
    CHECK(apus_event_free(NULL) == APUS_OK);

    /* The batch functions: NULL handles and arrays, an empty batch, a capacity of 0. */
    apus_event_t *events[4] = {NULL};
    apus_event_type_t kinds[4];
    const void *many[2] = {"ab", NULL};
    const size_t many_lengths[2] = {2, 1};
    size_t sent = 9;
    CHECK_FAILS(apus_node_send_many(NULL, "data", many, many_lengths, NULL, 1, &sent), APUS_ERROR_INVALID_HANDLE);
    CHECK(sent == 0);
    CHECK(apus_node_send_many(node, "data", NULL, NULL, NULL, 0, &sent) == APUS_OK && sent == 0);
    CHECK_FAILS(apus_node_send_many(node, "data", NULL, many_lengths, NULL, 1, NULL), APUS_ERROR_INVALID_ARGUMENT);
    CHECK_FAILS(apus_node_send_many(node, "data", many, NULL, NULL, 1, NULL), APUS_ERROR_INVALID_ARGUMENT);
    CHECK_FAILS(apus_node_send_many(node, "nope", many, many_lengths, NULL, 1, &sent), APUS_ERROR_UNKNOWN_OUTPUT);
    CHECK(sent == 0);
    CHECK(apus_node_next_many(NULL, events, kinds, 4, 0) == 0 && apus_last_status() == APUS_ERROR_INVALID_HANDLE);
    CHECK(apus_node_next_many(node, NULL, kinds, 4, 0) == 0 && apus_last_status() == APUS_ERROR_INVALID_ARGUMENT);
    CHECK(apus_node_next_many(node, events, kinds, 0, 0) == 0 && apus_last_status() == APUS_ERROR_INVALID_ARGUMENT);
    CHECK(apus_node_next_many(node, events, NULL, 4, 0) == 0 && apus_last_status() == APUS_TIMEOUT);
    CHECK(events[0] == NULL);
    apus_input_view_t view = {0};
    CHECK_FAILS(apus_event_view(NULL, &view), APUS_ERROR_INVALID_HANDLE);
    CHECK_FAILS(apus_event_view((apus_event_t *)&length, &view), APUS_ERROR_INVALID_HANDLE);
    CHECK(view.data == NULL);
    CHECK(apus_sample_discard(NULL) == APUS_OK);
    CHECK(apus_metadata_free(NULL) == APUS_OK);
    CHECK(apus_event_type(NULL) == APUS_EVENT_ERROR && apus_last_status() == APUS_ERROR_INVALID_HANDLE);
    CHECK(apus_event_id(NULL) == NULL && apus_event_message(NULL) == NULL);
    CHECK(apus_event_data(NULL, &length) == NULL && length == 0);
    CHECK(apus_event_data_type(NULL) == APUS_TYPE_UINT8 && apus_last_status() == APUS_ERROR_INVALID_HANDLE);
    CHECK_FAILS(apus_event_shape(NULL, &dims, &rank), APUS_ERROR_INVALID_HANDLE);
    CHECK(apus_event_timestamp(NULL) == 0 && apus_event_param_count(NULL) == 0);
    CHECK_FAILS(apus_event_param_at(NULL, 0, &text, &type), APUS_ERROR_INVALID_HANDLE);
    CHECK_FAILS(apus_event_param_type(NULL, "k", &type), APUS_ERROR_INVALID_HANDLE);
    CHECK_FAILS(apus_event_param_bool(NULL, "k", &flag), APUS_ERROR_INVALID_HANDLE);
    CHECK_FAILS(apus_event_param_int(NULL, "k", &number), APUS_ERROR_INVALID_HANDLE);
    CHECK_FAILS(apus_event_param_float(NULL, "k", &real), APUS_ERROR_INVALID_HANDLE);
    CHECK_FAILS(apus_event_param_string(NULL, "k", &text, &length), APUS_ERROR_INVALID_HANDLE);
    CHECK(apus_sample_data(NULL) == NULL && apus_sample_length(NULL) == 0);
    CHECK_FAILS(apus_metadata_set_int(NULL, "k", 1), APUS_ERROR_INVALID_HANDLE);
    CHECK_FAILS(apus_metadata_clear(NULL), APUS_ERROR_INVALID_HANDLE);

    /* A handle that was never given out, and a handle of another kind. */
    CHECK(apus_event_type((apus_event_t *)(uintptr_t)0x1234) == APUS_EVENT_ERROR);
    CHECK(apus_last_status() == APUS_ERROR_INVALID_HANDLE);
    apus_metadata_t *metadata = apus_metadata_new();
    CHECK(metadata != NULL);
    CHECK_FAILS(apus_node_send((apus_node_t *)metadata, "data", "x", 1, NULL), APUS_ERROR_INVALID_HANDLE);
    CHECK_FAILS(apus_event_free((apus_event_t *)metadata), APUS_ERROR_INVALID_HANDLE);
    CHECK_FAILS(apus_node_send(node, "data", "x", 1, (apus_metadata_t *)node), APUS_ERROR_INVALID_HANDLE);
    CHECK(apus_metadata_set_int(metadata, "still", 1) == APUS_OK); /* the refused free left it alive */

    /* Node accessors. */
    CHECK(strcmp(apus_node_id(node), "producer") == 0);
    CHECK(apus_node_input_count(node) == 0);
    CHECK(apus_node_output_count(node) == 2);
    CHECK(strcmp(apus_node_output_id(node, 0), "data") == 0 && strcmp(apus_node_output_id(node, 1), "spare") == 0);
    CHECK(apus_node_output_id(node, 2) == NULL && apus_last_status() == APUS_ERROR_INVALID_ARGUMENT);
    CHECK(apus_node_input_id(node, 0) == NULL && apus_last_status() == APUS_ERROR_INVALID_ARGUMENT);

    /* Unknown and NULL output ids. */
    CHECK_FAILS(apus_node_send(node, "nope", "x", 1, NULL), APUS_ERROR_UNKNOWN_OUTPUT);
    CHECK(strstr(apus_last_error(), "'nope'") != NULL && strstr(apus_last_error(), "'data', 'spare'") != NULL);
    CHECK_FAILS(apus_node_allocate(node, "nope", 8, &sample), APUS_ERROR_UNKNOWN_OUTPUT);
    CHECK_FAILS(apus_node_close_output(node, "nope"), APUS_ERROR_UNKNOWN_OUTPUT);
    CHECK_FAILS(apus_node_send(node, NULL, "x", 1, NULL), APUS_ERROR_INVALID_ARGUMENT);

    /* Lengths: oversized, NULL data, not whole elements, not the shape. */
    CHECK_FAILS(apus_node_send(node, "data", "x", SIZE_MAX, NULL), APUS_ERROR_LENGTH);
    CHECK_FAILS(apus_node_allocate(node, "data", SIZE_MAX, &sample), APUS_ERROR_LENGTH);
    CHECK_FAILS(apus_node_allocate(node, "data", (size_t)1 << 40, &sample), APUS_ERROR_LENGTH);
    CHECK(sample == NULL);
    CHECK_FAILS(apus_node_send(node, "data", NULL, 4, NULL), APUS_ERROR_INVALID_ARGUMENT);
    apus_metadata_t *floats = apus_metadata_new();
    CHECK(apus_metadata_set_type(floats, APUS_TYPE_FLOAT32) == APUS_OK);
    CHECK_FAILS(apus_node_send(node, "data", "123456", 6, floats), APUS_ERROR_LENGTH);
    CHECK(strstr(apus_last_error(), "6 bytes is not a whole number of float32") != NULL);
    const uint64_t two_by_three[2] = {2, 3};
    CHECK(apus_metadata_set_type(floats, APUS_TYPE_UINT8) == APUS_OK);
    CHECK(apus_metadata_set_shape(floats, two_by_three, 2) == APUS_OK);
    CHECK_FAILS(apus_node_send(node, "data", "12345", 5, floats), APUS_ERROR_LENGTH);
    CHECK(strstr(apus_last_error(), "shape 2×3") != NULL);

    /* Metadata arguments. */
    CHECK_FAILS(apus_metadata_set_type(floats, (apus_type_t)13), APUS_ERROR_INVALID_ARGUMENT);
    CHECK_FAILS(apus_metadata_set_shape(floats, two_by_three, 33), APUS_ERROR_INVALID_ARGUMENT);
    CHECK_FAILS(apus_metadata_set_shape(floats, NULL, 2), APUS_ERROR_INVALID_ARGUMENT);
    CHECK(apus_metadata_set_shape(floats, NULL, 0) == APUS_OK);
    CHECK_FAILS(apus_metadata_set_int(floats, NULL, 1), APUS_ERROR_INVALID_ARGUMENT);
    CHECK_FAILS(apus_metadata_set_int(floats, "", 1), APUS_ERROR_INVALID_ARGUMENT);
    CHECK_FAILS(apus_metadata_set_int(floats, "\xff\xfe", 1), APUS_ERROR_INVALID_ARGUMENT);
    CHECK(strstr(apus_last_error(), "UTF-8") != NULL);
    CHECK_FAILS(apus_metadata_set_string(floats, "k", NULL), APUS_ERROR_INVALID_ARGUMENT);
    CHECK_FAILS(apus_metadata_set_string(floats, "k", "\xc3"), APUS_ERROR_INVALID_ARGUMENT);
    CHECK_FAILS(apus_metadata_set_ints(floats, "k", NULL, 3), APUS_ERROR_INVALID_ARGUMENT);
    CHECK_FAILS(apus_metadata_set_floats(floats, "k", NULL, SIZE_MAX), APUS_ERROR_INVALID_ARGUMENT);
    const char *with_null[2] = {"a", NULL};
    CHECK_FAILS(apus_metadata_set_strings(floats, "k", with_null, 2), APUS_ERROR_INVALID_ARGUMENT);
    CHECK(strstr(apus_last_error(), "values[1]") != NULL);

    /* Double frees and use after free. */
    CHECK(apus_metadata_free(floats) == APUS_OK);
    CHECK_FAILS(apus_metadata_free(floats), APUS_ERROR_INVALID_HANDLE);
    CHECK_FAILS(apus_metadata_set_int(floats, "k", 1), APUS_ERROR_INVALID_HANDLE);
    CHECK(apus_node_allocate(node, "data", 100, &sample) == APUS_OK && sample != NULL);
    CHECK(apus_sample_length(sample) == 100);
    CHECK(apus_sample_discard(sample) == APUS_OK);
    CHECK_FAILS(apus_sample_discard(sample), APUS_ERROR_INVALID_HANDLE);
    CHECK_FAILS(apus_node_send_sample(node, sample, NULL), APUS_ERROR_INVALID_HANDLE);
    CHECK(apus_sample_data(sample) == NULL);

    /* A sample sent with metadata that does not fit it is consumed, not leaked. */
    CHECK(apus_node_allocate(node, "data", 100, &sample) == APUS_OK);
    CHECK(apus_metadata_set_type(metadata, APUS_TYPE_FLOAT64) == APUS_OK);
    CHECK_FAILS(apus_node_send_sample(node, sample, metadata), APUS_ERROR_LENGTH);
    CHECK(apus_sample_data(sample) == NULL && apus_last_status() == APUS_ERROR_INVALID_HANDLE);

    /* Logging. */
    CHECK(apus_node_log(node, APUS_LOG_ERROR, "log at error") == APUS_OK);
    CHECK(apus_node_log(node, APUS_LOG_WARN, "log at warn") == APUS_OK);
    CHECK(apus_node_log(node, APUS_LOG_INFO, "log at info") == APUS_OK);
    CHECK(apus_node_log(node, APUS_LOG_DEBUG, "log at debug") == APUS_OK);
    CHECK_FAILS(apus_node_log(node, (apus_log_level_t)9, "x"), APUS_ERROR_INVALID_ARGUMENT);
    CHECK_FAILS(apus_node_log(node, APUS_LOG_INFO, NULL), APUS_ERROR_INVALID_ARGUMENT);

    /* Closing an output: twice is fine, sending on it is not. */
    CHECK(apus_node_close_output(node, "spare") == APUS_OK);
    CHECK(apus_node_close_output(node, "spare") == APUS_OK);
    CHECK_FAILS(apus_node_send(node, "spare", "x", 1, NULL), APUS_ERROR_OUTPUT_CLOSED);
    CHECK_FAILS(apus_node_allocate(node, "spare", 1, &sample), APUS_ERROR_OUTPUT_CLOSED);
    apus_metadata_free(metadata);
}

static int producer(void) {
    apus_node_t *node = join();
    producer_boundaries(node);
    apus_metadata_t *metadata = apus_metadata_new();

    /* 1. Every element type, 4 elements each, shape 2×2, copied once. */
    for (int t = 0; t < TYPE_COUNT; t++) {
        uint8_t values[32];
        size_t length = typed_values((apus_type_t)t, values);
        const uint64_t shape[2] = {2, 2};
        CHECK(apus_metadata_clear(metadata) == APUS_OK);
        CHECK(apus_metadata_set_type(metadata, (apus_type_t)t) == APUS_OK);
        CHECK(apus_metadata_set_shape(metadata, shape, 2) == APUS_OK);
        CHECK(apus_metadata_set_int(metadata, "type", t) == APUS_OK);
        CHECK(apus_node_send(node, "data", values, length, metadata) == APUS_OK);
    }

    /* 2. Every parameter type, on an empty payload. Setting `count` twice keeps its position. */
    const bool flags[3] = {true, false, true};
    const int64_t numbers[3] = {1, -2, (int64_t)3 << 40};
    const double reals[2] = {0.25, -1.5};
    const char *words[3] = {"a", "", "\xc3\xbcn\xc3\xaf"};
    CHECK(apus_metadata_clear(metadata) == APUS_OK);
    CHECK(apus_metadata_set_bool(metadata, "flag", true) == APUS_OK);
    CHECK(apus_metadata_set_int(metadata, "count", 1) == APUS_OK);
    CHECK(apus_metadata_set_float(metadata, "ratio", 0.5) == APUS_OK);
    CHECK(apus_metadata_set_string(metadata, "name", "cam\xc3\xa9ra") == APUS_OK);
    CHECK(apus_metadata_set_bools(metadata, "flags", flags, 3) == APUS_OK);
    CHECK(apus_metadata_set_ints(metadata, "numbers", numbers, 3) == APUS_OK);
    CHECK(apus_metadata_set_floats(metadata, "reals", reals, 2) == APUS_OK);
    CHECK(apus_metadata_set_strings(metadata, "words", words, 3) == APUS_OK);
    CHECK(apus_metadata_set_ints(metadata, "none", NULL, 0) == APUS_OK);
    CHECK(apus_metadata_set_int(metadata, "count", -42) == APUS_OK);
    CHECK(apus_node_send(node, "data", NULL, 0, metadata) == APUS_OK);

    /* 3. Zero-copy: 1 MiB of uint32 written in place. */
    apus_sample_t *sample = NULL;
    CHECK(apus_node_allocate(node, "data", ZERO_COPY_BYTES, &sample) == APUS_OK);
    uint32_t *words32 = apus_sample_data(sample);
    CHECK(words32 != NULL && (uintptr_t)words32 % 64 == 0);
    CHECK(apus_sample_length(sample) == ZERO_COPY_BYTES);
    if (words32 != NULL) {
        for (uint32_t i = 0; i < ZERO_COPY_BYTES / 4; i++) words32[i] = i * 2654435761u;
    }
    const uint64_t square[2] = {512, 512};
    CHECK(apus_metadata_clear(metadata) == APUS_OK);
    CHECK(apus_metadata_set_type(metadata, APUS_TYPE_UINT32) == APUS_OK);
    CHECK(apus_metadata_set_shape(metadata, square, 2) == APUS_OK);
    CHECK(apus_metadata_set_bool(metadata, "zero_copy", true) == APUS_OK);
    CHECK(apus_node_send_sample(node, sample, metadata) == APUS_OK);

    /* 4. Several messages in one call, each with its own description; the third is not a whole
     *    number of float32s, so the call stops there and says two went. */
    const float reals32[2] = {1.5f, -2.0f};
    apus_metadata_t *as_float = apus_metadata_new();
    CHECK(apus_metadata_set_type(as_float, APUS_TYPE_FLOAT32) == APUS_OK);
    const void *batch[3] = {reals32, "abc", "xyz"};
    const size_t batch_lengths[3] = {sizeof reals32, 3, 3};
    const apus_metadata_t *batch_metadata[3] = {as_float, NULL, as_float};
    size_t sent = 9;
    CHECK_FAILS(apus_node_send_many(node, "data", batch, batch_lengths, batch_metadata, 3, &sent), APUS_ERROR_LENGTH);
    CHECK(sent == 2 && strstr(apus_last_error(), "float32") != NULL);
    apus_metadata_free(as_float);

    /* 5. Text, and the end marker. */
    CHECK(apus_metadata_clear(metadata) == APUS_OK);
    CHECK(apus_metadata_set_type(metadata, APUS_TYPE_UTF8) == APUS_OK);
    CHECK(apus_node_send(node, "data", "hello from C", 12, metadata) == APUS_OK);
    CHECK(apus_node_send(node, "data", "last", 4, metadata) == APUS_OK);
    apus_metadata_free(metadata);

    /* Nothing comes to a node without inputs: a wait times out. */
    CHECK(apus_node_next(node, 300 * 1000000LL) == NULL && apus_last_status() == APUS_TIMEOUT);
    leave(node);
    return finish("producer");
}

/* ---- consumer ---- */

static void expect_typed(apus_event_t *event, int t) {
    uint8_t expected[32];
    size_t expected_length = typed_values((apus_type_t)t, expected), length = 0;
    const void *data = apus_event_data(event, &length);
    const uint64_t *dims = NULL;
    size_t rank = 0;
    int64_t type = -1;
    CHECK(apus_event_data_type(event) == (apus_type_t)t);
    CHECK(length == expected_length && data != NULL && memcmp(data, expected, length) == 0);
    CHECK((uintptr_t)data % 64 == 0);
    CHECK(apus_event_shape(event, &dims, &rank) == APUS_OK && rank == 2 && dims[0] == 2 && dims[1] == 2);
    CHECK(apus_event_param_int(event, "type", &type) == APUS_OK && type == t);
    apus_input_view_t view = {0};
    CHECK(apus_event_view(event, &view) == APUS_OK && view.data == data && view.length == length);
    CHECK(view.type == (apus_type_t)t && view.rank == 2 && view.dims == dims);
    CHECK(apus_event_view(event, NULL) == APUS_ERROR_INVALID_ARGUMENT);
}

static void expect_parameters(apus_event_t *event) {
    static const char *keys[9] = {"flag", "count", "ratio", "name", "flags", "numbers", "reals", "words", "none"};
    static const apus_param_type_t types[9] = {APUS_PARAM_BOOL, APUS_PARAM_INT, APUS_PARAM_FLOAT, APUS_PARAM_STRING,
                                               APUS_PARAM_BOOL_LIST, APUS_PARAM_INT_LIST, APUS_PARAM_FLOAT_LIST,
                                               APUS_PARAM_STRING_LIST, APUS_PARAM_INT_LIST};
    size_t length = 99, count = 0;
    CHECK(apus_event_data(event, &length) != NULL && length == 0);
    CHECK(apus_event_param_count(event) == 9);
    for (size_t i = 0; i < 9; i++) {
        const char *key = NULL;
        apus_param_type_t type = APUS_PARAM_BOOL, by_key = APUS_PARAM_BOOL;
        CHECK(apus_event_param_at(event, i, &key, &type) == APUS_OK && key != NULL && strcmp(key, keys[i]) == 0);
        CHECK(type == types[i]);
        CHECK(apus_event_param_type(event, keys[i], &by_key) == APUS_OK && by_key == types[i]);
    }
    const char *key;
    apus_param_type_t type;
    CHECK_FAILS(apus_event_param_at(event, 9, &key, &type), APUS_ERROR_INVALID_ARGUMENT);

    bool flag = false;
    int64_t number = 0;
    double real = 0;
    const char *text = NULL;
    CHECK(apus_event_param_bool(event, "flag", &flag) == APUS_OK && flag);
    CHECK(apus_event_param_int(event, "count", &number) == APUS_OK && number == -42);
    CHECK(apus_event_param_float(event, "ratio", &real) == APUS_OK && real == 0.5);
    CHECK(apus_event_param_string(event, "name", &text, &length) == APUS_OK && strcmp(text, "cam\xc3\xa9ra") == 0 && length == 7);
    CHECK(apus_event_param_string(event, "name", &text, NULL) == APUS_OK); /* the length is optional */

    const bool *flags = NULL;
    const int64_t *numbers = NULL;
    const double *reals = NULL;
    const char *const *words = NULL;
    CHECK(apus_event_param_bools(event, "flags", &flags, &count) == APUS_OK && count == 3 && flags[0] && !flags[1] && flags[2]);
    CHECK(apus_event_param_ints(event, "numbers", &numbers, &count) == APUS_OK && count == 3 && numbers[0] == 1 &&
          numbers[1] == -2 && numbers[2] == (int64_t)3 << 40);
    CHECK(apus_event_param_floats(event, "reals", &reals, &count) == APUS_OK && count == 2 && reals[0] == 0.25 && reals[1] == -1.5);
    CHECK(apus_event_param_strings(event, "words", &words, &count) == APUS_OK && count == 3 && strcmp(words[0], "a") == 0 &&
          strcmp(words[1], "") == 0 && strcmp(words[2], "\xc3\xbcn\xc3\xaf") == 0);
    CHECK(apus_event_param_ints(event, "none", &numbers, &count) == APUS_OK && count == 0);

    /* Missing keys, wrong types, NULL arguments. */
    CHECK_FAILS(apus_event_param_int(event, "missing", &number), APUS_ERROR_NOT_FOUND);
    CHECK(strstr(apus_last_error(), "'missing'") != NULL && strstr(apus_last_error(), "'flag'") != NULL);
    CHECK_FAILS(apus_event_param_type(event, "missing", &type), APUS_ERROR_NOT_FOUND);
    CHECK_FAILS(apus_event_param_bool(event, "count", &flag), APUS_ERROR_WRONG_TYPE);
    CHECK(strstr(apus_last_error(), "parameter 'count' is an int, not a bool") != NULL);
    CHECK_FAILS(apus_event_param_int(event, "ratio", &number), APUS_ERROR_WRONG_TYPE);
    CHECK_FAILS(apus_event_param_float(event, "name", &real), APUS_ERROR_WRONG_TYPE);
    CHECK_FAILS(apus_event_param_string(event, "flag", &text, &length), APUS_ERROR_WRONG_TYPE);
    CHECK_FAILS(apus_event_param_bools(event, "numbers", &flags, &count), APUS_ERROR_WRONG_TYPE);
    CHECK_FAILS(apus_event_param_ints(event, "reals", &numbers, &count), APUS_ERROR_WRONG_TYPE);
    CHECK_FAILS(apus_event_param_floats(event, "words", &reals, &count), APUS_ERROR_WRONG_TYPE);
    CHECK_FAILS(apus_event_param_strings(event, "flags", &words, &count), APUS_ERROR_WRONG_TYPE);
    CHECK_FAILS(apus_event_param_int(event, NULL, &number), APUS_ERROR_INVALID_ARGUMENT);
    CHECK_FAILS(apus_event_param_int(event, "count", NULL), APUS_ERROR_INVALID_ARGUMENT);
    CHECK_FAILS(apus_event_param_ints(event, "numbers", &numbers, NULL), APUS_ERROR_INVALID_ARGUMENT);
    CHECK_FAILS(apus_event_param_type(event, "count", NULL), APUS_ERROR_INVALID_ARGUMENT);
    CHECK_FAILS(apus_event_shape(event, NULL, &count), APUS_ERROR_INVALID_ARGUMENT);
}

static void expect_zero_copy(apus_event_t *event) {
    size_t length = 0;
    const uint32_t *words = apus_event_data(event, &length);
    const uint64_t *dims;
    size_t rank;
    bool zero_copy = false;
    CHECK(length == ZERO_COPY_BYTES && apus_event_data_type(event) == APUS_TYPE_UINT32);
    CHECK(apus_event_shape(event, &dims, &rank) == APUS_OK && rank == 2 && dims[0] == 512 && dims[1] == 512);
    CHECK(apus_event_param_bool(event, "zero_copy", &zero_copy) == APUS_OK && zero_copy);
    uint32_t wrong = 0;
    for (uint32_t i = 0; words != NULL && i < length / 4; i++) wrong += words[i] != i * 2654435761u;
    CHECK(words != NULL && wrong == 0);
}

/* What the producer's apus_node_send_many sent: float32 {1.5, -2}, then the bytes "abc". */
static void expect_batch(apus_event_t *event, int index) {
    apus_input_view_t view = {0};
    CHECK(apus_event_view(event, &view) == APUS_OK && view.rank == 0 && apus_event_param_count(event) == 0);
    if (index == 0) {
        const float expected[2] = {1.5f, -2.0f};
        CHECK(view.type == APUS_TYPE_FLOAT32 && view.length == sizeof expected && memcmp(view.data, expected, 8) == 0);
    } else {
        CHECK(view.type == APUS_TYPE_UINT8 && view.length == 3 && memcmp(view.data, "abc", 3) == 0);
    }
}

static void expect_text(apus_event_t *event, const char *text) {
    size_t length = 0;
    const char *data = apus_event_data(event, &length);
    const uint64_t *dims;
    size_t rank = 9;
    CHECK(apus_event_data_type(event) == APUS_TYPE_UTF8);
    CHECK(length == strlen(text) && memcmp(data, text, length) == 0);
    CHECK(apus_event_shape(event, &dims, &rank) == APUS_OK && rank == 0);
    CHECK(apus_event_param_count(event) == 0);
}

static int consumer(void) {
    apus_node_t *node = join();
    CHECK(strcmp(apus_node_id(node), "consumer") == 0);
    CHECK(apus_node_input_count(node) == 2 && apus_node_output_count(node) == 0);
    CHECK(strcmp(apus_node_input_id(node, 0), "data") == 0 && strcmp(apus_node_input_id(node, 1), "spare") == 0);
    CHECK(strcmp(apus_node_input_source(node, 0), "producer/data") == 0);
    CHECK(strcmp(apus_node_input_source(node, 1), "producer/spare") == 0);
    CHECK(apus_node_input_source(node, 2) == NULL && apus_last_status() == APUS_ERROR_INVALID_ARGUMENT);
    CHECK_FAILS(apus_node_send(node, "data", "x", 1, NULL), APUS_ERROR_UNKNOWN_OUTPUT);
    CHECK(strstr(apus_last_error(), "declared outputs: none") != NULL);

    int received = 0, spare_closed = 0, data_closed = 0, stopped = 0, polled = 0;
    uint64_t last_timestamp = 0;
    apus_event_t *stop = NULL;
    for (;;) {
        if (received == TYPE_COUNT + 6 && spare_closed && !polled) {
            /* Everything sent has arrived and the producer is waiting: a poll and a short wait time out. */
            CHECK(apus_node_next(node, 0) == NULL && apus_last_status() == APUS_TIMEOUT);
            uint64_t start = now_ns();
            CHECK(apus_node_next(node, 50 * 1000000LL) == NULL && apus_last_status() == APUS_TIMEOUT);
            CHECK(now_ns() - start >= 45 * 1000000u);
            polled = 1;
        }
        apus_event_t *event = apus_node_next(node, -1);
        if (event == NULL) break;
        switch (apus_event_type(event)) {
        case APUS_EVENT_INPUT: {
            CHECK(strcmp(apus_event_id(event), "data") == 0 && strcmp(apus_event_message(event), "") == 0);
            uint64_t timestamp = apus_event_timestamp(event);
            CHECK(timestamp >= last_timestamp && timestamp <= now_ns());
            last_timestamp = timestamp;
            if (received < TYPE_COUNT) expect_typed(event, received);
            else if (received == TYPE_COUNT) expect_parameters(event);
            else if (received == TYPE_COUNT + 1) expect_zero_copy(event);
            else if (received == TYPE_COUNT + 2) expect_batch(event, 0);
            else if (received == TYPE_COUNT + 3) expect_batch(event, 1);
            else if (received == TYPE_COUNT + 4) expect_text(event, "hello from C");
            else if (received == TYPE_COUNT + 5) expect_text(event, "last");
            else CHECK(!"more messages than were sent");
            received++;
            break;
        }
        case APUS_EVENT_INPUT_CLOSED: {
            size_t length = 9;
            const char *id = apus_event_id(event);
            if (strcmp(id, "spare") == 0) spare_closed++;
            else if (strcmp(id, "data") == 0) data_closed++;
            CHECK(apus_event_data(event, &length) == NULL && length == 0 && apus_last_status() == APUS_ERROR_WRONG_TYPE);
            apus_input_view_t view = {.length = 7};
            CHECK_FAILS(apus_event_view(event, &view), APUS_ERROR_WRONG_TYPE);
            CHECK(view.length == 7);
            CHECK(apus_event_timestamp(event) == 0 && apus_event_param_count(event) == 0);
            CHECK(strcmp(apus_event_message(event), "") == 0);
            break;
        }
        case APUS_EVENT_STOP:
            stopped++;
            CHECK(strcmp(apus_event_id(event), "") == 0);
            stop = event; /* kept past apus_node_free */
            continue;
        default:
            CHECK(!"unexpected event");
            fprintf(stderr, "event %d: %s\n", (int)apus_event_type(event), apus_event_message(event));
        }
        CHECK(apus_event_free(event) == APUS_OK);
        if (received == 1 && spare_closed + data_closed == 0) {
            CHECK_FAILS(apus_event_free(event), APUS_ERROR_INVALID_HANDLE);
            CHECK(apus_event_type(event) == APUS_EVENT_ERROR && apus_last_status() == APUS_ERROR_INVALID_HANDLE);
        }
    }
    CHECK(apus_last_status() == APUS_FINISHED);
    CHECK(apus_node_next(node, -1) == NULL && apus_last_status() == APUS_FINISHED);
    CHECK(received == TYPE_COUNT + 6 && spare_closed == 1 && data_closed == 1 && stopped == 1 && polled == 1);
    leave(node);
    /* Events outlive their node. */
    CHECK(stop != NULL && apus_event_type(stop) == APUS_EVENT_STOP);
    CHECK(apus_event_free(stop) == APUS_OK);
    return finish("consumer");
}

/* ---- crash / watcher ---- */

static int crash(void) {
    apus_node_t *node = join();
    sleep_ms(100);
    (void)node;
    exit(3);
}

static int watcher(void) {
    apus_node_t *node = join();
    int failed = 0, closed = 0;
    apus_event_t *event;
    while ((event = apus_node_next(node, -1)) != NULL) {
        switch (apus_event_type(event)) {
        case APUS_EVENT_NODE_FAILED:
            failed++;
            CHECK(closed == 0);
            CHECK(strcmp(apus_event_id(event), "crash") == 0);
            CHECK(strstr(apus_event_message(event), "node 'crash' exited with status 3") != NULL);
            CHECK(strstr(apus_event_message(event), "'in'") != NULL);
            printf("watcher: %s\n", apus_event_message(event));
            break;
        case APUS_EVENT_INPUT_CLOSED: closed++; break;
        case APUS_EVENT_STOP: break;
        default: CHECK(!"unexpected event");
        }
        apus_event_free(event);
    }
    CHECK(failed == 1 && closed == 1);
    apus_node_free(node);
    return finish("watcher");
}

/* ---- burst / hoarder / fast ---- */

enum { BURST = 200, BURST_BYTES = 64 * 1024, HOARD = 256 };

static int burst(void) {
    apus_node_t *node = join();
    apus_metadata_t *metadata = apus_metadata_new();
    uint64_t slowest = 0;
    for (int64_t i = 0; i < BURST; i++) {
        apus_sample_t *sample;
        uint64_t start = now_ns();
        CHECK(apus_node_allocate(node, "out", BURST_BYTES, &sample) == APUS_OK);
        if (sample == NULL) break;
        memset(apus_sample_data(sample), (int)(i & 0xff), BURST_BYTES);
        apus_metadata_set_int(metadata, "seq", i);
        CHECK(apus_node_send_sample(node, sample, metadata) == APUS_OK);
        if (now_ns() - start > slowest) slowest = now_ns() - start;
        sleep_ms(2);
    }
    printf("burst: sent %d messages, slowest send %.3f ms\n", BURST, (double)slowest / 1e6);
    apus_metadata_free(metadata);
    apus_node_free(node);
    return finish("burst");
}

static int hoarder(void) {
    apus_node_t *node = join();
    apus_event_t *held[HOARD];
    int count = 0, most = 0;
    apus_event_t *event;
    while ((event = apus_node_next(node, -1)) != NULL) {
        if (apus_event_type(event) == APUS_EVENT_INPUT && count < HOARD) {
            held[count++] = event; /* kept, with its shared memory, while sleeping */
            if (count > most) most = count;
            sleep_ms(5);
            continue;
        }
        apus_event_free(event);
    }
    for (int i = 0; i < count; i++) CHECK(apus_event_free(held[i]) == APUS_OK);
    printf("hoarder: held %d messages at once\n", most);
    CHECK(most > 16);
    apus_node_free(node);
    return finish("hoarder");
}

static int fast(void) {
    /* Takes what is ready in batches (apus_node_next_many), checking each event as it comes. */
    apus_node_t *node = join();
    int64_t expected = 0;
    int batches = 0, finished = 0;
    apus_event_t *events[16];
    apus_event_type_t kinds[16];
    while (!finished) {
        size_t count = apus_node_next_many(node, events, kinds, 16, -1);
        if (count == 0) {
            CHECK(apus_last_status() == APUS_FINISHED);
            finished = 1;
        }
        CHECK(count <= 16);
        batches += count > 0;
        for (size_t i = 0; i < count; i++) {
            CHECK(kinds[i] == apus_event_type(events[i]));
            if (kinds[i] == APUS_EVENT_INPUT) {
                int64_t seq = -1;
                size_t length = 0;
                const uint8_t *data = apus_event_data(events[i], &length);
                CHECK(apus_event_param_int(events[i], "seq", &seq) == APUS_OK && seq == expected);
                CHECK(length == BURST_BYTES && data[0] == (uint8_t)(seq & 0xff) && data[BURST_BYTES - 1] == (uint8_t)(seq & 0xff));
                expected = seq + 1;
            }
            CHECK(apus_event_free(events[i]) == APUS_OK);
        }
    }
    printf("fast: received %d of %d in order, in %d batches\n", (int)expected, BURST, batches);
    CHECK(expected == BURST);
    apus_node_free(node);
    return finish("fast");
}

/* ---- echo ---- */

static void copy_parameters(apus_event_t *event, apus_metadata_t *metadata) {
    for (size_t i = 0; i < apus_event_param_count(event); i++) {
        const char *key;
        apus_param_type_t type;
        CHECK(apus_event_param_at(event, i, &key, &type) == APUS_OK);
        bool flag;
        int64_t number;
        double real;
        const char *text;
        size_t count;
        const bool *flags;
        const int64_t *numbers;
        const double *reals;
        const char *const *texts;
        switch (type) {
        case APUS_PARAM_BOOL: apus_event_param_bool(event, key, &flag); apus_metadata_set_bool(metadata, key, flag); break;
        case APUS_PARAM_INT: apus_event_param_int(event, key, &number); apus_metadata_set_int(metadata, key, number); break;
        case APUS_PARAM_FLOAT: apus_event_param_float(event, key, &real); apus_metadata_set_float(metadata, key, real); break;
        case APUS_PARAM_STRING: apus_event_param_string(event, key, &text, &count); apus_metadata_set_string(metadata, key, text); break;
        case APUS_PARAM_BOOL_LIST: apus_event_param_bools(event, key, &flags, &count); apus_metadata_set_bools(metadata, key, flags, count); break;
        case APUS_PARAM_INT_LIST: apus_event_param_ints(event, key, &numbers, &count); apus_metadata_set_ints(metadata, key, numbers, count); break;
        case APUS_PARAM_FLOAT_LIST: apus_event_param_floats(event, key, &reals, &count); apus_metadata_set_floats(metadata, key, reals, count); break;
        case APUS_PARAM_STRING_LIST: apus_event_param_strings(event, key, &texts, &count); apus_metadata_set_strings(metadata, key, texts, count); break;
        }
    }
}

static int echo(void) {
    apus_node_t *node = join();
    apus_metadata_t *metadata = apus_metadata_new();
    int echoed = 0;
    apus_event_t *event;
    while ((event = apus_node_next(node, -1)) != NULL) {
        if (apus_event_type(event) == APUS_EVENT_INPUT) {
            size_t length = 0, rank = 0;
            const void *data = apus_event_data(event, &length);
            const uint64_t *dims = NULL;
            apus_sample_t *sample = NULL;
            CHECK(apus_event_shape(event, &dims, &rank) == APUS_OK);
            CHECK(apus_metadata_clear(metadata) == APUS_OK);
            CHECK(apus_metadata_set_type(metadata, apus_event_data_type(event)) == APUS_OK);
            CHECK(apus_metadata_set_shape(metadata, dims, rank) == APUS_OK);
            copy_parameters(event, metadata);
            CHECK(apus_node_allocate(node, "out", length, &sample) == APUS_OK);
            if (sample != NULL) {
                memcpy(apus_sample_data(sample), data, length);
                CHECK(apus_node_send_sample(node, sample, metadata) == APUS_OK);
            }
            echoed++;
        }
        apus_event_free(event);
    }
    printf("echo: %d messages\n", echoed);
    apus_metadata_free(metadata);
    apus_node_free(node);
    return finish("echo");
}

/* ---- floats / doubled ---- */

static int floats(void) {
    apus_node_t *node = join();
    const float values[3] = {1.5f, 2.5f, -3.0f};
    apus_metadata_t *metadata = apus_metadata_new();
    CHECK(apus_metadata_set_type(metadata, APUS_TYPE_FLOAT32) == APUS_OK);
    CHECK(apus_node_send(node, "values", values, sizeof values, metadata) == APUS_OK);
    apus_metadata_free(metadata);
    apus_node_free(node);
    return finish("floats");
}

static int doubled(void) {
    apus_node_t *node = join();
    int received = 0;
    apus_event_t *event;
    while ((event = apus_node_next(node, -1)) != NULL) {
        if (apus_event_type(event) == APUS_EVENT_INPUT) {
            size_t length = 0;
            const float *values = apus_event_data(event, &length);
            CHECK(apus_event_data_type(event) == APUS_TYPE_FLOAT32);
            CHECK(length == 3 * sizeof(float) && values[0] == 3.0f && values[1] == 5.0f && values[2] == -6.0f);
            received++;
        }
        apus_event_free(event);
    }
    CHECK(received == 1);
    apus_node_free(node);
    return finish("doubled");
}

int main(int argc, char **argv) {
    const char *role = argc > 1 ? argv[1] : "";
    if (strcmp(role, "outside") == 0) {
        /* Started by hand: no dataflow to join. */
        CHECK(apus_node_init_from_env() == NULL && apus_last_status() == APUS_ERROR_NOT_IN_DATAFLOW);
        CHECK(strstr(apus_last_error(), "apus run") != NULL);
        return finish("outside");
    }
    if (strcmp(role, "producer") == 0) return producer();
    if (strcmp(role, "consumer") == 0) return consumer();
    if (strcmp(role, "crash") == 0) return crash();
    if (strcmp(role, "watcher") == 0) return watcher();
    if (strcmp(role, "burst") == 0) return burst();
    if (strcmp(role, "hoarder") == 0) return hoarder();
    if (strcmp(role, "fast") == 0) return fast();
    if (strcmp(role, "floats") == 0) return floats();
    if (strcmp(role, "echo") == 0) return echo();
    if (strcmp(role, "doubled") == 0) return doubled();
    fprintf(stderr, "usage: api_test producer|consumer|crash|watcher|burst|hoarder|fast|echo|floats|doubled|outside\n");
    return 2;
}

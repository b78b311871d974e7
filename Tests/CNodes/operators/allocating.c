/* An operator that sends through its output's allocator (apus.h), Apus's operator ABI:
 * - `direct`: on each input, allocates a 4 KiB block, fills it, prints where it lies (inode and
 *   offset of its memfd) and sends it zero-copy with apus_node_send_allocated;
 * - `library`: hands the allocator to third_party_render, a stand-in for a C library that takes
 *   its caller's allocator and uses only its callbacks (alloc, realloc to grow and shrink, free),
 *   then sends the result it returns;
 * - once, checks misuse: foreign pointers, double free, sending twice, odd alignment, a bad ctx,
 *   and freeing the event or the node the runtime lends, or asking it for events. */
#include <apus.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mapping.h"

/* The "third-party" library: builds "item 0, item 1, ..." of `count` items in memory from `a`,
 * growing its buffer as it goes, with a scratch block it frees. Knows nothing of Apus. */
static int moves; /* how often realloc moved the buffer (seen by the test, not the library) */

static char *third_party_render(const apus_allocator_t *a, int count, size_t *length)
{
    size_t capacity = 16, used = 0;
    char *text = a->alloc(a->ctx, capacity, 8);
    char *scratch = a->alloc(a->ctx, 32, 0);
    if (text == NULL || scratch == NULL)
        return NULL;
    for (int i = 0; i < count; i++) {
        int n = snprintf(scratch, 32, "%sitem %d", i == 0 ? "" : ", ", i);
        while (used + (size_t)n + 1 > capacity) {
            capacity *= 4;
            char *grown = a->realloc(a->ctx, text, capacity, 8);
            if (grown == NULL)
                return NULL;
            moves += grown != text;
            text = grown;
        }
        memcpy(text + used, scratch, (size_t)n + 1);
        used += (size_t)n;
    }
    a->free(a->ctx, scratch);
    text = a->realloc(a->ctx, text, used, 8); /* shrink: in place */
    *length = used;
    return text;
}

static int check_misuse(apus_node_t *node, const apus_event_t *event, apus_allocator_t a)
{
    int failures = 0;
#define EXPECT(condition) \
    do { if (!(condition)) { printf("misuse check failed, line %d: %s (%s)\n", __LINE__, #condition, apus_last_error()); failures++; } } while (0)
    char on_stack[16];
    void *heap = malloc(16);
    EXPECT(a.free(a.ctx, on_stack) == APUS_ERROR_INVALID_ARGUMENT);
    EXPECT(a.free(a.ctx, heap) == APUS_ERROR_INVALID_ARGUMENT);
    EXPECT(a.realloc(a.ctx, heap, 64, 0) == NULL);
    EXPECT(apus_node_send_allocated(node, "direct", heap, 16, NULL) == APUS_ERROR_INVALID_ARGUMENT);
    free(heap);
    void *block = a.alloc(a.ctx, 100, 64);
    EXPECT(block != NULL && ((uintptr_t)block % 64) == 0);
    EXPECT(a.free(a.ctx, block) == APUS_OK);
    EXPECT(a.free(a.ctx, block) == APUS_ERROR_INVALID_ARGUMENT); /* double free */
    EXPECT(a.alloc(a.ctx, 100, 128) == NULL);                     /* alignment beyond 64 */
    EXPECT(a.alloc(a.ctx, 100, 3) == NULL);                       /* not a power of two */
    EXPECT(a.alloc(NULL, 100, 0) == NULL && apus_last_status() == APUS_ERROR_INVALID_HANDLE);
    EXPECT(a.free((void *)0x1234, block) == APUS_ERROR_INVALID_HANDLE);
    EXPECT(a.free(a.ctx, NULL) == APUS_OK);
    block = a.alloc(a.ctx, 8, 0);
    EXPECT(apus_node_send_allocated(node, "direct", block, 9999999, NULL) == APUS_ERROR_LENGTH);
    EXPECT(apus_node_send_allocated(node, "library", block, 8, NULL) == APUS_ERROR_INVALID_ARGUMENT); /* other output */
    EXPECT(a.free(a.ctx, block) == APUS_OK);
    apus_allocator_t bad = apus_node_output_allocator(node, "no-such-output");
    EXPECT(bad.ctx == NULL && apus_last_status() == APUS_ERROR_UNKNOWN_OUTPUT);
    EXPECT(apus_node_output_allocator(NULL, "direct").ctx == NULL);
    /* The operator's view of its node: its own ids only. */
    EXPECT(strcmp(apus_node_id(node), "runtime/allocating") == 0);
    EXPECT(apus_node_input_count(node) == 1 && strcmp(apus_node_input_id(node, 0), "in") == 0);
    EXPECT(strcmp(apus_node_input_source(node, 0), "source/out") == 0);
    EXPECT(apus_node_output_count(node) == 2 && strcmp(apus_node_output_id(node, 0), "direct") == 0 &&
           strcmp(apus_node_output_id(node, 1), "library") == 0);
    EXPECT(strcmp(apus_event_id(event), "in") == 0);
    EXPECT(apus_node_send(node, "allocating/direct", "x", 1, NULL) == APUS_ERROR_UNKNOWN_OUTPUT);
    EXPECT(apus_event_free((apus_event_t *)event) == APUS_ERROR_INVALID_ARGUMENT); /* the runtime's */
    EXPECT(apus_event_type(event) == APUS_EVENT_INPUT);                           /* still usable */
    EXPECT(apus_node_next(node, 0) == NULL && apus_last_status() == APUS_ERROR_INVALID_ARGUMENT);
    EXPECT(apus_node_free(node) == APUS_ERROR_INVALID_ARGUMENT);
#undef EXPECT
    return failures;
}

typedef struct {
    int sent;
    int checked;
} state_t;

apus_status_t apus_operator_init(apus_node_t *node, void **state)
{
    (void)node;
    *state = calloc(1, sizeof(state_t));
    return APUS_OK;
}

apus_operator_status_t apus_operator_on_event(apus_node_t *node, const apus_event_t *event, void *opaque)
{
    state_t *state = opaque;
    if (apus_event_type(event) != APUS_EVENT_INPUT)
        return APUS_OPERATOR_CONTINUE;
    apus_allocator_t direct = apus_node_output_allocator(node, "direct");
    if (!state->checked) {
        state->checked = 1;
        printf("misuse: %s\n", check_misuse(node, event, direct) == 0 ? "ok" : "FAILED");
    }
    unsigned char *block = direct.alloc(direct.ctx, 4096, 64);
    if (block == NULL) {
        apus_operator_fail(node, apus_last_error());
        return APUS_OPERATOR_ERROR;
    }
    for (int i = 0; i < 4096; i++)
        block[i] = (unsigned char)(i * 7 + state->sent);
    unsigned long inode;
    unsigned long long offset;
    char name[512];
    if (find_mapping(block, &inode, &offset, name, sizeof name) == 0)
        printf("sent %d at inode %lu offset %llu in %s\n", state->sent, inode, offset, name);
    if (apus_node_send_allocated(node, "direct", block, 4096, NULL) != APUS_OK) {
        apus_operator_fail(node, apus_last_error());
        return APUS_OPERATOR_ERROR;
    }
    if (apus_node_send_allocated(node, "direct", block, 4096, NULL) != APUS_ERROR_INVALID_ARGUMENT) /* twice */
        printf("sending a block twice was not refused\n");

    apus_allocator_t library = apus_node_output_allocator(node, "library");
    size_t length = 0;
    char *text = third_party_render(&library, 600, &length);
    if (state->sent == 0)
        printf("library: %zu bytes, moved %s\n", length, moves > 0 ? "at least once" : "never");
    if (text == NULL || apus_node_send_allocated(node, "library", text, length, NULL) != APUS_OK) {
        apus_operator_fail(node, apus_last_error());
        return APUS_OPERATOR_ERROR;
    }
    state->sent++;
    return APUS_OPERATOR_CONTINUE;
}

void apus_operator_drop(apus_node_t *node, void *state)
{
    (void)node;
    free(state);
}

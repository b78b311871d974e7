/* A C sink written against dora-rs's C node API only (node_api.h): it checks every counter byte
 * and message of the dora C node, the bytes of an Apus-native node (argument: how many to expect,
 * default 10; 0 when the dataflow has no such node), INPUT_CLOSED for each input, STOP once all
 * are closed, and NULL after that. With -DAPUS_MISUSE_CHECKS it then checks that misuse is
 * refused instead of crashing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "node_api.h"

static int failures = 0;
#define CHECK(condition)                                                 \
    do                                                                   \
    {                                                                    \
        if (!(condition))                                                \
        {                                                                \
            printf("check failed, line %d: %s\n", __LINE__, #condition); \
            failures++;                                                  \
        }                                                                \
    } while (0)

static int is(const char *id, size_t id_len, const char *name)
{
    return id_len == strlen(name) && memcmp(id, name, id_len) == 0;
}

int main(int argc, char **argv)
{
    int expected_natives = argc > 1 ? atoi(argv[1]) : 10;
    int expected_inputs = expected_natives > 0 ? 3 : 2;
    void *dora_context = init_dora_context_from_env();
    if (dora_context == NULL)
    {
        fprintf(stderr, "failed to init dora context\n");
        return -1;
    }

    int counters = 0, messages = 0, natives = 0, closed = 0, stops = 0, others = 0;
    unsigned long long last_timestamp = 0;
    void *event;
    while ((event = dora_next_event(dora_context)) != NULL)
    {
        enum DoraEventType ty = read_dora_event_type(event);
        char *id;
        size_t id_len;
        char *data;
        size_t data_len;
        read_dora_input_id(event, &id, &id_len);
        read_dora_input_data(event, &data, &data_len);
        if (ty == DoraEventType_Input)
        {
            unsigned long long timestamp = read_dora_input_timestamp(event);
            CHECK(timestamp >= last_timestamp);
            last_timestamp = timestamp;
            if (is(id, id_len, "counter"))
            {
                counters++;
                CHECK(data_len == 1 && (unsigned char)data[0] == counters);
            }
            else if (is(id, id_len, "message"))
            {
                char expected[32];
                messages++;
                snprintf(expected, sizeof expected, "message %d", messages);
                CHECK(data_len == strlen(expected) && memcmp(data, expected, data_len) == 0);
            }
            else if (is(id, id_len, "native"))
            {
                char expected[32];
                snprintf(expected, sizeof expected, "native %d", natives);
                natives++;
                CHECK(data_len == strlen(expected) && memcmp(data, expected, data_len) == 0);
            }
            else
            {
                printf("unexpected input `%.*s`\n", (int)id_len, id);
                failures++;
            }
        }
        else if (ty == DoraEventType_InputClosed)
        {
            CHECK(id == NULL && id_len == 0 && data == NULL && data_len == 0);
            CHECK(read_dora_input_timestamp(event) == 0);
            closed++;
        }
        else if (ty == DoraEventType_Stop)
        {
            CHECK(closed == expected_inputs);
            stops++;
        }
        else
        {
            others++;
        }
        free_dora_event(event);
    }
    CHECK(dora_next_event(dora_context) == NULL);
    printf("sink: counter %d, message %d, native %d, closed %d, stop %d, other %d\n", counters, messages, natives, closed,
           stops, others);
    CHECK(counters == 20 && messages == 20 && natives == expected_natives && closed == expected_inputs && stops == 1 &&
          others == 0);

#ifdef APUS_MISUSE_CHECKS
    /* dora crashes on these; Apus refuses them with a message on stderr. */
    char *pointer = (char *)"x";
    size_t length = 7;
    CHECK(dora_send_output(dora_context, "nope", 4, "x", 1) == -1);
    CHECK(dora_send_output(dora_context, NULL, 3, "x", 1) == -1);
    CHECK(dora_send_output(dora_context, "nope", 4, NULL, 1) == -1);
    CHECK(dora_send_output(dora_context, "nope", (size_t)-1, "x", 1) == -1);
    CHECK(dora_send_output(NULL, "nope", 4, "x", 1) == -1);
    CHECK(dora_log(dora_context, "loud", 4, "x", 1) == -1);
    CHECK(dora_log(dora_context, "info", 4, "\xff\xfe", 2) == -1);
    CHECK(dora_log(NULL, "info", 4, "x", 1) == -1);
    CHECK(dora_log(dora_context, "WARN", 4, "still logging", 13) == 0);
    CHECK(read_dora_event_type(NULL) == DoraEventType_Unknown);
    read_dora_input_id(NULL, &pointer, &length);
    CHECK(pointer == NULL && length == 0);
    read_dora_input_data(dora_context, NULL, NULL); /* a context is not an event; NULL outs */
    CHECK(read_dora_input_timestamp(dora_context) == 0);
    free_dora_event(NULL);
    free_dora_event(dora_context);
    CHECK(dora_next_event(NULL) == NULL);
    free_dora_context(dora_context);
    free_dora_context(dora_context); /* twice: refused, not a crash */
    CHECK(dora_next_event(dora_context) == NULL);
    printf("misuse checks done\n");
#endif
    if (failures == 0)
        printf("sink: ok\n");
    return failures == 0 ? 0 : 1;
}

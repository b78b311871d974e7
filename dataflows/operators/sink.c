/* The chain's sink: prints each text it gets, and how many came. */
#include <apus.h>
#include <stdio.h>

int main(void)
{
    apus_node_t *node = apus_node_init_from_env();
    if (node == NULL) {
        fprintf(stderr, "%s\n", apus_last_error());
        return 1;
    }
    int received = 0;
    apus_event_t *event;
    while ((event = apus_node_next(node, -1)) != NULL) {
        if (apus_event_type(event) == APUS_EVENT_INPUT) {
            size_t length;
            const char *text = apus_event_data(event, &length);
            printf("%.*s\n", (int)length, text);
            received++;
        }
        apus_event_free(event);
    }
    apus_node_free(node);
    printf("received %d\n", received);
    return 0;
}

/* Receives the allocating operator's blocks: prints where each `direct` one lies in this
 * process (inode and offset of its memfd) and whether its bytes are right, and the `library`
 * texts' lengths and ends. */
#include <apus.h>
#include <stdio.h>
#include <string.h>
#include "mapping.h"

int main(void)
{
    apus_node_t *node = apus_node_init_from_env();
    if (node == NULL)
        return 1;
    int direct = 0;
    apus_event_t *event;
    while ((event = apus_node_next(node, -1)) != NULL) {
        if (apus_event_type(event) == APUS_EVENT_INPUT) {
            size_t length;
            const unsigned char *data = apus_event_data(event, &length);
            if (strcmp(apus_event_id(event), "direct") == 0) {
                int right = length == 4096;
                for (size_t i = 0; right && i < length; i++)
                    right = data[i] == (unsigned char)(i * 7 + direct);
                unsigned long inode;
                unsigned long long offset;
                char name[512];
                if (find_mapping(data, &inode, &offset, name, sizeof name) == 0)
                    printf("received %d at inode %lu offset %llu in %s, %s\n", direct, inode, offset, name, right ? "intact" : "WRONG");
                direct++;
            } else {
                printf("library text of %zu bytes ending `%.*s`\n", length, 7, (const char *)data + (length >= 7 ? length - 7 : 0));
            }
        }
        apus_event_free(event);
    }
    apus_node_free(node);
    return 0;
}

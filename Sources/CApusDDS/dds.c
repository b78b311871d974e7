/* Loading libddsc at run time, and apus::Message's topic descriptor. */
#define _GNU_SOURCE
#include "apus_dds.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* dds_topic_descriptor_t of libddsc 0.10 (96 bytes), with the type information left out. */
struct descriptor {
    uint32_t size, align, flagset, nkeys;
    const char *type_name;
    const void *keys;
    uint32_t nops;
    const uint32_t *ops;
    const char *meta;
    struct { const uint8_t *data; uint32_t size; } type_information, type_mapping;
    uint32_t restrict_data_representation;
};

/* The marshalling program of apus::Message: two 8-byte fields, two byte sequences, return
 * (DDS_OP_ADR | DDS_OP_TYPE_8BY, DDS_OP_ADR | DDS_OP_TYPE_SEQ | DDS_OP_SUBTYPE_1BY, DDS_OP_RTS). */
enum { OP_ADR = 0x01000000u, TYPE_8BY = 0x00040000u, TYPE_SEQ = 0x00070000u, SUBTYPE_1BY = 0x00000100u, OP_RTS = 0 };
static const uint32_t message_ops[] = {
    OP_ADR | TYPE_8BY, offsetof(apusdds_message_t, seq),
    OP_ADR | TYPE_8BY, offsetof(apusdds_message_t, timestamp),
    OP_ADR | TYPE_SEQ | SUBTYPE_1BY, offsetof(apusdds_message_t, header),
    OP_ADR | TYPE_SEQ | SUBTYPE_1BY, offsetof(apusdds_message_t, data),
    OP_RTS,
};
static const struct descriptor message_descriptor = {
    .size = sizeof(apusdds_message_t),
    .align = _Alignof(apusdds_message_t),
    .type_name = "apus::Message",
    .nops = 5,
    .ops = message_ops,
    .meta = "",
};

const void *apusdds_message_descriptor(void) { return &message_descriptor; }

static pthread_mutex_t loading = PTHREAD_MUTEX_INITIALIZER;
static void *library;

int apusdds_load(apusdds_api_t *api, char *error, size_t error_size) {
    static const char *const names[] = {"libddsc.so.0debian", "libddsc.so.0", "libddsc.so"};
    const char *chosen = getenv("APUS_DDS_LIBRARY");
    pthread_mutex_lock(&loading);
    if (chosen != NULL && chosen[0] != '\0') {
        if (library == NULL) library = dlopen(chosen, RTLD_NOW | RTLD_LOCAL);
    } else {
        for (size_t i = 0; library == NULL && i < sizeof names / sizeof names[0]; i++) {
            library = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
        }
    }
    void *found = library;
    pthread_mutex_unlock(&loading);
    if (found == NULL) {
        snprintf(error, error_size, "Eclipse Cyclone DDS (libddsc) is not installed: %s", dlerror());
        return -1;
    }
#define LOOK_UP(field, symbol)                                                                                        \
    do {                                                                                                              \
        *(void **)&api->field = dlsym(found, symbol);                                                                 \
        if (api->field == NULL) {                                                                                     \
            snprintf(error, error_size, "libddsc has no %s: Apus needs Cyclone DDS 0.10", symbol);                   \
            return -1;                                                                                                \
        }                                                                                                             \
    } while (0)
    LOOK_UP(create_domain, "dds_create_domain");
    LOOK_UP(create_participant, "dds_create_participant");
    LOOK_UP(create_topic, "dds_create_topic");
    LOOK_UP(create_writer, "dds_create_writer");
    LOOK_UP(create_reader, "dds_create_reader");
    LOOK_UP(create_listener, "dds_create_listener");
    LOOK_UP(delete_listener, "dds_delete_listener");
    LOOK_UP(lset_data_available, "dds_lset_data_available");
    LOOK_UP(delete_entity, "dds_delete");
    LOOK_UP(create_qos, "dds_create_qos");
    LOOK_UP(delete_qos, "dds_delete_qos");
    LOOK_UP(qset_reliability, "dds_qset_reliability");
    LOOK_UP(qset_history, "dds_qset_history");
    LOOK_UP(qset_resource_limits, "dds_qset_resource_limits");
    LOOK_UP(qset_liveliness, "dds_qset_liveliness");
    LOOK_UP(qset_durability, "dds_qset_durability");
    LOOK_UP(write, "dds_write");
    LOOK_UP(wait_for_acks, "dds_wait_for_acks");
    LOOK_UP(take, "dds_take");
    LOOK_UP(return_loan, "dds_return_loan");
    LOOK_UP(create_waitset, "dds_create_waitset");
    LOOK_UP(waitset_attach, "dds_waitset_attach");
    LOOK_UP(waitset_wait, "dds_waitset_wait");
    LOOK_UP(create_readcondition, "dds_create_readcondition");
    LOOK_UP(set_status_mask, "dds_set_status_mask");
    LOOK_UP(get_publication_matched_status, "dds_get_publication_matched_status");
    LOOK_UP(get_subscription_matched_status, "dds_get_subscription_matched_status");
    LOOK_UP(get_liveliness_changed_status, "dds_get_liveliness_changed_status");
    LOOK_UP(strretcode, "dds_strretcode");
#undef LOOK_UP
    return 0;
}

/* Apus's use of Eclipse Cyclone DDS (0.10, the C API of libddsc), loaded at run time.
 *
 * A dataflow without `deploy` keys never needs Cyclone DDS, so Apus does not link it: the few
 * types and functions it uses are declared here as libddsc 0.10 defines them (checked against
 * <dds/dds.h> by Tests/CNodes/dds_abi.c wherever the headers are installed), and apusdds_load()
 * looks them up with dlopen. Only what Apus calls is here. */
#ifndef APUS_DDS_H
#define APUS_DDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef int32_t apusdds_entity_t;
typedef int32_t apusdds_return_t;
typedef int64_t apusdds_duration_t;
typedef struct apusdds_qos apusdds_qos_t;

/* dds_sequence_t: a byte sequence. */
typedef struct apusdds_bytes {
    uint32_t maximum;
    uint32_t length;
    uint8_t *buffer;
    bool release;
} apusdds_bytes_t;

/* The one topic type, apus::Message: a message's send sequence number and timestamp, its header
 * (element type, shape, parameters: Apus's sample header) and its payload. */
typedef struct apusdds_message {
    uint64_t seq;
    uint64_t timestamp;
    apusdds_bytes_t header;
    apusdds_bytes_t data;
} apusdds_message_t;

/* dds_sample_info_t (64 bytes); Apus reads valid_data. */
typedef struct apusdds_sample_info {
    uint32_t sample_state, view_state, instance_state;
    bool valid_data;
    int64_t source_timestamp;
    uint64_t instance_handle, publication_handle;
    uint32_t disposed_generation_count, no_writers_generation_count;
    uint32_t sample_rank, generation_rank, absolute_generation_rank;
} apusdds_sample_info_t;

/* dds_publication_matched_status_t and dds_subscription_matched_status_t. */
typedef struct apusdds_matched_status {
    uint32_t total_count;
    int32_t total_count_change;
    uint32_t current_count;
    int32_t current_count_change;
    uint64_t last_handle;
} apusdds_matched_status_t;

/* dds_liveliness_changed_status_t. */
typedef struct apusdds_liveliness_status {
    uint32_t alive_count, not_alive_count;
    int32_t alive_count_change, not_alive_count_change;
    uint64_t last_publication_handle;
} apusdds_liveliness_status_t;

enum {
    APUSDDS_DOMAIN_DEFAULT = 0xffffffffu,
    APUSDDS_RELIABILITY_BEST_EFFORT = 0,
    APUSDDS_RELIABILITY_RELIABLE = 1,
    APUSDDS_HISTORY_KEEP_LAST = 0,
    APUSDDS_HISTORY_KEEP_ALL = 1,
    APUSDDS_LIVELINESS_AUTOMATIC = 0,
    APUSDDS_DURABILITY_TRANSIENT_LOCAL = 1,
    APUSDDS_DATA_AVAILABLE_STATUS = 0x100,
    APUSDDS_LIVELINESS_CHANGED_STATUS = 0x400,
    APUSDDS_PUBLICATION_MATCHED_STATUS = 0x800,
    APUSDDS_SUBSCRIPTION_MATCHED_STATUS = 0x1000,
    APUSDDS_ANY_STATE = 0x7f,
};

/* dds_on_data_available_fn: called on the thread that delivered the data (Cyclone's receive
 * thread for a remote writer), with the listener's argument. */
typedef void (*apusdds_on_data_available_t)(apusdds_entity_t reader, void *argument);
typedef struct apusdds_listener apusdds_listener_t;

/* The functions of libddsc Apus calls, looked up by apusdds_load(). */
typedef struct apusdds_api {
    apusdds_entity_t (*create_domain)(uint32_t domain, const char *config);
    apusdds_entity_t (*create_participant)(uint32_t domain, const apusdds_qos_t *qos, const void *listener);
    apusdds_entity_t (*create_topic)(apusdds_entity_t participant, const void *descriptor, const char *name,
                                     const apusdds_qos_t *qos, const void *listener);
    apusdds_entity_t (*create_writer)(apusdds_entity_t participant, apusdds_entity_t topic, const apusdds_qos_t *qos,
                                      const void *listener);
    apusdds_entity_t (*create_reader)(apusdds_entity_t participant, apusdds_entity_t topic, const apusdds_qos_t *qos,
                                      const apusdds_listener_t *listener);
    apusdds_listener_t *(*create_listener)(void *argument);
    void (*delete_listener)(apusdds_listener_t *listener);
    void (*lset_data_available)(apusdds_listener_t *listener, apusdds_on_data_available_t callback);
    apusdds_return_t (*delete_entity)(apusdds_entity_t entity);
    apusdds_qos_t *(*create_qos)(void);
    void (*delete_qos)(apusdds_qos_t *qos);
    void (*qset_reliability)(apusdds_qos_t *qos, int kind, apusdds_duration_t max_blocking_time);
    void (*qset_history)(apusdds_qos_t *qos, int kind, int32_t depth);
    void (*qset_resource_limits)(apusdds_qos_t *qos, int32_t max_samples, int32_t max_instances,
                                 int32_t max_samples_per_instance);
    void (*qset_liveliness)(apusdds_qos_t *qos, int kind, apusdds_duration_t lease_duration);
    void (*qset_durability)(apusdds_qos_t *qos, int kind);
    apusdds_return_t (*write)(apusdds_entity_t writer, const void *data);
    apusdds_return_t (*wait_for_acks)(apusdds_entity_t writer, apusdds_duration_t timeout);
    apusdds_return_t (*take)(apusdds_entity_t reader, void **samples, apusdds_sample_info_t *infos, size_t capacity,
                             uint32_t max);
    apusdds_return_t (*return_loan)(apusdds_entity_t reader, void **samples, int32_t count);
    apusdds_entity_t (*create_waitset)(apusdds_entity_t participant);
    apusdds_return_t (*waitset_attach)(apusdds_entity_t waitset, apusdds_entity_t entity, intptr_t argument);
    apusdds_return_t (*waitset_wait)(apusdds_entity_t waitset, intptr_t *triggered, size_t capacity,
                                     apusdds_duration_t timeout);
    apusdds_entity_t (*create_readcondition)(apusdds_entity_t reader, uint32_t mask);
    apusdds_return_t (*set_status_mask)(apusdds_entity_t entity, uint32_t mask);
    apusdds_return_t (*get_publication_matched_status)(apusdds_entity_t writer, apusdds_matched_status_t *status);
    apusdds_return_t (*get_subscription_matched_status)(apusdds_entity_t reader, apusdds_matched_status_t *status);
    apusdds_return_t (*get_liveliness_changed_status)(apusdds_entity_t reader, apusdds_liveliness_status_t *status);
    const char *(*strretcode)(apusdds_return_t code);
} apusdds_api_t;

/* Loads libddsc once ($APUS_DDS_LIBRARY if set, else libddsc.so.0debian, libddsc.so.0 or
 * libddsc.so, the first found) and fills *api. Returns 0, or -1 with what is missing written to
 * `error` (NUL-terminated). */
int apusdds_load(apusdds_api_t *api, char *error, size_t error_size);

/* The topic descriptor of apus::Message, for create_topic. */
const void *apusdds_message_descriptor(void);

#endif

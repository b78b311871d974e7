/* Sources/CApusDDS/include/apus_dds.h declares what Apus uses of Cyclone DDS 0.10 itself (it loads
 * libddsc at run time); this checks those declarations against Cyclone's own headers. Compiled with
 * -fsyntax-only by Tests/python/test_machines.py wherever <dds/dds.h> is installed. */
#include <apus_dds.h>
#include <dds/dds.h>
#include <stddef.h>

#define SAME_LAYOUT(ours, theirs) _Static_assert(sizeof(ours) == sizeof(theirs), #ours " is not " #theirs)
#define SAME_OFFSET(ours, ourField, theirs, theirField)                                                               \
    _Static_assert(offsetof(ours, ourField) == offsetof(theirs, theirField), #ours "." #ourField)

SAME_LAYOUT(apusdds_bytes_t, dds_sequence_t);
SAME_OFFSET(apusdds_bytes_t, length, dds_sequence_t, _length);
SAME_OFFSET(apusdds_bytes_t, buffer, dds_sequence_t, _buffer);
SAME_OFFSET(apusdds_bytes_t, release, dds_sequence_t, _release);
SAME_LAYOUT(apusdds_sample_info_t, dds_sample_info_t);
SAME_OFFSET(apusdds_sample_info_t, valid_data, dds_sample_info_t, valid_data);
SAME_OFFSET(apusdds_sample_info_t, source_timestamp, dds_sample_info_t, source_timestamp);
SAME_LAYOUT(apusdds_matched_status_t, dds_publication_matched_status_t);
SAME_OFFSET(apusdds_matched_status_t, current_count, dds_publication_matched_status_t, current_count);
SAME_LAYOUT(apusdds_matched_status_t, dds_subscription_matched_status_t);
SAME_LAYOUT(apusdds_liveliness_status_t, dds_liveliness_changed_status_t);
SAME_OFFSET(apusdds_liveliness_status_t, alive_count, dds_liveliness_changed_status_t, alive_count);
SAME_OFFSET(apusdds_liveliness_status_t, not_alive_count, dds_liveliness_changed_status_t, not_alive_count);
_Static_assert(sizeof(dds_topic_descriptor_t) == 96, "dds.c's descriptor is 96 bytes");
_Static_assert(APUSDDS_DOMAIN_DEFAULT == DDS_DOMAIN_DEFAULT, "domain");
_Static_assert((int)APUSDDS_RELIABILITY_RELIABLE == (int)DDS_RELIABILITY_RELIABLE, "reliable");
_Static_assert((int)APUSDDS_HISTORY_KEEP_LAST == (int)DDS_HISTORY_KEEP_LAST && (int)APUSDDS_HISTORY_KEEP_ALL == (int)DDS_HISTORY_KEEP_ALL, "history");
_Static_assert((int)APUSDDS_LIVELINESS_AUTOMATIC == (int)DDS_LIVELINESS_AUTOMATIC, "liveliness");
_Static_assert((int)APUSDDS_DURABILITY_TRANSIENT_LOCAL == (int)DDS_DURABILITY_TRANSIENT_LOCAL, "durability");
_Static_assert(APUSDDS_DATA_AVAILABLE_STATUS == DDS_DATA_AVAILABLE_STATUS, "data available");
_Static_assert(APUSDDS_LIVELINESS_CHANGED_STATUS == DDS_LIVELINESS_CHANGED_STATUS, "liveliness changed");
_Static_assert(APUSDDS_PUBLICATION_MATCHED_STATUS == DDS_PUBLICATION_MATCHED_STATUS, "publication matched");
_Static_assert(APUSDDS_SUBSCRIPTION_MATCHED_STATUS == DDS_SUBSCRIPTION_MATCHED_STATUS, "subscription matched");
_Static_assert(APUSDDS_ANY_STATE == DDS_ANY_STATE, "any state");
_Static_assert(DDS_OP_ADR == 0x01000000 && DDS_OP_TYPE_8BY == 0x00040000 && DDS_OP_TYPE_SEQ == 0x00070000 &&
                   DDS_OP_SUBTYPE_1BY == 0x00000100 && DDS_OP_RTS == 0,
               "dds.c's marshalling opcodes");
_Static_assert(__builtin_types_compatible_p(apusdds_on_data_available_t, dds_on_data_available_fn), "data available callback");

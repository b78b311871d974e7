// A C++ node written against dora-rs's C node API only (node_api.h), in the shape of dora's
// examples/c++-dataflow/node-c-api: on each of 20 inputs it sends a one-byte counter on
// `counter`, then it exits. Built with g++ against include/dora, it runs unchanged under apus run.
extern "C" {
#include "node_api.h"
}

#include <iostream>
#include <string>
#include <vector>

static int run(void *context) {
    unsigned char counter = 0;
    for (int i = 0; i < 20; i++) {
        void *event = dora_next_event(context);
        if (event == nullptr) {
            std::cout << "[c++ node] ERROR: unexpected end of events" << std::endl;
            return -1;
        }
        enum DoraEventType type = read_dora_event_type(event);
        if (type == DoraEventType_Input) {
            counter += 1;
            char *id_pointer;
            size_t id_length;
            read_dora_input_id(event, &id_pointer, &id_length);
            std::string id(id_pointer, id_length);
            char *data_pointer;
            size_t data_length;
            read_dora_input_data(event, &data_pointer, &data_length);
            std::vector<unsigned char> data(data_pointer, data_pointer + data_length);
            std::cout << "[c++ node] input " << id << " (" << data.size() << " bytes), counter " << unsigned(counter)
                      << std::endl;
            std::string output = "counter";
            if (dora_send_output(context, &output[0], output.length(), reinterpret_cast<char *>(&counter), 1) != 0) {
                std::cerr << "failed to send output" << std::endl;
                free_dora_event(event);
                return 1;
            }
        } else if (type == DoraEventType_Stop) {
            std::cout << "[c++ node] received stop event" << std::endl;
        }
        free_dora_event(event);
    }
    return 0;
}

int main() {
    std::cout << "HELLO FROM C++ (using C API)" << std::endl;
    void *context = init_dora_context_from_env();
    if (context == nullptr) {
        std::cerr << "failed to init dora context" << std::endl;
        return 1;
    }
    int result = run(context);
    free_dora_context(context);
    std::cout << "GOODBYE FROM C++ node (using C API)" << std::endl;
    return result;
}

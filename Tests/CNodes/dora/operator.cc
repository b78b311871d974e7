// A C++ operator written against dora-rs's C operator API only, as in dora's
// examples/c++-dataflow/operator-c-api: halves each byte of its input and sends the result on
// `half-status`. Built with g++ -shared, it runs unchanged in an Apus runtime node.
extern "C" {
#include "operator_api.h"
}

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <vector>

class Halver
{
public:
    int handled = 0;
};

extern "C" DoraInitResult_t dora_init_operator()
{
    DoraInitResult_t result = {};
    result.operator_context = std::make_unique<Halver>().release();
    return result;
}

extern "C" DoraResult_t dora_drop_operator(void *operator_context)
{
    auto *halver = static_cast<Halver *>(operator_context);
    std::cout << "C++ operator dropped after " << halver->handled << " inputs" << std::endl;
    delete halver;
    return {};
}

extern "C" OnEventResult_t dora_on_event(RawEvent_t *event, const SendOutput_t *send_output, void *operator_context)
{
    OnEventResult_t result = {};
    result.status = DORA_STATUS_CONTINUE;
    auto *halver = static_cast<Halver *>(operator_context);
    if (event->input != nullptr)
    {
        char *id = dora_read_input_id(event->input);
        Vec_uint8_t data = dora_read_data(event->input);
        std::vector<uint8_t> halves(data.ptr, data.ptr + data.len);
        for (auto &value : halves)
            value /= 2;
        std::cout << "C++ operator received `" << id << "` of " << data.len << " bytes" << std::endl;
        result.result = dora_send_operator_output(send_output, "half-status", halves.data(), halves.size());
        halver->handled += 1;
        dora_free_data(data);
        dora_free_input_id(id);
    }
    if (event->stop)
        std::cout << "C++ operator received stop event" << std::endl;
    return result;
}

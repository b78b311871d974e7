// A C++ operator: doubles every float32 array it gets, zero-copy on the way out.
#include <apus.hpp>

class Doubler {
public:
    explicit Doubler(apus::Node &node) { node.log(APUS_LOG_INFO, "doubler ready"); }

    apus::OperatorStatus on_event(apus::Node &node, const apus::Event &event) {
        if (!event.is_input()) return apus::OperatorStatus::Continue;
        auto values = event.data<float>();
        auto out = node.allocate<float>("out", values.size());
        for (std::size_t i = 0; i < values.size(); i++) out[i] = values[i] * 2;
        node.send(std::move(out));
        return apus::OperatorStatus::Continue;
    }
};

APUS_OPERATOR(Doubler)

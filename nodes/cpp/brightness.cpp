// brightness: a C++ operator (APUS_OPERATOR) that sends, for each RGB frame on `frame`, the mean
// of each channel as float32 [r, g, b] on `brightness`, with the frame number passed on. It reads
// the frame in place from the camera's shared memory and writes its answer in place.
#include <apus.hpp>

class Brightness {
public:
    explicit Brightness(apus::Node &) {}

    apus::OperatorStatus on_event(apus::Node &node, const apus::Event &event) {
        if (!event.is_input()) return apus::OperatorStatus::Continue;
        auto pixels = event.data<std::uint8_t>();
        double sums[3] = {0, 0, 0};
        for (std::size_t i = 0; i + 2 < pixels.size(); i += 3) {
            sums[0] += pixels[i];
            sums[1] += pixels[i + 1];
            sums[2] += pixels[i + 2];
        }
        const double count = pixels.size() / 3 > 0 ? double(pixels.size() / 3) : 1.0;
        auto out = node.allocate<float>("brightness", 3);
        for (int c = 0; c < 3; c++) out[c] = float(sums[c] / count);
        node.send(std::move(out), apus::Metadata().set("frame", event.param<std::int64_t>("frame")));
        return apus::OperatorStatus::Continue;
    }
};

APUS_OPERATOR(Brightness)

// camera: a frame generator standing in for a camera driver, in C++ (include/apus.hpp).
//
// On each `tick` it writes a WIDTH×HEIGHT×3 uint8 RGB frame straight into shared memory
// (node.allocate, sent without a copy) and sends it on `frame` with its number, the capture time
// and encoding rgb8 in the metadata. After FRAMES frames (0: no limit) it ends. Settings come
// from the environment: WIDTH (640), HEIGHT (480), FRAMES (0).
#include <apus.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <string>

static std::uint64_t setting(const char *name, std::uint64_t fallback) {
    const char *text = std::getenv(name);
    if (text == nullptr || *text == '\0') return fallback;
    char *end = nullptr;
    unsigned long long value = std::strtoull(text, &end, 10);
    if (*end != '\0') throw std::invalid_argument(std::string(name) + "=" + text + " is not a non-negative integer");
    return value;
}

static std::int64_t monotonic_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int main() {
    try {
        const std::uint64_t width = setting("WIDTH", 640), height = setting("HEIGHT", 480), frames = setting("FRAMES", 0);
        apus::Node node;
        std::int64_t sent = 0;
        for (auto &event : node) {
            if (!event.is_input()) continue;
            const std::int64_t captured = monotonic_ns();
            auto frame = node.allocate<std::uint8_t>("frame", {height, width, 3});
            // A bright square moving over a dark gradient, for the nodes downstream to find.
            const std::uint64_t left = (sent * 7) % width, top = height / 3, side = height / 3;
            for (std::uint64_t y = 0; y < height; y++) {
                for (std::uint64_t x = 0; x < width; x++) {
                    std::uint8_t *pixel = &frame[3 * (y * width + x)];
                    const bool inside = x >= left && x < left + side && y >= top && y < top + side;
                    pixel[0] = inside ? 250 : static_cast<std::uint8_t>(x * 100 / width);
                    pixel[1] = inside ? 240 : static_cast<std::uint8_t>(y * 100 / height);
                    pixel[2] = inside ? 230 : 40;
                }
            }
            node.send(std::move(frame),
                      apus::Metadata().set("frame", sent).set("captured_ns", captured).set("encoding", "rgb8"));
            if (++sent == static_cast<std::int64_t>(frames)) break;
        }
        std::cout << "camera: sent " << sent << " frames of " << width << "x" << height << std::endl;
    } catch (const std::exception &error) {
        std::cerr << "camera: " << error.what() << std::endl;
        return 1;
    }
}

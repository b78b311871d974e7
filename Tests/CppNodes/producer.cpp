// Sends one message of every element type, with metadata of every kind, and a zero-copy 2×3
// float array; checks the error paths of sending; then ends (its consumers get INPUT_CLOSED).
#include <apus.hpp>

#include <cstdio>
#include <string>
#include <vector>

static int failures = 0;

static void expect(bool ok, const char *what) {
    if (!ok) {
        std::printf("producer: FAILED %s\n", what);
        failures++;
    }
}

template <typename T> static void send_three(apus::Node &node, const char *output, T a, T b, T c) {
    const T values[] = {a, b, c};
    node.send(output, values, 3, apus::Metadata().set("kind", output));
}

int main() {
    apus::Node node;
    expect(node.id() == "producer", "the node's id");
    expect(node.outputs().size() == 14, "fourteen outputs");
    send_three<std::uint8_t>(node, "u8", 1, 2, 255);
    send_three<std::uint16_t>(node, "u16", 1, 2, 65535);
    send_three<std::uint32_t>(node, "u32", 1, 2, 4294967295u);
    send_three<std::uint64_t>(node, "u64", 1, 2, 18446744073709551615ull);
    send_three<std::int8_t>(node, "i8", -1, 2, -128);
    send_three<std::int16_t>(node, "i16", -1, 2, -32768);
    send_three<std::int32_t>(node, "i32", -1, 2, -2147483647 - 1);
    send_three<std::int64_t>(node, "i64", -1, 2, -9223372036854775807ll - 1);
    send_three<apus::float16>(node, "f16", {0x3C00}, {0x4000}, {0xC000});  // 1, 2, -2
#ifdef APUS_HPP_HAS_SPAN
    const float f32[] = {1.5f, -2.25f, 3.0f};  // C++20: a std::span sends as it is
    node.send("f32", std::span<const float>(f32), apus::Metadata().set("kind", "f32"));
#else
    send_three<float>(node, "f32", 1.5f, -2.25f, 3.0f);
#endif
    send_three<double>(node, "f64", 1.5, -2.25, 1e300);
    const bool flags[] = {true, false, true};
    node.send("flags", flags, 3);
    node.send("text", std::string_view("héllo"),
              apus::Metadata()
                  .set("b", true)
                  .set("i", 42)
                  .set("f", 0.5)
                  .set("s", "str")
                  .set("bs", std::vector<bool>{true, false})
                  .set("is", std::vector<std::int64_t>{1, -2, 3})
                  .set("fs", std::vector<double>{0.25, -0.5})
                  .set("ss", std::vector<std::string>{"a", "bc"}));

    auto sample = node.allocate<float>("matrix", {2, 3});
    expect(sample.size() == 6, "allocate<float>(2×3) has 6 elements");
    for (std::size_t i = 0; i < sample.size(); i++) sample[i] = float(i) * 10;
    node.send(std::move(sample), apus::Metadata().set("frame", 7));
    expect(!sample, "a sent sample is empty");
    try {  // NOLINT: the moved-from sample, sent again, on purpose
        node.send(std::move(sample));
        expect(false, "sending a sample twice throws");
    } catch (const apus::Error &error) {
        expect(error.status() == APUS_ERROR_INVALID_HANDLE, "sending a sample twice is INVALID_HANDLE");
    }
    {
        auto unsent = node.allocate<std::uint8_t>("u8", 16);  // given back when it goes out of scope
        expect(unsent.size() == 16, "an unsent sample has its size");
    }
    try {
        node.send("nowhere", "text");
        expect(false, "an unknown output throws");
    } catch (const apus::Error &error) {
        expect(error.status() == APUS_ERROR_UNKNOWN_OUTPUT, "an unknown output is UNKNOWN_OUTPUT");
        expect(std::string(error.what()).find("nowhere") != std::string::npos, "the error names the output");
    }
    try {
        node.allocate<float>("nowhere", 4);
        expect(false, "allocating on an unknown output throws");
    } catch (const apus::Error &error) {
        expect(error.status() == APUS_ERROR_UNKNOWN_OUTPUT, "allocate on an unknown output is UNKNOWN_OUTPUT");
    }
    apus::Node moved = std::move(node);
    try {
        node.send("u8", "x");  // NOLINT: moved from, on purpose
        expect(false, "a moved-from node throws");
    } catch (const apus::Error &error) {
        expect(error.status() == APUS_ERROR_INVALID_HANDLE, "a moved-from node is INVALID_HANDLE");
    }
    std::printf(failures == 0 ? "producer: ok\n" : "producer: %d failures\n", failures);
    return failures == 0 ? 0 : 1;
}

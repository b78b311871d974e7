// Checks every message the producer sends, through typed views, and the errors of reading one
// as the wrong type; runs until STOP, which ends the range-for.
#include <apus.hpp>

#include <cmath>
#ifdef APUS_HPP_HAS_SPAN
#include <span>
#endif
#include <cstdio>
#include <string>

static int failures = 0;

static void expect(bool ok, const std::string &what) {
    if (!ok) {
        std::printf("consumer: FAILED %s\n", what.c_str());
        failures++;
    }
}

template <typename T> static void check_three(const apus::Event &event, T a, T b, T c) {
    auto values = event.data<T>();
    std::string id(event.id());
    expect(values.size() == 3 && values[0] == a && values[1] == b && values[2] == c, id + ": the values");
    expect(event.element_type() == apus::type_of<T>::value, id + ": the element type");
    expect(event.param<std::string_view>("kind") == event.id(), id + ": its metadata");
    expect(event.timestamp() > 0, id + ": a send timestamp");
}

int main() {
    apus::Node node;
    int inputs = 0, closed = 0, stops = 0;
    for (auto &event : node) {
        if (event.is_stop()) {
            stops++;
            continue;
        }
        if (event.is_input_closed()) {
            closed++;
            continue;
        }
        if (!event.is_input()) continue;
        inputs++;
        auto id = event.id();
        if (id == "u8") check_three<std::uint8_t>(event, 1, 2, 255);
        if (id == "u16") check_three<std::uint16_t>(event, 1, 2, 65535);
        if (id == "u32") check_three<std::uint32_t>(event, 1, 2, 4294967295u);
        if (id == "u64") check_three<std::uint64_t>(event, 1, 2, 18446744073709551615ull);
        if (id == "i8") check_three<std::int8_t>(event, -1, 2, -128);
        if (id == "i16") check_three<std::int16_t>(event, -1, 2, -32768);
        if (id == "i32") check_three<std::int32_t>(event, -1, 2, -2147483647 - 1);
        if (id == "i64") check_three<std::int64_t>(event, -1, 2, -9223372036854775807ll - 1);
        if (id == "f32") check_three<float>(event, 1.5f, -2.25f, 3.0f);
        if (id == "f64") check_three<double>(event, 1.5, -2.25, 1e300);
        if (id == "f16") {
            auto halves = event.data<apus::float16>();
            expect(halves.size() == 3 && halves[0].bits == 0x3C00 && halves[2].bits == 0xC000, "f16: the values");
        }
        if (id == "flags") {
            auto flags = event.data<bool>();
            expect(flags.size() == 3 && flags[0] && !flags[1] && flags[2], "flags: the values");
        }
        if (id == "text") {
            expect(event.text() == "héllo", "text: the text");
            expect(event.param<bool>("b") && event.param<int>("i") == 42 && event.param<double>("f") == 0.5,
                   "text: scalar parameters");
            expect(event.param<std::string_view>("s") == "str", "text: a string parameter");
            auto bs = event.param<apus::View<const bool>>("bs");
            auto is = event.param<apus::View<const std::int64_t>>("is");
            auto fs = event.param<apus::View<const double>>("fs");
            expect(bs.size() == 2 && bs[0] && !bs[1], "text: a bool list");
            expect(is.size() == 3 && is[1] == -2, "text: an int list");
            expect(fs.size() == 2 && fs[1] == -0.5, "text: a float list");
            expect(event.has("ss") && !event.has("missing"), "text: has()");
            try {
                event.param<std::int64_t>("missing");
                expect(false, "a missing parameter throws");
            } catch (const apus::Error &error) {
                expect(error.status() == APUS_ERROR_NOT_FOUND, "a missing parameter is NOT_FOUND");
            }
            try {
                event.param<std::int64_t>("s");
                expect(false, "a parameter of another type throws");
            } catch (const apus::Error &error) {
                expect(error.status() == APUS_ERROR_WRONG_TYPE, "a parameter of another type is WRONG_TYPE");
            }
        }
        if (id == "matrix") {
            auto values = event.data<float>();
            auto shape = event.shape();
            expect(shape.size() == 2 && shape[0] == 2 && shape[1] == 3, "matrix: shape 2×3");
            expect(values.size() == 6 && values[5] == 50.0f, "matrix: the values written in place");
            expect(event.param<int>("frame") == 7, "matrix: its metadata");
            try {
                event.data<double>();
                expect(false, "data<double>() of float32 throws");
            } catch (const apus::Error &error) {
                expect(error.status() == APUS_ERROR_WRONG_TYPE, "data<double>() of float32 is WRONG_TYPE");
                expect(std::string(error.what()).find("float32") != std::string::npos, "the error names the type");
            }
            expect(event.data<std::uint8_t>().size() == 24, "data<uint8_t>() is the bytes of any payload");
#ifdef APUS_HPP_HAS_SPAN
            std::span<const float> span = event.data<float>();  // C++20: a view is a std::span
            expect(span.size() == 6 && span[5] == 50.0f, "matrix: as a std::span");
#endif
        }
        if (id == "doubled") {
            auto values = event.data<float>();
            expect(values.size() == 6 && values[5] == 100.0f, "doubled: the operator doubled the matrix");
        }
    }
    expect(inputs == 15, "fifteen messages, got " + std::to_string(inputs));
    expect(closed == 15 && stops == 1, "every input closed, then STOP");
    std::printf(failures == 0 ? "consumer: ok\n" : "consumer: %d failures\n", failures);
    return failures == 0 ? 0 : 1;
}

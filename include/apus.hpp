/*
 * apus.hpp: Apus's C++ API, header-only, over apus.h (no second implementation).
 *
 *     #include <apus.hpp>
 *
 *     int main() {
 *         apus::Node node;                                   // joins the dataflow (throws if not in one)
 *         for (auto &event : node) {                         // ends after STOP
 *             if (!event.is_input()) continue;
 *             auto values = event.data<float>();             // a view of shared memory, type-checked
 *             auto out = node.allocate<float>("out", values.size());   // zero-copy
 *             for (std::size_t i = 0; i < values.size(); i++) out[i] = values[i] * 2;
 *             node.send(std::move(out), apus::Metadata().set("frame", event.param<std::int64_t>("frame")));
 *         }
 *     }
 *
 * C++17; with C++20, views convert to std::span. Build: c++ -std=c++17 node.cpp $(apus config
 * --cflags) $(apus config --libs). Errors throw apus::Error, which carries the C API's status and
 * message. Handles are RAII and move-only: a Node frees its node, an Event its event (and the
 * shared memory it pins), a Sample not sent goes back to its pool. One thread receives at a time;
 * sending works from any thread (as in apus.h).
 *
 * Operators: a class with a constructor taking apus::Node& and `apus::OperatorStatus
 * on_event(apus::Node &, const apus::Event &)`, registered with APUS_OPERATOR(Class) in one
 * source file of the shared library.
 */
#ifndef APUS_HPP
#define APUS_HPP

#include <apus.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__cpp_lib_span) || (__cplusplus >= 202002L && defined(__has_include))
#if __has_include(<span>)
#include <span>
#define APUS_HPP_HAS_SPAN 1
#endif
#endif

namespace apus {

/* A failed call: the C API's status (apus_status_t) and its message. */
class Error : public std::runtime_error {
public:
    Error(apus_status_t status, const std::string &message)
        : std::runtime_error(std::string(apus_status_name(status)) + ": " + message), status_(status) {}
    apus_status_t status() const noexcept { return status_; }

private:
    apus_status_t status_;
};

namespace detail {
[[noreturn]] inline void fail() {
    apus_status_t status = apus_last_status();
    const char *message = apus_last_error();
    throw Error(status < 0 ? status : APUS_ERROR_INVALID_HANDLE, message != nullptr ? message : "");
}

inline void check(apus_status_t status) {
    if (status < 0) fail();
}
}  // namespace detail

/* An IEEE half-precision number, as APUS_TYPE_FLOAT16 carries it (C++17 has no such type). */
struct float16 {
    std::uint16_t bits;
};

/* The element type a C++ type travels as. */
template <typename T> struct type_of;
template <> struct type_of<std::uint8_t> { static constexpr apus_type_t value = APUS_TYPE_UINT8; };
template <> struct type_of<std::uint16_t> { static constexpr apus_type_t value = APUS_TYPE_UINT16; };
template <> struct type_of<std::uint32_t> { static constexpr apus_type_t value = APUS_TYPE_UINT32; };
template <> struct type_of<std::uint64_t> { static constexpr apus_type_t value = APUS_TYPE_UINT64; };
template <> struct type_of<std::int8_t> { static constexpr apus_type_t value = APUS_TYPE_INT8; };
template <> struct type_of<std::int16_t> { static constexpr apus_type_t value = APUS_TYPE_INT16; };
template <> struct type_of<std::int32_t> { static constexpr apus_type_t value = APUS_TYPE_INT32; };
template <> struct type_of<std::int64_t> { static constexpr apus_type_t value = APUS_TYPE_INT64; };
template <> struct type_of<float16> { static constexpr apus_type_t value = APUS_TYPE_FLOAT16; };
template <> struct type_of<float> { static constexpr apus_type_t value = APUS_TYPE_FLOAT32; };
template <> struct type_of<double> { static constexpr apus_type_t value = APUS_TYPE_FLOAT64; };
template <> struct type_of<bool> { static constexpr apus_type_t value = APUS_TYPE_BOOL; };
template <> struct type_of<char> { static constexpr apus_type_t value = APUS_TYPE_UTF8; };

/* The name of an element type, for messages. */
inline const char *type_name(apus_type_t type) {
    static const char *const names[] = {"uint8",   "uint16",  "uint32",  "uint64", "int8", "int16", "int32",
                                        "int64",   "float16", "float32", "float64", "bool", "utf8"};
    return static_cast<unsigned>(type) < sizeof names / sizeof names[0] ? names[type] : "unknown";
}

/* A view of `size()` elements of T that the API does not own (std::span in spirit; converts to
 * one with C++20). Valid as long as what it views: the Event, or the Sample until sent. */
template <typename T> class View {
public:
    View() = default;
    View(T *data, std::size_t size) : data_(data), size_(size) {}
    T *data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }
    T &operator[](std::size_t index) const noexcept { return data_[index]; }
    T *begin() const noexcept { return data_; }
    T *end() const noexcept { return data_ + size_; }
#ifdef APUS_HPP_HAS_SPAN
    operator std::span<T>() const noexcept { return {data_, size_}; }
#endif

private:
    T *data_ = nullptr;
    std::size_t size_ = 0;
};

/* The parameters (and element type and shape) of a message to send. Chain the setters:
 * apus::Metadata().set("frame", 7).set("unit", "m"). */
class Metadata {
public:
    Metadata() = default;
    Metadata(Metadata &&other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
    Metadata &operator=(Metadata &&other) noexcept {
        std::swap(handle_, other.handle_);
        return *this;
    }
    Metadata(const Metadata &) = delete;
    Metadata &operator=(const Metadata &) = delete;
    ~Metadata() { apus_metadata_free(handle_); }

    Metadata &&set(const std::string &key, bool value) && { return std::move(set(key, value)); }
    Metadata &set(const std::string &key, bool value) & {
        detail::check(apus_metadata_set_bool(made(), key.c_str(), value));
        return *this;
    }
    template <typename I, typename = std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>>>
    Metadata &set(const std::string &key, I value) & {
        detail::check(apus_metadata_set_int(made(), key.c_str(), static_cast<std::int64_t>(value)));
        return *this;
    }
    template <typename I, typename = std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>>>
    Metadata &&set(const std::string &key, I value) && { return std::move(set(key, value)); }
    Metadata &set(const std::string &key, double value) & {
        detail::check(apus_metadata_set_float(made(), key.c_str(), value));
        return *this;
    }
    Metadata &&set(const std::string &key, double value) && { return std::move(set(key, value)); }
    Metadata &set(const std::string &key, const std::string &value) & {
        detail::check(apus_metadata_set_string(made(), key.c_str(), value.c_str()));
        return *this;
    }
    Metadata &&set(const std::string &key, const std::string &value) && { return std::move(set(key, value)); }
    Metadata &set(const std::string &key, const char *value) & { return set(key, std::string(value)); }
    Metadata &&set(const std::string &key, const char *value) && { return std::move(set(key, std::string(value))); }
    Metadata &set(const std::string &key, const std::vector<std::int64_t> &values) & {
        detail::check(apus_metadata_set_ints(made(), key.c_str(), values.data(), values.size()));
        return *this;
    }
    Metadata &&set(const std::string &key, const std::vector<std::int64_t> &values) && {
        return std::move(set(key, values));
    }
    Metadata &set(const std::string &key, const std::vector<double> &values) & {
        detail::check(apus_metadata_set_floats(made(), key.c_str(), values.data(), values.size()));
        return *this;
    }
    Metadata &&set(const std::string &key, const std::vector<double> &values) && { return std::move(set(key, values)); }
    Metadata &set(const std::string &key, const std::vector<bool> &values) & {
        std::unique_ptr<bool[]> flat(new bool[values.size() + 1]);
        for (std::size_t i = 0; i < values.size(); i++) flat[i] = values[i];
        detail::check(apus_metadata_set_bools(made(), key.c_str(), flat.get(), values.size()));
        return *this;
    }
    Metadata &&set(const std::string &key, const std::vector<bool> &values) && { return std::move(set(key, values)); }
    Metadata &set(const std::string &key, const std::vector<std::string> &values) & {
        std::vector<const char *> texts;
        for (const auto &value : values) texts.push_back(value.c_str());
        detail::check(apus_metadata_set_strings(made(), key.c_str(), texts.data(), texts.size()));
        return *this;
    }
    Metadata &&set(const std::string &key, const std::vector<std::string> &values) && {
        return std::move(set(key, values));
    }

    /* Dimensions (row-major); a message without a shape is a flat array. */
    Metadata &shape(const std::vector<std::uint64_t> &dims) & {
        detail::check(apus_metadata_set_shape(made(), dims.data(), dims.size()));
        return *this;
    }
    Metadata &&shape(const std::vector<std::uint64_t> &dims) && { return std::move(shape(dims)); }

    /* The C handle (NULL while nothing was set), for calls into apus.h. */
    apus_metadata_t *get() const noexcept { return handle_; }

    /* Sets the element type; the Node does it for typed sends. */
    void set_type(apus_type_t type) {
        if (handle_ == nullptr && type == APUS_TYPE_UINT8) return;  // the default: no metadata needed
        detail::check(apus_metadata_set_type(made(), type));
    }

private:
    apus_metadata_t *made() {
        if (handle_ == nullptr) {
            handle_ = apus_metadata_new();
            if (handle_ == nullptr) detail::fail();
        }
        return handle_;
    }

    apus_metadata_t *handle_ = nullptr;
};

/* One event: an input's message (viewing the producer's shared memory, pinned while the Event
 * lives), a closed input, STOP, a failed node, or an error. */
class Event {
public:
    Event() = default;
    explicit Event(apus_event_t *handle, bool owned = true) : handle_(handle), owned_(owned) {}
    Event(Event &&other) noexcept
        : handle_(std::exchange(other.handle_, nullptr)), owned_(std::exchange(other.owned_, true)) {}
    Event &operator=(Event &&other) noexcept {
        std::swap(handle_, other.handle_);
        std::swap(owned_, other.owned_);
        return *this;
    }
    Event(const Event &) = delete;
    Event &operator=(const Event &) = delete;
    ~Event() {
        if (owned_) apus_event_free(handle_);
    }

    /* False for the empty Event `Node::next` returns when its timeout passed. */
    explicit operator bool() const noexcept { return handle_ != nullptr; }

    apus_event_type_t type() const { return apus_event_type(live()); }
    bool is_input() const { return type() == APUS_EVENT_INPUT; }
    bool is_input_closed() const { return type() == APUS_EVENT_INPUT_CLOSED; }
    bool is_stop() const { return type() == APUS_EVENT_STOP; }
    bool is_node_failed() const { return type() == APUS_EVENT_NODE_FAILED; }
    bool is_error() const { return type() == APUS_EVENT_ERROR; }

    /* The input's id (INPUT, INPUT_CLOSED), or the failed node's (NODE_FAILED). */
    std::string_view id() const { return text(apus_event_id(live())); }
    /* ERROR and NODE_FAILED: what happened. */
    std::string_view message() const { return text(apus_event_message(live())); }

    apus_type_t element_type() const { return apus_event_data_type(live()); }
    std::uint64_t timestamp() const { return apus_event_timestamp(live()); }

    /* The payload's bytes, whatever its element type. */
    View<const std::uint8_t> bytes() const {
        std::size_t length = 0;
        const void *data = apus_event_data(live(), &length);
        if (data == nullptr && length != 0) detail::fail();
        return {static_cast<const std::uint8_t *>(data), length};
    }

    /* The payload as elements of T, which must be the type it was sent as (Error
     * APUS_ERROR_WRONG_TYPE otherwise; uint8_t views any payload as its bytes). */
    template <typename T> View<const T> data() const {
        auto raw = bytes();
        if (type_of<T>::value != element_type() && type_of<T>::value != APUS_TYPE_UINT8) {
            throw Error(APUS_ERROR_WRONG_TYPE, std::string("input '") + std::string(id()) + "' carries " +
                                                   type_name(element_type()) + ", not " +
                                                   type_name(type_of<T>::value));
        }
        return {reinterpret_cast<const T *>(raw.data()), raw.size() / sizeof(T)};
    }

    /* A utf8 payload as text. */
    std::string_view text() const {
        auto chars = data<char>();
        return {chars.data(), chars.size()};
    }

    /* The dimensions the message was sent with (empty: a flat array). */
    View<const std::uint64_t> shape() const {
        const std::uint64_t *dims = nullptr;
        std::size_t rank = 0;
        detail::check(apus_event_shape(live(), &dims, &rank));
        return {dims, rank};
    }

    bool has(const std::string &key) const {
        apus_param_type_t type;
        return apus_event_param_type(live(), key.c_str(), &type) == APUS_OK;
    }

    /* The parameter `key` as T: bool, an integer type, double, std::string_view, or View<const
     * bool/std::int64_t/double>. Error APUS_ERROR_NOT_FOUND or APUS_ERROR_WRONG_TYPE otherwise. */
    template <typename T> T param(const std::string &key) const {
        if constexpr (std::is_same_v<T, bool>) {
            bool value = false;
            detail::check(apus_event_param_bool(live(), key.c_str(), &value));
            return value;
        } else if constexpr (std::is_integral_v<T>) {
            std::int64_t value = 0;
            detail::check(apus_event_param_int(live(), key.c_str(), &value));
            return static_cast<T>(value);
        } else if constexpr (std::is_floating_point_v<T>) {
            double value = 0;
            detail::check(apus_event_param_float(live(), key.c_str(), &value));
            return static_cast<T>(value);
        } else if constexpr (std::is_same_v<T, std::string_view>) {
            const char *value = nullptr;
            std::size_t length = 0;
            detail::check(apus_event_param_string(live(), key.c_str(), &value, &length));
            return {value, length};
        } else if constexpr (std::is_same_v<T, View<const bool>>) {
            const bool *values = nullptr;
            std::size_t count = 0;
            detail::check(apus_event_param_bools(live(), key.c_str(), &values, &count));
            return {values, count};
        } else if constexpr (std::is_same_v<T, View<const std::int64_t>>) {
            const std::int64_t *values = nullptr;
            std::size_t count = 0;
            detail::check(apus_event_param_ints(live(), key.c_str(), &values, &count));
            return {values, count};
        } else if constexpr (std::is_same_v<T, View<const double>>) {
            const double *values = nullptr;
            std::size_t count = 0;
            detail::check(apus_event_param_floats(live(), key.c_str(), &values, &count));
            return {values, count};
        } else {
            static_assert(sizeof(T) == 0, "param<T>: T is bool, an integer, a floating point type, std::string_view "
                                          "or View<const bool/std::int64_t/double>");
        }
    }

    /* The C handle, for calls into apus.h. */
    const apus_event_t *get() const noexcept { return handle_; }

private:
    const apus_event_t *live() const {
        if (handle_ == nullptr) throw Error(APUS_ERROR_INVALID_HANDLE, "an empty Event (moved from, or a timeout)");
        return handle_;
    }
    static std::string_view text(const char *value) { return value != nullptr ? std::string_view(value) : std::string_view(); }

    apus_event_t *handle_ = nullptr;
    bool owned_ = true;
};

class Node;

/* A message being written in place in shared memory (`Node::allocate`). Send it with
 * `node.send(std::move(sample))`; a Sample destroyed unsent goes back to its pool. */
template <typename T> class Sample {
public:
    Sample(Sample &&other) noexcept
        : handle_(std::exchange(other.handle_, nullptr)), count_(other.count_), shape_(std::move(other.shape_)) {}
    Sample &operator=(Sample &&other) noexcept {
        std::swap(handle_, other.handle_);
        std::swap(count_, other.count_);
        std::swap(shape_, other.shape_);
        return *this;
    }
    Sample(const Sample &) = delete;
    Sample &operator=(const Sample &) = delete;
    ~Sample() { apus_sample_discard(handle_); }

    T *data() const noexcept { return handle_ != nullptr ? static_cast<T *>(apus_sample_data(handle_)) : nullptr; }
    std::size_t size() const noexcept { return handle_ != nullptr ? count_ : 0; }
    T &operator[](std::size_t index) const noexcept { return data()[index]; }
    T *begin() const noexcept { return data(); }
    T *end() const noexcept { return data() + size(); }
    View<T> view() const noexcept { return {data(), size()}; }
    /* False once sent (or moved from). */
    explicit operator bool() const noexcept { return handle_ != nullptr; }

private:
    friend class Node;
    Sample(apus_sample_t *handle, std::size_t count, std::vector<std::uint64_t> shape)
        : handle_(handle), count_(count), shape_(std::move(shape)) {}

    apus_sample_t *handle_ = nullptr;
    std::size_t count_ = 0;
    std::vector<std::uint64_t> shape_;
};

/* This process's node in the dataflow that `apus run` started it in. */
class Node {
public:
    /* Joins the dataflow (Error APUS_ERROR_NOT_IN_DATAFLOW outside `apus run`). */
    Node() : handle_(apus_node_init_from_env()), owned_(true) {
        if (handle_ == nullptr) detail::fail();
    }
    /* A view of a handle the caller keeps owning (an operator's). */
    explicit Node(apus_node_t *handle, bool owned) : handle_(handle), owned_(owned) {}
    Node(Node &&other) noexcept : handle_(std::exchange(other.handle_, nullptr)), owned_(other.owned_) {}
    Node &operator=(Node &&other) noexcept {
        std::swap(handle_, other.handle_);
        std::swap(owned_, other.owned_);
        return *this;
    }
    Node(const Node &) = delete;
    Node &operator=(const Node &) = delete;
    ~Node() {
        if (owned_) apus_node_free(handle_);
    }

    std::string_view id() const { return apus_node_id(live()); }
    std::vector<std::string_view> inputs() const {
        std::vector<std::string_view> ids;
        for (std::size_t i = 0; i < apus_node_input_count(live()); i++) ids.emplace_back(apus_node_input_id(handle_, i));
        return ids;
    }
    std::vector<std::string_view> outputs() const {
        std::vector<std::string_view> ids;
        for (std::size_t i = 0; i < apus_node_output_count(live()); i++) ids.emplace_back(apus_node_output_id(handle_, i));
        return ids;
    }

    /* The next event, waiting up to `timeout_ns` (negative: without limit). An empty Event when
     * the timeout passed or the stream has ended (after STOP); Error on failure. */
    Event next(std::int64_t timeout_ns = -1) {
        apus_event_t *event = apus_node_next(live(), timeout_ns);
        if (event == nullptr && apus_last_status() < 0) detail::fail();
        return Event(event);
    }

    /* `for (auto &event : node)`: every event, STOP last. */
    class iterator {
    public:
        using iterator_category = std::input_iterator_tag;
        using value_type = Event;
        using difference_type = std::ptrdiff_t;
        using pointer = Event *;
        using reference = Event &;

        iterator() = default;
        explicit iterator(Node *node) : node_(node) { ++*this; }
        Event &operator*() noexcept { return event_; }
        Event *operator->() noexcept { return &event_; }
        iterator &operator++() {
            event_ = node_->next();
            if (!event_) node_ = nullptr;
            return *this;
        }
        bool operator==(const iterator &other) const noexcept { return node_ == other.node_; }
        bool operator!=(const iterator &other) const noexcept { return node_ != other.node_; }

    private:
        Node *node_ = nullptr;
        Event event_;
    };
    iterator begin() { return iterator(this); }
    iterator end() { return iterator(); }

    /* Sends a copy of `count` elements at `data` on `output`, their type from T. */
    template <typename T> void send(const std::string &output, const T *data, std::size_t count, Metadata metadata = {}) {
        metadata.set_type(type_of<T>::value);
        detail::check(apus_node_send(live(), output.c_str(), data, count * sizeof(T), metadata.get()));
    }
    template <typename T> void send(const std::string &output, View<T> values, Metadata metadata = {}) {
        send(output, static_cast<const T *>(values.data()), values.size(), std::move(metadata));
    }
    template <typename T> void send(const std::string &output, const std::vector<T> &values, Metadata metadata = {}) {
        static_assert(!std::is_same_v<T, bool>, "std::vector<bool> has no contiguous storage: send a bool array");
        send(output, values.data(), values.size(), std::move(metadata));
    }
#ifdef APUS_HPP_HAS_SPAN
    template <typename T, std::size_t N>
    void send(const std::string &output, std::span<T, N> values, Metadata metadata = {}) {
        send(output, static_cast<const T *>(values.data()), values.size(), std::move(metadata));
    }
#endif
    /* Sends text (utf8). */
    void send(const std::string &output, std::string_view text, Metadata metadata = {}) {
        send(output, text.data(), text.size(), std::move(metadata));
    }
    void send(const std::string &output, const char *text, Metadata metadata = {}) {
        send(output, std::string_view(text), std::move(metadata));
    }

    /* Reserves `count` elements of T in shared memory for a message on `output`: fill them in
     * place and `send(std::move(sample))`, without a copy. */
    template <typename T> Sample<T> allocate(const std::string &output, std::size_t count) {
        apus_sample_t *sample = nullptr;
        detail::check(apus_node_allocate(live(), output.c_str(), count * sizeof(T), &sample));
        return Sample<T>(sample, count, {});
    }
    /* The same, for an array of `shape` (row-major), which travels with it. */
    template <typename T> Sample<T> allocate(const std::string &output, const std::vector<std::uint64_t> &shape) {
        std::size_t count = 1;
        for (auto dim : shape) count *= static_cast<std::size_t>(dim);
        apus_sample_t *sample = nullptr;
        detail::check(apus_node_allocate(live(), output.c_str(), count * sizeof(T), &sample));
        return Sample<T>(sample, count, shape);
    }

    /* Sends a sample from `allocate`; it is empty afterwards. Takes an rvalue, so sending a sample
     * twice does not compile; sending an empty (moved-from) one is Error APUS_ERROR_INVALID_HANDLE. */
    template <typename T> void send(Sample<T> &&sample, Metadata metadata = {}) {
        if (sample.handle_ == nullptr) {
            throw Error(APUS_ERROR_INVALID_HANDLE, "this sample was sent already (or moved from)");
        }
        metadata.set_type(type_of<T>::value);
        if (!sample.shape_.empty()) metadata.shape(sample.shape_);
        apus_sample_t *handle = std::exchange(sample.handle_, nullptr);
        detail::check(apus_node_send_sample(live(), handle, metadata.get()));  // consumed either way
    }

    /* Tells the consumers of `output` that nothing more will come. */
    void close_output(const std::string &output) { detail::check(apus_node_close_output(live(), output.c_str())); }

    void log(apus_log_level_t level, const std::string &message) {
        detail::check(apus_node_log(live(), level, message.c_str()));
    }

    /* The C handle, for calls into apus.h. */
    apus_node_t *get() const noexcept { return handle_; }

private:
    apus_node_t *live() const {
        if (handle_ == nullptr) throw Error(APUS_ERROR_INVALID_HANDLE, "a moved-from Node");
        return handle_;
    }

    apus_node_t *handle_ = nullptr;
    bool owned_ = true;
};

/* What an operator's on_event returns (apus_operator_status_t). */
enum class OperatorStatus {
    Continue = APUS_OPERATOR_CONTINUE,
    Stop = APUS_OPERATOR_STOP,
    StopAll = APUS_OPERATOR_STOP_ALL,
    Error = APUS_OPERATOR_ERROR,
};

namespace detail {
/* An operator instance with the Node view it was made with. */
template <typename Operator> struct OperatorBox {
    Node node;
    Operator instance;
    explicit OperatorBox(apus_node_t *handle) : node(handle, false), instance(node) {}
};

template <typename Operator> apus_status_t operator_init(apus_node_t *node, void **state) noexcept {
    try {
        *state = new OperatorBox<Operator>(node);
        return APUS_OK;
    } catch (const std::exception &error) {
        apus_operator_fail(node, error.what());
    } catch (...) {
        apus_operator_fail(node, "the operator's constructor threw");
    }
    return APUS_ERROR_INVALID_ARGUMENT;
}

template <typename Operator>
apus_operator_status_t operator_on_event(apus_node_t *node, const apus_event_t *event, void *state) noexcept {
    auto *box = static_cast<OperatorBox<Operator> *>(state);
    try {
        const Event borrowed(const_cast<apus_event_t *>(event), false);
        return static_cast<apus_operator_status_t>(box->instance.on_event(box->node, borrowed));
    } catch (const std::exception &error) {
        apus_operator_fail(node, error.what());
    } catch (...) {
        apus_operator_fail(node, "on_event threw");
    }
    return APUS_OPERATOR_ERROR;
}

template <typename Operator> void operator_drop(apus_node_t *, void *state) noexcept {
    delete static_cast<OperatorBox<Operator> *>(state);
}
}  // namespace detail

}  // namespace apus

/* Makes `Class` the operator of this shared library: Class(apus::Node &) when it starts,
 * Class::on_event(apus::Node &, const apus::Event &) per event, its destructor at the end. An
 * exception is the operator's failure, reported with its message. */
#define APUS_OPERATOR(Class)                                                                                 \
    extern "C" apus_status_t apus_operator_init(apus_node_t *node, void **state) {                          \
        return ::apus::detail::operator_init<Class>(node, state);                                           \
    }                                                                                                        \
    extern "C" apus_operator_status_t apus_operator_on_event(apus_node_t *node, const apus_event_t *event,  \
                                                             void *state) {                                 \
        return ::apus::detail::operator_on_event<Class>(node, event, state);                                \
    }                                                                                                        \
    extern "C" void apus_operator_drop(apus_node_t *node, void *state) {                                    \
        ::apus::detail::operator_drop<Class>(node, state);                                                   \
    }

#endif /* APUS_HPP */

// The files `apus new` writes: one source per language and kind, each a working example that
// sends "message N" on `out` for each input.
extension New {
    var cOperatorSource: String {
        """
        /* \(name): an Apus operator in C, loaded by its runtime node (see `operators` in apus.h).
         * On each input it sends "message N" on `out`. Build: make (makes lib\(name).so) */
        #include <apus.h>
        #include <stdio.h>
        #include <stdlib.h>

        typedef struct {
            long count;
        } state_t;

        apus_status_t apus_operator_init(apus_node_t *node, void **state) {
            (void)node;
            *state = calloc(1, sizeof(state_t));
            return *state != NULL ? APUS_OK : APUS_ERROR_TRANSPORT;
        }

        apus_operator_status_t apus_operator_on_event(apus_node_t *node, const apus_event_t *event, void *opaque) {
            state_t *state = opaque;
            if (apus_event_type(event) != APUS_EVENT_INPUT) return APUS_OPERATOR_CONTINUE;
            char message[64];
            int size = snprintf(message, sizeof message, "message %ld", state->count++);
            if (apus_node_send(node, "out", message, (size_t)size, NULL) != APUS_OK) {
                apus_operator_fail(node, apus_last_error());
                return APUS_OPERATOR_ERROR;
            }
            printf("input '%s' -> sent '%s'\\n", apus_event_id(event), message);
            fflush(stdout);
            return APUS_OPERATOR_CONTINUE;
        }

        void apus_operator_drop(apus_node_t *node, void *state) {
            (void)node;
            free(state);
        }

        """
    }

    var cSource: String {
        """
        /* \(name): an Apus node in C. On each input it sends "message N" on `out`. Build: make */
        #include <apus.h>
        #include <stdio.h>

        int main(void) {
            apus_node_t *node = apus_node_init_from_env();
            if (node == NULL) {
                fprintf(stderr, "%s\\n", apus_last_error());
                return 1;
            }
            long count = 0;
            apus_event_t *event;
            while ((event = apus_node_next(node, -1)) != NULL) { /* NULL after STOP */
                if (apus_event_type(event) == APUS_EVENT_INPUT) {
                    size_t length = 0;
                    apus_event_data(event, &length);
                    char message[64];
                    int size = snprintf(message, sizeof message, "message %ld", count++);
                    if (apus_node_send(node, "out", message, (size_t)size, NULL) != APUS_OK) {
                        fprintf(stderr, "%s\\n", apus_last_error());
                        apus_event_free(event);
                        break;
                    }
                    printf("input '%s' (%zu bytes) -> sent '%s'\\n", apus_event_id(event), length, message);
                    fflush(stdout);
                }
                apus_event_free(event);
            }
            apus_node_free(node);
            return 0;
        }

        """
    }

    var cppSource: String {
        """
        // \(name): an Apus node in C++ (include/apus.hpp). On each input it sends "message N" on
        // `out`. Build: cmake -S . -B build -Dapus_DIR=$(apus config --cmake-dir) && cmake --build build
        #include <apus.hpp>

        #include <iostream>
        #include <string>

        int main() {
            try {
                apus::Node node;
                long count = 0;
                for (auto &event : node) {  // ends after STOP
                    if (!event.is_input()) continue;
                    std::string message = "message " + std::to_string(count++);
                    node.send("out", message);
                    std::cout << "input '" << event.id() << "' (" << event.bytes().size() << " bytes) -> sent '" << message
                              << "'" << std::endl;
                }
            } catch (const apus::Error &error) {
                std::cerr << error.what() << std::endl;
                return 1;
            }
        }

        """
    }

    var cppOperatorSource: String {
        """
        // \(name): an Apus operator in C++ (include/apus.hpp). On each input it sends "message N"
        // on `out`. Build: cmake -S . -B build -Dapus_DIR=$(apus config --cmake-dir) && cmake --build build
        #include <apus.hpp>

        #include <string>

        class Operator {
        public:
            explicit Operator(apus::Node &) {}

            apus::OperatorStatus on_event(apus::Node &node, const apus::Event &event) {
                if (event.is_input()) node.send("out", "message " + std::to_string(count_++));
                return apus::OperatorStatus::Continue;
            }

        private:
            long count_ = 0;
        };

        APUS_OPERATOR(Operator)

        """
    }

    /// CMakeLists.txt of a C++ node, or (operator) of a shared library for the operator runtime,
    /// which has libapus loaded already: the headers, not the library.
    func cmakeLists(operator: Bool) -> String {
        let target =
            `operator`
            ? """
            add_library(\(name) SHARED \(name).cpp)
            target_include_directories(\(name) PRIVATE $<TARGET_PROPERTY:apus::apus,INTERFACE_INCLUDE_DIRECTORIES>)
            """
            : """
            add_executable(\(name) \(name).cpp)
            target_link_libraries(\(name) PRIVATE apus::apus)
            """
        return """
            cmake_minimum_required(VERSION 3.16)
            project(\(name) CXX)
            find_package(apus REQUIRED)  # -Dapus_DIR=$(apus config --cmake-dir)
            \(target)
            target_compile_features(\(name) PRIVATE cxx_std_17)
            set_target_properties(\(name) PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${CMAKE_SOURCE_DIR} RUNTIME_OUTPUT_DIRECTORY ${CMAKE_SOURCE_DIR})

            """
    }

    var pythonSource: String {
        """
        \"\"\"\(name): an Apus node in Python. On each input it sends "message N" on `out`.\"\"\"
        from apus import Node

        node = Node()
        count = 0
        for event in node:  # ends after STOP
            if event.type == "INPUT":
                node.send_output("out", f"message {count}")
                print(f"input {event.id!r} -> sent 'message {count}'", flush=True)
                count += 1

        """
    }

    var swiftSource: String {
        """
        // \(name): an Apus node in Swift. On each input it sends "message N" on `out`.
        import ApusNode

        let node = try Node()
        var count = 0
        while let event = try node.next() {  // nil after STOP
            guard case .input(let input) = event else { continue }
            try node.send("out", "message \\(count)")
            print("input '\\(input.id)' -> sent 'message \\(count)'")
            count += 1
        }

        """
    }

    var pythonOperatorSource: String {
        """
        \"\"\"\(name): an Apus operator in Python, with dora's operator API: its runtime node runs it in an
        embedded interpreter. On each input it sends "message N" on `out`.\"\"\"
        import pyarrow as pa
        from dora import DoraStatus


        class Operator:
            def __init__(self):
                self.count = 0  # state lives as long as the operator

            def on_event(self, dora_event, send_output):
                if dora_event["type"] == "INPUT":
                    message = f"message {self.count}"
                    send_output("out", pa.array([message]), {"count": self.count})
                    print(f"input {dora_event['id']!r} -> sent {message!r}", flush=True)
                    self.count += 1
                return DoraStatus.CONTINUE

        """
    }

    var numbaSource: String {
        """
        \"\"\"\(name): an Apus Numba operator. `scale` is compiled once when the dataflow starts; then its
        runtime node calls it for each input through its address, with no interpreter in the way.

        Its signature says what it takes and sends: `data` points at the input's float32 samples (in
        shared memory, read-only), `out` at a fresh float32 sample of the output to write up to
        `capacity` elements into, and `factor` comes from `params:` in the dataflow. It returns how
        many elements it wrote; a negative number is an error and stops the operator.\"\"\"
        from numba import carray, cfunc, types

        SIGNATURE = types.int64(
            types.CPointer(types.float32), types.int64, types.CPointer(types.float32), types.int64, types.float64)


        @cfunc(SIGNATURE)
        def scale(data, n, out, capacity, factor):
            samples = carray(data, n)
            scaled = carray(out, capacity)
            for i in range(n):
                scaled[i] = samples[i] * factor
            return n  # no print or Python objects here: it runs without the interpreter

        """
    }

    var numbaSamplesSource: String {
        """
        \"\"\"Feeds \(name): on each tick, 4 float32 samples on `samples`; prints what comes back scaled.\"\"\"
        import numpy as np
        from apus import Node

        node = Node()
        count = 0
        for event in node:  # ends after STOP
            if event.type != "INPUT":
                continue
            if event.id == "tick":
                node.send_output("samples", np.arange(count, count + 4, dtype=np.float32))
                count += 1
            else:
                print(f"{event.id}: {event.value.tolist()}", flush=True)

        """
    }
}

import ApusDaemon
import ArgumentParser
import Glibc

struct New: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a node in C, Python or Swift, or a C operator (and with --dataflow a dataflow that runs it).",
        discussion: """
            Makes the folder NAME with a node that, on each input, sends "message N" on its output \
            `out` and prints what it did. Without --dataflow it prints the lines to add to a dataflow \
            file; with it, NAME/dataflow.yml drives the node from a 500 ms timer: \
            `apus run NAME/dataflow.yml` builds and runs it. A Swift node depends on the ApusNode \
            library of this apus's source tree. With --operator (C only) NAME is an operator instead: \
            NAME/libNAME.so, loaded by a runtime node of the same name, whose output is NAME/out.
            """
    )

    enum Language: String, ExpressibleByArgument, CaseIterable {
        case c, python, swift
    }

    @Argument(help: "The node's id and folder name (letters, digits, _ . -).")
    var name: String

    @Option(help: "The node's language: c, python or swift.")
    var lang: Language

    @Flag(help: "Also write NAME/dataflow.yml around the node.")
    var dataflow = false

    @Flag(
        help: ArgumentHelp(
            "Make an operator instead of a node (C only): a shared library that a runtime node loads, with Apus's operator ABI."
        ))
    var `operator` = false

    func validate() throws {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
        guard !name.isEmpty, name.allSatisfy(allowed.contains), !name.hasPrefix("."), !name.hasPrefix("-") else {
            throw ValidationError("'\(name)' is not a node id: use letters, digits, _ . - (not first . or -)")
        }
        guard !["apus", "dora"].contains(name.lowercased()) else { throw ValidationError("'\(name)' is reserved") }
        if `operator`, lang != .c {
            throw ValidationError("--operator makes a C operator; use --lang c (Python and Wasm operators are not supported yet)")
        }
        if lang == .swift, name.first!.isNumber || name.contains(".") {
            throw ValidationError("a Swift node's name must not start with a digit or contain '.' (it names a Swift target)")
        }
    }

    func run() throws {
        var status = stat()
        guard stat(name, &status) != 0 else {
            printError("apus new: '\(name)' exists already; nothing was written")
            throw ExitCode(1)
        }
        let template = try files()
        guard mkdir(name, 0o755) == 0 else {
            printError("apus new: cannot create folder '\(name)': \(String(cString: strerror(errno)))")
            throw ExitCode(1)
        }
        var written: [String] = []
        for (path, text) in template.files + (dataflow ? [("dataflow.yml", "nodes:\n" + template.node)] : []) {
            let full = "\(name)/\(path)"
            if let slash = full.lastIndex(of: "/"), !mkdirs(String(full[..<slash])) {
                printError("apus new: cannot create the folder of \(full)")
                throw ExitCode(1)
            }
            guard createFile(full, text) else {
                printError("apus new: cannot write \(full): \(String(cString: strerror(errno)))")
                throw ExitCode(1)
            }
            written.append(full)
        }
        print("created \(written.joined(separator: ", "))")
        if dataflow {
            print("run it: apus run \(name)/dataflow.yml")
        } else {
            print("add it to a dataflow file next to the folder '\(name)':\n")
            print(
                template.node.replacingOccurrences(of: "    build: ", with: "    build: cd \(name) && ")
                    .replacingOccurrences(of: "    path: ", with: "    path: \(name)/")
                    .replacingOccurrences(of: "shared-library: ", with: "shared-library: \(name)/"))
        }
    }

    /// The node's files and its entry in a dataflow file placed in the node's folder.
    private func files() throws -> (files: [(String, String)], node: String) {
        let inputs = """
                inputs:
                  tick: apus/timer/millis/500
                outputs: [out]

            """
        switch lang {
        case .c where `operator`:
            return (
                [
                    ("\(name).c", cOperatorSource),
                    (
                        "Makefile",
                        "lib\(name).so: \(name).c\n\tcc -std=c99 -Wall -Wextra -O2 -shared -fPIC -o $@ $< $$(apus config --cflags)\n"
                    ),
                ],
                """
                  - id: \(name)
                    operator:
                      id: \(name)
                      build: make
                      shared-library: \(name)
                      inputs:
                        tick: apus/timer/millis/500
                      outputs: [out]

                """
            )
        case .c:
            return (
                [
                    ("\(name).c", cSource),
                    ("Makefile", "\(name): \(name).c\n\tcc -std=c99 -Wall -Wextra -O2 -o $@ $< $$(apus config --cflags --libs)\n"),
                ],
                "  - id: \(name)\n    build: make\n    path: \(name)\n" + inputs
            )
        case .python:
            return ([("\(name).py", pythonSource)], "  - id: \(name)\n    path: \(name).py\n" + inputs)
        case .swift:
            let installation: Installation
            do {
                installation = try Installation.locate()
            } catch {
                printError("apus new: \(error)")
                throw ExitCode(1)
            }
            guard let tree = installation.sourceTree else {
                printError(
                    "apus new: a Swift node needs the apus source tree (its ApusNode package); this apus is installed in a prefix without it"
                )
                throw ExitCode(1)
            }
            let package = tree.split(separator: "/").last.map(String.init) ?? "apus"
            let manifest = """
                // swift-tools-version: 6.1
                import PackageDescription

                let package = Package(
                    name: "\(name)",
                    dependencies: [.package(path: "\(tree)")],
                    targets: [
                        .executableTarget(name: "\(name)", dependencies: [.product(name: "ApusNode", package: "\(package)")], path: "Sources")
                    ]
                )

                """
            return (
                [("Package.swift", manifest), ("Sources/main.swift", swiftSource), (".gitignore", ".build/\nout/\n")],
                "  - id: \(name)\n    build: swift build --product \(name)\n    path: .build/debug/\(name)\n" + inputs
            )
        }
    }

    private var cOperatorSource: String {
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

    private var cSource: String {
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

    private var pythonSource: String {
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

    private var swiftSource: String {
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
}

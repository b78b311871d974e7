"""include/apus.hpp, the C++ API: compiles cleanly with g++ and clang++ in C++17 and C++20 under
-Wall -Wextra -Wpedantic -Werror; a C++ producer, consumer and operator (Tests/CppNodes) run in a
dataflow and check every element type, metadata, zero-copy allocate and send, STOP, and the
error paths; a sample sent twice does not compile."""
import os
import shutil
import subprocess

import pytest

from conftest import APUS, REPO

NODES = REPO / "Tests" / "CppNodes"
OUTPUTS = ["u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "f16", "f32", "f64", "flags", "text", "matrix"]
STRICT = ["-Wall", "-Wextra", "-Wpedantic", "-Werror"]


def config(what):
    return subprocess.run([str(APUS), "config", what], capture_output=True, text=True, check=True).stdout.split()


def compile_node(compiler, standard, source, output, shared=False):
    command = [compiler, f"-std={standard}", *STRICT, *config("--cflags"), "-o", str(output), str(source)]
    command += ["-shared", "-fPIC"] if shared else config("--libs")
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, f"{' '.join(command)}\n{result.stderr}"


@pytest.mark.parametrize("compiler", ["g++", "clang++"])
@pytest.mark.parametrize("standard", ["c++17", "c++20"])
def test_the_header_compiles_cleanly(tmp_path, compiler, standard):
    if shutil.which(compiler) is None:
        pytest.fail(f"{compiler} is missing: the tests need it (README, Prerequisites)")
    for name in ("producer", "consumer"):
        compile_node(compiler, standard, NODES / f"{name}.cpp", tmp_path / name)
    compile_node(compiler, standard, NODES / "doubler_operator.cpp", tmp_path / "libdoubler.so", shared=True)


def test_a_sample_sent_twice_does_not_compile(tmp_path):
    result = subprocess.run(["g++", "-std=c++17", *config("--cflags"), "-fsyntax-only", str(NODES / "twice.cpp")],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "Sample<float>&&" in result.stderr, result.stderr


def test_cpp_nodes_and_an_operator_exchange_every_type(dataflow):
    compile_node("g++", "c++20", NODES / "producer.cpp", dataflow.folder / "producer")
    compile_node("clang++", "c++20", NODES / "consumer.cpp", dataflow.folder / "consumer")
    compile_node("g++", "c++17", NODES / "doubler_operator.cpp", dataflow.folder / "libdoubler.so", shared=True)
    inputs = ", ".join(f"{o}: producer/{o}" for o in OUTPUTS)
    run = dataflow.run(f"""
nodes:
  - id: producer
    path: ./producer
    outputs: [{", ".join(OUTPUTS)}]
  - id: ops
    operators:
      - id: doubler
        shared-library: doubler
        inputs: {{ in: producer/matrix }}
        outputs: [out]
  - id: consumer
    path: ./consumer
    inputs: {{ {inputs}, doubled: ops/doubler/out }}
""")
    assert run.status == 0, run
    assert run.lines("producer")[-1] == "producer: ok", run
    assert run.lines("consumer")[-1] == "consumer: ok", run
    dataflow.expect_clean()


SINK = """
from apus import Node
count = 0
for event in Node():
    if event.type == "INPUT":
        count += 1
        print(f"sink got {event.value}", flush=True)
print(f"sink: {count} messages", flush=True)
"""


@pytest.mark.parametrize("kind", ["node", "operator"])
def test_apus_new_lang_cpp_scaffolds_a_cmake_project_that_runs(dataflow, kind):
    """`apus new NAME --lang cpp` writes NAME.cpp and a CMakeLists.txt that finds apus with
    find_package (apus config --cmake-dir: the source tree's cmake/apusConfig.cmake here); the
    dataflow it writes builds it with CMake and runs it."""
    if shutil.which("cmake") is None:
        pytest.fail("cmake is missing: the tests need it (scripts/test installs it)")
    flag = ["--operator"] if kind == "operator" else []
    made = subprocess.run([str(APUS), "new", "hello", "--lang", "cpp", "--dataflow", *flag], cwd=dataflow.folder,
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    assert "find_package(apus REQUIRED)" in (dataflow.folder / "hello" / "CMakeLists.txt").read_text()
    flow = dataflow.folder / "hello" / "dataflow.yml"
    (dataflow.folder / "hello" / "sink.py").write_text(SINK)
    # (A runtime node of one `operator:` exposes its outputs as its own: hello/out either way.)
    flow.write_text(flow.read_text() + "  - id: sink\n    path: sink.py\n    inputs: { text: hello/out }\n")
    result = subprocess.run([str(APUS), "run", str(flow), "--stop-after", "2s", "--no-color"], cwd=dataflow.folder,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "[sink] sink got message 0" in result.stdout and "[sink] sink got message 2" in result.stdout, result.stdout
    dataflow.expect_clean()


PROJECT = """
cmake_minimum_required(VERSION 3.16)
project(outside CXX)
find_package(apus {version} REQUIRED)
add_executable(outside outside.cpp)
target_compile_features(outside PRIVATE cxx_std_17)
target_link_libraries(outside PRIVATE apus::apus)
"""

OUTSIDE = """
#include <apus.hpp>
#include <cstdio>
int main() {
    apus::Node node;
    int sent = 0;
    for (auto &event : node) {
        if (event.is_input() && sent < 3) {
            const double values[] = {sent * 1.5, -1.0};
            node.send("out", values, 2, apus::Metadata().set("n", sent++));
        }
    }
    std::printf("outside: sent %d\\n", sent);
}
"""

READER = """
from apus import Node
for event in Node():
    if event.type == "INPUT":
        print(f"reader got {event.value.tolist()} n={event.metadata['n']}", flush=True)
"""


def test_a_cmake_project_outside_the_tree_builds_against_an_installed_prefix(dataflow, tmp_path):
    """The prefix is laid out as scripts/install lays it out (include/, lib/libapus.so, and
    lib/cmake/apus from scripts/cmake-config, which scripts/install runs), with this build's
    library: the release build scripts/install makes takes minutes, and links the same code."""
    prefix = tmp_path / "prefix"
    (prefix / "include").mkdir(parents=True)
    (prefix / "lib").mkdir()
    for header in ("apus.h", "apus.hpp"):
        shutil.copy(REPO / "include" / header, prefix / "include" / header)
    (library,) = [word for word in config("--libs") if word.endswith(".so")]
    shutil.copy(library, prefix / "lib" / "libapus.so")
    version = subprocess.run([str(APUS), "--version"], capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run([str(REPO / "scripts" / "cmake-config"), str(prefix), version], check=True)
    project = tmp_path / "outside"
    project.mkdir()
    (project / "outside.cpp").write_text(OUTSIDE)
    (project / "CMakeLists.txt").write_text(PROJECT.format(version=version))
    configure = subprocess.run(["cmake", "-S", str(project), "-B", str(project / "build"), f"-DCMAKE_PREFIX_PATH={prefix}"],
                               capture_output=True, text=True)
    assert configure.returncode == 0, configure.stdout + configure.stderr
    build = subprocess.run(["cmake", "--build", str(project / "build")], capture_output=True, text=True)
    assert build.returncode == 0, build.stdout + build.stderr
    dataflow.write("reader.py", READER)
    run = dataflow.run(f"""
nodes:
  - id: outside
    path: {project / "build" / "outside"}
    inputs: {{ tick: apus/timer/millis/20 }}
    outputs: [out]
  - id: reader
    path: reader.py
    inputs: {{ values: outside/out }}
""", "--stop-after", "1s")
    assert run.status == 0, run
    assert "reader got [0.0, -1.0] n=0" in run.lines("reader") and "reader got [3.0, -1.0] n=2" in run.lines("reader"), run
    # A version this prefix does not have is refused by CMake, naming it.
    (project / "CMakeLists.txt").write_text(PROJECT.format(version="99.0"))
    refused = subprocess.run(["cmake", "-S", str(project), "-B", str(tmp_path / "again"), f"-DCMAKE_PREFIX_PATH={prefix}"],
                             capture_output=True, text=True)
    assert refused.returncode != 0 and "99.0" in refused.stderr, refused.stderr
    dataflow.expect_clean()


def test_dora_cpp_node_and_operator_over_the_c_api_run_unchanged(dataflow):
    """dora's examples/c++-dataflow in its shape: a C++ node and a C++ operator written against
    dora's C APIs (node_api.h, operator_api.h), built with g++ against include/dora."""
    dora = REPO / "Tests" / "CNodes" / "dora"
    flags = "-Wall -Wextra -Werror -I$(apus config --include-dir)/dora"
    run = dataflow.run(f"""
nodes:
  - id: cxx-node
    build: g++ -std=c++17 {flags} -o cxx_node {dora}/node.cc $(apus config --libs)
    path: ./cxx_node
    inputs: {{ tick: dora/timer/millis/20 }}
    outputs: [counter]
  - id: runtime-node
    operators:
      - id: cxx_operator
        build: g++ -std=c++17 {flags} -shared -fPIC -o liboperator.so {dora}/operator.cc
        shared-library: ./operator
        inputs: {{ counter: cxx-node/counter }}
        outputs: [half-status]
  - id: c_sink
    build: gcc -std=c99 {flags} -o c_sink {dora}/counter_sink.c $(apus config --libs)
    path: ./c_sink
    inputs: {{ half-status: runtime-node/cxx_operator/half-status }}
""", timeout=180)
    assert run.status == 0, run
    node = [line for line in run.lines("cxx-node") if not line.startswith("build: ")]
    assert node[0] == "HELLO FROM C++ (using C API)" and node[-1] == "GOODBYE FROM C++ node (using C API)", run
    assert "[c++ node] input tick (0 bytes), counter 20" in node, run
    assert run.lines("runtime-node")[-1] == "C++ operator dropped after 20 inputs", run
    assert run.lines("c_sink")[-1] == "sink: 20 messages", run
    dataflow.expect_clean()


def test_the_cpp_pipeline_runs_cpp_nodes_and_operators_with_c_python_and_swift(dataflow):
    """dataflows/cpp-pipeline.yml: the C++ camera (allocate, in place) and brightness operator
    (nodes/cpp, built with CMake), the C filter, the Python detector and sink, the Swift monitor."""
    environment = dict(os.environ, APUS_TEST_TAG=dataflow.tag)
    run = subprocess.run([str(APUS), "run", "dataflows/cpp-pipeline.yml", "--no-color"], cwd=REPO, env=environment,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    for expected in ("[camera] camera: sent 150 frames of 640x480", "[sink] sink: received 150 on brightness, 150 on mask",
                     "[monitor] monitor: received 150 on frame, 150 on boxes"):
        assert expected in lines, run.stdout[-3000:]
    # The operator's answer: three channel means of a frame, the frame number passed on.
    shown = [line for line in lines if line.startswith("[sink] sink: brightness #")]
    assert shown and "'frame': " in shown[0], run.stdout[-3000:]
    dataflow.expect_clean()

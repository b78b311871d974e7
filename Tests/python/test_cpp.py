"""include/apus.hpp, the C++ API: compiles cleanly with g++ and clang++ in C++17 and C++20 under
-Wall -Wextra -Wpedantic -Werror; a C++ producer, consumer and operator (Tests/CppNodes) run in a
dataflow and check every element type, metadata, zero-copy allocate and send, STOP, and the
error paths; a sample sent twice does not compile."""
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
    compile_node("g++", "c++17", NODES / "producer.cpp", dataflow.folder / "producer")
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

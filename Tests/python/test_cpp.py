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

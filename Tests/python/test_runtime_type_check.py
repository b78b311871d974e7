"""The runtime type check (APUS_RUNTIME_TYPE_CHECK, or dora's DORA_RUNTIME_TYPE_CHECK): each send on
an output with a declared primitive type or required metadata keys is checked against them."""
import pytest

SENDER = '''
import pyarrow as pa
from dora import Node

node = Node()
attempts = [
    ("values", pa.array([1.5]), None),                    # float64 where Int64 is declared
    ("values", pa.array([7], type=pa.int64()), None),     # fits
    ("tagged", pa.array([1], type=pa.int64()), None),     # lacks the required key "seq"
    ("tagged", pa.array([2], type=pa.int64()), {"seq": 2}),
    ("values", pa.array([1.5, 2.5]), {"request_id": 4}),  # a service reply: not type-checked
]
for output, data, metadata in attempts:
    try:
        node.send_output(output, data, metadata)
        print("sent", output)
    except RuntimeError as error:
        print("refused:", error)
'''

YAML = '''
nodes:
  - id: sender
    path: sender.py
    outputs: [values, tagged]
    output_types:
      values: std/core/v1/Int64
    output_metadata:
      tagged: [seq]
  - id: receiver
    path: receiver.py
    inputs:
      values: sender/values
      tagged: sender/tagged
'''

RECEIVER = '''
from dora import Node
print("received", sum(1 for event in Node() if event["type"] == "INPUT"))
'''


def run(dataflow, monkeypatch, mode):
    if mode is None:
        monkeypatch.delenv("APUS_RUNTIME_TYPE_CHECK", raising=False)
    else:
        monkeypatch.setenv("DORA_RUNTIME_TYPE_CHECK" if mode == "1" else "APUS_RUNTIME_TYPE_CHECK", mode)
    dataflow.write("sender.py", SENDER).write("receiver.py", RECEIVER)
    result = dataflow.run(YAML)
    assert result.status == 0, result
    dataflow.expect_clean()
    return result


def test_error_mode_refuses_what_does_not_fit(dataflow, monkeypatch):
    result = run(dataflow, monkeypatch, "error")
    assert result.lines("sender") == [
        "refused: apus_node_send: runtime type check: a message on 'values' does not fit: it is float64, and output_types declares "
        "std/core/v1/Int64 (int64)",
        "sent values",
        "refused: apus_node_send: runtime type check: a message on 'tagged' does not fit: it lacks the metadata key 'seq' that "
        "output_metadata requires",
        "sent tagged",
        "sent values",
    ], result
    assert result.lines("receiver") == ["received 3"], result


@pytest.mark.parametrize("mode", ["warn", "1"])
def test_warn_mode_reports_the_first_mismatch_per_output_and_sends(dataflow, monkeypatch, mode):
    result = run(dataflow, monkeypatch, mode)
    assert result.lines("receiver") == ["received 5"], result
    warnings = [line for line in result.lines("sender") if "runtime type check" in line]
    assert warnings == [
        "WARN  runtime type check: a message on 'values' does not fit: it is float64, and output_types declares "
        "std/core/v1/Int64 (int64) (only the first is reported)",
        "WARN  runtime type check: a message on 'tagged' does not fit: it lacks the metadata key 'seq' that "
        "output_metadata requires (only the first is reported)",
    ], result


def test_without_the_variable_nothing_is_checked(dataflow, monkeypatch):
    result = run(dataflow, monkeypatch, None)
    assert result.lines("receiver") == ["received 5"], result
    assert "runtime type check" not in result.stdout + result.stderr, result

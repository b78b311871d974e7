"""`apus record`: a running dataflow's outputs into MCAP, read back with the official `mcap`
reader (which checks CRCs and structure); a killed recorder's file recovered; damaged files
refused with a message, never a crash. `apus replay`: the recorded frames, byte for byte, spaced
as recorded."""
import signal
import struct
import subprocess
import time

from mcap.reader import make_reader
from mcap.stream_reader import StreamReader
from mcap.records import Message

from conftest import APUS
from test_inspection import running, snapshot, wait_until

# The sender waits for a file named `go` (made once the recorder is attached), then sends COUNT
# messages on each output, one per tick, and ends; so the recorder sees every message sent.
SENDER = """
import os, sys
import numpy as np
from apus import Node
count, size = int(sys.argv[1]), int(sys.argv[2])
node = Node()
sent = 0
for event in node:
    if event.type == "INPUT" and os.path.exists("go") and sent < count:
        sent += 1
        node.send_output("values", np.arange(6, dtype=np.float32).reshape(2, 3) + sent, {"seq": sent, "frame": "cam0"})
        node.send_output("blob", np.full(size, sent % 251, dtype=np.uint8))
        if sent == count:
            print(f"sent {sent}", flush=True)
            break
"""

FLOW = """
nodes:
  - id: sender
    path: sender.py
    args: {count} {size}
    inputs: {{ tick: apus/timer/millis/{period} }}
    outputs: [values, blob]
  - id: sink
    path: sink.py
    inputs: {{ values: {{ source: sender/values, queue_policy: backpressure }} }}
"""

SINK = """
from apus import Node
count = 0
for event in Node():
    if event.type == "INPUT":
        count += 1
print(f"sink got {count}")
"""


def start(dataflow, count, size=16, period=5):
    dataflow.write("sender.py", SENDER).write("sink.py", SINK)
    dataflow.start(FLOW.format(count=count, size=size, period=period))
    wait_until(running("sender", "sink"), what="the dataflow running")


def attached(dataflow):
    """Waits until the recorder's consumer is wired, then lets the sender go."""
    wait_until(lambda: any(node["origin"] == "inspector" and node["status"] == "running" for node in snapshot().values()),
               what="the recorder attached")
    (dataflow.folder / "go").write_text("")


def sample(data):
    """An apus.sample message: element type, shape, parameters' raw bytes, timestamp, payload."""
    element_type, version, _, length, timestamp = struct.unpack_from("<BBHIQ", data)
    assert version == 1
    metadata = data[16:16 + length]
    shape = []
    if length:
        (rank,) = struct.unpack_from("<I", metadata)
        shape = list(struct.unpack_from(f"<{rank}Q", metadata, 4))
    return element_type, shape, metadata, timestamp, data[16 + length:]


def test_a_recording_has_every_message_with_type_shape_metadata_and_a_summary(dataflow):
    start(dataflow, 200)
    recorder = subprocess.Popen(
        [str(APUS), "record", "dataflow", "-o", str(dataflow.folder / "run.mcap"), "--chunk-size", "8192"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    attached(dataflow)
    run = dataflow.wait()
    assert run.status == 0 and "sent 200" in run.lines("sender") and "sink got 200" in run.lines("sink"), run
    out, err = recorder.communicate(timeout=30)
    assert recorder.returncode == 0, err
    assert "recorded 400 messages" in err, err
    with open(dataflow.folder / "run.mcap", "rb") as file:
        reader = make_reader(file, validate_crcs=True)
        summary = reader.get_summary()
        topics = {channel.id: channel.topic for channel in summary.channels.values()}
        assert sorted(topics.values()) == ["sender/blob", "sender/values"]
        counts = {topics[id]: count for id, count in summary.statistics.channel_message_counts.items()}
        assert counts == {"sender/values": 200, "sender/blob": 200}, counts
        assert summary.statistics.chunk_count > 1 and len(summary.chunk_indexes) == summary.statistics.chunk_count
        assert {schema.name for schema in summary.schemas.values()} == {"apus.Sample"}
        seqs = []
        for schema, channel, message in reader.iter_messages(topics=["sender/values"]):
            element_type, shape, metadata, timestamp, payload = sample(message.data)
            assert element_type == 9 and shape == [2, 3] and timestamp > 0
            values = struct.unpack("<6f", payload)
            seq = int(values[0])
            assert values == tuple(float(seq + i) for i in range(6)) and b"cam0" in metadata
            seqs.append(seq)
        assert seqs == list(range(1, 201)), seqs
        (metadata,) = list(reader.iter_metadata())
        assert metadata.name == "apus" and metadata.metadata["queue_policy"] == "backpressure"
        assert metadata.metadata["dropped/sender/values"] == "0" and metadata.metadata["dropped/sender/blob"] == "0"
    dataflow.expect_clean()


def test_lossy_counts_its_drops_in_the_file(dataflow):
    start(dataflow, 300)
    recorder = subprocess.Popen([str(APUS), "record", "dataflow", "-o", str(dataflow.folder / "lossy.mcap"), "--lossy",
                                 "--queue-size", "4", "--outputs", "sender/values"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    attached(dataflow)
    time.sleep(0.2)
    recorder.send_signal(signal.SIGSTOP)  # it falls behind: its drop_oldest queue overflows
    time.sleep(0.6)
    recorder.send_signal(signal.SIGCONT)
    run = dataflow.wait()
    assert run.status == 0 and "sink got 300" in run.lines("sink"), run  # nobody else lost anything
    out, err = recorder.communicate(timeout=30)
    assert recorder.returncode == 0, err
    with open(dataflow.folder / "lossy.mcap", "rb") as file:
        reader = make_reader(file, validate_crcs=True)
        recorded = sum(1 for _ in reader.iter_messages())
        (metadata,) = list(reader.iter_metadata())
    dropped = int(metadata.metadata["dropped/sender/values"])
    assert dropped > 0 and recorded + dropped == 300, (recorded, dropped)
    assert metadata.metadata["queue_policy"] == "drop_oldest"
    assert f"{dropped} dropped by --lossy" in err, err
    dataflow.expect_clean()


def test_a_killed_recorder_leaves_complete_chunks_that_recover(dataflow):
    start(dataflow, 400)
    damaged = dataflow.folder / "killed.mcap"
    recorder = subprocess.Popen([str(APUS), "record", "dataflow", "-o", str(damaged), "--chunk-size", "4096"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    attached(dataflow)
    time.sleep(1.0)
    recorder.kill()
    recorder.wait()
    run = dataflow.wait()
    assert run.status == 0 and "sink got 400" in run.lines("sink"), run  # its edges were reclaimed: nobody waits
    readable = 0
    try:
        with open(damaged, "rb") as file:
            for record_ in StreamReader(file, validate_crcs=True).records:
                readable += isinstance(record_, Message)
    except Exception:
        pass  # the stream ends where the recorder was killed
    assert readable > 0
    recovered = dataflow.folder / "recovered.mcap"
    fixed = subprocess.run([str(APUS), "record", "--recover", str(damaged), "-o", str(recovered)], capture_output=True,
                           text=True, timeout=60)
    assert fixed.returncode == 0, fixed.stderr
    assert fixed.stdout.startswith(f"recovered {readable} messages from "), fixed.stdout
    with open(recovered, "rb") as file:
        reader = make_reader(file, validate_crcs=True)
        assert reader.get_summary().statistics.message_count == readable
        assert sum(1 for _ in reader.iter_messages()) == readable
    dataflow.expect_clean()


def test_a_40_mib_message_is_recorded_whole(dataflow):
    start(dataflow, 2, size=40 << 20, period=200)
    recorder = subprocess.Popen([str(APUS), "record", "dataflow", "-o", str(dataflow.folder / "big.mcap"),
                                 "--outputs", "sender/blob", "--compression", "zstd"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    attached(dataflow)
    run = dataflow.wait(timeout=180)
    assert run.status == 0, run
    out, err = recorder.communicate(timeout=60)
    assert recorder.returncode == 0, err
    with open(dataflow.folder / "big.mcap", "rb") as file:
        reader = make_reader(file, validate_crcs=True)
        payloads = [sample(message.data)[4] for _, _, message in reader.iter_messages()]
        assert {index.compression for index in reader.get_summary().chunk_indexes} == {"zstd"}
    assert [len(payload) for payload in payloads] == [40 << 20, 40 << 20]
    assert [(payload[0], payload[-1]) for payload in payloads] == [(1, 1), (2, 2)]
    dataflow.expect_clean()


def test_damaged_files_get_a_clear_error_never_a_crash(tmp_path):
    def recover(content, name="damaged.mcap"):
        (tmp_path / name).write_bytes(content)
        result = subprocess.run([str(APUS), "record", "--recover", str(tmp_path / name), "-o", str(tmp_path / "out.mcap")],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode in (0, 1), result  # never a signal
        return result

    assert "too short for an MCAP file" in recover(b"").stderr
    assert "not an MCAP file" in recover(b"PK\x03\x04" + b"\x00" * 60).stderr
    magic = b"\x89MCAP0\r\n"
    huge = recover(magic + b"\x06" + struct.pack("<Q", 1 << 62))
    assert huge.returncode == 0 and "the file ends inside a record (opcode 6" in huge.stdout, huge
    # A real recording with a byte flipped inside a chunk, and one cut in the middle.
    from mcap.writer import Writer
    with open(tmp_path / "good.mcap", "wb") as file:
        writer = Writer(file, chunk_size=256)
        writer.start()
        schema = writer.register_schema("apus.Sample", "apus.sample", b"")
        channel = writer.register_channel("a/b", "apus.sample", schema)
        for index in range(40):
            writer.add_message(channel, index, struct.pack("<BBHIQ", 0, 1, 0, 0, index) + bytes([index]) * 50, index)
        writer.finish()
    good = (tmp_path / "good.mcap").read_bytes()
    flipped = bytearray(good)
    flipped[200] ^= 0xFF
    result = recover(bytes(flipped))
    assert result.returncode == 0 and "damaged" in result.stdout, result
    cut = recover(good[: len(good) // 2])
    assert cut.returncode == 0 and "the file ends inside a record" in cut.stdout, cut
    whole = recover(good)
    assert whole.stdout.startswith("recovered 40 messages") and "(it was whole)" in whole.stdout, whole
    for length in range(8, 400, 7):  # every kind of cut, none a crash
        recover(good[:length])


CAMERA_FLOW = """
nodes:
  - id: camera
    path: camera.py
    inputs: {{ tick: apus/timer/millis/20 }}
    outputs: [frame]
  - id: checker
    path: checker.py
    inputs: {{ frame: {{ source: camera/frame, queue_policy: backpressure }} }}
"""

CAMERA = """
import os
import numpy as np
from apus import Node
node = Node()
sent = 0
for event in node:
    if event.type == "INPUT" and os.path.exists("go") and sent < 200:
        sent += 1
        frame = np.random.default_rng(sent).integers(0, 255, (48, 64, 3), dtype=np.uint8)
        node.send_output("frame", frame, {"frame_id": sent, "encoding": "rgb8"})
        if sent == 200:
            break
"""

# Prints, per frame: a checksum of its bytes, dtype, shape and metadata, and when it was sent.
CHECKER = """
import hashlib
from apus import Node
for event in Node():
    if event.type == "INPUT":
        value = event.value
        digest = hashlib.sha256(value.tobytes() + str(value.dtype).encode() + str(value.shape).encode()
                                + repr(sorted(event.metadata.items())).encode()).hexdigest()
        print(f"frame {digest} {event.timestamp}", flush=True)
"""


def checksums(run):
    lines = [line.split() for line in run.lines("checker") if line.startswith("frame ")]
    return [line[1] for line in lines], [int(line[2]) for line in lines]


def test_replay_gives_the_same_frames_with_the_same_spacing(dataflow):
    dataflow.write("camera.py", CAMERA).write("checker.py", CHECKER)
    dataflow.start(CAMERA_FLOW.format())
    wait_until(running("camera", "checker"), what="the dataflow running")
    recording = dataflow.folder / "camera.mcap"
    recorder = subprocess.Popen([str(APUS), "record", "dataflow", "-o", str(recording)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    attached(dataflow)
    live = dataflow.wait()
    assert live.status == 0, live
    assert recorder.wait(timeout=30) == 0
    recorded, _ = checksums(live)
    assert len(recorded) == 200
    with open(recording, "rb") as file:
        times = [message.log_time for _, _, message in make_reader(file).iter_messages(topics=["camera/frame"])]
    assert len(times) == 200
    replay = subprocess.run([str(APUS), "replay", str(recording), "dataflow.yml", "--replace", "camera", "--no-color"],
                            cwd=dataflow.folder, capture_output=True, text=True, timeout=120)
    assert replay.returncode == 0, replay.stderr
    from conftest import Run
    run = Run(replay.returncode, replay.stdout, replay.stderr)
    replayed, sent = checksums(run)
    assert "replayed 200 messages;" in run.lines("camera")[-1], run
    assert replayed == recorded  # byte-identical frames, same dtype, shape and metadata
    # Each frame is sent as long after the first as it was recorded, within 1 ms (p99; a late
    # frame delays no other: the player keeps to the recording's clock, not to the last send).
    errors = sorted(abs((s - sent[0]) - (t - times[0])) for s, t in zip(sent, times))
    assert errors[int(len(errors) * 0.99) - 1] <= 1_000_000, (errors[-5:], run.lines("camera"))
    # Twice as fast: half the spacing.
    fast = subprocess.run([str(APUS), "replay", str(recording), "dataflow.yml", "--replace", "camera", "--speed", "2",
                           "--no-color"], cwd=dataflow.folder, capture_output=True, text=True, timeout=120)
    _, quick = checksums(Run(fast.returncode, fast.stdout, fast.stderr))
    assert abs((quick[-1] - quick[0]) * 2 - (times[-1] - times[0])) < 20_000_000, (quick[-1] - quick[0], times[-1] - times[0])
    # A recording without an output a consumer needs is refused before anything starts.
    (dataflow.folder / "other.yml").write_text(CAMERA_FLOW.format().replace("camera/frame", "camera/depth").replace(
        "outputs: [frame]", "outputs: [frame, depth]"))
    refused = subprocess.run([str(APUS), "replay", str(recording), "other.yml", "--replace", "camera"],
                             cwd=dataflow.folder, capture_output=True, text=True, timeout=60)
    assert refused.returncode == 1 and "camera.mcap has no 'camera/depth', which checker/frame takes" in refused.stderr, refused
    damaged = dataflow.folder / "cut.mcap"
    damaged.write_bytes(recording.read_bytes()[:len(recording.read_bytes()) // 2])
    cut = subprocess.run([str(APUS), "replay", str(damaged), "dataflow.yml", "--replace", "camera"],
                         cwd=dataflow.folder, capture_output=True, text=True, timeout=60)
    assert cut.returncode == 1 and "the file ends inside a record" in cut.stderr and "nothing was replayed" in cut.stderr, cut
    dataflow.expect_clean()

"""Dataflows in the shape of dora-rs's own examples (Tests/DoraExamples, written for this project),
each run unchanged with `apus run --no-build`: exit 0, no traceback, and the lines of its `expect`."""
import shutil

import pytest

from conftest import REPO

EXAMPLES = REPO / "Tests" / "DoraExamples"
NAMES = sorted(path.name for path in EXAMPLES.iterdir() if (path / "dataflow.yml").exists())


def test_there_is_an_example_per_feature():
    assert len(NAMES) >= 3, NAMES


@pytest.mark.parametrize("name", NAMES)
def test_dora_example_runs_unchanged(dataflow, name):
    shutil.copytree(EXAMPLES / name, dataflow.folder, dirs_exist_ok=True)
    dataflow.start((dataflow.folder / "dataflow.yml").read_text(), "--no-build")
    run = dataflow.wait(timeout=120)
    assert run.status == 0, run
    assert "Traceback" not in run.stdout + run.stderr, run
    printed = [line.split("] ", 1)[-1] for line in run.stdout.splitlines()]
    for line in (dataflow.folder / "expect").read_text().splitlines():
        assert line in printed, f"{line!r} missing\n{run}"
    dataflow.expect_clean()


def test_logging_keys_filter_rotate_and_send(dataflow):
    """The logging example's keys, each by its effect: min_log_level drops the sensor's prints and
    debug entries everywhere, max_log_size rotates its log at 1 KiB keeping max_rotated_files (2)
    old ones, and send_logs_as delivers the processor's entries (checked by its monitor)."""
    shutil.copytree(EXAMPLES / "logging", dataflow.folder, dirs_exist_ok=True)
    dataflow.start((dataflow.folder / "dataflow.yml").read_text(), "--no-build", "--log-dir", "logs")
    run = dataflow.wait(timeout=120)
    assert run.status == 0, run
    logs = dataflow.folder / "logs"
    rotated = sorted(path.name for path in logs.iterdir() if path.name.startswith("sensor.log"))
    assert rotated == ["sensor.log", "sensor.log.1", "sensor.log.2"], rotated
    kept = "".join((logs / name).read_text() for name in rotated)
    assert all((logs / name).stat().st_size <= 1024 for name in rotated), rotated
    assert "INFO  sensor reading 99: 21.0 C" in kept and "WARN  high temperature 26.0 C" in kept, kept
    sensor = run.lines("sensor")
    assert len([line for line in sensor if line.startswith("INFO  sensor reading")]) == 100, run
    assert not any("raw print" in line or "sensor debug" in line for line in sensor), run
    assert "raw print" not in kept and "sensor debug" not in kept, kept
    assert "monitor: readings=100 info=100 warnings=14 errors=10" in run.lines("monitor"), run
    dataflow.expect_clean()

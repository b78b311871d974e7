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

"""Runs dataflows with the real `apus` binary, as a user would, and checks what every run must
leave behind: no process of the run and no shared memory."""
import os
import re
import subprocess
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("APUS_BUILD", REPO / ".build" / "debug"))
APUS = BUILD / "apus"
API_TEST = REPO / "Tests" / "CNodes" / "api_test.c"
# A C node of Tests/CNodes/api_test.c, built by the dataflow's build step with -Werror.
C_NODE_BUILD = f"gcc -std=c99 -Wall -Wextra -Wpedantic -Werror -o api_test {API_TEST} $(apus config --cflags --libs)"


# For node sources: the permissions and file of the mapping that holds `address` in this process.
MEMFD_MAPPING = '''
def memfd_mapping(address):
    for line in open("/proc/self/maps"):
        fields = line.split()
        start, end = (int(x, 16) for x in fields[0].split("-"))
        if start <= address < end:
            return fields[1], " ".join(fields[5:])
    return None, None
'''


class Run:
    def __init__(self, status, stdout, stderr):
        self.status, self.stdout, self.stderr = status, stdout, stderr

    def lines(self, node):
        prefix = f"[{node}] "
        return [line[len(prefix):] for line in self.stdout.splitlines() if line.startswith(prefix)]

    def __repr__(self):
        return f"exit {self.status}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


class Dataflow:
    """A dataflow file and its node programs in a fresh folder, run with `apus run`."""

    def __init__(self, folder):
        self.folder = folder
        self.tag = f"apus-pytest-{uuid.uuid4()}"
        self.shm_before = set(os.listdir("/dev/shm"))
        self.process = None

    def write(self, name, text):
        (self.folder / name).write_text(text)
        return self

    def start(self, yaml, *arguments):
        self.write("dataflow.yml", yaml)
        environment = dict(os.environ, APUS_TEST_TAG=self.tag)
        self.process = subprocess.Popen([str(APUS), "run", "dataflow.yml", "--no-color", *arguments], cwd=self.folder,
                                        env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        return self.process

    def wait(self, timeout=120):
        try:
            stdout, stderr = self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            stdout, stderr = self.process.communicate()
            pytest.fail(f"apus run did not end within {timeout} s\n{stdout}\n{stderr}")
        return Run(self.process.returncode, stdout, stderr)

    def run(self, yaml, *arguments, timeout=120):
        self.start(yaml, *arguments)
        return self.wait(timeout)

    def survivors(self):
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                environment = Path(f"/proc/{entry}/environ").read_bytes()
                state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
            except OSError:
                continue
            if f"APUS_TEST_TAG={self.tag}".encode() in environment and state != "Z":
                found.append(int(entry))
        return found

    def expect_clean(self):
        deadline = time.monotonic() + 3
        while self.survivors() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert self.survivors() == [], "processes of the run are left"
        assert set(os.listdir("/dev/shm")) - self.shm_before == set(), "shared memory left in /dev/shm"


@pytest.fixture
def dataflow(tmp_path):
    if not APUS.exists():
        pytest.fail(f"{APUS} is missing: build first (`swift build`, as scripts/test does)")
    flow = Dataflow(tmp_path)
    yield flow
    if flow.process is not None and flow.process.poll() is None:
        flow.process.kill()
        flow.process.wait()
    for pid in flow.survivors():
        os.kill(pid, 9)


def ok_line(run, node):
    """The node's last line, which the test nodes make "<node>: ok ..." when every check held."""
    lines = run.lines(node)
    return lines[-1] if lines else ""

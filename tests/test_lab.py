"""`make lab` brings up a JupyterLab that answers; the learner's workspace is built first."""

import json
import os
import secrets
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from processes import die_with_parent

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_make_lab_serves_the_workspace(tmp_path):
    port, token = free_port(), secrets.token_hex(16)
    ws = tmp_path / "ws"
    log = tmp_path / "lab.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            ["make", "-C", str(ROOT), "lab", f"PORT={port}", f"TOKEN={token}", f"WORKSPACE={ws}"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGTERM),  # make stops its recipe on SIGTERM
        )
    try:
        status = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                url = f"http://127.0.0.1:{port}/api/status?token={token}"
                with urllib.request.urlopen(url, timeout=2) as r:
                    status = json.loads(r.read())
                    break
            except OSError:
                time.sleep(0.5)
        assert status is not None, f"JupyterLab did not answer in time:\n{log.read_text()[-3000:]}"
        assert "started" in status
        # the workspace was built and is what the server shows
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/api/contents?token={token}", timeout=5
        ) as r:
            names = {item["name"] for item in json.loads(r.read())["content"]}
        assert "00_orientation.ipynb" in names
        # without the token the API refuses
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents", timeout=5)
        text = log.read_text()
        if os.geteuid() == 0:
            assert "--allow-root" in text
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    assert proc.poll() is not None

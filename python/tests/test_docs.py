"""The quick-start examples of docs/python.md run as written (against a test broker, through
$VBUS_URL), so the page cannot drift from the API."""

import os
import re
import subprocess
import sys

DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "python.md")


def quick_start_blocks():
    with open(DOC) as f:
        text = f.read()
    section = text.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def run(host, code, env_extra=None):
    env = dict(os.environ, VBUS_URL=host.url, **(env_extra or {}))
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60)


def test_quick_start_examples(host):
    blocks = quick_start_blocks()
    assert len(blocks) == 2
    r = run(host, blocks[0])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert re.fullmatch(r"sensors\.kitchen\.temp local\(uid=\d+,pid=\d+\) 21\.5C 1 0 False",
                        lines[0]), lines[0]
    assert re.fullmatch(r"Get local\(uid=\d+\) [0-9.]+", lines[1]), lines[1]
    assert lines[2] == "b'open'"
    # The blocking example calls storage.v1.Store: first with nobody serving it, then with
    # vbusctl serving it (as the README's example does).
    r = run(host, blocks[1])
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1] == "no responders"
    srv = subprocess.Popen([host.vbusctl, "--url", host.url, "serve", "storage.v1.Store",
                            "--exec", "printf open"], stderr=subprocess.PIPE, text=True)
    try:
        assert "# serving" in srv.stderr.readline()
        r = run(host, blocks[1])
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[1] == "b'open'"
    finally:
        srv.kill()
        srv.wait()

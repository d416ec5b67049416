"""pytest fixtures for the Python binding's tests, on xensim.

The conventions of tests/integration/lib.sh: each test gets a private directory with its own
xensim instance and broker (vchand in dom0 on a private socket), guests are created with
``xensim domain create`` and C or Python peers run in them with ``xensim run --domid N`` over
vchan; everything started is killed and the instance taken down even when the test fails.
The test process itself is a local client of the broker (unix socket).

Run: PYTHONPATH=<build>/python python3 -m pytest python/tests --build <build>
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import List, Optional

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))


def pytest_addoption(parser):
    parser.addoption("--build", required=True, help="the CMake build directory (build/gcc)")


class Host:
    """A private xensim instance with a broker in dom0."""

    def __init__(self, build: str) -> None:
        self.build = os.path.abspath(build)
        self.xs = os.path.join(self.build, "xensim", "xensim")
        self.vchand = os.path.join(self.build, "vchand", "vchand")
        self.vbusctl = os.path.join(self.build, "clients", "vbusctl", "vbusctl")
        self.examples = os.path.join(self.build, "examples", "kvstore")
        self.tmp = tempfile.mkdtemp(prefix="vbus-py.")
        self.sock = os.path.join(self.tmp, "broker.sock")
        self.url = "unix:" + self.sock
        self.env = dict(os.environ, XENSIM_DIR=os.path.join(self.tmp, "xs"))
        self.procs: List[subprocess.Popen] = []
        self.broker: Optional[subprocess.Popen] = None
        self._n_logs = 0
        subprocess.run([self.xs, "up"], env=self.env, check=True, stdout=subprocess.DEVNULL)

    def guest(self, name: str) -> int:
        out = subprocess.run([self.xs, "domain", "create", name], env=self.env, check=True,
                             capture_output=True, text=True).stdout
        return int(out.strip())

    def log(self, name: str) -> str:
        return os.path.join(self.tmp, name)

    def broker_start(self, *args: str, policy: str = "open") -> None:
        log = open(self.log("broker.log"), "a")
        # --policy open unless a test names a policy directory, as tests/integration/lib.sh:
        # these tests are of the binding, not of the broker's policy.
        self.broker = subprocess.Popen([self.xs, "run", "--domid", "0", "--", self.vchand,
                                        "--socket", self.sock, "--policy", policy, *args],
                                       env=self.env,
                                       stdout=log, stderr=subprocess.STDOUT)
        self.wait_file(self.sock, "the broker did not start")

    def broker_kill9(self) -> None:
        if self.broker is not None:
            self.broker.kill()
            self.broker.wait()
            self.broker = None
        if os.path.exists(self.sock):
            os.unlink(self.sock)

    def cmd(self, domid: int, args: List[str], python: bool = False) -> List[str]:
        """The command line that runs @args in domain @domid over vchan."""
        pre = [self.xs, "run", "--domid", str(domid), "--", "env", "VBUS_URL=vchan:0"]
        if python:
            pre += [f"PYTHONPATH={os.environ.get('PYTHONPATH', '')}", sys.executable]
        return pre + args

    def run(self, domid: int, args: List[str], python: bool = False, timeout: float = 60,
            check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run(self.cmd(domid, args, python), env=self.env, capture_output=True,
                           text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"{args} in dom{domid}: exit {r.returncode}\n"
                                 f"stdout: {r.stdout}\nstderr: {r.stderr}")
        return r

    def bg(self, domid: int, args: List[str], python: bool = False,
           name: str = "bg") -> "Bg":
        self._n_logs += 1
        path = self.log(f"{name}-{self._n_logs}.out")
        f = open(path, "w")
        p = subprocess.Popen(self.cmd(domid, args, python), env=self.env, stdout=f,
                             stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(p)
        return Bg(p, path)

    @staticmethod
    def wait_file(path: str, why: str, timeout: float = 15.0) -> None:
        end = time.monotonic() + timeout
        while not os.path.exists(path):
            if time.monotonic() > end:
                raise AssertionError(why)
            time.sleep(0.05)

    def close(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait()
        self.broker_kill9()
        subprocess.run([self.xs, "down"], env=self.env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)

    def dump_logs(self) -> str:
        out = []
        for n in sorted(os.listdir(self.tmp)):
            p = os.path.join(self.tmp, n)
            if os.path.isfile(p) and (n.endswith(".log") or n.endswith(".out")):
                with open(p, errors="replace") as f:
                    out.append(f"--- {n}\n" + "".join(f.readlines()[-25:]))
        return "\n".join(out)


class Bg:
    """A background peer: its process and its output file."""

    def __init__(self, proc: subprocess.Popen, path: str) -> None:
        self.proc = proc
        self.path = path

    def output(self) -> str:
        with open(self.path, errors="replace") as f:
            return f.read()

    def wait_for(self, text: str, timeout: float = 15.0) -> str:
        end = time.monotonic() + timeout
        while True:
            out = self.output()
            if text in out:
                return out
            if self.proc.poll() is not None or time.monotonic() > end:
                raise AssertionError(f"never saw {text!r}; output:\n{out}")
            time.sleep(0.05)

    def wait(self, timeout: float = 60.0) -> int:
        return self.proc.wait(timeout)


@pytest.fixture
def host(request):
    """A private xensim with a running broker; torn down whatever happens."""
    h = Host(request.config.getoption("--build"))
    try:
        h.broker_start()
        yield h
    except BaseException:
        sys.stderr.write(h.dump_logs())
        raise
    finally:
        rep = getattr(request.node, "rep_call", None)
        if rep is not None and rep.failed:
            sys.stderr.write(h.dump_logs())
        h.close()
        shutil.rmtree(h.tmp, ignore_errors=True)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


PEER = os.path.join(HERE, "peer.py")

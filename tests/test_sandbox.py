"""The sandbox against hostile examples, with real processes (issue 14).

Each attack runs at every contained level this machine offers: bubblewrap, and our own namespace
fallback. One end-to-end build at the end runs the worst of them from an article and checks what
the user gets: the build's exit status, the package, the host's processes and sockets.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
import zipfile
from pathlib import Path

import pytest

from deckgen import sandbox

from .conftest import Nobody

CONTAINED = (sandbox.BUBBLEWRAP, sandbox.NAMESPACES)
MIB = 1024 * 1024


@pytest.fixture(params=CONTAINED)
def level(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if not sandbox._works(request.param):
        pytest.skip(f"the {request.param} sandbox is not available here")
    monkeypatch.setenv(sandbox.LEVEL_VARIABLE, request.param)
    return request.param


def run(code: str, folder: Path, timeout: float = 5.0, **limits: int) -> tuple[str, sandbox.Outcome]:
    (folder / "main.py").write_text(code, encoding="utf-8")
    outcome = sandbox.run([sys.executable, "-u", "main.py"], folder,
                          sandbox.Limits(timeout=timeout, cpu_seconds=int(timeout) + 1,
                                         memory_bytes=512 * MIB, file_bytes=10 * MIB, **limits))
    return outcome.output.decode("utf-8", errors="replace"), outcome


def survivors(marker: str) -> list[int]:
    """Host processes whose command line holds `marker`."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != os.getpid():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        found.append(int(name))
            except OSError:
                pass
    return found


def test_the_builders_environment_cannot_be_read(level: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    secret = f"ghp_{uuid.uuid4().hex}"
    monkeypatch.setenv("GITHUB_TOKEN", secret)
    code = ("import os\nprint(dict(os.environ))\nfor pid in os.listdir('/proc'):\n"
            "    if pid.isdigit():\n"
            "        try: print(pid, open(f'/proc/{pid}/environ', 'rb').read())\n"
            "        except OSError as error: print(pid, error)\n"
            f"print(open('/proc/{os.getpid()}/environ', 'rb').read())\n")
    output, outcome = run(code, tmp_path)
    assert secret not in output and "GITHUB_TOKEN" not in output
    # It sees its own namespace only: the reaper (1) and itself (2), never the builder.
    assert output.rstrip().endswith(f"No such file or directory: '/proc/{os.getpid()}/environ'")


def test_a_unix_socket_on_the_host_receives_nothing(level: str, tmp_path: Path) -> None:
    received: list[bytes] = []
    # In /tmp, in /run, and beside this file: anywhere on the host, not only the private folders.
    paths = [tmp_path / "host.sock", Path("/run") / f"deckgen-test-{uuid.uuid4().hex}.sock",
             Path(__file__).parent / f".deckgen-test-{uuid.uuid4().hex[:8]}.sock"]
    listeners = []
    for path in paths:
        listener = socket.socket(socket.AF_UNIX)
        listener.bind(str(path))
        listener.listen()
        listener.settimeout(0.2)
        listeners.append(listener)
    abstract = socket.socket(socket.AF_UNIX)
    abstract_name = f"\0deckgen-test-{uuid.uuid4().hex}"
    abstract.bind(abstract_name)
    abstract.listen()
    abstract.settimeout(0.2)
    listeners.append(abstract)
    targets = [str(p) for p in paths] + [abstract_name]
    code = ("import socket\n"
            f"for target in {targets!r}:\n"
            "    s = socket.socket(socket.AF_UNIX)\n"
            "    try:\n        s.connect(target); s.sendall(b'hello'); print('connected')\n"
            "    except OSError as error:\n        print('refused', error.errno)\n")
    try:
        output, _ = run(code, tmp_path)
        for listener in listeners:
            try:
                connection, _ = listener.accept()
                received.append(connection.recv(100))
            except OSError:
                pass
    finally:
        for listener in listeners:
            listener.close()
        paths[1].unlink(missing_ok=True)
        paths[2].unlink(missing_ok=True)
    assert received == []
    assert output.splitlines() == ["refused 2", "refused 2", "refused 2", "refused 111"]


def test_no_process_of_an_example_survives_it(level: str, tmp_path: Path) -> None:
    marker = f"deckgen-survivor-{uuid.uuid4().hex}"
    sleeper = f"[sys.executable, '-c', 'import os, time; time.sleep(60)', {marker!r}]"
    code = textwrap.dedent(f"""\
        import os, subprocess, sys, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, {sleeper})
            os._exit(0)
        subprocess.Popen({sleeper}, start_new_session=True)
        subprocess.Popen({sleeper}, preexec_fn=lambda: os.setpgid(0, 0))
        time.sleep(0.3)
        print('started')
        """)
    output, outcome = run(code, tmp_path)
    assert output == "started\n" and outcome.returncode == 0
    assert survivors(marker) == []


def test_a_process_outside_survives_an_example_that_tries_to_kill_it(level: str,
                                                                      tmp_path: Path) -> None:
    outside = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        code = ("import os, signal\n"
                f"for target in ({outside.pid}, {os.getpid()}, os.getppid(), 1, -1):\n"
                "    try:\n        os.kill(target, signal.SIGKILL); print(target, 'sent')\n"
                "    except OSError as error:\n        print(target, error.strerror)\n")
        output, outcome = run(code, tmp_path)
        time.sleep(0.1)
        assert outside.poll() is None  # still running
    finally:
        outside.kill()
        outside.wait()
    lines = output.splitlines()
    assert lines[0] == f"{outside.pid} No such process"  # cannot even see it
    assert lines[1] == f"{os.getpid()} No such process"
    # Its parent and PID 1 are the reaper, which ignores it; kill(-1) finds no one else.
    assert lines[2:] == ["1 sent", "1 sent", "-1 No such process"]
    assert outcome.returncode == 0 and not outcome.timed_out


def test_an_example_killing_its_parent_only_ends_itself(level: str, tmp_path: Path) -> None:
    code = ("import os, signal\nprint(os.getppid())\nos.kill(os.getppid(), signal.SIGKILL)\n"
            "import time; time.sleep(0.2)\nprint('still here')\n")
    output, outcome = run(code, tmp_path)
    assert output == "1\nstill here\n"  # its parent is the namespace's reaper, immune from inside
    assert outcome.returncode == 0


def test_the_disk_quota_holds_for_the_whole_folder(level: str, tmp_path: Path) -> None:
    code = ("import os\nwritten = 0\nfor i in range(100):\n"
            "    try:\n"
            "        with open(f'f{i}.bin', 'wb') as f:\n"
            "            for _ in range(10):\n"
            "                f.write(b'x' * 1048576); written += 1048576\n"
            "    except OSError as error:\n"
            "        print(error.strerror); break\n"
            "print(written // 1048576)\n"
            "for where in ('/tmp', '/dev/shm', os.path.expanduser('~')):\n"
            "    try:\n"
            "        with open(os.path.join(where, 'big'), 'wb') as f:\n"
            "            for _ in range(100): f.write(b'x' * 1048576)\n"
            "    except OSError as error:\n        print(where, error.strerror)\n")
    started = time.monotonic()
    output, outcome = run(code, tmp_path, timeout=20, disk_bytes=32 * MIB)
    elapsed = time.monotonic() - started
    lines = output.splitlines()
    assert lines[0] == "No space left on device"
    assert int(lines[1]) <= 32  # counted as handed to the buffer: the last MB failed on flush
    # Each private scratch folder is small too: full, or the file-size limit comes first.
    assert all(line.endswith(("No space left on device", "File too large"))
               for line in lines[2:5]), output
    on_host = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert on_host <= 32 * MIB
    assert elapsed < 15


def test_a_fork_bomb_is_bounded_and_ends_with_the_run(level: str, tmp_path: Path) -> None:
    marker = f"deckgen-bomb-{uuid.uuid4().hex}"
    bomb = "import os\\nwhile True:\\n    try: os.fork()\\n    except OSError: pass"
    code = textwrap.dedent(f"""\
        import os, sys, time
        count = 0
        while count < 2000:
            try:
                pid = os.fork()
            except OSError:
                break
            if pid == 0:
                os.execv(sys.executable, [sys.executable, '-c', '{bomb}', {marker!r}])
            count += 1
        print('forked', count)
        time.sleep(30)
        """)
    started = time.monotonic()
    output, outcome = run(code, tmp_path, timeout=2.0, processes=32)
    assert outcome.timed_out
    assert time.monotonic() - started < 10
    if sandbox._pids_cgroup_base() is not None:
        assert int(output.split()[1]) < 32, output  # the pids cgroup held, root or not
    time.sleep(0.1)
    assert survivors(marker) == []


def test_the_folder_keeps_what_the_run_wrote_and_nothing_it_forged(level: str,
                                                                  tmp_path: Path) -> None:
    (tmp_path / "data.json").write_text('{"a": 1}', encoding="utf-8")
    outside = tmp_path.parent / f"outside-{uuid.uuid4().hex}"
    code = ("import os, json\nprint(json.load(open('data.json')))\n"
            "os.makedirs('out'); open('out/x.txt', 'w').write('x')\n"
            f"os.symlink({str(outside)!r}, 'link')\nos.remove('data.json')\n")
    output, outcome = run(code, tmp_path)
    assert output == "{'a': 1}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["main.py", "out"]
    assert (tmp_path / "out" / "x.txt").read_text() == "x"
    assert not outside.exists()


# --- end to end: an article's hostile examples, built ------------------------------------------

HOSTILE_ARTICLE = """# 安全

## 【一】读取环境变量

```python
import os
print(os.environ)
print(open(f'/proc/{os.getppid()}/environ', 'rb').read())
for pid in os.listdir('/proc'):
    try: print(open(f'/proc/{pid}/environ', 'rb').read())
    except OSError: pass
```

## 【二】连接套接字

```python
import socket
s = socket.socket(socket.AF_UNIX)
s.connect(SOCKET)
s.sendall(b'stolen')
print('sent')
```

## 【三】后台进程

```python
import os, sys
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execv(sys.executable, [sys.executable, '-c', 'import time; time.sleep(60)', MARKER])
    os._exit(0)
print('detached')
```

## 【四】杀死父进程

```python
import os, signal
os.kill(os.getppid(), signal.SIGKILL)
os.kill(1, signal.SIGKILL)
os.kill(-1, signal.SIGKILL)
```
"""


def test_a_hostile_article_builds_and_leaks_nothing(tmp_path: Path) -> None:
    if sandbox.level() == sandbox.BEST_EFFORT:
        pytest.skip("no contained level on this machine")
    secret = f"ghp_{uuid.uuid4().hex}"
    marker = f"deckgen-survivor-{uuid.uuid4().hex}"
    socket_path = tmp_path / "agent.sock"
    source = tmp_path / "source"
    source.mkdir()
    article = HOSTILE_ARTICLE.replace("SOCKET", repr(str(socket_path))).replace("MARKER",
                                                                                repr(marker))
    (source / "a.md").write_text(article, encoding="utf-8")
    received: list[bytes] = []
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(socket_path))
    listener.listen()
    listener.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
                received.append(connection.recv(100) or b"(connected)")
            except OSError:
                pass

    thread = threading.Thread(target=accept)
    thread.start()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "deckgen", "build", str(source), "-o", str(tmp_path / "build"),
             "--lock", str(tmp_path / "deckgen.lock")],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
            env={**os.environ, "GITHUB_TOKEN": secret, "SSH_AUTH_SOCK": str(socket_path)})
    finally:
        stop.set()
        thread.join()
        listener.close()
    assert done.returncode in (0, 1), done.stderr
    packages = list((tmp_path / "build").glob("*.apkg"))
    assert packages
    for package in packages:
        with zipfile.ZipFile(package) as archive:
            for name in archive.namelist():
                data = archive.read(name)
                assert secret.encode() not in data and b"GITHUB_TOKEN" not in data
    assert received == []
    assert survivors(marker) == []
    assert "code examples ran in a" in done.stdout  # the summary names the level in force
    # The attacks really ran: the environment was printed (without the secret), the socket
    # refused, the detached process started.
    from .test_build import open_package
    notes, _, _ = open_package(tmp_path / "build" / "三年面试五年模拟.apkg", tmp_path)
    outputs = {n["Question"]: n["Output"] for n in notes if n["type"] == "deckgen Code"}
    assert any("PYTHONHASHSEED" in out for out in outputs.values())
    assert any("FileNotFoundError" in out for out in outputs.values())
    assert any("detached" in out for out in outputs.values())


@pytest.mark.parametrize("chosen", CONTAINED)
def test_a_user_who_is_not_root_gets_the_same_sandbox(chosen: str, nobody: Nobody) -> None:
    """Unprivileged user namespaces (a developer's laptop): bwrap, and our own fallback too."""
    repo = Path(__file__).resolve().parents[1]
    script = (f"import sys, tempfile; sys.path.insert(0, {str(repo)!r})\n"
              "from deckgen import sandbox\n"
              f"if not sandbox._works({chosen!r}): print('unavailable'); raise SystemExit\n"
              "with tempfile.TemporaryDirectory() as d:\n"
              f"    o = sandbox._run({chosen!r}, [sys.executable, '-c', 'import os; "
              "print(os.getuid(), os.getpid(), sorted(os.listdir(\"/\")))'], d,"
              " sandbox.Limits(5, 5, 512 << 20, 1 << 20), None)\n"
              "    print(o.output.decode(), o.returncode)\n")
    done = nobody.run([str(nobody.python), "-I", "-c", script], cwd="/", home="/", timeout=30)
    if "unavailable" in done.stdout or "Permission denied" in done.stderr:
        pytest.skip(f"{chosen} is not available to nobody here")
    assert done.returncode == 0, done.stderr
    uid, pid, *listing = done.stdout.split(None, 2)
    assert (uid, pid) == (str(nobody.uid), "2")  # its own PID namespace, under the reaper
    assert "'usr'" in listing[0] and "'work'" not in listing[0] and "'srv'" not in listing[0]


def test_even_best_effort_survives_an_example_killing_its_parent(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sandbox.LEVEL_VARIABLE, sandbox.BEST_EFFORT)
    output, outcome = run("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n", tmp_path)
    assert outcome.returncode == -9  # the run ended; this test process, the build, did not

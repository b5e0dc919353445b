"""The code runner, with real subprocesses: what a card shows as a block's output, and that a
block cannot reach the builder's files, environment or network."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from deckgen import sandbox
from deckgen.run import (
    FAILED,
    RAN,
    SKIPPED,
    TIMED_OUT,
    Cell,
    CodeRunner,
    RunResult,
    outputs_match,
    trim_output,
)
from deckgen.sandbox import filesystem_isolated, network_isolated

from .conftest import Nobody

REPO = Path(__file__).resolve().parents[1]

DICT_TO_JSON = '''import json
data = {"name": "Rocky", "age": 18, "city": "Shanghai"}
json_str = json.dumps(data)
print(json_str)
'''

WRITES_FILE_TXT = '''import os
with open('file.txt', 'w') as f:
    f.write('Hello, AI!')
with open('file.txt', 'r') as f:
    print(f.read())
print(os.getcwd())
'''


@pytest.fixture
def runner() -> CodeRunner:
    return CodeRunner(cache_dir=None, timeout=5.0)


@pytest.fixture
def spawns(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The commands the runner starts (still started for real)."""
    started: list[list[str]] = []
    real_popen = subprocess.Popen

    def counting_popen(command, *args, **kwargs):
        started.append(command)
        return real_popen(command, *args, **kwargs)

    monkeypatch.setattr(sandbox.subprocess, "Popen", counting_popen)
    return started


def test_dict_to_json_example_prints_what_the_article_says(runner: CodeRunner) -> None:
    result = runner.run(DICT_TO_JSON, "python")
    assert result == RunResult(RAN, '{"name": "Rocky", "age": 18, "city": "Shanghai"}\n', 0, "")
    assert outputs_match('{"name": "Rocky", "age": 18, "city": "Shanghai"}', result.output)


def test_block_files_land_in_a_temporary_directory_that_is_removed(
        runner: CodeRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.run(WRITES_FILE_TXT, "python")
    assert result.status == RAN
    assert result.output == "Hello, AI!\n.\n"  # the random directory is not shown on the card
    assert list(tmp_path.iterdir()) == []
    assert not (REPO / "file.txt").exists()


def test_the_block_directory_is_gone_afterwards(runner: CodeRunner) -> None:
    # Printed as a list of characters, which the runner does not rewrite to ".".
    code = "import os\nprint(list(os.getcwd()))\n"
    result = runner.run(code, "python")
    directory = "".join(eval(result.output))  # the block's own cwd, as characters
    assert Path(directory).name.startswith("deckgen-run-")
    assert not Path(directory).exists()


def test_stdout_and_stderr_are_captured_in_the_order_printed(runner: CodeRunner) -> None:
    code = "import sys\nprint('one')\nprint('two', file=sys.stderr)\nprint('three')\n"
    assert runner.run(code, "python").output == "one\ntwo\nthree\n"


def test_a_failing_block_keeps_its_traceback_naming_main_py(runner: CodeRunner) -> None:
    result = runner.run("x = 1\nraise ValueError('boom')\n", "python")
    assert (result.status, result.exit_code, result.reason) == (FAILED, 1, "ValueError: boom")
    assert 'File "main.py", line 2, in <module>' in result.output
    assert result.output.rstrip().endswith("ValueError: boom")


def test_a_fragment_fails_saying_what_it_lacks(runner: CodeRunner) -> None:
    result = runner.run("torch.set_rng_state(state)\n", "python")
    assert (result.status, result.reason) == (FAILED, "NameError: name 'torch' is not defined")


def test_a_plain_non_zero_exit_says_its_status(runner: CodeRunner) -> None:
    result = runner.run("import sys\nprint('bye')\nsys.exit(3)\n", "python")
    assert (result.status, result.exit_code, result.reason) == (FAILED, 3, "exited with status 3")
    assert result.output == "bye\n"


def test_an_endless_loop_is_stopped_at_the_timeout() -> None:
    result = CodeRunner(timeout=1.0).run("while True: pass\n", "python")
    assert result.status == TIMED_OUT
    assert result.reason == "stopped after 1 s"
    assert result.exit_code is None


def test_a_background_process_does_not_outlive_its_block(runner: CodeRunner) -> None:
    code = ("import subprocess\np = subprocess.Popen(['sleep', '30'])\n"
            "print(list(str(p.pid)))\n")
    result = runner.run(code, "python")
    pid = int("".join(eval(result.output)))
    assert result.status == RAN
    assert _gone_soon(pid, "sleep")


def _gone_soon(pid: int, name: str) -> bool:
    """Whether process `pid` running `name` ends within 2 s (a killed one may take a moment to
    be reaped; a zombie has no command line)."""
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            if name not in Path(f"/proc/{pid}/cmdline").read_text():
                return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


def test_a_missing_module_skips_the_block_naming_it(runner: CodeRunner) -> None:
    result = runner.run("import torch_not_here_xyz\n", "python")
    assert (result.status, result.reason) == (SKIPPED, "needs module torch_not_here_xyz")


def test_a_missing_module_after_long_output_is_still_recognised(runner: CodeRunner) -> None:
    result = runner.run("for i in range(200): print(i)\nimport torch_not_here_xyz\n", "python")
    assert (result.status, result.reason) == (SKIPPED, "needs module torch_not_here_xyz")


def test_an_import_error_of_an_installed_module_is_a_failure(runner: CodeRunner) -> None:
    result = runner.run("from json import no_such_name\n", "python")
    assert result.status == FAILED and result.reason.startswith("ImportError: cannot import name")


@pytest.mark.parametrize("language", ["bash", "sh", "shell", "console", "zsh", "powershell", "cmd"])
def test_shell_blocks_are_never_run(runner: CodeRunner, tmp_path: Path, spawns: list,
                                    language: str) -> None:
    marker = tmp_path / "ran"
    result = runner.run(f"touch {marker}\nsudo usermod -aG docker rocky\n", language)
    assert result == RunResult(SKIPPED, "", None, f"{language} is never run")
    assert not marker.exists()
    assert spawns == []


@pytest.mark.parametrize("language, reason", [
    ("javascript", "javascript is not run"),
    ("ipython", "ipython is not run"),
    ("", "code without a language is not run"),
])
def test_other_languages_are_not_run(runner: CodeRunner, spawns: list, language: str,
                                     reason: str) -> None:
    assert runner.run("print('hi')\n", language) == RunResult(SKIPPED, "", None, reason)
    assert spawns == []


@pytest.mark.parametrize("language", ["python", "py", "python3", "Python"])
def test_python_spellings_are_run(runner: CodeRunner, language: str) -> None:
    assert runner.run("print('hi')\n", language).output == "hi\n"


def test_no_run_skips_everything(spawns: list) -> None:
    result = CodeRunner(enabled=False).run(DICT_TO_JSON, "python")
    assert result == RunResult(SKIPPED, "", None, "code running is off (--no-run)")
    assert spawns == []


@pytest.mark.parametrize("code", [
    "x = bytearray(2_000_000_000)\n",
    "chunks = []\nwhile True:\n    chunks.append(bytearray(10_000_000))\n",
])
def test_a_memory_hog_is_stopped_by_the_limit(code: str) -> None:
    result = CodeRunner(timeout=10.0, memory_mb=256).run(code, "python")
    assert result.status == FAILED
    assert result.reason == "exceeded the 256 MB memory limit"


def test_the_callers_environment_is_not_visible(runner: CodeRunner,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DECKGEN_TEST_SECRET", "hunter2")
    code = "import os\nfor k, v in sorted(os.environ.items()): print(k, v)\n"
    output = runner.run(code, "python").output
    assert "hunter2" not in output
    assert "DECKGEN_TEST_SECRET" not in output
    assert "HOME ." in output.splitlines()  # home is the block's own directory


def test_set_output_is_the_same_on_every_run(runner: CodeRunner) -> None:
    code = "print({'apple', 'banana', 'cherry', 'date', 'elderberry'})\n"
    outputs = {runner.run(code, "python").output for _ in range(3)}
    assert len(outputs) == 1


def test_network_is_unreachable_when_isolated(runner: CodeRunner) -> None:
    if not network_isolated():
        pytest.skip("network namespaces are not available here")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        code = ("import socket\ntry:\n"
                f"    socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
                "    print('connected')\n"
                "except OSError as error:\n    print('no network:', error)\n")
        result = runner.run(code, "python")
    assert result.status == RAN
    assert result.output.startswith("no network:")


# --- file system: what a contained block can and cannot touch --------------------------------

CONTAINED = [level for level in (sandbox.BUBBLEWRAP, sandbox.NAMESPACES)]


@pytest.fixture(params=CONTAINED)
def isolated_runner(request: pytest.FixtureRequest, runner: CodeRunner,
                    monkeypatch: pytest.MonkeyPatch) -> CodeRunner:
    """The runner at each contained level this machine offers (bwrap, and our own fallback)."""
    if not sandbox._works(request.param):
        pytest.skip(f"the {request.param} sandbox is not available here")
    monkeypatch.setenv(sandbox.LEVEL_VARIABLE, request.param)
    return runner


def _write_code(path: str) -> str:
    return f"with open({path!r}, 'w') as f:\n    f.write('written by a block')\n"


def test_this_machine_contains_examples() -> None:
    # Wherever namespaces may be made at all (the old bootstrap's own probe: as root, or with
    # user namespaces; not in a container that forbids them), a contained level must be in
    # force. Keeps the tests below from skipping quietly.
    if os.environ.get(sandbox.LEVEL_VARIABLE) or not sandbox._isolation().network:
        pytest.skip("no namespaces here, or a level asked for")
    assert sandbox.level() in CONTAINED
    assert network_isolated() and filesystem_isolated()


@pytest.mark.parametrize("where", ["test folder", "home", "repository"])
def test_a_block_cannot_write_outside_its_directory(isolated_runner: CodeRunner, tmp_path: Path,
                                                    where: str) -> None:
    name = f"deckgen-run-test-{uuid.uuid4().hex}.txt"
    target = {"test folder": tmp_path / name,
              "home": Path(os.path.expanduser(f"~/{name}")),
              "repository": REPO / "deckgen" / name}[where]
    try:
        result = isolated_runner.run(_write_code(str(target)) + "print('done')\n", "python")
        assert not target.exists()
    finally:
        target.unlink(missing_ok=True)
    # Refused (read-only, or not there at all), or written into a private folder that is gone.
    assert result.status == FAILED or result.output == "done\n"


def test_a_block_cannot_reach_the_builders_files_through_proc(
        isolated_runner: CodeRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # /proc/<pid>/cwd of the builder leads to its own, writable view of the disk; in its own
    # PID namespace the block does not see the builder at all.
    monkeypatch.chdir(tmp_path)
    target = f"/proc/{os.getpid()}/cwd/escaped.txt"
    result = isolated_runner.run(_write_code(target), "python")
    assert result.status == FAILED
    assert "Error: [Errno" in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_block_cannot_make_the_disk_writable_again(isolated_runner: CodeRunner) -> None:
    code = ("import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
            "MS_REMOUNT, MS_BIND = 0x20, 0x1000\n"
            "for path in (b'/', b'/usr'):\n"
            "    print(libc.mount(None, path, None, MS_REMOUNT | MS_BIND, None),"
            " os.strerror(ctypes.get_errno()))\n" + _write_code("/usr/deckgen-escape.txt"))
    result = isolated_runner.run(code, "python")
    assert result.output.startswith("-1 Operation not permitted\n-1 Operation not permitted\n")
    assert result.output.rstrip().endswith("Read-only file system: '/usr/deckgen-escape.txt'")
    assert not Path("/usr/deckgen-escape.txt").exists()


def test_a_block_still_writes_its_own_directory_and_temporary_files(
        isolated_runner: CodeRunner) -> None:
    code = ("import os, tempfile\n" + WRITES_FILE_TXT +
            "with tempfile.NamedTemporaryFile('w+') as f:\n"
            "    f.write('temporary'); f.seek(0)\n"
            "    print(f.read(), os.path.dirname(f.name) == os.getcwd())\n"
            "os.makedirs('out/deeper')\nprint(sorted(os.listdir('.')))\n")
    result = isolated_runner.run(code, "python")
    assert result.status == RAN, result.output
    assert result.output == ("Hello, AI!\n.\ntemporary True\n"
                             "['file.txt', 'out']\n")


def test_a_block_still_reads_system_files_and_uses_dev_null(isolated_runner: CodeRunner) -> None:
    code = ("import json, os\n"
            "print(open('/etc/passwd', encoding='utf-8').readline().split(':')[0])\n"
            "with open(os.devnull, 'w') as f:\n    print(f.write('discarded'))\n"
            "print(json.dumps({'ok': True}))\n")
    result = isolated_runner.run(code, "python")
    assert result.status == RAN, result.output
    assert result.output == "root\n9\n{\"ok\": true}\n"


def test_shared_memory_is_private_to_the_block(isolated_runner: CodeRunner) -> None:
    # multiprocessing's locks are POSIX semaphores in /dev/shm: it must stay writable, but what
    # a block leaves there must not stay on the builder's machine.
    name = f"deckgen-run-test-{uuid.uuid4().hex}"
    code = ("import multiprocessing\nlock = multiprocessing.Lock()\n"
            "with lock:\n    print('locked')\n"
            f"open('/dev/shm/{name}', 'w').write('left behind')\nprint('written')\n")
    try:
        result = isolated_runner.run(code, "python")
        left = Path("/dev/shm", name).exists()
    finally:
        Path("/dev/shm", name).unlink(missing_ok=True)
    assert result.output == "locked\nwritten\n"
    assert not left


def test_blocks_run_in_parallel_each_keep_their_own_writable_directory(
        isolated_runner: CodeRunner, tmp_path: Path) -> None:
    blocks = []
    for i in range(6):
        code = (f"import time\nopen('file.txt', 'w').write('block {i}')\ntime.sleep(0.05)\n"
                "print(open('file.txt').read())\n"
                f"open({str(tmp_path / f'outside-{i}.txt')!r}, 'w')\n")
        blocks.append((code, "python"))
    results = [r for (r,) in CodeRunner(cache_dir=None, workers=2).run_notebooks(
        [Cell(code, language)] for code, language in blocks)]
    assert [r.output.splitlines()[0] for r in results] == [f"block {i}" for i in range(6)]
    assert all(r.status == FAILED for r in results)
    assert list(tmp_path.iterdir()) == []


def test_the_bootstrap_isolates_a_user_that_is_not_root(nobody: Nobody) -> None:
    """The non-root path: an unprivileged user namespace gives the same read-only disk."""
    # Not in tmp_path: pytest's folder is root's alone, and nobody must reach its directory the
    # way a builder reaches its own. Without isolation, nobody could write to both folders.
    with tempfile.TemporaryDirectory(prefix="deckgen-test-") as folder:
        outer = Path(folder)
        home = outer / "block"
        home.mkdir()
        for path in (outer, home):
            path.chmod(0o755)
            os.chown(path, nobody.uid, nobody.gid)
        code = ("import os\nprint(os.getuid(), os.readlink('/proc/self/ns/net'))\n"
                "open('inside.txt', 'w').write('mine')\nprint(open('inside.txt').read())\n"
                "try:\n    open('../outside.txt', 'w')\n"
                "except OSError as error:\n    print(error.strerror)\n")
        command = [str(nobody.python), "-I", "-c", sandbox._inside(), "best-effort", "5",
                   str(256 << 20), str(1 << 20), str(nobody.python), "-I", "-c", code]
        done = nobody.run(command, cwd=home, home=str(home), timeout=10)
        escaped = (outer / "outside.txt").exists()
    uid, namespace = done.stdout.split("\n", 1)[0].split()
    if namespace == os.readlink("/proc/self/ns/net"):
        pytest.skip("unprivileged user namespaces are not allowed here")
    assert not escaped
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == ["mine", "Read-only file system"]
    assert int(uid) == nobody.uid  # the block keeps its own uid


def test_long_output_is_trimmed_with_a_marker(runner: CodeRunner) -> None:
    output = runner.run("for i in range(200): print(i)\n", "python").output
    lines = output.splitlines()
    assert lines[:2] == ["0", "1"]
    assert lines[79] == "79"
    assert lines[80:] == ["… (120 more lines)"]


def test_endless_printing_is_trimmed_and_counted() -> None:
    result = CodeRunner(timeout=1.0).run("while True: print('spam' * 100)\n", "python")
    assert result.status == TIMED_OUT
    assert len(result.output) <= 4100
    assert result.output.splitlines()[-1].startswith("… (")


def test_trim_output_cuts_a_very_long_line() -> None:
    trimmed = trim_output("x" * 10_000 + "\n")
    assert trimmed == "x" * 4000 + " …\n"
    assert trim_output("short\n") == "short\n"
    assert trim_output("a\nb\nc\n", max_lines=2) == "a\nb\n… (1 more line)\n"


def test_results_are_cached_and_reused_on_rebuild(tmp_path: Path, spawns: list) -> None:
    cache = tmp_path / "cache"
    first = CodeRunner(cache_dir=cache).run(DICT_TO_JSON, "python")
    assert not first.cached
    assert len(spawns) == 1
    assert len(list(cache.glob("*.json"))) == 1

    second = CodeRunner(cache_dir=cache).run(DICT_TO_JSON, "python")
    assert second.cached
    assert second == first
    assert len(spawns) == 1  # nothing started again


def test_a_changed_block_or_limit_runs_again(tmp_path: Path, spawns: list) -> None:
    cache = tmp_path / "cache"
    CodeRunner(cache_dir=cache).run("print(1)\n", "python")
    assert not CodeRunner(cache_dir=cache).run("print(2)\n", "python").cached
    assert not CodeRunner(cache_dir=cache, timeout=3.0).run("print(1)\n", "python").cached
    assert len(spawns) == 3


def test_a_result_from_a_weaker_sandbox_is_not_reused_under_a_stronger_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if sandbox.level() == sandbox.BEST_EFFORT:
        pytest.skip("no contained level on this machine")
    cache = tmp_path / "cache"
    monkeypatch.setenv(sandbox.LEVEL_VARIABLE, sandbox.BEST_EFFORT)
    assert not CodeRunner(cache_dir=cache).run("print(1)\n", "python").cached
    monkeypatch.delenv(sandbox.LEVEL_VARIABLE)
    assert not CodeRunner(cache_dir=cache).run("print(1)\n", "python").cached  # runs contained
    assert CodeRunner(cache_dir=cache).run("print(1)\n", "python").cached


def test_a_corrupt_cache_entry_is_ignored_and_replaced(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    CodeRunner(cache_dir=cache).run(DICT_TO_JSON, "python")
    (entry,) = cache.glob("*.json")
    entry.write_text("{not json", encoding="utf-8")
    result = CodeRunner(cache_dir=cache).run(DICT_TO_JSON, "python")
    assert result.status == RAN and not result.cached
    assert json.loads(entry.read_text(encoding="utf-8"))["results"][0]["status"] == RAN
    entry.write_text(json.dumps({"status": "exploded", "output": 3}), encoding="utf-8")
    assert not CodeRunner(cache_dir=cache).run(DICT_TO_JSON, "python").cached
    for wrong in ({"output": 3}, {"status": "exploded"}, {"exit_code": True}):
        results = [{"status": RAN, "output": "", "exit_code": 0, "reason": "", **wrong}]
        entry.write_text(json.dumps({"results": results}), encoding="utf-8")
        assert not CodeRunner(cache_dir=cache).run(DICT_TO_JSON, "python").cached


def test_timeouts_are_not_cached(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    CodeRunner(cache_dir=cache, timeout=1.0).run("while True: pass\n", "python")
    assert list(cache.glob("*.json")) == []


def test_run_notebooks_keeps_the_order(tmp_path: Path) -> None:
    blocks = [(f"print({i})\n", "python") for i in range(5)] + [("echo hi\n", "bash")]
    results = [r for (r,) in CodeRunner(cache_dir=tmp_path).run_notebooks(
        [Cell(code, language)] for code, language in blocks)]
    assert [r.output for r in results] == ["0\n", "1\n", "2\n", "3\n", "4\n", ""]
    assert results[-1].status == SKIPPED


@pytest.mark.parametrize("claimed, actual, same", [
    ("a\nb", "a\nb\n", True),
    ("a  \r\nb\r\n\r\n", "a\nb\n", True),
    ("a\n\nb", "a\nb", False),
    ("  a", "a", False),
    ("{'a': 1}", "{'a': 2}\n", False),
])
def test_outputs_match(claimed: str, actual: str, same: bool) -> None:
    assert outputs_match(claimed, actual) is same


# --- A question's blocks run like a notebook (#10) ------------------------------------------------

WRITES_DATA_JSON = '''import json
with open('data.json', 'w') as f:
    json.dump({'name': 'AI', 'year': 2024}, f)
'''
READS_DATA_JSON = '''import json
with open('data.json') as f:
    print(json.load(f))
'''


def test_a_second_block_sees_the_files_of_the_first(runner: CodeRunner) -> None:
    wrote, read = runner.run_notebook([Cell(WRITES_DATA_JSON, "python", 10),
                                       Cell(READS_DATA_JSON, "python", 20)])
    assert wrote == RunResult(RAN, "", 0, "")
    assert read == RunResult(RAN, "{'name': 'AI', 'year': 2024}\n", 0, "")
    # alone, the reading block has nothing to read
    assert runner.run(READS_DATA_JSON, "python").reason.startswith("FileNotFoundError")


def test_a_block_that_uses_an_earlier_blocks_names_continues_its_namespace(runner: CodeRunner) -> None:
    results = runner.run_notebook([
        Cell("data = {'a': 1}\nx = 5\n", "python"),
        Cell("print(data)\n", "python"),  # uses `data`: the article means the same session
        Cell("print('x' in globals())\n", "python"),  # self-contained: starts afresh
    ])
    assert [r.output for r in results] == ["", "{'a': 1}\n", "False\n"]


def test_a_block_failing_because_an_earlier_one_failed_says_so(runner: CodeRunner) -> None:
    first, second, third = runner.run_notebook([
        Cell("import json\nraise ValueError('bad data')\nopen('data.json', 'w').write('{}')\n",
             "python", 3),
        Cell("print(open('data.json').read())\n", "python", 9),
        Cell("import torch_not_here_xyz\nmodel = 1\n", "python", 12),
    ])
    assert first.status == FAILED and first.reason == "ValueError: bad data"
    assert second.status == FAILED
    assert second.reason == ("FileNotFoundError: [Errno 2] No such file or directory: 'data.json'"
                             " · because the block at line 3 before it failed")
    assert "Traceback" in second.output  # the result is there, folded away on the card
    assert third == RunResult(SKIPPED, "", None, "needs module torch_not_here_xyz")
    (after,) = runner.run_notebook([Cell("print(model)\n", "python", 1)])
    assert after.reason.startswith("NameError")  # alone: an ordinary failure, no cause to name


def test_a_block_that_needs_a_skipped_one_is_skipped_too(runner: CodeRunner) -> None:
    _, uses = runner.run_notebook([Cell("import torch_not_here_xyz\nmodel = 1\n", "python", 4),
                                   Cell("print(model)\n", "python", 8)])
    assert uses == RunResult(SKIPPED, "", None, "needs the block at line 4, which was not run "
                                                "(needs module torch_not_here_xyz)")


def test_one_block_out_of_time_does_not_stop_the_others(runner: CodeRunner) -> None:
    slow, after = CodeRunner(timeout=1.0).run_notebook([Cell("while True: pass\n", "python"),
                                                         Cell("print('after')\n", "python")])
    assert slow.status == TIMED_OUT and after == RunResult(RAN, "after\n", 0, "")


CLOCK_AND_DICE = '''import datetime, random, time
print(datetime.datetime.now())
print(datetime.date.today(), time.strftime('%Y-%m-%d %H:%M'))
print(random.randint(1, 10**9))
print(isinstance(datetime.datetime(2020, 1, 1), datetime.date), repr(datetime.datetime(2020, 1, 1)))
start = time.time(); time.sleep(0.01); print(time.time() - start > 0.009)
'''


def test_the_same_code_prints_the_same_on_every_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    first = CodeRunner(timeout=5.0).run(CLOCK_AND_DICE, "python")
    lines = first.output.splitlines()
    assert lines[0] == "2024-01-01 00:00:00"  # the fixed clock
    assert lines[1] == "2024-01-01 2024-01-01 00:00"
    assert lines[3:] == ["True datetime.datetime(2020, 1, 1, 0, 0)", "True"]
    assert CodeRunner(timeout=5.0).run(CLOCK_AND_DICE, "python") == first  # same dice, same time
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    later = CodeRunner(timeout=5.0).run(CLOCK_AND_DICE, "python")
    assert later.output.splitlines()[0] == "2023-11-14 22:13:20"


def test_a_chatty_block_does_not_hide_the_next_ones_output(runner: CodeRunner) -> None:
    chatty, after = runner.run_notebook([Cell("for i in range(100000): print('spam' * 20)\n", "python"),
                                         Cell("print('after')\n", "python")])
    assert chatty.status == RAN and chatty.output.splitlines()[-1] == "… (99951 more lines)"  # 49 shown
    assert after == RunResult(RAN, "after\n", 0, "")


def test_numpy_is_seeded_when_a_block_imports_it(runner: CodeRunner) -> None:
    """A stand-in numpy in the block's folder: the kernel seeds whatever `numpy` a block imports,
    right after the import, without importing it for blocks that do not."""
    fake = ("import os\nos.makedirs('numpy')\nopen('numpy/__init__.py', 'w').write(\n"
            "    'class random:\\n    @staticmethod\\n    def seed(n): print(\"seeded with\", n)\\n')\n")
    made, used = runner.run_notebook([Cell(fake, "python"), Cell("import numpy\nprint('imported')\n", "python")])
    assert made.status == RAN
    assert used.output == "seeded with 0\nimported\n"

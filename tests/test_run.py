"""The code runner, with real subprocesses: what a card shows as a block's output, and that a
block cannot reach the builder's files, environment or network."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest

from deckgen import run as run_module
from deckgen.run import (
    FAILED,
    RAN,
    SKIPPED,
    TIMED_OUT,
    CodeRunner,
    RunResult,
    network_isolated,
    outputs_match,
    trim_output,
)

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

    monkeypatch.setattr(run_module.subprocess, "Popen", counting_popen)
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
    assert (result.status, result.exit_code, result.reason) == (FAILED, 1, "exited with status 1")
    assert 'File "main.py", line 2, in <module>' in result.output
    assert result.output.rstrip().endswith("ValueError: boom")


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
    assert (result.status, result.reason) == (FAILED, "exited with status 1")


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


def test_a_corrupt_cache_entry_is_ignored_and_replaced(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    CodeRunner(cache_dir=cache).run(DICT_TO_JSON, "python")
    (entry,) = cache.glob("*.json")
    entry.write_text("{not json", encoding="utf-8")
    result = CodeRunner(cache_dir=cache).run(DICT_TO_JSON, "python")
    assert result.status == RAN and not result.cached
    assert json.loads(entry.read_text(encoding="utf-8"))["status"] == RAN
    entry.write_text(json.dumps({"status": "exploded", "output": 3}), encoding="utf-8")
    assert not CodeRunner(cache_dir=cache).run(DICT_TO_JSON, "python").cached


def test_timeouts_are_not_cached(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    CodeRunner(cache_dir=cache, timeout=1.0).run("while True: pass\n", "python")
    assert list(cache.glob("*.json")) == []


def test_run_many_keeps_the_order(tmp_path: Path) -> None:
    blocks = [(f"print({i})\n", "python") for i in range(5)] + [("echo hi\n", "bash")]
    results = CodeRunner(cache_dir=tmp_path).run_many(blocks)
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

"""Run the article's Python examples at build time, so a card shows what the code really prints.

Each block runs in its own throw-away directory (the examples write file.txt and the like),
contained by `deckgen.sandbox` (limits, no network, read-only disk where the OS allows).

Results are cached on disk, keyed by everything that can change them, so a rebuild re-runs only the
blocks that changed.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import signal
import site
import sys
import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path

from deckgen import sandbox
from deckgen.markdown import fence_language

RAN = "ran"
FAILED = "failed"
TIMED_OUT = "timed out"
SKIPPED = "skipped"
_STATUSES = frozenset({RAN, FAILED, TIMED_OUT, SKIPPED})

# Bump when anything that shapes a result changes (bootstrap, interpreter flags, limits, trimming),
# so results cached by an older deckgen are not reused.
RUNNER_VERSION = 3

PYTHON_LANGUAGES = frozenset({"python", "py", "python3", "py3"})
# ipython may hold magics (%timeit, !pip) and pycon holds `>>>` sessions: plain Python cannot run
# either, so they fall under "other languages" and are shown as written.
SHELL_LANGUAGES = frozenset({
    "bash", "sh", "shell", "zsh", "fish", "ksh", "console", "shell-session", "shellsession",
    "terminal", "powershell", "pwsh", "ps1", "cmd", "bat", "batch",
})

MAX_OUTPUT_LINES = 80
MAX_OUTPUT_CHARS = 4000
FILE_SIZE_LIMIT_MB = 10
_MIB = 1024 * 1024

# -s: no user site-packages; -u: unbuffered, so stdout and stderr interleave as printed; -B: never
# write .pyc files into the installed packages; -X utf8: the Chinese articles' text reads and prints
# the same on every machine. Not -I/-E: those would ignore PYTHONHASHSEED, which makes the order of
# set output reproducible; the environment is built from scratch instead, so nothing leaks in.
_INTERPRETER_FLAGS = ("-s", "-u", "-B", "-X", "utf8")

_MISSING_MODULE = re.compile(r"^ModuleNotFoundError: No module named '([^']+)'")
# The last line of a traceback: `NameError: name 'torch' is not defined`.
_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Exit|Interrupt|Warning)\b(?::.*)?$")
_REASON_LENGTH = 120


def _shortened(text: str) -> str:
    return text if len(text) <= _REASON_LENGTH else text[: _REASON_LENGTH - 1] + "…"


@dataclass(frozen=True)
class RunResult:
    """What running one code block gave: the card shows `output`, and `reason` when not RAN."""

    status: str  # RAN, FAILED, TIMED_OUT or SKIPPED
    output: str  # stdout and stderr in the order printed, trimmed (see trim_output)
    exit_code: int | None  # None when not run or stopped by us; negative: killed by that signal
    reason: str  # "" when RAN; else a short explanation for the reader
    cached: bool = field(default=False, compare=False)  # taken from the cache, not run


class CodeRunner:
    """Runs code blocks with limits and remembers the results in `cache_dir` (None: no cache)."""

    def __init__(self, cache_dir: Path | None = None, timeout: float = 10.0, memory_mb: int = 512,
                 enabled: bool = True, workers: int = 2) -> None:
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.timeout = float(timeout)
        self.memory_mb = int(memory_mb)
        self.enabled = enabled
        self.workers = max(1, workers)

    def run(self, code: str, language: str) -> RunResult:
        """Run one block, or say why it is not run. Never raises."""
        language = fence_language(language)
        if not self.enabled:
            return RunResult(SKIPPED, "", None, "code running is off (--no-run)")
        if language in SHELL_LANGUAGES:
            return RunResult(SKIPPED, "", None, f"{language} is never run")
        if language not in PYTHON_LANGUAGES:
            what = language or "code without a language"
            return RunResult(SKIPPED, "", None, f"{what} is not run")

        key = self._cache_key(code)
        cached = self._read_cache(key)
        if cached is not None:
            return cached
        try:
            result = self._execute(code)
        except (OSError, ValueError) as error:  # no room for a temporary directory, and the like
            return RunResult(FAILED, "", None, f"could not run the block: {error}")
        # A timeout says as much about how busy the machine was as about the code, so it is not
        # kept: a busy moment must not pin "stopped after 10 s" on a block for every later build.
        if result.status != TIMED_OUT:
            self._write_cache(key, result)
        return result

    def run_many(self, blocks: Iterable[tuple[str, str]]) -> list[RunResult]:
        """Run (code, language) pairs, a few at a time; results in the order given.

        Identical blocks are run once.
        """
        blocks = [(code, language) for code, language in blocks]
        unique = list(dict.fromkeys(blocks))
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            done = dict(zip(unique, pool.map(lambda block: self.run(*block), unique)))
        return [done[block] for block in blocks]

    # --- running ------------------------------------------------------------------------------

    def _execute(self, code: str) -> RunResult:
        with tempfile.TemporaryDirectory(prefix="deckgen-run-", ignore_cleanup_errors=True) as tmp:
            main = Path(tmp, "main.py")
            main.write_text(code, encoding="utf-8", errors="surrogatepass")
            cpu_seconds = math.ceil(self.timeout) + 1
            limits = sandbox.Limits(timeout=self.timeout, cpu_seconds=cpu_seconds,
                                    memory_bytes=self.memory_mb * _MIB,
                                    file_bytes=FILE_SIZE_LIMIT_MB * _MIB)
            try:
                outcome = sandbox.run([sys.executable, *_INTERPRETER_FLAGS, main.name], Path(tmp),
                                      limits)
            except OSError as error:
                return RunResult(FAILED, "", None, f"could not start Python: {error}")
            text = _relative_to(outcome.output.decode("utf-8", errors="replace"), tmp)
        output = trim_output(text, outcome.extra_lines)
        if outcome.timed_out or outcome.returncode is None:
            return RunResult(TIMED_OUT, output, None, f"stopped after {self.timeout:g} s")
        # Judged on the last line printed, which trimming may have cut from the output.
        return self._judge(outcome.returncode, output, _last_line(text), cpu_seconds)

    def _judge(self, code: int, output: str, last: str, cpu_seconds: int) -> RunResult:
        if code == 0:
            return RunResult(RAN, output, 0, "")
        memory = f"exceeded the {self.memory_mb} MB memory limit"
        if last.startswith("MemoryError"):
            return RunResult(FAILED, output, code, memory)
        missing = _MISSING_MODULE.match(last)
        if missing:
            return RunResult(SKIPPED, output, code, f"needs module {missing.group(1)}")
        if code < 0:
            signal_number = -code
            if signal_number == getattr(signal, "SIGXCPU", None):
                return RunResult(TIMED_OUT, output, code,
                                 f"stopped after {cpu_seconds} s of CPU time")
            name = _signal_name(signal_number)
            # A C extension that cannot get memory under RLIMIT_AS aborts or crashes instead of
            # raising MemoryError; the limit is then the likeliest cause, but not a certain one.
            if signal_number in (signal.SIGABRT, signal.SIGSEGV, signal.SIGKILL, signal.SIGBUS):
                return RunResult(FAILED, output, code,
                                 f"killed by {name} (perhaps it {memory})")
            return RunResult(FAILED, output, code, f"killed by {name}")
        raised = _EXCEPTION_LINE.match(last)
        if raised:  # the card says what went wrong, not just that something did
            return RunResult(FAILED, output, code, _shortened(raised.group(0)))
        return RunResult(FAILED, output, code, f"exited with status {code}")

    # --- cache --------------------------------------------------------------------------------

    def _cache_key(self, code: str) -> str:
        # The language is not part of the key: every Python spelling runs the same way.
        material = {
            "runner": RUNNER_VERSION,
            "code": code,
            "interpreter": sys.executable,
            "version": sys.version,
            "packages": _installed_packages(),
            "timeout": self.timeout,
            "memory_mb": self.memory_mb,
            "file_size_mb": FILE_SIZE_LIMIT_MB,
        }
        text = json.dumps(material, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()

    def _cache_path(self, key: str) -> Path | None:
        return self.cache_dir / f"{key}.json" if self.cache_dir is not None else None

    def _read_cache(self, key: str) -> RunResult | None:
        path = self._cache_path(key)
        if path is None:
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            result = RunResult(data["status"], data["output"], data["exit_code"], data["reason"],
                               cached=True)
        except (OSError, ValueError, TypeError, KeyError):
            return None  # missing or corrupt: run again and overwrite it
        valid = (result.status in _STATUSES and isinstance(result.output, str)
                 and isinstance(result.reason, str)
                 and (result.exit_code is None or type(result.exit_code) is int))
        return result if valid else None

    def _write_cache(self, key: str, result: RunResult) -> None:
        path = self._cache_path(key)
        if path is None:
            return
        data = {"status": result.status, "output": result.output, "exit_code": result.exit_code,
                "reason": result.reason}
        # A cache that cannot be written only costs a re-run next time; it must not fail the build.
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(data, f, ensure_ascii=False)
                os.replace(temporary, path)
            except BaseException:
                os.unlink(temporary)
                raise
        except OSError:
            pass


def outputs_match(claimed: str, actual: str) -> bool:
    """Whether an article's claimed output is what the code printed.

    Line endings (CRLF, CR), white space at the end of a line and blank lines at the end do not
    count: an article's copy loses them, and a reader cannot see them.
    """
    return _comparable(claimed) == _comparable(actual)


def trim_output(text: str, extra_lines: int = 0, max_lines: int = MAX_OUTPUT_LINES,
                max_chars: int = MAX_OUTPUT_CHARS) -> str:
    """Text cut to what fits on a card, ending in a "… (N more lines)" marker when cut.

    `extra_lines` counts lines that came after `text` but were not captured at all.
    """
    lines = text.splitlines(keepends=True)
    kept: list[str] = []
    size = 0
    for line in lines:
        if len(kept) == max_lines:
            break
        if size + len(line) > max_chars:
            if not kept:  # one line longer than a card: show its start rather than nothing
                kept.append(line[:max_chars] + " …\n")
            break
        kept.append(line)
        size += len(line)
    dropped = len(lines) - len(kept) + extra_lines
    if kept == lines[:len(kept)] and not dropped:
        return text
    body = "".join(kept)
    if not body.endswith("\n"):
        body += "\n"
    if dropped:
        body += f"… ({dropped} more line{'s' if dropped != 1 else ''})\n"
    return body


# --- helpers -------------------------------------------------------------------------------------


def _relative_to(text: str, directory: str) -> str:
    """Output with the random temporary directory taken out, so tracebacks say `main.py`, line N
    and the same block prints the same thing on every build."""
    for path in sorted({os.path.realpath(directory), directory}, key=len, reverse=True):
        text = text.replace(path + os.sep, "").replace(path, ".")
    return text


def _last_line(output: str) -> str:
    for line in reversed(output.splitlines()):
        if line.strip():
            return line.strip()
    return ""


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _comparable(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


@cache
def _installed_packages() -> tuple[tuple[str, str], ...]:
    """The distributions the child interpreter can import, so installing torch re-runs a block
    that was skipped for needing it."""
    try:
        paths = [p for p in site.getsitepackages() if os.path.isdir(p)]
        found = {(d.metadata["Name"] or "", d.version or "")
                 for d in metadata.distributions(path=paths)}
    except Exception:  # a broken package's metadata must not stop the build; the key is a hint
        return ()
    return tuple(sorted(found))

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
import secrets
import signal
import site
import sys
import tempfile
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import metadata
from pathlib import Path

from deckgen import datafile, sandbox
from deckgen.atomic import write_atomic
from deckgen.kernel import CELLS_FILE
from deckgen.markdown import fence_language
from deckgen.notebook import caused_by, continuations

RAN = "ran"
FAILED = "failed"
TIMED_OUT = "timed out"
SKIPPED = "skipped"
_STATUSES = frozenset({RAN, FAILED, TIMED_OUT, SKIPPED})

# Bump when anything that shapes a result changes (bootstrap, interpreter flags, limits, trimming),
# so results cached by an older deckgen are not reused.
RUNNER_VERSION = 5  # 4: the sandbox of issue 14; 5: a question's blocks run as a notebook

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


# The wall clock examples see when SOURCE_DATE_EPOCH does not say (2024-01-01 00:00:00 UTC): a
# `datetime.now()` prints the same on every machine, so a fresh clone's build matches the lock.
DEFAULT_EPOCH = 1_704_067_200


def fixed_epoch() -> int:
    """The time examples run at: SOURCE_DATE_EPOCH (reproducible-builds.org) when set to a
    number of seconds, else DEFAULT_EPOCH."""
    value = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    return int(value) if value.isdigit() else DEFAULT_EPOCH


@dataclass(frozen=True)
class Cell:
    """A code block of a question, as the notebook runs it."""

    code: str
    language: str
    line: int = 0  # its line in the source, which a later block's failure may point to


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
        self.epoch = fixed_epoch()

    def run(self, code: str, language: str) -> RunResult:
        """Run one block alone, or say why it is not run. Never raises."""
        return self.run_notebook([Cell(code, language)])[0]

    def run_notebooks(self, notebooks: Iterable[Sequence[Cell]]) -> list[list[RunResult]]:
        """Run each notebook (a question's blocks), a few notebooks at a time; results in order."""
        notebooks = [list(cells) for cells in notebooks]
        with ThreadPoolExecutor(max_workers=self.workers) as pool:
            return list(pool.map(self.run_notebook, notebooks))

    def run_notebook(self, cells: Sequence[Cell]) -> list[RunResult]:
        """Run one question's blocks in order, in one folder, as a notebook would. Never raises.

        Python blocks run one after the other in one interpreter (deckgen.kernel); a block that
        uses what an earlier one defined shares its namespace (deckgen.notebook). Each result is
        that block's own output and status.
        """
        results: list[RunResult | None] = [self._not_run(cell.language) for cell in cells]
        python = [i for i, result in enumerate(results) if result is None]
        if python:
            codes = [cells[i].code for i in python]
            continues = continuations(codes)
            key = self._cache_key(codes, continues)
            found = self._read_cache(key, len(codes))
            if found is None:
                try:
                    found = self._execute(codes, continues)
                except (OSError, ValueError) as error:  # no room for a temporary folder, say
                    failed = RunResult(FAILED, "", None, f"could not run the block: {error}")
                    found = [failed] * len(codes)
                # A timeout says as much about how busy the machine was as about the code, so it is
                # not kept: a busy moment must not pin "stopped after 10 s" on a block for good.
                if not any(r.status == TIMED_OUT for r in found):
                    self._write_cache(key, found)
            found = _explain_failures([cells[i] for i in python], found)
            for i, result in zip(python, found):
                results[i] = result
        return [r for r in results if r is not None]

    def _not_run(self, language: str) -> RunResult | None:
        language = fence_language(language)
        if not self.enabled:
            return RunResult(SKIPPED, "", None, "code running is off (--no-run)")
        if language in SHELL_LANGUAGES:
            return RunResult(SKIPPED, "", None, f"{language} is never run")
        if language not in PYTHON_LANGUAGES:
            what = language or "code without a language"
            return RunResult(SKIPPED, "", None, f"{what} is not run")
        return None

    # --- running ------------------------------------------------------------------------------

    def _execute(self, codes: list[str], continues: list[bool]) -> list[RunResult]:
        nonce = secrets.token_hex(8)
        count = len(codes)
        with tempfile.TemporaryDirectory(prefix="deckgen-run-", ignore_cleanup_errors=True) as tmp:
            cells = [{"code": code, "continues": more} for code, more in zip(codes, continues)]
            Path(tmp, CELLS_FILE).write_text(json.dumps(cells, ensure_ascii=False),
                                             encoding="utf-8", errors="surrogatepass")
            # Each block gets the time limit (the kernel stops one that overruns and goes on);
            # the run as a whole, all of theirs.
            cpu_seconds = (math.ceil(self.timeout) + 1) * count
            limits = sandbox.Limits(timeout=self.timeout * count + 1, cpu_seconds=cpu_seconds,
                                    memory_bytes=self.memory_mb * _MIB,
                                    file_bytes=FILE_SIZE_LIMIT_MB * _MIB)
            argv = [sys.executable, *_INTERPRETER_FLAGS, "-c", _kernel_source(), nonce,
                    str(self.epoch), repr(self.timeout)]
            try:
                outcome = sandbox.run(argv, Path(tmp), limits, env={"TZ": "UTC"}, keep_files=False)
            except OSError as error:
                failed = RunResult(FAILED, "", None, f"could not start Python: {error}")
                return [failed] * count
            text = _relative_to(outcome.output.decode("utf-8", errors="replace"), tmp)
        pieces = re.split(rf"\n{nonce} (\{{[^\n]*\}})\n", text)
        results = []
        for output, status in zip(pieces[0::2], pieces[1::2]):
            results.append(self._block_result(output, json.loads(status)))
        if len(results) < count:  # the interpreter itself ended during this block
            rest = pieces[-1]
            output = trim_output(rest, outcome.extra_lines)
            if outcome.timed_out or outcome.returncode is None:
                results.append(RunResult(TIMED_OUT, output, None,
                                         f"stopped after {self.timeout:g} s"))
            else:
                results.append(self._judge(outcome.returncode, output, _last_line(rest),
                                           cpu_seconds))
            line = ("not shown: the blocks before it printed too much" if outcome.extra_lines
                    else "the block before it stopped the run")
            results += [RunResult(SKIPPED, "", None, line)] * (count - len(results))
        return results

    def _block_result(self, text: str, status: dict) -> RunResult:
        output = trim_output(text, int(status.get("dropped", 0)))
        kind = status.get("status")
        if kind == "ok":
            return RunResult(RAN, output, 0, "")
        if kind == "timeout":
            return RunResult(TIMED_OUT, output, None, f"stopped after {self.timeout:g} s")
        if kind == "exit":
            code = int(status.get("code", 1))
            return RunResult(FAILED, output, code, f"exited with status {code}")
        line = str(status.get("line", ""))
        missing = _MISSING_MODULE.match(line)
        if missing:  # not the code's fault: nothing to show but what it needs
            return RunResult(SKIPPED, "", None, f"needs module {missing.group(1)}")
        if line.startswith("MemoryError"):
            return RunResult(FAILED, output, 1, f"exceeded the {self.memory_mb} MB memory limit")
        return RunResult(FAILED, output, 1, _shortened(line) or "raised an exception")

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

    def _cache_key(self, codes: list[str], continues: list[bool]) -> str:
        # The language is not part of the key: every Python spelling runs the same way.
        material = {
            "runner": RUNNER_VERSION,
            "kernel": hashlib.sha256(_kernel_source().encode()).hexdigest(),
            "code": codes,
            "continues": continues,
            "epoch": self.epoch,
            "interpreter": sys.executable,
            "version": sys.version,
            "packages": _installed_packages(),
            "timeout": self.timeout,
            "memory_mb": self.memory_mb,
            "file_size_mb": FILE_SIZE_LIMIT_MB,
            # What an example could reach depends on its sandbox: a result from a weaker one
            # (printing what it could read) is not reused under a stronger one, or the reverse.
            "sandbox": sandbox.level(),
        }
        text = json.dumps(material, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).hexdigest()

    def _cache_path(self, key: str) -> Path | None:
        return self.cache_dir / f"{key}.json" if self.cache_dir is not None else None

    def _read_cache(self, key: str, count: int) -> list[RunResult] | None:
        path = self._cache_path(key)
        if path is None:
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            results = datafile.load(list[RunResult], data.get("results") if isinstance(data, dict) else None)
        except (OSError, ValueError):  # (datafile.DataError is a ValueError)
            return None  # missing or corrupt: run again and overwrite it
        if len(results) != count or any(r.status not in _STATUSES for r in results):
            return None
        return [replace(r, cached=True) for r in results]

    def _write_cache(self, key: str, results: list[RunResult]) -> None:
        path = self._cache_path(key)
        if path is None:
            return
        data = {"results": [{"status": r.status, "output": r.output, "exit_code": r.exit_code,
                             "reason": r.reason} for r in results]}
        # A cache that cannot be written only costs a re-run next time; it must not fail the build.
        try:
            write_atomic(path, json.dumps(data, ensure_ascii=False))
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


@cache
def _kernel_source() -> str:
    return Path(__file__).with_name("kernel.py").read_text(encoding="utf-8")


def _explain_failures(cells: Sequence[Cell], results: list[RunResult]) -> list[RunResult]:
    """A block that fails only because an earlier one did not run through says so."""
    out: list[RunResult] = []
    for cell, result in zip(cells, results):
        if result.status == FAILED:
            earlier = [(c.code, r.status != RAN) for c, r in zip(cells, out)]
            cause = caused_by(result.reason, earlier)
            if cause is not None:
                before, why = cells[cause], out[cause]
                if why.status == SKIPPED:  # it needed torch, say: this one cannot run either
                    result = RunResult(SKIPPED, "", None,
                                       f"needs the block at line {before.line}, which was not run "
                                       f"({why.reason})")
                else:
                    result = RunResult(FAILED, result.output, result.exit_code,
                                       f"{result.reason} · because the block at line {before.line} "
                                       f"before it {why.status}")
        out.append(result)
    return out


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

"""Run the article's Python examples at build time, so a card shows what the code really prints.

Each block runs in its own throw-away directory (the examples write file.txt and the like), in a
fresh interpreter with no inherited environment, no stdin, a wall-clock timeout, CPU, memory and
file-size limits and, where the OS allows (Linux namespaces: `network_isolated`,
`filesystem_isolated`), no network and a file system that is read-only except that directory, a
private /dev/shm and /dev/pts. This guards the build against accidents in trusted examples; it is
not a sandbox for hostile code: a block still sees every file the builder may read, and a block run
as root can still open device nodes such as the raw disk.

Results are cached on disk, keyed by everything that can change them, so a rebuild re-runs only the
blocks that changed.
"""
from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import re
import selectors
import signal
import site
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from importlib import metadata
from pathlib import Path

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
# What the parent keeps of a chatty block's output; the rest is only counted, so that a block that
# prints in a loop until its timeout cannot fill the builder's memory.
_CAPTURE_BYTES = 256 * 1024
_MIB = 1024 * 1024

# The child starts as this small program (an isolated interpreter, so nothing of the caller leaks
# in), which takes away the network and write access to the disk, sets the limits, then execs the
# real interpreter on main.py. Doing this in the child's own code rather than in a Popen preexec_fn
# keeps run_many's threads safe: preexec_fn runs Python between fork and exec, where another
# thread's locks can deadlock it. Each step is best effort: what the OS refuses is left as it was
# (network_isolated and filesystem_isolated tell what this machine allows).
_BOOTSTRAP = r"""
import os, sys

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x20000, 0x10000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 0x1, 0x2, 0x4, 0x8, 0x20
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
# A remount must repeat these if the mount has them (in a user namespace they are locked, and
# leaving one out is refused). Atime flags are left out on purpose: the kernel then keeps them.
KEPT_FLAGS = {b"nosuid": MS_NOSUID, b"nodev": MS_NODEV, b"noexec": MS_NOEXEC}
# Left writable: the block's own directory; /dev/shm, where POSIX semaphores (hence
# multiprocessing) live, which gets a private, empty tmpfs where the OS allows; /dev/pts, where
# terminals are made. Everything else, /dev, /proc and /sys included, becomes read-only; device
# nodes on a read-only mount still work, so /dev/null does.
WRITABLE = (b"/dev/shm", b"/dev/pts")
# Taken from a root block, so it can neither undo the read-only mounts nor reach the host's
# files through /proc/<pid>/root, nor do what no namespace contains: SYS_ADMIN, SYS_PTRACE,
# MKNOD, SYS_MODULE, SYS_RAWIO, SYS_BOOT, SYS_TIME.
DROPPED_CAPABILITIES = (21, 19, 27, 16, 17, 22, 25)
PR_CAPBSET_DROP = 24


def load_libc():
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                               ctypes.c_ulong, ctypes.c_char_p)
        libc.unshare.argtypes = (ctypes.c_int,)
        libc.prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                               ctypes.c_ulong)
        return libc
    except (ImportError, OSError, AttributeError):
        return None


def unshare(libc, flags):
    if libc is not None:
        return libc.unshare(flags) == 0
    if hasattr(os, "unshare") and not flags & CLONE_NEWNS:  # no use for one without mount()
        try:
            os.unshare(flags)
            return True
        except OSError:
            pass
    return False


def enter_namespaces(libc):
    # As root a mount and a network namespace need no more; otherwise an unprivileged user
    # namespace may still allow them. Without a mount namespace, at least the network goes.
    choices = (CLONE_NEWNS | CLONE_NEWNET, CLONE_NEWNET,
               CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET, CLONE_NEWUSER | CLONE_NEWNET)
    uid, gid = os.getuid(), os.getgid()
    flags = next((flags for flags in choices if unshare(libc, flags)), 0)
    if flags & CLONE_NEWUSER:
        # Map our own ids into it, so the block keeps seeing the same uid and owning its files.
        for path, text in (("/proc/self/setgroups", "deny"),
                           ("/proc/self/uid_map", f"{uid} {uid} 1"),
                           ("/proc/self/gid_map", f"{gid} {gid} 1")):
            try:
                with open(path, "w") as f:
                    f.write(text)
            except OSError:
                pass
    return flags


def unescape(field):
    # mountinfo writes space, tab, newline and backslash in a path as \ooo.
    if b"\\" not in field:
        return field
    parts = field.split(b"\\")
    out = [parts[0]]
    for part in parts[1:]:
        out.append(bytes([int(part[:3], 8)]) + part[3:])
    return b"".join(out)


def make_read_only(libc, memory_bytes):
    mount = libc.mount
    home = os.getcwdb()
    # Private first: nothing done in here may propagate back to the host's mounts.
    if mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        return
    # The block's directory becomes a mount of its own, which stays writable when its file
    # system goes read-only. The cwd still points below the old mount, so step onto the new one.
    if mount(home, home, None, MS_BIND, None) != 0:
        return
    os.chdir(home)
    mount(None, home, None, MS_BIND | MS_REMOUNT | MS_NOSUID | MS_NODEV, None)
    mount(b"tmpfs", b"/dev/shm", b"tmpfs", MS_NOSUID | MS_NODEV,
          b"mode=1777,size=%d" % memory_bytes)
    with open("/proc/self/mountinfo", "rb") as f:
        table = f.read().splitlines()
    for line in table:
        fields = line.split()
        target, options = unescape(fields[4]), fields[5].split(b",")
        if target == home or target in WRITABLE or b"ro" in options:
            continue
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY
        for name in options:
            flags |= KEPT_FLAGS.get(name, 0)
        mount(None, target, None, flags, None)  # one that refuses stays as it was


def drop_capabilities(libc):
    for capability in DROPPED_CAPABILITIES:
        libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0)  # refused when not root: nothing to drop


def set_limits(cpu_seconds, memory_bytes, file_bytes):
    try:
        import resource
    except ImportError:
        return
    for name, soft, hard in (("RLIMIT_CPU", cpu_seconds, cpu_seconds + 1),
                             ("RLIMIT_AS", memory_bytes, memory_bytes),
                             ("RLIMIT_FSIZE", file_bytes, file_bytes),
                             ("RLIMIT_CORE", 0, 0)):
        which = getattr(resource, name, None)
        if which is None:
            continue
        try:
            current_hard = resource.getrlimit(which)[1]
            if current_hard != resource.RLIM_INFINITY:
                soft, hard = min(soft, current_hard), min(hard, current_hard)
            resource.setrlimit(which, (soft, hard))
        except (ValueError, OSError):
            pass

cpu, memory, size = (int(arg) for arg in sys.argv[1:4])
argv = sys.argv[4:]
libc = load_libc()
if enter_namespaces(libc) & CLONE_NEWNS:
    try:
        make_read_only(libc, memory)
    except (OSError, ValueError, IndexError):
        pass
if libc is not None:
    drop_capabilities(libc)
set_limits(cpu, memory, size)
try:
    os.execv(argv[0], argv)
except OSError as error:
    print(f"deckgen could not start {argv[0]}: {error}", file=sys.stderr)
    sys.exit(127)
"""

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
            command = [
                sys.executable, "-I", "-c", _BOOTSTRAP,
                str(cpu_seconds), str(self.memory_mb * _MIB), str(FILE_SIZE_LIMIT_MB * _MIB),
                sys.executable, *_INTERPRETER_FLAGS, main.name,
            ]
            try:
                process = subprocess.Popen(
                    command, cwd=tmp, env=_child_environment(tmp), stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                    close_fds=True,
                )
            except OSError as error:
                return RunResult(FAILED, "", None, f"could not start Python: {error}")
            with process:
                captured, extra_lines, timed_out = _collect(process, self.timeout)
            text = _relative_to(captured.decode("utf-8", errors="replace"), tmp)
        output = trim_output(text, extra_lines)
        if timed_out or process.returncode is None:
            return RunResult(TIMED_OUT, output, None, f"stopped after {self.timeout:g} s")
        # Judged on the last line printed, which trimming may have cut from the output.
        return self._judge(process.returncode, output, _last_line(text), cpu_seconds)

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


def network_isolated() -> bool:
    """Whether blocks run without network on this machine (the README states it).

    False where namespaces do not exist or may not be created.
    """
    return _isolation().network


def filesystem_isolated() -> bool:
    """Whether blocks run with the whole file system read-only but their own directory.

    False where mount namespaces may not be created; blocks then run with the builder's rights
    on disk.
    """
    return _isolation().filesystem


@dataclass(frozen=True)
class _Isolation:
    network: bool
    filesystem: bool


# Run as a block through the real bootstrap, in a directory of its own inside a probe directory:
# what it may write where says what every block gets.
_ISOLATION_PROBE = """
import os
print("net", os.readlink("/proc/self/ns/net"))
print("root", "read-only" if os.statvfs("/").f_flag & os.ST_RDONLY else "writable")
for name, path in (("outside", os.path.join("..", "outside")), ("inside", "inside")):
    try:
        open(path, "x").close()
        print(name, "written")
    except OSError as error:
        print(name, "refused", error.errno)
"""


@cache
def _isolation() -> _Isolation:
    """What the bootstrap manages on this machine, checked once by running it."""
    try:
        ours = os.readlink("/proc/self/ns/net")
        with tempfile.TemporaryDirectory(prefix="deckgen-probe-") as probe:
            home = Path(probe, "block")
            home.mkdir()
            command = [sys.executable, "-I", "-c", _BOOTSTRAP, "5", str(512 * _MIB), str(_MIB),
                       sys.executable, "-I", "-c", _ISOLATION_PROBE]
            done = subprocess.run(command, cwd=home, capture_output=True, text=True, timeout=10,
                                  stdin=subprocess.DEVNULL, env=_child_environment(str(home)))
            outside_exists = Path(probe, "outside").exists()
    except (OSError, subprocess.SubprocessError):
        return _Isolation(network=False, filesystem=False)
    seen = dict(line.split(" ", 1) for line in done.stdout.splitlines() if " " in line)
    theirs = seen.get("net", "")
    network = done.returncode == 0 and theirs.startswith("net:") and theirs != ours
    filesystem = (done.returncode == 0 and seen.get("root") == "read-only"
                  and seen.get("outside") == f"refused {errno.EROFS}" and not outside_exists
                  and seen.get("inside") == "written")
    return _Isolation(network=network, filesystem=filesystem)


# --- helpers -------------------------------------------------------------------------------------


def _child_environment(home: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,  # tempfile in a block lands in the directory that is removed afterwards
        "LANG": "C.UTF-8",
        "PYTHONIOENCODING": "utf-8",
        "PYTHONHASHSEED": "0",
    }


def _collect(process: subprocess.Popen, timeout: float) -> tuple[bytes, int, bool]:
    """Read the child's output until it ends or the timeout; (captured, lines not kept, timed out).

    The whole process group is killed at the end, so no background process a block started
    outlives it.
    """
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + timeout
    captured = bytearray()
    extra_lines = 0
    timed_out = False

    def take(chunk: bytes) -> None:
        nonlocal extra_lines
        room = _CAPTURE_BYTES - len(captured)
        captured.extend(chunk[:room])
        extra_lines += chunk[room:].count(b"\n") if room < len(chunk) else 0

    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if selector.select(min(remaining, 0.25)):
                chunk = os.read(fd, 65536)
                if not chunk:
                    break
                take(chunk)
            elif process.poll() is not None:
                break  # it exited, but something it started still holds the pipe open
        try:
            # Wait for the block itself before killing its group: killed between closing its
            # output and exiting, a block that succeeded would look killed.
            process.wait(timeout=max(deadline - time.monotonic(), 0))
        except subprocess.TimeoutExpired:
            timed_out = True
        _kill_group(process)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        # What was written just before the end; a detached straggler cannot hold us up long.
        drain_until = time.monotonic() + 0.5
        while time.monotonic() < drain_until and selector.select(0.05):
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            take(chunk)
    return bytes(captured), extra_lines, timed_out


def _relative_to(text: str, directory: str) -> str:
    """Output with the random temporary directory taken out, so tracebacks say `main.py`, line N
    and the same block prints the same thing on every build."""
    for path in sorted({os.path.realpath(directory), directory}, key=len, reverse=True):
        text = text.replace(path + os.sep, "").replace(path, ".")
    return text


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


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

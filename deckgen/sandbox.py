"""Run a command in a throw-away folder, contained: the sandbox of the article's code examples.

An article is input from the internet, so its examples are treated as hostile. Three levels,
the strongest this machine allows (`level()`; the build summary and the README name it):

- BUBBLEWRAP: `bwrap` (the sandbox Flatpak uses) builds a new root holding only the system's
  programs and libraries and the interpreter, read-only; private, empty /tmp, /run, /dev/shm and
  home; a fresh /dev and /proc in its own PID, network, IPC, UTS and user namespaces; no
  capabilities. The run's folder is a size-limited tmpfs (the disk quota).
- NAMESPACES: where bwrap is missing but Linux namespaces are allowed (as root, or with
  unprivileged user namespaces), our own bootstrap builds the same root with unshare(2), mount(2)
  and pivot_root(2).
- BEST_EFFORT: elsewhere, only limits (time, CPU, memory, file size) and killing the process
  group at the end: an example could read your files, reach the network and signal your processes.

In the first two the command runs under a small reaper that is PID 1 of the namespace: it cannot
be signalled from inside, kills every process of the namespace when the command ends (double
forks and setsid included), and hands back the folder's files. A pids cgroup, where this machine
has one we may write, bounds the number of processes (RLIMIT_NPROC does not hold for root).

One call, `run(argv, folder, limits)`, is the whole interface; run.py decides what to run.
The programs that run inside the sandbox are deckgen/inside.py.
"""
from __future__ import annotations

import errno
import io
import json
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from deckgen import inside

BUBBLEWRAP = "bubblewrap"
NAMESPACES = "namespaces"
BEST_EFFORT = "best-effort"
LEVELS = (BUBBLEWRAP, NAMESPACES, BEST_EFFORT)  # strongest first
# Caps the level below what the machine allows (tests, or a builder who wants the fallback).
LEVEL_VARIABLE = "DECKGEN_SANDBOX"

# What the parent keeps of a chatty block's output; the rest is only counted, so that a block that
# prints in a loop until its timeout cannot fill the builder's memory.
CAPTURE_BYTES = 256 * 1024
_MIB = 1024 * 1024
# The private /tmp, /run, /dev/shm and home each get this much; the run's folder gets the quota.
_SCRATCH_BYTES = 16 * _MIB


@dataclass(frozen=True)
class Limits:
    """What one run may use."""

    timeout: float  # wall-clock seconds before the whole run is killed
    cpu_seconds: int
    memory_bytes: int  # address space of each process
    file_bytes: int  # the largest file it may write
    disk_bytes: int = 64 * _MIB  # all its files together (its folder is a tmpfs of this size)
    processes: int = 64  # at once, where a pids cgroup is available


@dataclass(frozen=True)
class Outcome:
    """What one run gave."""

    output: bytes  # stdout and stderr in the order printed, at most CAPTURE_BYTES of them
    extra_lines: int  # lines printed after the captured part, only counted
    returncode: int | None  # None when it did not end by itself; negative: killed by that signal
    timed_out: bool


def run(argv: Sequence[str], folder: Path, limits: Limits,
        env: Mapping[str, str] | None = None, keep_files: bool = True) -> Outcome:
    """Run `argv` (argv[0] an absolute path) contained, in `folder`, at the strongest level.

    The run sees the files in `folder` and may write there (up to `limits.disk_bytes`); what it
    leaves there (regular files and folders) is in `folder` afterwards, unless `keep_files` is
    False (a caller that throws the folder away spares the copy). `env` adds variables to the
    child's small fixed environment. Raises OSError when the child cannot be started.
    """
    return _run(level(), list(argv), os.path.abspath(folder), limits, env, keep_files)


def level() -> str:
    """The containment in force: the strongest this machine allows, capped by $DECKGEN_SANDBOX."""
    wanted = os.environ.get(LEVEL_VARIABLE, BUBBLEWRAP)
    start = LEVELS.index(wanted) if wanted in LEVELS else 0
    return next(choice for choice in LEVELS[start:] if choice == BEST_EFFORT or _works(choice))


def describe() -> str:
    """For the build summary, after "code examples ran in": which level contains them."""
    processes = ", process limit" if _pids_cgroup_base() else ""
    return {
        BUBBLEWRAP: f"a bubblewrap sandbox (own namespaces, no network, private files, disk quota"
                    f"{processes})",
        NAMESPACES: f"a namespace sandbox (own namespaces, no network, private files, disk quota"
                    f"{processes})",
        BEST_EFFORT: "no sandbox, best effort only (time and memory limits; examples can read "
                     "your files and reach the network)",
    }[level()]


def network_isolated() -> bool:
    """Whether blocks run without network on this machine (the README states it)."""
    return level() != BEST_EFFORT or _isolation().network


def filesystem_isolated() -> bool:
    """Whether blocks run with the disk read-only (or hidden) but their own directory."""
    return level() != BEST_EFFORT or _isolation().filesystem


def _run(chosen: str, argv: list[str], folder: str, limits: Limits,
         env: Mapping[str, str] | None, keep_files: bool = True) -> Outcome:
    environment = {**_child_environment(folder), **(env or {})}
    if chosen == BEST_EFFORT:
        command = [sys.executable, "-I", "-c", _inside(), "best-effort", str(limits.cpu_seconds),
                   str(limits.memory_bytes), str(limits.file_bytes), *argv]
        process = _start(command, folder, environment, ())
        with process:
            captured, extra_lines, timed_out, _ = _collect(process, limits.timeout, None, 0)
        return Outcome(captured, extra_lines, process.returncode, timed_out)

    group = _Cgroup.create(limits.processes)
    read_end, write_end = os.pipe()
    try:
        config = {"cpu": limits.cpu_seconds, "memory": limits.memory_bytes,
                  "file": limits.file_bytes, "disk": limits.disk_bytes, "result": write_end,
                  "scratch": _SCRATCH_BYTES, "keep": _interpreter_paths(argv[0]),
                  "keep_files": keep_files}
        if chosen == BUBBLEWRAP:
            command = [*_bwrap_command(folder, limits, argv[0]), sys.executable, "-I", "-c",
                       _inside(), "bwrap", json.dumps(config), *argv]
            if group is not None:  # joined before bwrap starts, so every process inherits it
                command = ["/bin/sh", "-c", 'echo $$ > "$0" || exit 125; exec "$@"',
                           str(group.path / "cgroup.procs"), *command]
        else:
            config.update(cgroup=str(group.path / "cgroup.procs") if group else None,
                          system=_SYSTEM, etc=[f"/etc/{name}" for name in _ETC])
            command = [sys.executable, "-I", "-c", _inside(), "namespaces", json.dumps(config),
                       *argv]
        try:
            process = _start(command, folder, environment, (write_end,))
        finally:
            os.close(write_end)
        with process:
            captured, extra_lines, timed_out, result = _collect(
                process, limits.timeout, read_end, limits.disk_bytes + _MIB)
    finally:
        os.close(read_end)
        if group is not None:
            group.remove()
    returncode = process.returncode
    header, _, archive = result.partition(b"\n")
    try:
        status = json.loads(header)["status"]
    except (ValueError, KeyError, TypeError):
        status = None
    if type(status) is int and not timed_out:
        returncode = os.waitstatus_to_exitcode(status)
        if keep_files:
            _unpack(archive, folder)
    return Outcome(captured, extra_lines, None if timed_out else returncode, timed_out)


def _start(command: list[str], folder: str, environment: dict[str, str],
           pass_fds: tuple[int, ...]) -> subprocess.Popen:
    return subprocess.Popen(
        command, cwd=folder, env=environment, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        close_fds=True, pass_fds=pass_fds,
    )


# The files of /etc a program may need to start and to print (users, time zone, libraries,
# certificates); the rest of /etc (shadow, ssh keys, the builder's configuration) stays out.
_ETC = ("passwd", "group", "nsswitch.conf", "hosts", "localtime", "timezone", "ld.so.cache",
        "ld.so.conf", "ld.so.conf.d", "ssl", "ca-certificates", "mime.types", "locale.alias",
        "os-release", "alternatives", "fonts", "services", "protocols")
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")  # shown read-only


def _bwrap_command(folder: str, limits: Limits, program: str) -> list[str]:
    command = [_bwrap(), "--unshare-all", "--die-with-parent", "--new-session", "--as-pid-1",
               "--cap-drop", "ALL", "--hostname", "deckgen"]
    for path in _SYSTEM:
        if os.path.islink(path):
            command += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            command += ["--ro-bind", path, path]
    for name in _ETC:
        if os.path.exists("/etc/" + name):
            command += ["--ro-bind", "/etc/" + name, "/etc/" + name]
    command += ["--dev", "/dev", "--proc", "/proc"]
    scratch = str(_SCRATCH_BYTES)
    for path in ("/tmp", "/var/tmp", "/run", "/dev/shm", "/home", "/root"):
        command += ["--size", scratch, "--tmpfs", path]
    command += ["--symlink", "../run", "/var/run"]
    for path in _interpreter_paths(program):
        command += ["--ro-bind", path, path]
    # The folder's files are shown read-only for the reaper to copy into the quota'd tmpfs.
    command += ["--ro-bind", folder, inside.INPUT,
                "--size", str(limits.disk_bytes), "--tmpfs", folder,
                "--remount-ro", "/dev", "--remount-ro", "/", "--chdir", folder]
    return command


@cache
def _bwrap() -> str:
    return shutil.which("bwrap") or ""


def _interpreter_paths(program: str) -> list[str]:
    """The folders a Python interpreter needs besides /usr: its prefix (a venv, pyenv's home)."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
             os.path.dirname(program), os.path.dirname(os.path.realpath(program))}
    wanted = sorted(p for p in paths if p and os.path.isdir(p)
                    and not any(p == d or p.startswith(d + "/") for d in _SYSTEM))
    # A folder inside another one already kept needs no mount of its own.
    return [p for p in wanted if not any(p.startswith(q + "/") for q in wanted)]


def _unpack(archive: bytes, folder: str) -> None:
    """Put the files the run left in its folder into `folder` on the host: regular files and
    folders only, by name, never through a link, so a forged archive writes nowhere else."""
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r|") as tar:
            members = []
            for member in tar:
                outside = member.name.startswith("/") or ".." in member.name.split("/")
                if outside or not (member.isfile() or member.isdir()):
                    continue
                data = tar.extractfile(member).read() if member.isfile() else None
                members.append((member.name, data))
    except (tarfile.TarError, OSError, EOFError):
        return
    for entry in os.scandir(folder):
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            os.unlink(entry.path)
    base = os.path.realpath(folder)
    for name, data in members:
        target = os.path.normpath(os.path.join(base, name))
        parent = os.path.dirname(target)
        try:
            if data is None:
                os.makedirs(target, exist_ok=True)
                continue
            os.makedirs(parent, exist_ok=True)
            if os.path.realpath(parent) != parent or os.path.lexists(target):
                continue  # reached through a link, or named twice: never follow, never replace
            with open(target, "xb") as f:
                f.write(data)
        except OSError:
            continue  # a file where the archive wants a folder, and the like: skip that one


@cache
def _inside() -> str:
    """The text of deckgen/inside.py, the programs that run inside (`python -I -c TEXT MODE …`)."""
    return Path(__file__).with_name("inside.py").read_text(encoding="utf-8")


# --- what this machine allows ------------------------------------------------------------------

_LEVEL_PROBE = """
import os
print(os.readlink("/proc/self/ns/pid"), os.readlink("/proc/self/ns/net"), os.getpid())
open("written", "w").close()
"""


@cache
def _works(chosen: str) -> bool:
    """Whether `chosen` contains a run here: checked once, by running a probe through it."""
    if chosen == BUBBLEWRAP and not _bwrap():
        return False
    try:
        ours = (os.readlink("/proc/self/ns/pid"), os.readlink("/proc/self/ns/net"))
        with tempfile.TemporaryDirectory(prefix="deckgen-probe-") as folder:
            limits = Limits(timeout=10, cpu_seconds=5, memory_bytes=512 * _MIB, file_bytes=_MIB,
                            disk_bytes=_MIB)
            outcome = _run(chosen, [sys.executable, "-I", "-c", _LEVEL_PROBE], folder, limits,
                           None)
            written = os.path.exists(os.path.join(folder, "written"))
    except OSError:
        return False
    seen = outcome.output.decode(errors="replace").split()
    return (outcome.returncode == 0 and written and len(seen) == 3
            and seen[0] != ours[0] and seen[1] != ours[1] and seen[2] == "2")


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
            command = [sys.executable, "-I", "-c", _inside(), "best-effort", "5", str(512 * _MIB),
                       str(_MIB), sys.executable, "-I", "-c", _ISOLATION_PROBE]
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




# --- a pids cgroup -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cgroup:
    """A cgroup of our own that caps the number of processes of one run."""

    path: Path

    @classmethod
    def create(cls, processes: int) -> _Cgroup | None:
        base = _pids_cgroup_base()
        if base is None:
            return None
        path = base / f"deckgen-{os.getpid()}-{secrets.token_hex(4)}"
        try:
            path.mkdir()
        except OSError:
            return None
        try:
            (path / "pids.max").write_text(str(processes))
        except OSError:
            path.rmdir()
            return None
        return cls(path)

    def remove(self) -> None:
        """Kill what is still in it (the namespace's end normally did) and remove it."""
        for _ in range(100):
            try:
                pids = (self.path / "cgroup.procs").read_text().split()
            except OSError:
                pids = []
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, PermissionError, ValueError):
                    pass
            try:
                self.path.rmdir()
                return
            except OSError as error:
                if error.errno != errno.EBUSY:
                    return
            time.sleep(0.01)


@cache
def _pids_cgroup_base() -> Path | None:
    """Our own pids cgroup, where we may make children (v1 pids hierarchy, or v2 with pids
    delegated to our subtree); None where there is none we may write."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8") as f:
            mounts = [line.split() for line in f]
        with open("/proc/self/cgroup", encoding="utf-8") as f:
            memberships = [line.rstrip("\n").split(":", 2) for line in f]
    except OSError:
        return None
    for fields in mounts:
        dash = fields.index("-")
        kind, options = fields[dash + 1], fields[dash + 3].split(",")
        if kind == "cgroup" and "pids" in options:
            own = next((p for _, names, p in memberships if "pids" in names.split(",")), None)
        elif kind == "cgroup2":
            own = next((p for number, _, p in memberships if number == "0"), None)
        else:
            continue
        if own is None:
            continue
        base = Path(fields[4], own.lstrip("/"))
        if kind == "cgroup2":
            try:
                if "pids" not in (base / "cgroup.subtree_control").read_text().split():
                    continue
            except OSError:
                continue
        try:
            test = base / f"deckgen-probe-{os.getpid()}-{secrets.token_hex(4)}"
            test.mkdir()
            try:
                (test / "pids.max").write_text("8")
            finally:
                test.rmdir()
        except OSError:
            continue
        return base
    return None


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


def _collect(process: subprocess.Popen, timeout: float, result_fd: int | None,
             result_limit: int) -> tuple[bytes, int, bool, bytes]:
    """Read the child's output (and result pipe) until it ends or the timeout:
    (captured, lines not kept, timed out, result).

    The whole process group is killed at the end, so no background process a block started
    outlives it.
    """
    assert process.stdout is not None
    fd = process.stdout.fileno()
    deadline = time.monotonic() + timeout
    captured = bytearray()
    result = bytearray()
    extra_lines = 0
    timed_out = False

    def take(source: int, chunk: bytes) -> None:
        nonlocal extra_lines
        if source == result_fd:
            # Past the quota (tar's headers for a great many files): the archive is cut short,
            # which unpacking then refuses whole; the status line before it still counts.
            result.extend(chunk[:max(result_limit - len(result), 0)])
            return
        room = CAPTURE_BYTES - len(captured)
        captured.extend(chunk[:room])
        extra_lines += chunk[room:].count(b"\n") if room < len(chunk) else 0

    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        if result_fd is not None:
            selector.register(result_fd, selectors.EVENT_READ)
        open_fds = len(selector.get_map())

        def read_ready(wait: float) -> bool:
            nonlocal open_fds
            events = selector.select(wait)
            for key, _ in events:
                chunk = os.read(key.fd, 65536)
                if chunk:
                    take(key.fd, chunk)
                else:
                    selector.unregister(key.fd)
                    open_fds -= 1
            return bool(events)

        while open_fds:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if not read_ready(min(remaining, 0.25)) and process.poll() is not None:
                break  # it exited, but something it started still holds a pipe open
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
        while open_fds and time.monotonic() < drain_until and read_ready(0.05):
            pass
    return bytes(captured), extra_lines, timed_out, bytes(result)


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass

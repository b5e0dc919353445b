"""Run a command in a throw-away folder, contained: the sandbox of the article's code examples.

The child gets a fresh interpreter with no inherited environment, no stdin, a wall-clock timeout,
CPU, memory and file-size limits and, where the OS allows (Linux namespaces: `network_isolated`,
`filesystem_isolated`), no network and a file system that is read-only except its folder, a
private /dev/shm and /dev/pts. This guards the build against accidents in trusted examples; it is
not a sandbox for hostile code: a block still sees every file the builder may read, and a block run
as root can still open device nodes such as the raw disk.

One call, `run(argv, folder, limits)`, is the whole interface; run.py decides what to run.
"""
from __future__ import annotations

import errno
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

# What the parent keeps of a chatty block's output; the rest is only counted, so that a block that
# prints in a loop until its timeout cannot fill the builder's memory.
CAPTURE_BYTES = 256 * 1024
_MIB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """What one run may use."""

    timeout: float  # wall-clock seconds before the whole run is killed
    cpu_seconds: int
    memory_bytes: int
    file_bytes: int  # the largest file it may write


@dataclass(frozen=True)
class Outcome:
    """What one run gave."""

    output: bytes  # stdout and stderr in the order printed, at most CAPTURE_BYTES of them
    extra_lines: int  # lines printed after the captured part, only counted
    returncode: int | None  # None when it did not end by itself; negative: killed by that signal
    timed_out: bool


def run(argv: Sequence[str], folder: Path, limits: Limits,
        env: Mapping[str, str] | None = None) -> Outcome:
    """Run `argv` (argv[0] an absolute path) contained, in `folder`, which it may write.

    `env` adds variables to the child's small fixed environment. Raises OSError when the child
    cannot be started at all.
    """
    command = [
        sys.executable, "-I", "-c", _BOOTSTRAP,
        str(limits.cpu_seconds), str(limits.memory_bytes), str(limits.file_bytes), *argv,
    ]
    environment = {**_child_environment(str(folder)), **(env or {})}
    process = subprocess.Popen(
        command, cwd=folder, env=environment, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        close_fds=True,
    )
    with process:
        captured, extra_lines, timed_out = _collect(process, limits.timeout)
    return Outcome(captured, extra_lines, process.returncode, timed_out)


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


# --- helpers ---------------------------------------------------------------------------------------


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
        room = CAPTURE_BYTES - len(captured)
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


def _kill_group(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass

"""The programs that contain a code example, run inside its sandbox (see deckgen.sandbox).

deckgen.sandbox starts this file's text as `python -I -c TEXT MODE …` (an isolated interpreter,
so nothing of the caller leaks in; the text, because the sandbox cannot see deckgen's own files).
Doing this in the child's own code rather than in a Popen preexec_fn keeps run_notebooks' threads
safe: preexec_fn runs Python between fork and exec, where another thread's locks can deadlock it.
Standard library only; importing it does nothing. The modes:

- `bwrap CONFIG ARGV…`: started by bwrap as PID 1 of the new namespaces, with the mounts made:
  copy the folder in and reap.
- `namespaces CONFIG ARGV…`: where bwrap is missing, make the same namespaces and root with
  unshare(2), mount(2) and pivot_root(2), then reap.
- `best-effort CPU MEMORY FILE ARGV…`: the limits, and whatever namespaces the OS grants.

The reaper is PID 1 of the run's PID namespace. The kernel delivers no signal to it from inside
the namespace that it has no handler for (SIGKILL included), so an example cannot kill it; it
starts the command, and when the command ends kills everything else in the namespace, then
sends the command's wait status (and, if asked, a tar of the folder) through the result pipe.
"""
import json
import os
import signal
import sys

PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_NO_NEW_PRIVS = 1, 4, 24, 38
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x20000, 0x4000000, 0x8000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 0x1, 0x2, 0x4, 0x8, 0x20
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
MNT_DETACH = 2
# A remount must repeat what a user namespace locks on a mount: these, and its atime setting.
KEPT_FLAGS = {b"nosuid": MS_NOSUID, b"nodev": MS_NODEV, b"noexec": MS_NOEXEC,
              b"noatime": 0x400, b"nodiratime": 0x800, b"relatime": 0x200000,
              b"strictatime": 0x1000000}
PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "i686": 217, "armv7l": 218, "riscv64": 41,
              "ppc64le": 203, "s390x": 217}
INPUT = "/run/deckgen-input"  # where bwrap shows the folder's files, to be copied in
PRIVATE = ("/tmp", "/var/tmp", "/run", "/home", "/root", "/dev/shm")
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")
CONTAINMENT_FAILED = 125


def load_libc():
    """libc through ctypes, or None where there is none."""
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                               ctypes.c_ulong, ctypes.c_char_p)
        libc.umount2.argtypes = (ctypes.c_char_p, ctypes.c_int)
        libc.unshare.argtypes = (ctypes.c_int,)
        libc.prctl.argtypes = (ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong,
                               ctypes.c_ulong)
        return libc
    except (ImportError, OSError, AttributeError):
        return None


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


def unescape(field):
    """A mountinfo path: it writes space, tab, newline and backslash as \\ooo."""
    if b"\\" not in field:
        return field
    parts = field.split(b"\\")
    return parts[0] + b"".join(bytes([int(p[:3], 8)]) + p[3:] for p in parts[1:])


def contained_or_exit(error):
    print(f"deckgen could not contain the example: {error}", file=sys.stderr, flush=True)
    os._exit(CONTAINMENT_FAILED)


# --- the reaper ---------------------------------------------------------------------------------


def copy_in(source):
    import shutil
    for entry in os.scandir(source):
        if entry.is_dir(follow_symlinks=False):
            shutil.copytree(entry.path, entry.name, symlinks=True)
        elif entry.is_file(follow_symlinks=False):
            shutil.copyfile(entry.path, entry.name)


def copied_in(source):
    try:
        copy_in(source)
        return True
    except OSError as error:
        print(f"deckgen could not copy the example's folder: {error}", file=sys.stderr,
              flush=True)
        return False


def wait_for(pid):
    while True:
        try:
            done, status = os.wait()
        except ChildProcessError:
            return None
        if done == pid:
            return status


def reap(libc, config, argv, copied):
    result = config["result"]
    os.set_inheritable(result, False)
    # Undumpable: no process of the run may open /proc/1/fd (the result pipe, the input).
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    if not copied:
        send(result, 126 << 8)
    pid = os.fork()
    if pid == 0:
        try:
            libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
            set_limits(config["cpu"], config["memory"], config["file"])
            os.execv(argv[0], argv)
        except OSError as error:
            print(f"deckgen could not start {argv[0]}: {error}", file=sys.stderr, flush=True)
        os._exit(127)
    status = wait_for(pid)
    try:
        os.kill(-1, signal.SIGKILL)  # from PID 1: every other process of the namespace
    except OSError:
        pass
    wait_for(None)
    send(result, status, config["keep_files"])


def send(result, status, keep_files=False):
    import tarfile
    with os.fdopen(result, "wb") as out:
        out.write(json.dumps({"status": status}).encode() + b"\n")
        if keep_files:
            try:
                with tarfile.open(fileobj=out, mode="w|") as tar:
                    for name in sorted(os.listdir(".")):
                        tar.add(name)
            except (OSError, tarfile.TarError):
                pass
    os._exit(0)


def bwrap_main(args):
    libc = load_libc()
    if libc is None:
        contained_or_exit("no libc")
    reap(libc, json.loads(args[0]), args[1:], copied_in(INPUT))


# --- the namespace sandbox, where bwrap is missing -----------------------------------------------


def check(result, what):
    if result != 0:
        import ctypes
        raise OSError(ctypes.get_errno(), f"{what}: {os.strerror(ctypes.get_errno())}")


def bind(libc, fd, target, recursive=False):
    flags = MS_BIND | (MS_REC if recursive else 0)
    check(libc.mount(f"/proc/self/fd/{fd}".encode(), target.encode(), None, flags, None), target)
    os.close(fd)


def build_view(libc, config, home):
    """The root bwrap would build, made by hand: a tmpfs holding read-only binds of the system's
    programs and libraries, a few /etc files and the interpreter; private /tmp, /run, /dev/shm,
    home; a fresh /dev and /proc; the folder a tmpfs of the quota's size. Then pivot_root into it
    and let go of the old root. Whether the folder's files were copied in."""
    mount = libc.mount
    check(mount(None, b"/", None, MS_REC | MS_PRIVATE, None), "private mounts")
    # Everything to show is opened first, by the old root's paths.
    source = os.open(home, os.O_RDONLY | os.O_DIRECTORY)
    shown = []
    for name in config["system"]:
        if os.path.islink(name):
            shown.append((name, os.readlink(name), None))
        elif os.path.isdir(name):
            shown.append((name, None, os.open(name, os.O_PATH)))
    shown += [(path, None, os.open(path, os.O_PATH)) for path in config["etc"]
              if os.path.exists(path)]
    shown += [(path, None, os.open(path, os.O_PATH)) for path in config["keep"]]
    devices = [(name, os.open("/dev/" + name, os.O_PATH)) for name in DEVICES
               if os.path.exists("/dev/" + name)]
    new = "/tmp"  # any directory will do as the mount point of the new root
    check(mount(b"tmpfs", new.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755,size=1m"),
          "the new root")
    # Private scratch folders first: an interpreter kept below /root is bound on top of them.
    scratch = b"mode=1777,size=%d" % config["scratch"]
    for path in PRIVATE[:-1]:
        os.makedirs(new + path, exist_ok=True)
        check(mount(b"tmpfs", (new + path).encode(), b"tmpfs", MS_NOSUID | MS_NODEV, scratch),
              path)
    for path, link, fd in shown:
        target = new + path
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if link is not None:
            os.symlink(link, target)
        elif os.path.isdir(f"/proc/self/fd/{fd}"):
            os.makedirs(target, exist_ok=True)
            bind(libc, fd, target, recursive=True)
        else:
            open(target, "w").close()
            bind(libc, fd, target)
    # A fresh /dev as bwrap makes it: a few harmless devices, no disk a root example could open.
    os.makedirs(new + "/dev")
    check(mount(b"tmpfs", (new + "/dev").encode(), b"tmpfs", MS_NOSUID, b"mode=0755,size=64k"),
          "/dev")
    for name, fd in devices:
        open(f"{new}/dev/{name}", "w").close()
        bind(libc, fd, f"{new}/dev/{name}")
    os.mkdir(new + "/dev/pts")
    if mount(b"devpts", (new + "/dev/pts").encode(), b"devpts", MS_NOSUID | MS_NOEXEC,
             b"newinstance,ptmxmode=0666,mode=620") == 0:
        os.symlink("pts/ptmx", new + "/dev/ptmx")
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                         ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{new}/dev/{name}")
    os.mkdir(new + "/dev/shm")
    check(mount(b"tmpfs", (new + "/dev/shm").encode(), b"tmpfs", MS_NOSUID | MS_NODEV, scratch),
          "/dev/shm")
    os.makedirs(new + "/var", exist_ok=True)
    os.symlink("../run", new + "/var/run")
    os.makedirs(new + home, exist_ok=True)
    check(mount(b"tmpfs", (new + home).encode(), b"tmpfs", MS_NOSUID | MS_NODEV,
                b"mode=0755,size=%d" % config["disk"]), "the folder's quota")
    os.chdir(new + home)
    copied = copied_in(f"/proc/self/fd/{source}")
    os.close(source)
    # A fresh /proc: this namespace's processes only. Mounted while the host's is still in
    # view, which a user namespace requires; where the kernel refuses it, an empty one.
    os.makedirs(new + "/proc")
    proc = MS_NOSUID | MS_NODEV | MS_NOEXEC
    if mount(b"proc", (new + "/proc").encode(), b"proc", proc, None) != 0:
        check(mount(b"tmpfs", (new + "/proc").encode(), b"tmpfs", proc, b"size=4k"), "/proc")
    # The new root's mounts, as they will be named from inside it (read while /proc is the host's).
    with open("/proc/self/mountinfo", "rb") as f:
        table = []
        for line in f.read().splitlines():
            fields = line.split()
            target = unescape(fields[4])
            if target == new.encode() or target.startswith(new.encode() + b"/"):
                table.append((target[len(new):] or b"/", fields[5].split(b",")))
    os.chdir(new)
    # pivot_root(".", "."): the old root ends up on top of the new one, and is let go of.
    check(libc.syscall(PIVOT_ROOT[os.uname().machine], b".", b"."), "pivot_root")
    check(libc.umount2(b".", MNT_DETACH), "the old root")
    os.chdir("/")
    writable = {home.encode(), b"/dev/pts", *(p.encode() for p in PRIVATE)}
    for target, options in table:
        if target in writable or b"ro" in options:
            continue
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY
        for name in options:
            flags |= KEPT_FLAGS.get(name, 0)
        check(mount(None, target, None, flags, None),
              "read-only " + target.decode(errors="replace"))
    os.chdir(home)
    return copied


def namespaces_main(args):
    """The first process joins the cgroup, unshares and forks the reaper, PID 1 of the new
    namespace, which builds the view before reaping; the first waits for it and dies with the
    build. Any step refused ends the run (exit 125): never run uncontained."""
    config, argv = json.loads(args[0]), args[1:]
    libc = load_libc()
    if libc is None:
        contained_or_exit("no libc")
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    try:
        if config.get("cgroup"):
            with open(config["cgroup"], "w") as f:
                f.write(str(os.getpid()))
        uid, gid = os.getuid(), os.getgid()
        flags = CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWNET
        if libc.unshare(flags) != 0:
            check(libc.unshare(flags | CLONE_NEWUSER), "namespaces")
            for path, text in (("/proc/self/setgroups", "deny"),
                               ("/proc/self/uid_map", f"{uid} {uid} 1"),
                               ("/proc/self/gid_map", f"{gid} {gid} 1")):
                with open(path, "w") as f:
                    f.write(text)
    except OSError as error:
        contained_or_exit(error)
    home = os.getcwd()
    pid = os.fork()
    if pid:
        os.close(config["result"])
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) & 0xFF)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    try:
        copied = build_view(libc, config, home)
    except OSError as error:
        contained_or_exit(error)
    # No capability survives the exec of the command, root or not.
    for capability in range(64):
        libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0)
    reap(libc, config, argv, copied)


# --- best effort --------------------------------------------------------------------------------

# Left writable: the block's own directory; /dev/shm, where POSIX semaphores (hence
# multiprocessing) live, which gets a private, empty tmpfs where the OS allows; /dev/pts, where
# terminals are made. Everything else, /dev, /proc and /sys included, becomes read-only; device
# nodes on a read-only mount still work, so /dev/null does.
WRITABLE = (b"/dev/shm", b"/dev/pts")
# Taken from a root block, so it can neither undo the read-only mounts nor reach the host's
# files through /proc/<pid>/root, nor do what no namespace contains: SYS_ADMIN, SYS_PTRACE,
# MKNOD, SYS_MODULE, SYS_RAWIO, SYS_BOOT, SYS_TIME.
DROPPED_CAPABILITIES = (21, 19, 27, 16, 17, 22, 25)


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


def best_effort_main(args):
    """Each step is best effort: what the OS refuses is left as it was (network_isolated and
    filesystem_isolated in deckgen.sandbox tell what this machine allows)."""
    cpu, memory, size = (int(arg) for arg in args[:3])
    argv = args[3:]
    libc = load_libc()
    if enter_namespaces(libc) & CLONE_NEWNS:
        try:
            make_read_only(libc, memory)
        except (OSError, ValueError, IndexError):
            pass
    if libc is not None:
        for capability in DROPPED_CAPABILITIES:  # refused when not root: nothing to drop
            libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0)
    set_limits(cpu, memory, size)
    # The command runs as our child rather than in our place, so that its parent is this
    # process, not the build: `os.kill(os.getppid(), 9)` then ends only this run.
    pid = os.fork()
    if pid == 0:
        try:
            os.execv(argv[0], argv)
        except OSError as error:
            print(f"deckgen could not start {argv[0]}: {error}", file=sys.stderr, flush=True)
        os._exit(127)
    status = os.waitpid(pid, 0)[1]  # (retried by Python itself when a signal interrupts it)
    if os.WIFSIGNALED(status):  # end the same way, so the build sees what ended the command
        signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        os.kill(os.getpid(), os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status) & 0xFF)


MODES = {"bwrap": bwrap_main, "namespaces": namespaces_main, "best-effort": best_effort_main}

if __name__ == "__main__":
    MODES[sys.argv[1]](sys.argv[2:])

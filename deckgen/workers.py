"""Worker processes that die with the build that started them.

A forked worker waits on a pipe whose writing end it holds itself, so it never sees the end of
its input: when the build is killed (`kill -9`, the OOM killer), a worker would wait forever.
On Linux the kernel is asked to kill it when its parent dies; elsewhere it checks its parent.
"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading

_PR_SET_PDEATHSIG = 1


def die_with(parent: int) -> None:
    """Make this (just forked) process die when the process `parent` does."""
    if sys.platform == "linux":
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
                # the parent may have died before the kernel was asked: then no signal comes
                if os.getppid() != parent:
                    os._exit(1)
                return
        except (OSError, AttributeError):
            pass
    threading.Thread(target=_watch, args=(parent,), daemon=True).start()


def _watch(parent: int) -> None:
    """Where the kernel cannot be asked: poll the parent twice a second."""
    while os.getppid() == parent:
        threading.Event().wait(0.5)
    os._exit(1)

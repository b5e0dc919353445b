"""The program a question's Python examples run in: one interpreter, its blocks in order.

Like a Jupyter kernel (or mktestdocs' memory=True), it runs the blocks of one question one after
the other in one working folder, so a block reads what an earlier one wrote. A block that uses
names an earlier block defined (run.py decides, `continues`) runs in the namespace of the blocks
before it; any other block starts with a fresh one, as if it were alone.

Run by run.py inside the sandbox as `python -c <this file's text> NONCE EPOCH TIMEOUT`; the
blocks come in CELLS_FILE, which is removed before the first block runs. After each block it
prints `\\n<NONCE> <json>\\n`, with the block's status, so the parent can tell the blocks' outputs
apart. Standard library only: it runs in the interpreter the blocks run in.

What makes output the same on every machine and every build:
- the wall clock (time.time, datetime.now, …) starts at EPOCH and moves by one microsecond each
  time it is read and by the time slept: like freezegun with auto_tick, so an example that
  divides by an elapsed time does not divide by zero. time.monotonic and perf_counter stay real
  (event loops and timeit wait on them);
- random is seeded, and numpy and torch are seeded when a block imports them;
- the hash seed (PYTHONHASHSEED=0) and the time zone (UTC) come from the environment.
"""
import datetime as _datetime
import json
import linecache
import os
import random
import signal
import sys
import time
import traceback
import types

CELLS_FILE = ".deckgen-cells.json"
SCRIPT = "main.py"  # what tracebacks and __file__ call each block, as when it ran alone


# What a block may print before the rest is only counted: twice what a card shows (run.py trims to
# 4,000 characters), little enough that the statuses of a dozen chatty blocks still reach the
# parent within the sandbox's capture.
OUTPUT_BUDGET = 8_000


class CappedOutput:
    """stdout and stderr of a block: text past the budget is counted in lines, not written."""

    def __init__(self, stream, shared: dict) -> None:  # noqa: ANN001
        self._stream, self._shared = stream, shared

    def write(self, text: str) -> int:
        room = self._shared["room"]
        part = text if len(text) <= room else text[:max(room, 0)]
        if len(part) < len(text) and "\n" in part:
            part = part[:part.rindex("\n") + 1]  # whole lines, so the count of the rest is exact
        elif len(part) < len(text) and room < OUTPUT_BUDGET:
            part = ""
        if part:
            self._stream.write(part)
        self._shared["dropped"] += text[len(part):].count("\n")
        self._shared["room"] = room - len(text) if len(part) == len(text) else 0
        return len(text)

    def __getattr__(self, name: str):  # noqa: ANN204 - flush, fileno, encoding…: the stream's
        return getattr(self._stream, name)


class BlockTimeout(BaseException):
    """Raised in a block that ran out of time (BaseException: `except Exception` lets it by)."""


def fix_clock(epoch: float) -> None:
    real_sleep = time.sleep
    state = {"ns": int(epoch) * 1_000_000_000}

    def time_ns() -> int:
        now = state["ns"]
        state["ns"] += 1_000
        return now

    def fake_time() -> float:
        return time_ns() / 1e9

    def sleep(seconds: float) -> None:
        real_sleep(seconds)
        state["ns"] += int(seconds * 1e9)

    def with_now(function):  # noqa: ANN001, ANN202
        def wrapped(*args):  # noqa: ANN002, ANN202
            return function(*args) if args and args[0] is not None else function(fake_time())
        return wrapped

    real_localtime, real_gmtime, real_ctime = time.localtime, time.gmtime, time.ctime
    real_asctime, real_strftime = time.asctime, time.strftime
    time.time, time.time_ns, time.sleep = fake_time, time_ns, sleep
    time.localtime, time.gmtime, time.ctime = (with_now(real_localtime), with_now(real_gmtime),
                                               with_now(real_ctime))
    time.asctime = lambda t=None: real_asctime(real_localtime(fake_time()) if t is None else t)
    time.strftime = lambda fmt, t=None: real_strftime(
        fmt, real_localtime(fake_time()) if t is None else t)

    real_date, real_datetime = _datetime.date, _datetime.datetime

    class DateMeta(type):
        # A real date (from arithmetic or parsing) is still a `date` to isinstance.
        def __instancecheck__(cls, obj: object) -> bool:
            return isinstance(obj, real_date)

    class DatetimeMeta(DateMeta):
        def __instancecheck__(cls, obj: object) -> bool:
            return isinstance(obj, real_datetime)

    class date(real_date, metaclass=DateMeta):  # noqa: N801 - it stands in for datetime.date
        @classmethod
        def today(cls):  # noqa: ANN206
            return cls.fromtimestamp(fake_time())

    class datetime(real_datetime, metaclass=DatetimeMeta):  # noqa: N801
        @classmethod
        def now(cls, tz=None):  # noqa: ANN001, ANN206
            return cls.fromtimestamp(fake_time(), tz)

        @classmethod
        def today(cls):  # noqa: ANN206
            return cls.fromtimestamp(fake_time())

        @classmethod
        def utcnow(cls):  # noqa: ANN206
            return cls.fromtimestamp(fake_time(), _datetime.timezone.utc).replace(tzinfo=None)

    # repr() prints the type's name: the same as the real types print.
    date.__name__, datetime.__name__ = "datetime.date", "datetime.datetime"
    date.__qualname__, datetime.__qualname__ = "date", "datetime"
    date.__module__ = datetime.__module__ = "datetime"
    _datetime.date, _datetime.datetime = date, datetime


def seed_random() -> None:
    random.seed(0)
    seeds = {"numpy": lambda m: m.random.seed(0), "torch": lambda m: m.manual_seed(0)}

    class SeedOnImport:
        """Seeds numpy and torch right after a block imports them (importing them up front
        would cost every block their start-up time)."""

        @staticmethod
        def find_spec(name, path, target=None):  # noqa: ANN001, ANN205
            if name not in seeds:
                return None
            import importlib.machinery

            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is None or spec.loader is None:
                return spec
            loader = spec.loader
            run_module = loader.exec_module

            def exec_module(module):  # noqa: ANN001, ANN202
                run_module(module)
                try:
                    seeds[name](module)
                except Exception:  # noqa: BLE001 - an odd version of the module: not seeded
                    pass

            loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, SeedOnImport)


def new_main() -> types.ModuleType:
    module = types.ModuleType("__main__")
    module.__file__ = SCRIPT
    module.__builtins__ = __builtins__
    return module


def run_block(code: str, module: types.ModuleType, timeout: float) -> dict:
    """Run one block in `module`; its status as the parent reads it."""
    linecache.cache[SCRIPT] = (len(code), None, code.splitlines(True), SCRIPT)
    sys.modules["__main__"] = module

    def out_of_time(signum, frame):  # noqa: ANN001, ANN202
        raise BlockTimeout

    previous = signal.signal(signal.SIGALRM, out_of_time)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        exec(compile(code, SCRIPT, "exec"), module.__dict__)  # noqa: S102 - running it is the point
        status = {"status": "ok"}
    except BlockTimeout:
        status = {"status": "timeout"}
    except SystemExit as stop:
        code_ = stop.code
        if code_ is None or code_ == 0:
            status = {"status": "ok"}
        elif isinstance(code_, int):
            status = {"status": "exit", "code": code_}
        else:
            print(code_, file=sys.stderr)
            status = {"status": "exit", "code": 1}
    except BaseException as error:  # noqa: BLE001 - whatever a block raises is its result
        # The first frame is this kernel's exec: the block's traceback starts below it.
        tb = error.__traceback__.tb_next if error.__traceback__ else None
        traceback.print_exception(type(error), error, tb)
        line = traceback.format_exception_only(type(error), error)[-1].strip()
        status = {"status": "raised", "line": line, "type": type(error).__name__}
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    return status


def main() -> None:
    nonce, epoch, timeout = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    with open(CELLS_FILE, encoding="utf-8") as handle:
        cells = json.load(handle)
    os.remove(CELLS_FILE)
    sys.argv = [SCRIPT]
    fix_clock(epoch)
    seed_random()
    shared = new_main()
    budget = {"room": OUTPUT_BUDGET, "dropped": 0}
    sys.stdout, sys.stderr = CappedOutput(sys.stdout, budget), CappedOutput(sys.stderr, budget)
    for cell in cells:
        budget.update(room=OUTPUT_BUDGET, dropped=0)
        module = shared if cell["continues"] else new_main()
        status = run_block(cell["code"], module, timeout)
        status["dropped"] = budget["dropped"]
        if module is not shared:  # what it defined, for a later block that continues it
            shared.__dict__.update((k, v) for k, v in module.__dict__.items()
                                   if not k.startswith("__"))
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os.write(1, f"\n{nonce} {json.dumps(status)}\n".encode())


if __name__ == "__main__":
    main()

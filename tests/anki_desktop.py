"""Real Anki desktop (`aqt` from PyPI), headless, with the AnkiConnect add-on, in a temporary profile.

Run as a script it prepares a fresh base folder (a profile, no first-run language dialog, no
update checks: the tests have no network) and starts Anki on it; `start` does that in a child
process and waits until AnkiConnect answers.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

# ../shared beside the project (a worktree may sit a folder deeper: the nearest one above wins).
VENDOR = next((folder / "shared" / "vendor" / "anki-connect" / "plugin"
               for folder in Path(__file__).resolve().parents[1:]
               if (folder / "shared" / "vendor" / "anki-connect" / "plugin").is_dir()),
              Path(__file__).resolve().parents[2] / "shared" / "vendor" / "anki-connect" / "plugin")
ADDON = "2055492159"  # the folder name Anki loads AnkiConnect from
PROFILE = "User 1"


class CannotStart(Exception):
    """Anki's desktop app cannot run here; the message says why (the tests skip with it)."""


@dataclass
class RunningAnki:
    process: subprocess.Popen
    base: Path
    url: str
    key: str
    log: Path

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start(base: Path, key: str, timeout: float = 60.0) -> RunningAnki:
    try:
        import aqt  # noqa: F401
    except ImportError as exc:
        raise CannotStart(f"Anki's desktop app is not installed ({exc}): pip install -e '.[desktop-test]'")
    if not VENDOR.is_dir():
        raise CannotStart(f"the AnkiConnect add-on is not at {VENDOR}")
    port = free_port()
    addon = base / "addons21" / ADDON
    shutil.copytree(VENDOR, addon)
    config = json.loads((addon / "config.json").read_text(encoding="utf-8"))
    config.update(apiKey=key, webBindPort=port)
    (addon / "config.json").write_text(json.dumps(config), encoding="utf-8")
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QTWEBENGINE_CHROMIUM_FLAGS="--no-sandbox")
    log = base / "anki.log"
    with open(log, "wb") as out:
        process = subprocess.Popen([sys.executable, __file__, str(base)], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    running = RunningAnki(process, base, f"http://127.0.0.1:{port}", key, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise CannotStart(f"Anki exited with status {process.returncode}: {_tail(log)}")
        if _answers(running):
            return running
        time.sleep(0.3)
    running.stop()
    raise CannotStart(f"AnkiConnect did not answer within {timeout:g} s: {_tail(log)}")


def _answers(running: RunningAnki) -> bool:
    request = json.dumps({"action": "version", "version": 6, "key": running.key}).encode()
    try:
        with urllib.request.urlopen(running.url, data=request, timeout=2) as reply:
            return json.loads(reply.read()).get("result") == 6
    except (OSError, ValueError):
        return False


def _tail(log: Path) -> str:
    lines = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    return " | ".join(lines[-3:]) or "no output"


def _prepare_and_run(base: str) -> None:
    import aqt
    from aqt.profiles import ProfileManager

    manager = ProfileManager(ProfileManager.get_created_base_folder(base))
    manager.setupMeta()
    # What a first run would ask in dialogs, answered; and no update checks (no network here).
    manager.meta.update(firstRun=False, defaultLang="en_US", check_for_updates=False,
                        check_for_addon_updates=False, last_loaded_profile_name=PROFILE)
    manager.create(PROFILE)
    manager.db.execute("update profiles set data = ? where name = '_global'", manager._pickle(manager.meta))
    manager.db.commit()
    manager.db.close()
    sys.argv = ["anki", "-b", base]
    aqt.run()


if __name__ == "__main__":
    _prepare_and_run(sys.argv[1])

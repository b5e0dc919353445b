"""A failed or interrupted build changes nothing (issue 15): packages and lock are written all or
nothing, every section gets a package of its own, and a bad lock file is one clear line."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from deckgen import atomic, package, summary
from deckgen.build import build
from deckgen.ids import LockError

from .conftest import article
from .test_build import open_package, run_cli

ROOT = "三年面试五年模拟"


def snapshot(project) -> dict[str, bytes]:  # noqa: ANN001 - conftest.Project
    """Every file of build/ and the lock, by name: what a failed build must leave as it was."""
    files = {p.relative_to(project.root).as_posix(): p.read_bytes()
             for p in project.settings.output.rglob("*") if p.is_file()}
    files["deckgen.lock"] = project.settings.lock.read_bytes()
    return files


def temporary_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and (p.name.endswith(".tmp") or "tmp" in p.name)]


def test_a_full_disk_at_the_last_package_leaves_build_and_lock_as_they_were(no_run_project, monkeypatch):  # noqa: ANN001
    project = no_run_project
    build(project.settings)
    before = snapshot(project)
    project.edit("其中 $w_i$ 是权重。", "其中 $w_i$ 是新的权重。")
    written = []
    real_add = package._add

    def fills_the_disk(archive, name, data, compress=True):  # noqa: ANN001, ANN202
        # The edited section's package goes through (the others are unchanged, so not rewritten);
        # the package of every section meets a full disk.
        if name == "collection.anki2" and len(written) == 1:
            raise OSError(28, "No space left on device")
        if name == "collection.anki2":
            written.append(archive.filename)
        real_add(archive, name, data, compress)

    monkeypatch.setattr(package, "_add", fills_the_disk)
    with pytest.raises(package.PackageError, match="No space left"):
        build(project.settings)
    assert len(written) == 1  # one package was complete when the disk filled
    assert snapshot(project) == before
    assert temporary_files(project.root) == []


def test_a_lock_that_cannot_be_written_leaves_every_package_as_it_was(no_run_project, monkeypatch):  # noqa: ANN001
    project = no_run_project
    build(project.settings)
    before = snapshot(project)
    project.edit("其中 $w_i$ 是权重。", "其中 $w_i$ 是新的权重。")
    real_open = open

    def lock_disk_full(path, mode="r", *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if "w" in mode and Path(path).name.startswith(".deckgen.lock."):
            raise OSError(28, "No space left on device", str(path))
        return real_open(path, mode, *args, **kwargs)

    monkeypatch.setattr(atomic, "open", lock_disk_full, raising=False)
    with pytest.raises(OSError, match="No space left"):
        build(project.settings)
    assert snapshot(project) == before
    assert temporary_files(project.root) == []


def test_a_crash_between_the_moves_is_repaired_by_the_next_build(no_run_project, monkeypatch, tmp_path):  # noqa: ANN001
    project = no_run_project
    build(project.settings)
    project.edit("其中 $w_i$ 是权重。", "其中 $w_i$ 是新的权重。")
    real_replace = os.replace
    moves = []

    def crash_after_one_move(source, target):  # noqa: ANN001, ANN202
        if str(target).endswith((".apkg", ".lock")):
            if moves:
                raise KeyboardInterrupt  # the process dies here: nothing after runs
            moves.append(target)
        real_replace(source, target)

    monkeypatch.setattr(atomic.os, "replace", crash_after_one_move)
    with pytest.raises(KeyboardInterrupt):
        build(project.settings)
    monkeypatch.setattr(atomic.os, "replace", real_replace)
    # One package is new, the others and the lock are old: the next build finishes the moves.
    build(project.settings)
    assert temporary_files(project.root) == []
    notes = open_package(project.settings.output / f"{ROOT}.apkg", tmp_path)[0]
    assert any("新的权重" in n.get("Answer", "") for n in notes)
    lock = json.loads(project.settings.lock.read_text(encoding="utf-8"))
    shipped = {n["guid"]: n["mod"] for n in notes}
    assert {e["guid"]: e["mod"] for e in lock["notes"].values()} == shipped
    assert not (project.settings.cache_dir / atomic.JOURNAL_NAME).exists()


def test_a_rebuild_keeps_the_locks_permission_bits(no_run_project):  # noqa: ANN001
    project = no_run_project
    build(project.settings)
    project.settings.lock.chmod(0o644)
    project.edit("其中 $w_i$ 是权重。", "其中 $w_i$ 是新的权重。")
    build(project.settings)
    assert project.settings.lock.stat().st_mode & 0o777 == 0o644
    project.settings.lock.chmod(0o664)
    project.edit("其中 $w_i$ 是新的权重。", "其中 $w_i$ 是更新的权重。")
    build(project.settings)
    assert project.settings.lock.stat().st_mode & 0o777 == 0o664


_IN_A_MOUNT_NAMESPACE = shutil.which("unshare") is not None and os.geteuid() == 0


@pytest.mark.skipif(not _IN_A_MOUNT_NAMESPACE, reason="mounting a small tmpfs needs root and unshare")
@pytest.mark.parametrize("case", ["full tmpfs", "read-only lock folder"])
def test_a_real_full_disk_or_read_only_lock_folder_changes_nothing(tmp_path, case):  # noqa: ANN001
    """The real thing, in a private mount namespace: a 1 MB tmpfs filled up, or the lock's
    folder mounted read-only, under the command line."""
    project = tmp_path / "p"
    (project / "source").mkdir(parents=True)
    script = textwrap.dedent(f"""
        set -e
        mount -t tmpfs -o size=1m tmpfs {project}
        mkdir -p {project}/source {project}/state
        cp {tmp_path}/article.md {project}/source/
        cd {project}
        deckgen() {{ {sys.executable} -m deckgen build source --no-run --lock state/deckgen.lock "$@"; }}
        deckgen >/dev/null
        sed -i 's/是权重/是新的权重/' source/article.md
        find build state -path state/.deckgen-cache -prune -o -type f -print | sort | xargs sha256sum > ../before
        if [ "{case}" = "full tmpfs" ]; then
            # leave a few kilobytes: the render cache fits, the packages do not
            dd if=/dev/zero of=filler bs=1k count=2000 2>/dev/null || true
            rm filler; dd if=/dev/zero of=filler bs=1k count=$(( $(df -k --output=avail . | tail -1) - 8 )) 2>/dev/null
        else
            mount --bind state state && mount -o remount,bind,ro state
        fi
        set +e
        deckgen 2> ../err; echo $? > ../code
        find build state -path state/.deckgen-cache -prune -o -type f -print | sort | xargs sha256sum > ../after
        find . -name '*.tmp' -o -name '*tmp*' > ../temporary
    """)
    (tmp_path / "article.md").write_text(article(("深度学习基础", [
        "## 【{n}】ROPE位置编码有何特点？\n\n其中 $w_i$ 是权重。" + " 填充" * 3000 + "\n\n"])),
        encoding="utf-8")
    done = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                          capture_output=True, text=True, timeout=120)
    if "mount" in done.stderr and done.returncode:
        pytest.skip(f"cannot mount here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    err = (tmp_path / "err").read_text()
    assert (tmp_path / "code").read_text().strip() == "2", err
    assert len(err.strip().splitlines()) == 1 and err.startswith("deckgen: error: ")
    assert "No space left" in err if case == "full tmpfs" else "Read-only file system" in err
    assert (tmp_path / "after").read_text() == (tmp_path / "before").read_text()
    assert (tmp_path / "temporary").read_text() == ""


# --- Every section its own package ---------------------------------------------------------------


def _sections_project(project, *names: str):  # noqa: ANN001, ANN202
    project.article.write_text(article(*[
        (name, [f"## 【{{n}}】{name}的问题？\n\n{name}的答案。\n\n"]) for name in names]), encoding="utf-8")
    return build(project.settings)


def test_colliding_and_reserved_section_names_each_get_a_package(no_run_project, tmp_path):  # noqa: ANN001
    project = no_run_project
    report = _sections_project(project, "AI/ML", "AI_ML", ROOT, "ai_ml")
    out = project.settings.output
    assert sorted(p.name for p in report.packages) == sorted(
        ["AI_ML.apkg", "AI_ML-2.apkg", f"{ROOT}-2.apkg", "ai_ml-3.apkg", f"{ROOT}.apkg"])
    questions = {p.name: sorted(n["Question"] for n in open_package(p, tmp_path)[0])
                 for p in out.glob("*.apkg")}
    assert questions["AI_ML.apkg"] == ["AI/ML的问题？"]
    assert questions["AI_ML-2.apkg"] == ["AI_ML的问题？"]
    assert questions["ai_ml-3.apkg"] == ["ai_ml的问题？"]
    assert questions[f"{ROOT}-2.apkg"] == [f"{ROOT}的问题？"]
    assert len(questions[f"{ROOT}.apkg"]) == 4
    warnings = sorted(d.message for d in report.diagnostics if d.message.startswith("section"))
    assert warnings == sorted([
        "section 'AI_ML' is written to AI_ML-2.apkg: AI_ML.apkg holds section 'AI/ML'",
        f"section '{ROOT}' is written to {ROOT}-2.apkg: {ROOT}.apkg holds every section",
        "section 'ai_ml' is written to ai_ml-3.apkg: ai_ml.apkg holds section 'AI/ML'",
    ])


def test_a_section_named_like_the_root_deck_leaves_removed_notes_shippable(no_run_project, tmp_path):  # noqa: ANN001
    project = no_run_project
    _sections_project(project, ROOT, "其他")
    report = _sections_project(project, ROOT)  # 其他's question is removed
    notes = open_package(project.settings.output / f"{ROOT}.apkg", tmp_path)[0]
    removed = [n for n in notes if "deckgen::removed" in n["tags"]]
    assert [n["Question"] for n in removed] == ["其他的问题？"]
    assert any(line.startswith("removed") and "'其他的问题？'" in line and "tagged" in line
               for line in summary.note_lines(report))


# --- The lock file, checked on load ------------------------------------------------------------------

def _lock_with(project, change) -> None:  # noqa: ANN001
    data = json.loads(project.settings.lock.read_text(encoding="utf-8"))
    change(data)
    project.settings.lock.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _first(data: dict) -> dict:
    return next(iter(data["notes"].values()))


_REMOVED = {"guid": "g", "title": "t", "section": "s", "mod": 1, "note_type": "qa", "deck": "d",
            "tags": [], "fields": ["q", "a", "s", "src"]}

BAD_LOCKS = {
    "mod as a string": (lambda d: _first(d).update(mod="1700000000"), ".mod is \"1700000000\", not a whole number"),
    "guid null": (lambda d: _first(d).update(guid=None), ".guid is null, not a string"),
    "guid empty": (lambda d: _first(d).update(guid=""), ".guid is empty"),
    "huge mod": (lambda d: _first(d).update(mod=10**20), ".mod is 100000000000000000000, outside 0 … 253402300799"),
    "negative mod": (lambda d: _first(d).update(mod=-5), ".mod is -5, outside"),
    "null note-type mod": (lambda d: d["note_types"]["qa"].update(mod=None), "note_types[\"qa\"].mod is null"),
    "removed entry missing fields": (lambda d: d.update(removed={"x": {"guid": "g"}}), "removed[\"x\"] lacks its 'title'"),
    "removed entry not an object": (lambda d: d.update(removed={"x": 3}), "removed[\"x\"] is a number, not an object"),
    "removed tag not a string": (lambda d: d.update(removed={"x": {**_REMOVED, "tags": [None]}}),
                                 "removed[\"x\"].tags[0] is null, not a string"),
    "notes a list": (lambda d: d.update(notes=[]), "'notes' is a list, not an object"),
    "unknown note type": (lambda d: _first(d).update(note_type="cloze"), '.note_type is "cloze", not one of "qa", "code"'),
    "removed entry with too few fields": (lambda d: d.update(removed={"x": {**_REMOVED, "fields": ["q"]}}),
                                          "removed[\"x\"].fields has 1 fields; a qa note has 4"),
    "unknown field": (lambda d: _first(d).update(colour="red"), "has an unknown field 'colour'"),
    "version a string": (lambda d: d.update(version="1"), "'version' is \"1\", not a version number"),
    "newer version": (lambda d: d.update(version=99, future={"x": 1}),
                      "written by a newer deckgen (lock version 99; this deckgen reads version 1)"),
}


@pytest.mark.parametrize("bad", BAD_LOCKS.values(), ids=BAD_LOCKS.keys())
def test_a_bad_lock_is_one_line_naming_it_and_exit_2(no_run_project, monkeypatch, bad):  # noqa: ANN001
    project = no_run_project
    build(project.settings)
    change, message = bad
    _lock_with(project, change)
    lock_before = project.settings.lock.read_bytes()
    packages_before = snapshot(project)
    monkeypatch.chdir(project.root)
    code, out, err = run_cli("build", "--no-run")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("deckgen: error: deckgen.lock: ") and message in lines[0], lines[0]
    assert "Traceback" not in err
    assert project.settings.lock.read_bytes() == lock_before  # a newer lock is never rewritten
    assert snapshot(project) == packages_before


def test_a_valid_lock_round_trips_and_missing_fields_with_defaults_are_filled(tmp_path):  # noqa: ANN001
    from deckgen.ids import Lock

    text = json.dumps({"version": 1, "notes": {"k": {"guid": "g", "title": "T", "section": "S"}}})
    lock = Lock.parse(text, tmp_path / "deckgen.lock")
    assert (lock.notes["k"].mod, lock.notes["k"].note_type) == (0, "qa")
    with pytest.raises(LockError, match="restore it from git"):
        Lock.parse("{", tmp_path / "deckgen.lock")


# --- Worker processes die with the build --------------------------------------------------------


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_no_worker_survives_kill_9_of_the_build(tmp_path):  # noqa: ANN001
    import signal
    import time

    question = "## 【{n}】问题{i}？\n\n答案 $x_{i}^2$ 与 **粗体**。\n\n```python\nprint({i})\n```\n\n" + "文字" * 200 + "\n\n"
    sections = [(f"节{s}", [question.replace("{i}", str(s * 10 + i)) for i in range(10)]) for s in range(40)]
    (tmp_path / "source").mkdir()
    (tmp_path / "source" / "a.md").write_text(article(*sections) * 4, encoding="utf-8")
    build_process = subprocess.Popen([sys.executable, "-m", "deckgen", "build", "source", "--no-run"],
                                     cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: list[int] = []
    deadline = time.monotonic() + 60
    while len(workers) < 2 and build_process.poll() is None and time.monotonic() < deadline:
        workers = _children(build_process.pid)
        time.sleep(0.02)
    assert len(workers) >= 2, "the build ended before its workers were seen"
    build_process.send_signal(signal.SIGKILL)
    build_process.wait()
    deadline = time.monotonic() + 10
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    survivors = [w for w in workers if _alive(w)]
    for pid in survivors:  # (so that a failing run leaves nothing behind either)
        os.kill(pid, signal.SIGKILL)
    assert survivors == []


# --- Inputs that would hang or explode -------------------------------------------------------------


def _cli(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deckgen", "build", *args, "--no-run"], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_among_the_sources_is_skipped_not_waited_on(no_run_project):  # noqa: ANN001
    project = no_run_project
    os.mkfifo(project.root / "source" / "pipe.md")
    done = _cli(project.root, "source")  # (a hang is a timeout here)
    assert done.returncode == 0, done.stderr
    assert "source/pipe.md:0: warning: not a regular file (a named pipe, socket or device): skipped" in done.stderr
    assert "wrote build/三年面试五年模拟.apkg" in done.stdout
    done = _cli(project.root, "source/pipe.md")  # named on the command line: an error
    assert done.returncode == 1 and "source/pipe.md:0: error: not a regular file" in done.stderr


def test_a_20_mb_one_line_file_is_refused_clearly_and_nothing_is_written(no_run_project):  # noqa: ANN001
    project = no_run_project
    build(project.settings)
    before = snapshot(project)
    huge = project.root / "source" / "huge.md"
    line = "文字 $x_i$ 与 **粗体** 和 `code` [链接](https://e.com) " * 320_000  # 20 MB
    huge.write_text(f"# 巨大\n\n## 【一】长？\n\n{line}\n", encoding="utf-8")
    done = _cli(project.root, "source")
    assert done.returncode == 1
    assert (f"source/huge.md:0: error: cannot read: the file is {huge.stat().st_size / 1e6:.1f} MB; deckgen "
            "reads source files of at most 16 MB: split it into several files") in done.stderr
    assert snapshot(project) == before
    huge.write_text(f"# 巨大\n\n## 【一】长？\n\n{line[:1_000_001]}\n", encoding="utf-8")  # 2.6 MB
    done = _cli(project.root, "source")
    assert done.returncode == 1
    assert ("source/huge.md:5: error: a line of 1,000,001 characters; deckgen reads lines of at most "
            "1,000,000 characters: break it into paragraphs") in done.stderr
    assert snapshot(project) == before


def test_empty_deck_name_parts_are_not_anki_blank_decks(tmp_path):  # noqa: ANN001
    from deckgen.build import deck_name
    from deckgen.config import Settings

    folder = tmp_path / "kb" / "主题:"
    folder.mkdir(parents=True)
    (folder / ":b.md").write_text('<h1 id="1.问题">1.问题</h1>\n\n答案。\n', encoding="utf-8")
    settings = Settings(sources=(tmp_path / "kb",), output=tmp_path / "out", lock=tmp_path / "kb.lock",
                        run_code=False)
    build(settings)
    (note,) = open_package(settings.output / f"{ROOT}.apkg", tmp_path)[0]
    assert note["deck"] == f"{ROOT}::主题::b"
    assert deck_name([ROOT, " : ", "a::b:", "c"]) == f"{ROOT}::a:b::c"


def test_concurrent_builds_never_fail_spuriously(no_run_project):  # noqa: ANN001
    """Pairs of builds of one project at once (the figure for 20 pairs is in the report of
    issue 15; three here keep the suite quick)."""
    project = no_run_project
    for pair in range(3):
        project.edit("其中 $w_i$ 是", f"其中 $w_i$ 是第{pair}版")
        builds = [subprocess.Popen([sys.executable, "-m", "deckgen", "build", "source", "--no-run"],
                                   cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                  for _ in range(2)]
        for process in builds:
            out, err = process.communicate(timeout=120)
            assert process.returncode == 0, err
    assert temporary_files(project.settings.output) == []
    assert not (project.settings.cache_dir / atomic.JOURNAL_NAME).exists()

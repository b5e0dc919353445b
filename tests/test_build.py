"""`deckgen build` end to end: the packages it writes, as files, and what the command line says."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from deckgen import package
from deckgen.build import build
from deckgen.cli import main
from deckgen.notetypes import CODE_FIELDS, QA_FIELDS

from deckgen.config import Settings

from .conftest import PNG, QUESTIONS, REPO, SHARED_CORPUS

ROOT = "三年面试五年模拟"


def open_package(path: Path, tmp_path: Path) -> tuple[list[dict], dict, dict[str, bytes]]:
    """(notes with their fields by name and deck, decks by name, media by name) of an .apkg."""
    with zipfile.ZipFile(path) as archive:
        media_names = json.loads(archive.read("media"))
        media = {name: archive.read(index) for index, name in media_names.items()}
        db = tmp_path / f"{path.stem}.anki2"
        db.write_bytes(archive.read("collection.anki2"))
    con = sqlite3.connect(db)
    models = json.loads(con.execute("select models from col").fetchone()[0])
    decks = {d["name"]: d for d in json.loads(con.execute("select decks from col").fetchone()[0]).values()}
    deck_of = {d["id"]: name for name, d in decks.items()}
    notes = []
    for guid, mid, mod, tags, flds, nid in con.execute("select guid, mid, mod, tags, flds, id from notes"):
        model = models[str(mid)]
        names = [f["name"] for f in model["flds"]]
        did = con.execute("select did from cards where nid = ?", (nid,)).fetchone()[0]
        notes.append({"guid": guid, "type": model["name"], "mod": mod, "tags": tags.split(),
                      "deck": deck_of[did], **dict(zip(names, flds.split("\x1f")))})
    con.close()
    return notes, decks, media


def test_one_package_per_section_and_one_with_everything(no_run_project, tmp_path):  # noqa: ANN001
    report = build(no_run_project.settings)
    out = no_run_project.settings.output
    assert sorted(p.name for p in out.glob("*.apkg")) == sorted(
        ["深度学习基础.apkg", "Python编程基础.apkg", f"{ROOT}.apkg"])
    assert [p.name for p in report.packages][-1] == f"{ROOT}.apkg"

    notes, decks, _ = open_package(out / f"{ROOT}.apkg", tmp_path)
    qa = [n for n in notes if n["type"] == "deckgen Q&A"]
    assert sorted(n["Question"] for n in qa) == sorted(q for qs in QUESTIONS.values() for q in qs)
    assert {n["deck"] for n in qa} == {f"{ROOT}::深度学习基础", f"{ROOT}::Python编程基础"}
    section, _, _ = open_package(out / "深度学习基础.apkg", tmp_path)
    assert sorted(n["Question"] for n in section) == sorted(QUESTIONS["深度学习基础"])


def test_note_fields_are_the_designed_ones(no_run_project, tmp_path):  # noqa: ANN001
    build(no_run_project.settings)
    notes, _, _ = open_package(no_run_project.settings.output / f"{ROOT}.apkg", tmp_path)
    qa = next(n for n in notes if n["type"] == "deckgen Q&A")
    code = next(n for n in notes if n["type"] == "deckgen Code")
    assert [k for k in qa if k in QA_FIELDS] == list(QA_FIELDS)
    assert [k for k in code if k in CODE_FIELDS] == list(CODE_FIELDS)
    rope = next(n for n in notes if n["type"] == "deckgen Q&A" and n["Question"].startswith("ROPE"))
    assert rope["Section"] == "深度学习基础"
    lines = no_run_project.article.read_text(encoding="utf-8").splitlines()
    heading = lines.index("## 【一】ROPE位置编码有何特点？") + 1
    assert rope["Source"] == f"source/article.md:{heading}"
    assert "深度学习基础" in rope["tags"]


def test_answers_carry_math_code_tables_lists_and_images(no_run_project, tmp_path):  # noqa: ANN001
    build(no_run_project.settings)
    notes, _, media = open_package(no_run_project.settings.output / f"{ROOT}.apkg", tmp_path)
    by_title = {n["Question"]: n for n in notes if n["type"] == "deckgen Q&A"}
    rope = by_title["ROPE位置编码有何特点？"]["Answer"]
    assert r"\(x_i\)" in rope and r"\(w_i\)" in rope and "<em>" not in rope
    assert r"\begin{bmatrix} \cos(\theta) & -\sin(\theta) \\ \sin(\theta)" in rope.replace("&amp;", "&")
    assert r"\(\{a, b\}\)" in rope and r"a &lt; b" in rope
    assert "<h3" in rope  # a heading inside the answer stays in the answer
    fusion = by_title["模型权重融合有哪些方法？"]["Answer"]
    assert fusion.count("<ul>") == 2 and "<table>" in fusion
    assert r"\sum_{i=1}^{N} W_i" in fusion
    python = by_title["python字典和json字符串如何相互转化？"]["Answer"]
    assert "<code>json.dumps()</code>" in python and 'class="highlight' in python
    linux = by_title["Linux中修改用户权限的命令有哪些？"]["Answer"]
    assert "$USER" in linux and "$9" in linux and r"\(" not in linux  # shell $ is no math
    (image,) = media
    assert image.endswith(".png") and f'src="{image}"' in linux
    assert media[image] == (no_run_project.root / "source" / "imgs" / "perm.png").read_bytes()


def test_code_notes_show_what_the_code_printed(project, tmp_path):  # noqa: ANN001
    report = build(project.settings)
    notes, _, _ = open_package(project.settings.output / "Python编程基础.apkg", tmp_path)
    code = {n["Language"]: n for n in notes if n["type"] == "deckgen Code"}
    assert set(code) == {"python", "bash"}  # the claimed output is no note of its own
    assert code["python"]["Status"] == "ran"
    assert code["python"]["Output"] == '<pre class="output">{"name": "Rocky", "age": 18}\n</pre>'
    # shown once: the article's output agrees with the real one
    assert code["python"]["ClaimedOutput"] == ""
    assert code["python"]["OutputCheck"] == "as the article shows"
    # the article's explanation (in the ExitCode field, whose name Anki will not let us change)
    assert "把字典转成字符串" in code["python"]["ExitCode"]
    assert "加入 docker 组" in code["bash"]["ExitCode"]
    assert code["bash"]["Status"] == "skipped" and "never run" in code["bash"]["Reason"]
    assert code["python"]["Source"].startswith("source/article.md:")
    section = next(s for s in report.sections if s.name == "Python编程基础")
    assert section.code_notes == {"ran": 1, "skipped": 1}


def test_a_wrong_claimed_output_is_a_warning_and_the_card_shows_both(project, tmp_path):  # noqa: ANN001
    project.edit('```text\n{"name": "Rocky", "age": 18}', '```text\n{"name": "Rocky", "age": 81}')
    report = build(project.settings)
    warnings = [d for d in report.diagnostics if "claimed output" in d.message]
    text = project.article.read_text(encoding="utf-8").splitlines()
    line = next(i for i, t in enumerate(text, 1) if t == "```text")
    assert [(d.path, d.line, d.level) for d in warnings] == [(project.article, line, "warning")]
    notes, _, _ = open_package(project.settings.output / f"{ROOT}.apkg", tmp_path)
    python = next(n for n in notes if n.get("Language") == "python")
    assert "81" in python["ClaimedOutput"] and "18" in python["Output"]
    assert python["OutputCheck"] == "differs from the real output"


def test_renumbering_and_reordering_keep_every_guid(no_run_project, tmp_path):  # noqa: ANN001
    project = no_run_project
    build(project.settings)
    first = {n["Question"]: n["guid"] for n in open_package(
        project.settings.output / f"{ROOT}.apkg", tmp_path)[0] if n["type"] == "deckgen Q&A"}
    text = project.article.read_text(encoding="utf-8")
    rope = text[text.index("## 【一】ROPE"):text.index("## 【二】模型")]
    text = text.replace(rope, "").replace("## 【二】模型", "## 【七】模型")
    text = text.replace("# Python编程基础", rope.replace("【一】", "【八】") + "# Python编程基础")
    project.article.write_text(text, encoding="utf-8")
    project.settings.lock.unlink()  # the key alone keeps them, without the lock file's help
    build(project.settings)
    second = {n["Question"]: n["guid"] for n in open_package(
        project.settings.output / f"{ROOT}.apkg", tmp_path)[0] if n["type"] == "deckgen Q&A"}
    assert second == first


def test_an_edited_note_gets_a_newer_time_and_the_others_keep_theirs(no_run_project, tmp_path):  # noqa: ANN001
    project = no_run_project
    build(project.settings)
    before = {n["guid"]: n["mod"] for n in open_package(project.settings.output / f"{ROOT}.apkg", tmp_path)[0]}
    project.edit("其中 $w_i$ 是权重。", "其中 $w_i$ 是可学习的权重。")
    build(project.settings)
    after = open_package(project.settings.output / f"{ROOT}.apkg", tmp_path)[0]
    changed = [n for n in after if n["mod"] != before[n["guid"]]]
    assert [n["Question"] for n in changed] == ["ROPE位置编码有何特点？"]
    assert changed[0]["mod"] > before[changed[0]["guid"]]


def test_a_failed_write_leaves_the_previous_package_whole(no_run_project, monkeypatch):  # noqa: ANN001
    project = no_run_project
    build(project.settings)
    out = project.settings.output
    before = {p.name: p.read_bytes() for p in out.glob("*.apkg")}
    lock_before = project.settings.lock.read_bytes()
    project.edit("其中 $w_i$ 是权重。", "其中 $w_i$ 是新的权重。")

    def disk_full(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(package, "_add", disk_full)
    with pytest.raises(package.PackageError, match="No space left"):
        build(project.settings)
    assert {p.name: p.read_bytes() for p in out.glob("*.apkg")} == before
    assert not [p for p in out.iterdir() if p.name.startswith(".")  and p.is_file()]
    assert project.settings.lock.read_bytes() == lock_before


def test_an_unchanged_rebuild_does_no_work(no_run_project, monkeypatch):  # noqa: ANN001
    build(no_run_project.settings)
    import deckgen.build as pipeline

    monkeypatch.setattr(pipeline, "plan_notes", lambda *a, **k: pytest.fail("rendered again"))
    report = build(no_run_project.settings)
    assert report.up_to_date and len(report.packages) == 3


# --- The command line ---------------------------------------------------------------------------


def run_cli(*args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of deckgen run in the current folder."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_cli_build_prints_a_summary_per_section(no_run_project, monkeypatch):  # noqa: ANN001
    monkeypatch.chdir(no_run_project.root)
    code, out, err = run_cli("build", "--no-run")
    assert code == 0, err
    assert "深度学习基础: 2 questions (2 added); 0 code notes; 0 images; 0 warnings" in out
    assert "Python编程基础: 2 questions (2 added); 2 code notes (2 added; 2 skipped); 1 image; 0 warnings" in out
    assert "on import, Anki adds 6 notes" in out
    assert "added " not in out  # a first build counts its new notes rather than listing them all
    assert (no_run_project.root / "build" / f"{ROOT}.apkg").is_file()
    assert (no_run_project.root / "deckgen.lock").is_file()
    code, out, _ = run_cli("build", "--no-run")
    assert code == 0 and "up to date" in out


def test_cli_reads_tool_deckgen_from_pyproject(no_run_project, monkeypatch):  # noqa: ANN001
    root = no_run_project.root
    (root / "pyproject.toml").write_text(
        '[tool.deckgen]\nroot = "面试"\noutput = "decks"\nsources = ["source"]\nrun_code = false\n',
        encoding="utf-8")
    (root / "sub").mkdir()
    monkeypatch.chdir(root / "sub")  # settings are found from a subfolder, paths relative to the file
    code, _, err = run_cli("build")
    assert code == 0, err
    assert (root / "decks" / "面试.apkg").is_file()


@pytest.mark.parametrize(("setup", "args", "message"), [
    (None, ["build", "nowhere"], "source path not found: nowhere"),
    ("file-output", ["build", "source", "-o", "taken"], "output folder taken is a file"),
    ("bad-toml", ["build"], "cannot read [tool.deckgen]"),
    ("bad-setting", ["build"], "unknown setting 'colour'"),
    ("bad-type", ["build"], "'timeout' has the wrong type"),
    ("bad-lock", ["build"], "not a deckgen lock file"),
])
def test_cli_errors_are_one_line_and_exit_2(no_run_project, monkeypatch, setup, args, message):  # noqa: ANN001
    root = no_run_project.root
    monkeypatch.chdir(root)
    files = {
        "file-output": ("taken", "x"),
        "bad-toml": ("pyproject.toml", "[tool.deckgen\n"),
        "bad-setting": ("pyproject.toml", '[tool.deckgen]\ncolour = "red"\n'),
        "bad-type": ("pyproject.toml", '[tool.deckgen]\ntimeout = "soon"\n'),
        "bad-lock": ("deckgen.lock", "{oops"),
    }
    if setup:
        name, text = files[setup]
        (root / name).write_text(text, encoding="utf-8")
    code, out, err = run_cli(*args, "--no-run")
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deckgen: error: ") and message in lines[0]
    assert "Traceback" not in err + out


def test_debug_shows_the_traceback(no_run_project, monkeypatch):  # noqa: ANN001
    monkeypatch.chdir(no_run_project.root)
    (no_run_project.root / "deckgen.lock").write_text("{oops", encoding="utf-8")
    code, _, err = run_cli("build", "--no-run", "--debug")
    assert code == 2 and "Traceback" in err


def test_python_dash_m_deckgen_works(no_run_project):  # noqa: ANN001
    result = subprocess.run([sys.executable, "-m", "deckgen", "build", "--no-run"], cwd=no_run_project.root,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (no_run_project.root / "build" / f"{ROOT}.apkg").is_file()


def test_an_installed_wheel_builds_from_any_folder(no_run_project, tmp_path):  # noqa: ANN001
    """The templates ship inside the wheel: no source checkout is needed at run time."""
    pytest.importorskip("hatchling")
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(wheels), str(REPO)], check=True, timeout=300, capture_output=True)
    (wheel,) = wheels.glob("deckgen-*.whl")
    assert "deckgen/templates/qa/front.html" in zipfile.ZipFile(wheel).namelist()
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                    str(wheel)], check=True, timeout=300, capture_output=True)
    result = subprocess.run(
        [sys.executable, "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
         "import deckgen, runpy; assert deckgen.__file__.startswith(sys.argv[1]), deckgen.__file__; "
         "sys.argv = ['deckgen', 'build', '--no-run']; runpy.run_module('deckgen', run_name='__main__')",
         str(target)],
        cwd=no_run_project.root, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert result.returncode == 0, result.stderr
    assert (no_run_project.root / "build" / f"{ROOT}.apkg").is_file()


# --- The knowledge-base layout ------------------------------------------------------------------

KB_FILE = """# 目录
- [1.什么是注意力？](#1.什么是注意力？)
- [2.为什么要缩放？](#2.为什么要缩放？)

## 1、Transformer模块

<h1 id="1.什么是注意力？">1.什么是注意力？</h1>
注意力是 $\\mathrm{softmax}(QK^T)V$。

![图](./imgs/attention.png)

<h1 id='2.为什么要缩放？'>2.为什么要缩放？</h1>

除以 $\\sqrt{d_k}$，见 ![远程](https://example.com/a.png)。
"""


def _kb(root: Path, text: str = KB_FILE) -> Path:
    folder = root / "kb" / "深度学习基础"
    (folder / "imgs").mkdir(parents=True, exist_ok=True)
    (folder / "imgs" / "attention.png").write_bytes(PNG)
    (folder / "注意力机制知识点.md").write_text(text, encoding="utf-8")
    (root / "kb" / "README.md").write_text("# 项目说明\n\n<h1 id=\"x\">不是问题</h1>\n", encoding="utf-8")
    return root / "kb"


def _kb_settings(tmp_path: Path, source: Path) -> Settings:
    return Settings(sources=(source,), output=tmp_path / "out", lock=tmp_path / "kb.lock", run_code=False,
                    offline=True)


def test_knowledge_base_files_become_subdecks_with_tags_and_media(tmp_path):  # noqa: ANN001
    settings = _kb_settings(tmp_path, _kb(tmp_path))
    report = build(settings)
    assert report.diagnostics == []
    assert [p.name for p in report.packages] == ["深度学习基础.apkg", f"{ROOT}.apkg"]
    notes, _, media = open_package(settings.output / "深度学习基础.apkg", tmp_path)
    assert sorted(n["Question"] for n in notes) == ["为什么要缩放？", "什么是注意力？"]
    assert {n["deck"] for n in notes} == {f"{ROOT}::深度学习基础::注意力机制知识点"}
    assert all("Transformer模块" in n["tags"] for n in notes)
    assert list(media.values()) == [PNG]
    section = report.sections[0]
    assert (section.cards, section.images, section.remote_images) == (2, 1, 1)


def test_knowledge_base_renumbering_keeps_guids(tmp_path):  # noqa: ANN001
    source = _kb(tmp_path)
    settings = _kb_settings(tmp_path, source)
    build(settings)
    first = {n["Question"]: n["guid"] for n in open_package(settings.output / f"{ROOT}.apkg", tmp_path)[0]}
    renumbered = KB_FILE.replace("1.什么是注意力", "7.什么是注意力").replace("2.为什么要缩放", "3.为什么要缩放")
    _kb(tmp_path, renumbered)
    settings.lock.unlink()  # the ids alone keep them
    build(settings)
    second = {n["Question"]: n["guid"] for n in open_package(settings.output / f"{ROOT}.apkg", tmp_path)[0]}
    assert second == first


def test_the_shared_knowledge_base_sample_builds_and_renders_in_anki(tmp_path, anki):  # noqa: ANN001
    if not SHARED_CORPUS.is_dir():
        pytest.skip("../shared/corpus is not here")
    settings = _kb_settings(tmp_path, SHARED_CORPUS)
    report = build(settings)
    assert not report.errors
    assert {s.name: s.cards for s in report.sections} == {"机器学习基础": 16, "深度学习基础": 56,
                                                         "编程基础：Python": 20}
    log = anki.import_package(settings.output / f"{ROOT}.apkg")
    assert len(anki.notes("deckgen Q&A")) == 92 and not log.conflicting
    assert f"{ROOT}::深度学习基础::激活函数层知识点" in anki.deck_names()
    for card in anki.cards():
        out = card.render_output()
        assert out.question_text.strip() and out.answer_text.strip()
    assert not anki.col.media.check().missing
    assert len(os.listdir(anki.col.media.dir())) == 3  # the three local images of 激活函数层知识点


def test_packages_written_by_workers_equal_those_written_in_turn(no_run_project, monkeypatch):  # noqa: ANN001
    settings = no_run_project.settings
    build(settings)
    in_turn = {p.name: p.read_bytes() for p in settings.output.glob("*.apkg")}
    monkeypatch.setattr(package, "PARALLEL_NOTES", 0)  # the workers, whatever the size
    for path in settings.output.glob("*.apkg"):
        path.unlink()
    (settings.cache_dir / "build.json").unlink()  # no shortcut: write them again
    build(settings)
    assert {p.name: p.read_bytes() for p in settings.output.glob("*.apkg")} == in_turn


def test_cli_summary_counts_the_blocks_left_on_the_qa_card(no_run_project, monkeypatch):  # noqa: ANN001
    article = next(no_run_project.root.joinpath("source").glob("*.md"))
    article.write_text(article.read_text(encoding="utf-8") + (
        "\n## 【九】配置文件长什么样？\n\n如下所示：\n\n```json\n{\"a\": 1}\n```\n"), encoding="utf-8")
    monkeypatch.chdir(no_run_project.root)
    for _ in range(2):  # the second build is up to date: its summary comes from the cache
        code, out, err = run_cli("build", "--no-run")
        assert code == 0, err
        assert "  code blocks left on the Q&A card only: 1 data" in out


@pytest.mark.parametrize("breakage", ["not an object", "sections not a list", "packages missing"])
def test_a_broken_record_of_the_last_build_means_building_again(no_run_project, breakage):  # noqa: ANN001
    settings = no_run_project.settings
    build(settings)
    record = settings.cache_dir / "build.json"
    data = json.loads(record.read_text(encoding="utf-8"))  # its fingerprint is still this input's
    if breakage == "not an object":
        data = [data]
    elif breakage == "sections not a list":
        data["sections"] = 3
    else:
        del data["packages"]
    record.write_text(json.dumps(data), encoding="utf-8")
    report = build(settings)
    assert not report.up_to_date and not report.errors and len(report.packages) == 3

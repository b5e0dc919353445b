"""`deckgen status` and the summary `deckgen build` ends with: what changes in Anki, at file:line."""
from __future__ import annotations

import os

from click.testing import CliRunner

from deckgen.cli import main

from .conftest import FUSION, LINUX, PYTHON, ROPE, article

ROOT = "三年面试五年模拟"


def run_cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _line_of(project, text: str) -> int:  # noqa: ANN001
    lines = project.article.read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def _outputs(project) -> dict[str, bytes]:  # noqa: ANN001
    files = [project.settings.lock, *project.settings.output.glob("*.apkg")]
    return {p.name: p.read_bytes() for p in files if p.exists()}


def test_status_names_each_change_at_its_line_and_writes_nothing(no_run_project, monkeypatch):  # noqa: ANN001
    project = no_run_project
    monkeypatch.chdir(project.root)
    assert run_cli("build", "--no-run")[0] == 0
    rope = ROPE.replace("其中 $w_i$ 是权重。", "其中 $w_i$ 是可学习的权重。")
    fusion = FUSION.replace("有哪些方法？", "有哪些主流方法？")
    python = PYTHON.replace('"age": 18', '"age": 19')
    project.article.write_text(article(("深度学习基础", [fusion, rope]), ("Python编程基础", [python])),
                               encoding="utf-8")
    before = _outputs(project)
    code, out, err = run_cli("status", "--no-run")
    assert code == 0, err
    assert _outputs(project) == before, "status wrote something"
    lines = out.splitlines()
    at = f"source/article.md:{_line_of(project, '主流方法')}"
    assert (f"renamed   {at}  '模型权重融合有哪些方法？' → '模型权重融合有哪些主流方法？' "
            "(the same note: same answer)") in lines
    assert f"updated   source/article.md:{_line_of(project, '】ROPE位置编码')}  'ROPE位置编码有何特点？'" in lines
    code_line = _line_of(project, "```python")
    assert (f"updated   source/article.md:{code_line}  code note of "
            "'python字典和json字符串如何相互转化？' (code 50% the same)") in lines
    assert "removed   'Linux中修改用户权限的命令有哪些？' (Python编程基础): shipped tagged deckgen::removed" in lines
    assert "removed   code note of 'Linux中修改用户权限的命令有哪些？' (Python编程基础): " \
           "shipped tagged deckgen::removed" in lines
    assert "Python编程基础: 1 question (1 updated, 1 removed); 1 code note (1 updated, 1 removed; " \
           "1 skipped); 0 images; 0 warnings" in lines
    assert "on import, Anki would update 6 notes" in lines
    assert not any(line.startswith("wrote") for line in lines)

    code, built, _ = run_cli("build", "--no-run")  # the build does what status said, and says so
    assert code == 0
    assert [line for line in built.splitlines() if not line.startswith(("wrote", "on import"))] == \
        [line for line in lines if not line.startswith("on import")]
    assert "on import, Anki updates 6 notes" in built
    code, again, _ = run_cli("status", "--no-run")
    assert "on import, Anki would change nothing: every note is as it was" in again


def test_a_move_is_reported_with_where_anki_keeps_the_card(no_run_project, monkeypatch):  # noqa: ANN001
    project = no_run_project
    monkeypatch.chdir(project.root)
    run_cli("build", "--no-run")
    project.article.write_text(article(("深度学习基础", [FUSION]), ("Python编程基础", [ROPE, PYTHON, LINUX])),
                               encoding="utf-8")
    out = run_cli("status", "--no-run")[1]
    at = _line_of(project, "】ROPE位置编码")
    assert (f"moved     source/article.md:{at}  'ROPE位置编码有何特点？' from 深度学习基础 to Python编程基础: "
            "Anki keeps its card in the old deck (Browse → Change Deck moves it)") in out.splitlines()


def test_only_packages_that_changed_are_written(no_run_project, monkeypatch):  # noqa: ANN001
    project = no_run_project
    monkeypatch.chdir(project.root)
    out = run_cli("build", "--no-run")[1]
    assert sum(line.startswith("wrote ") for line in out.splitlines()) == 3
    project.edit("其中 $w_i$ 是权重。", "其中 $w_i$ 是可学习的权重。")
    out = run_cli("build", "--no-run")[1]
    assert "wrote build/深度学习基础.apkg" in out and f"wrote build/{ROOT}.apkg" in out
    assert "wrote build/Python编程基础.apkg" not in out
    assert "1 package unchanged, not rewritten" in out
    os.utime(project.article)  # touched, not changed: the build runs but writes no package
    out = run_cli("build", "--no-run")[1]
    assert "wrote" not in out and "3 packages unchanged, not rewritten" in out
    assert "on import, Anki changes nothing" in out
    assert "wrote" not in run_cli("build", "--no-run")[1]  # up to date


def test_failed_examples_are_listed_at_their_line(project, monkeypatch):  # noqa: ANN001
    monkeypatch.chdir(project.root)
    project.edit('print(json.dumps(data))', 'print(json.dumps(data))\nraise ValueError("boom")')
    code, out, err = run_cli("build")
    assert code == 0, err
    line = _line_of(project, "```python")
    assert f"source/article.md:{line}: example failed: ValueError: boom" in out.splitlines()
    assert "2 code notes (2 added; 1 failed, 1 skipped)" in out
    assert f"source/article.md:{line}: example failed: ValueError: boom" in run_cli("build")[1]  # up to date


def test_status_before_a_first_build_counts_what_would_be_added(no_run_project, monkeypatch):  # noqa: ANN001
    monkeypatch.chdir(no_run_project.root)
    code, out, _ = run_cli("status", "--no-run")
    assert code == 0
    assert "深度学习基础: 2 questions (2 added); 0 code notes; 0 images; 0 warnings" in out
    assert "on import, Anki would add 6 notes" in out
    assert not no_run_project.settings.lock.exists() and not no_run_project.settings.output.exists()


def test_status_stops_at_an_error_as_a_build_would(no_run_project, monkeypatch):  # noqa: ANN001
    monkeypatch.chdir(no_run_project.root)
    with no_run_project.article.open("a", encoding="utf-8") as handle:
        handle.write("\n```python\nprint(1)\n")
    code, out, err = run_cli("status", "--no-run")
    assert code == 1 and "unclosed code fence" in err
    assert err.splitlines()[-1] == "deckgen: 1 error(s): a build would stop here"
    assert "on import" not in out


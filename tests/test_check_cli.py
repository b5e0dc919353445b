"""`deckgen check` and `deckgen build` on broken sources: the line a user reads, the exit status,
and that an error leaves the previous build alone (issue 7).

Each problem gets the smallest file showing it. The expected line is `path:line: level: message`,
with the line number counted from the fixture text itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

from deckgen.cli import main

ROOT = "三年面试五年模拟"
GOOD = "# 深度学习基础\n\n## 【一】什么是注意力？\n\n注意力按相关性加权求和。\n"
NOT_UTF8 = GOOD.encode().replace("相关性".encode(), "相关性".encode() + b"\xff")  # a stray Latin-1 byte


@dataclass(frozen=True)
class Problem:
    """One problem in one file, and the diagnostic `deckgen check` must print for it."""

    text: str | bytes  # the file's content
    at: str  # the whole source line the diagnostic points at
    level: str
    message: str  # a stable prefix of the message
    path: str = "source/a.md"
    contains: str = ""  # a further part of the message that must be there
    nth: int = 1  # `at` is the nth line with that text

    @property
    def source(self) -> str:
        return self.path.split("/")[0]

    def expected(self) -> str:
        text = self.text if isinstance(self.text, str) else self.text.decode("utf-8", "replace")
        line = [n for n, t in enumerate(text.split("\n"), 1) if t == self.at][self.nth - 1]
        return f"{self.path}:{line}: {self.level}: {self.message}"


def run_cli(*args: str) -> tuple[int, list[str], str]:
    """(exit code, stderr lines, stdout) of deckgen run in the current folder."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.stderr.splitlines(), result.stdout


def write(root: Path, path: str, text: str | bytes) -> None:
    file = root / path
    file.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        file.write_bytes(text)
    else:
        file.write_text(text, encoding="utf-8")


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below `folder`, by relative path."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def the_line(problem: Problem, lines: list[str]) -> str:
    """The one printed diagnostic for `problem`, checked against the expected prefix."""
    expected = problem.expected()
    found = [line for line in lines if line.startswith(expected)]
    assert len(found) == 1, f"expected one line starting {expected!r} in:\n" + "\n".join(lines)
    assert problem.contains in found[0]
    return found[0]


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


# --- errors -------------------------------------------------------------------------------------

ERRORS = {
    "not UTF-8": Problem(
        NOT_UTF8, "注意力按相关性\ufffd加权求和。", "error",
        f"not UTF-8: invalid byte 0xff at byte offset {NOT_UTF8.index(0xFF)}",
    ),
    "unclosed code fence": Problem(
        GOOD + "\n```python\nprint(1)\n", "```python", "error", "unclosed code fence opened here",
    ),
    "question without a title": Problem(
        "# 深度学习基础\n\n## 【一】\n\n注意力按相关性加权求和。\n", "## 【一】", "error",
        "question heading has no title",
    ),
    "question outside any section": Problem(
        "## 【一】什么是注意力？\n\n注意力按相关性加权求和。\n", "## 【一】什么是注意力？", "error",
        "question outside any section",
    ),
}


@pytest.mark.parametrize("problem", ERRORS.values(), ids=ERRORS.keys())
def test_an_error_is_printed_at_its_line_and_the_build_writes_nothing(workdir: Path, problem: Problem) -> None:
    write(workdir, problem.path, GOOD)
    code, err, _ = run_cli("build", problem.source, "--no-run")
    assert code == 0, err
    before = snapshot(workdir / "build")
    assert f"{ROOT}.apkg" in before
    lock = (workdir / "deckgen.lock").read_bytes()

    write(workdir, problem.path, problem.text)
    code, err, _ = run_cli("check", problem.source, "--no-run")
    the_line(problem, err)
    assert (code, err[-1]) == (1, "1 error(s), 0 warning(s)")

    code, err, out = run_cli("build", problem.source, "--no-run")
    the_line(problem, err)
    assert code == 1
    assert err[-1] == "deckgen: 1 error(s): nothing was written; the previous build is unchanged"
    assert "wrote" not in out
    assert snapshot(workdir / "build") == before
    assert (workdir / "deckgen.lock").read_bytes() == lock


def test_check_leaves_the_output_folder_alone(workdir: Path) -> None:
    write(workdir, "source/a.md", GOOD)
    assert run_cli("check", "--no-run")[0] == 0
    assert not (workdir / "build").exists()


# --- warnings -----------------------------------------------------------------------------------

KB_TOC = "# 目录\n\n- [1.A](#1.A)\n"
KB_QUESTION_A = '<h1 id="1.A">1.A</h1>\n\n答案 A。\n'
KB_FILE = "kb/深度学习基础/x.md"

WARNINGS = {
    "unclosed inline math": Problem(
        GOOD + "\n公式 $x + y 没有结束。\n", "公式 $x + y 没有结束。", "warning", "unclosed math: `$`",
    ),
    "unclosed display math": Problem(
        GOOD + "\n$$\na + b\n", "$$", "warning", "unclosed display math `$$`",
    ),
    "unbalanced \\(": Problem(
        GOOD + "\n左 \\( x 右。\n", "左 \\( x 右。", "warning", "unbalanced `\\(`",
    ),
    "doubled delimiters": Problem(
        GOOD + "\n缩放 $\\( d_k \\)$ 维度。\n", "缩放 $\\( d_k \\)$ 维度。", "warning",
        "doubled math delimiters `$\\(`",
    ),
    "unknown code language": Problem(  # once: lint and render must not both report it
        GOOD + "\n```foobar\nx\n```\n", "```foobar", "warning", "unknown code language 'foobar'",
    ),
    "empty answer": Problem(
        GOOD + "\n## 【二】空的问题\n\n## 【三】下一个问题\n\n答案。\n", "## 【二】空的问题", "warning",
        "empty answer",
    ),
    "duplicate question key": Problem(
        GOOD + "\n# 机器学习基础\n\n## 【一】什么是注意力？\n\n另一个答案。\n", "## 【一】什么是注意力？",
        "warning", "duplicate question key '什么是注意力?'", contains="(first at source/a.md:3)", nth=2,
    ),
    "TOC entry without a question": Problem(
        KB_TOC + "- [2.B](#2.B)\n\n" + KB_QUESTION_A, "- [2.B](#2.B)", "warning",
        "TOC entry without a question: 2.B", path=KB_FILE,
    ),
    "question absent from the TOC": Problem(
        KB_TOC + "\n" + KB_QUESTION_A + '\n<h1 id="3.C">3.C</h1>\n\n答案 C。\n', '<h1 id="3.C">3.C</h1>',
        "warning", "question not in the table of contents: C", path=KB_FILE,
    ),
    "missing local image": Problem(
        GOOD + "\n![示意图](imgs/missing.png)\n", "![示意图](imgs/missing.png)", "warning",
        "image not found: imgs/missing.png",
    ),
    "image outside the source folder": Problem(
        GOOD + "\n![](../../etc/passwd)\n", "![](../../etc/passwd)", "warning",
        "image refused: ../../etc/passwd is outside the source folders",
    ),
    "HTML that will be removed": Problem(
        GOOD + '\n<p onclick="alert(1)">点</p>\n', '<p onclick="alert(1)">点</p>', "warning",
        "HTML removed: onclick attribute",
    ),
    "HTML shown as text": Problem(
        GOOD + "\n注意 <style> 标签\n", "注意 <style> 标签", "warning", "HTML shown as text: <style>",
    ),
}


@pytest.mark.parametrize("problem", WARNINGS.values(), ids=WARNINGS.keys())
def test_a_warning_is_printed_at_its_line_and_the_build_goes_on(workdir: Path, problem: Problem) -> None:
    write(workdir, problem.path, problem.text)
    code, err, _ = run_cli("check", problem.source, "--no-run")
    the_line(problem, err)
    assert (code, err[-1]) == (0, "0 error(s), 1 warning(s)")
    code, err, _ = run_cli("check", problem.source, "--no-run", "--strict")
    the_line(problem, err)
    assert code == 1

    code, err, out = run_cli("build", problem.source, "--no-run")
    assert code == 0, err
    the_line(problem, err)
    assert (workdir / "build" / f"{ROOT}.apkg").is_file() and f"wrote build/{ROOT}.apkg" in out


def test_a_claimed_output_that_differs_is_a_warning_at_the_output(workdir: Path) -> None:
    text = GOOD + "\n```python\nprint(1)\n```\n\n输出：\n\n```text\n2\n```\n"
    code_line = text.split("\n").index("```python") + 1
    problem = Problem(text, "```text", "warning", "claimed output differs from what the code at line "
                      f"{code_line} really prints")
    write(workdir, problem.path, text)
    code, err, _ = run_cli("check")
    the_line(problem, err)
    assert (code, err[-1]) == (0, "0 error(s), 1 warning(s)")
    assert run_cli("check", "--strict")[0] == 1
    code, err, _ = run_cli("build")
    the_line(problem, err)
    assert code == 0 and (workdir / "build" / f"{ROOT}.apkg").is_file()


def test_unchecked_code_is_no_mismatch(workdir: Path) -> None:
    """With --no-run nothing is known about the output: no claim can be wrong."""
    write(workdir, "source/a.md", GOOD + "\n```python\nprint(1)\n```\n\n输出：\n\n```text\n2\n```\n")
    code, err, _ = run_cli("check", "--no-run")
    assert (code, err) == (0, ["0 error(s), 0 warning(s)"])


# --- the report as a whole ----------------------------------------------------------------------


def test_a_clean_file_reports_nothing(workdir: Path) -> None:
    write(workdir, "source/a.md", GOOD)
    assert run_cli("check", "--no-run")[:2] == (0, ["0 error(s), 0 warning(s)"])
    assert run_cli("check", "--no-run", "--strict")[:2] == (0, ["0 error(s), 0 warning(s)"])


def test_lines_are_sorted_by_file_then_line(workdir: Path) -> None:
    # Found by different stages (ids, render, lint, parse) in an order of their own.
    write(workdir, "source/b.md", "# 机器学习基础\n\n## 【一】什么是注意力？\n\n![](imgs/none.png)\n\n"
                                  "缩放 $\\( d_k \\)$ 维度。\n")
    write(workdir, "source/a.md", GOOD + "\n<script>x</script>\n\n## 【二】空的问题\n\n## 【三】图\n\n"
                                  "![](imgs/gone.png)\n")
    code, err, _ = run_cli("check", "--no-run")
    assert code == 0
    assert [line.split(": ", 2)[0] for line in err[:-1]] == [
        "source/a.md:7",  # <script>
        "source/a.md:9",  # empty answer
        "source/a.md:13",  # missing image: 13 after 9, as numbers
        "source/b.md:3",  # duplicate key
        "source/b.md:5",  # missing image
        "source/b.md:7",  # doubled delimiters
    ]
    assert err[-1] == "0 error(s), 6 warning(s)"


# --- usage errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(("setup", "args", "message"), [
    (None, ["check", "nowhere"], "source path not found: nowhere"),
    ("pyproject.toml", ["check"], "cannot read [tool.deckgen]"),
])
def test_usage_errors_are_one_line_and_exit_2(workdir: Path, setup: str | None, args: list[str],
                                              message: str) -> None:
    write(workdir, "source/a.md", GOOD)
    if setup:
        write(workdir, setup, "[tool.deckgen\nroot = 1\n")
    code, err, out = run_cli(*args, "--no-run")
    assert code == 2
    assert len(err) == 1 and err[0].startswith("deckgen: error: ") and message in err[0], err
    assert "Traceback" not in out + "".join(err)
    assert not (workdir / "build").exists()

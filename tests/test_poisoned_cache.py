"""The render cache is data, never code or trusted HTML (issue 14).

Anyone who can write `.deckgen-cache/` (it sits beside the lock: `--lock /tmp/x.lock` puts it in
/tmp) could once plant a pickle that ran on the next build. Now entries are JSON, read back as the
model's types only, and their HTML is used only if it is what our sanitizer and highlighter make.
"""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import pytest

from deckgen.build import build
from deckgen.config import Settings
from deckgen.load import _FileCache, load_sources
from tests.test_build import open_package

ARTICLE = """# 节

## 【一】问题

回答 $x^2$。

```python
print("hi")
```
"""


class _Planted:
    """Unpickling this creates a file: proof that a pickle ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def project(tmp_path: Path) -> tuple[Path, Path]:
    source = tmp_path / "source"
    source.mkdir()
    (source / "a.md").write_text(ARTICLE, encoding="utf-8")
    return source, tmp_path / ".deckgen-cache"


def _key(source: Path, cache_dir: Path) -> str:
    cache = _FileCache(cache_dir, (source,))
    key = cache.key(source, source / "a.md")
    assert key is not None
    return key


def test_a_planted_pickle_runs_nothing(project: tuple[Path, Path], tmp_path: Path) -> None:
    source, cache_dir = project
    marker = tmp_path / "pickle-ran"
    files = cache_dir / "files"
    files.mkdir(parents=True)
    (files / f"{_key(source, cache_dir)}.pickle").write_bytes(pickle.dumps(_Planted(marker)))
    settings = Settings(sources=(source,), output=tmp_path / "build", lock=tmp_path / "deckgen.lock",
                        run_code=False)
    report = build(settings)
    assert not report.errors
    assert not marker.exists()


@pytest.mark.parametrize("poison", [
    ("answer", "<script>alert(1)</script>"),
    ("answer", '<img src="x" onerror="alert(1)">'),
    ("answer", r"\(\href{javascript:alert(1)}{x}\)"),
    ("title", '<a href="javascript:alert(1)">t</a>'),
    ("code", '<img src="x" onerror="alert(1)">'),
    ("explanation", '<img src="x" onerror="alert(1)">'),
    ("code-in-answer", '<span onclick="alert(1)">x</span>'),
])
def test_a_doctored_cache_entry_is_rendered_again(project: tuple[Path, Path],
                                                  poison: tuple[str, str]) -> None:
    source, cache_dir = project
    _, clean = load_sources([source], cache_dir)
    entry = cache_dir / "files" / f"{_key(source, cache_dir)}.json"
    data = json.loads(entry.read_text(encoding="utf-8"))
    question = data["item"]["rendered"][0]
    where, html = poison
    if where == "answer":
        question["answer"]["html"] += html
    elif where == "title":
        question["title"] += html
    elif where == "code":
        card = question["code"][0]
        card["front"] = card["front"].replace("</code>", html + "</code>")
    elif where == "explanation":
        question["code"][0]["explanation"] += html
    else:
        question["answer"]["html"] = question["answer"]["html"].replace("</code></pre>",
                                                                        html + "</code></pre>")
    entry.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    _, again = load_sources([source], cache_dir)
    assert again == clean  # rendered afresh, not taken from the doctored entry
    shown = [again[0].title, again[0].answer.html,
             *(part for card in again[0].code for part in (card.front, card.full, card.explanation))]
    assert "alert" not in json.dumps(shown)


@pytest.mark.parametrize("change", ["line as text", "unknown field", "not an object", "old version"])
def test_an_entry_of_the_wrong_shape_is_ignored(project: tuple[Path, Path], change: str) -> None:
    source, cache_dir = project
    corpus, clean = load_sources([source], cache_dir)
    entry = cache_dir / "files" / f"{_key(source, cache_dir)}.json"
    data = json.loads(entry.read_text(encoding="utf-8"))
    if change == "line as text":
        data["item"]["source"]["questions"][0]["line"] = "3"
    elif change == "unknown field":
        data["item"]["source"]["questions"][0]["__class__"] = "os.system"
    elif change == "not an object":
        data["item"] = ["rm -rf /"]
    else:
        data["version"] = 1
    entry.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    corpus_again, again = load_sources([source], cache_dir)
    assert again == clean
    assert [q.line for q in corpus_again.questions] == [q.line for q in corpus.questions] == [3]


def test_a_poisoned_cache_ships_nothing_unsanitized(project: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    source, cache_dir = project
    settings = Settings(sources=(source,), output=tmp_path / "build", lock=tmp_path / "deckgen.lock",
                        run_code=False)
    build(settings)
    entry = cache_dir / "files" / f"{_key(source, cache_dir)}.json"
    data = json.loads(entry.read_text(encoding="utf-8"))
    data["item"]["rendered"][0]["answer"]["html"] += "<script>alert(1)</script>"
    # The file changes (so the build is not up to date) and the doctored entry awaits its key.
    (source / "a.md").write_text(ARTICLE + "\n", encoding="utf-8")
    (cache_dir / "files" / f"{_key(source, cache_dir)}.json").write_text(
        json.dumps(data, ensure_ascii=False), encoding="utf-8")
    build(settings)
    for package in (tmp_path / "build").glob("*.apkg"):
        # the notes' fields (the note types' own templates carry deckgen's scripts)
        notes, decks, _ = open_package(package, tmp_path)
        shown = json.dumps([notes, [d.get("desc", "") for d in decks.values()]], ensure_ascii=False)
        assert "<script" not in shown and "alert" not in shown

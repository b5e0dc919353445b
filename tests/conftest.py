"""Shared fixtures: a small article in the shipped layout, and real Anki (the `anki` package)."""
from __future__ import annotations

import base64
import os
import socket
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

from deckgen.config import Settings

REPO = Path(__file__).resolve().parent.parent
SHARED_CORPUS = REPO.parent / "shared" / "corpus"
# The knowledge base beside the repository (DECKGEN_SHARED names another ../shared).
SHARED_KB = Path(os.environ.get("DECKGEN_SHARED", REPO.parent / "shared")) / "kb"
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


@pytest.fixture(autouse=True)
def no_network_but_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach the internet: a name other than the loopback's does not resolve, as on
    a machine without a network (remote images in fixtures fail fast instead of downloading)."""
    real = socket.getaddrinfo

    def loopback_only(host, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        name = host.decode() if isinstance(host, bytes) else host
        if name not in _LOOPBACK:
            raise socket.gaierror(socket.EAI_NONAME, "tests reach no network but the loopback")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)

# A 1×1 PNG: the smallest real image a card can show.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)

PREAMBLE = """---
title: 测试文章
series: 三年面试五年模拟
---

# 写在前面

这是前言，没有问题。

# 目录先行

- 深度学习基础：ROPE位置编码有何特点？

"""

ROPE = r"""## 【{n}】ROPE位置编码有何特点？

RoPE 对每个位置 $i$ 的向量 $x_i$ 做旋转，角度为 $\theta_i$，其中 $w_i$ 是权重。

$$
\mathbf{R}(\theta) = \begin{bmatrix} \cos(\theta) & -\sin(\theta) \\ \sin(\theta) & \cos(\theta) \end{bmatrix}
$$

### ROPE 的原理

集合 $\{a, b\}$ 满足 $a < b$ 且 $a \& b$。

"""

FUSION = r"""## 【{n}】模型权重融合有哪些方法？

- 平均法
  - 加权平均：$\bar{W} = \frac{1}{N}\sum_{i=1}^{N} W_i$
- 插值法

| 方法 | 说明 |
| --- | --- |
| 平均 | 简单 |

"""

PYTHON = """## 【{n}】python字典和json字符串如何相互转化？

使用 `json.dumps()` 把字典转成字符串：

```python
import json
data = {"name": "Rocky", "age": 18}
print(json.dumps(data))
```

输出：

```text
{"name": "Rocky", "age": 18}
```

"""

LINUX = """## 【{n}】Linux中修改用户权限的命令有哪些？

把当前用户加入 docker 组，再列出文件的权限：

```bash
sudo usermod -aG docker $USER
awk '{print $9}' file.txt
```

![权限示意图](imgs/perm.png)

"""

TRAILER = """# 推荐阅读

- 其他文章
"""


def without_own_scripts(card_html: str) -> str:
    """A card's HTML without the note types' own scripts (the outline's scrolling): those are
    deckgen's; what is left must hold none, whatever an article says."""
    import re

    from deckgen.notetypes import default_templates_dir

    templates = default_templates_dir()
    for name in ("qa/back.html", "code/back.html"):
        for script in re.findall(r"<script>.*?</script>", (templates / name).read_text("utf-8"), re.S):
            card_html = card_html.replace(script, "")
    return card_html


def article(*sections: tuple[str, list[str]]) -> str:
    """An article in the shipped layout: sections of questions, numbered 【一】【二】… in order."""
    numerals = "一二三四五六七八九十"
    parts = [PREAMBLE]
    for name, questions in sections:
        parts.append(f"# {name}\n\n")
        parts.extend(q.replace("{n}", numerals[i]) for i, q in enumerate(questions))
    parts.append(TRAILER)
    return "".join(parts)


ARTICLE = article(("深度学习基础", [ROPE, FUSION]), ("Python编程基础", [PYTHON, LINUX]))

QUESTIONS = {
    "深度学习基础": ["ROPE位置编码有何特点？", "模型权重融合有哪些方法？"],
    "Python编程基础": ["python字典和json字符串如何相互转化？", "Linux中修改用户权限的命令有哪些？"],
}


@dataclass
class Project:
    root: Path
    settings: Settings

    @property
    def article(self) -> Path:
        return self.root / "source" / "article.md"

    def edit(self, old: str, new: str) -> None:
        text = self.article.read_text(encoding="utf-8")
        assert old in text, old
        self.article.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture
def project(tmp_path: Path) -> Project:
    source = tmp_path / "source"
    (source / "imgs").mkdir(parents=True)
    (source / "article.md").write_text(ARTICLE, encoding="utf-8")
    (source / "imgs" / "perm.png").write_bytes(PNG)
    settings = Settings(
        sources=(source,),
        output=tmp_path / "build",
        lock=tmp_path / "deckgen.lock",
        run_code=True,
    )
    return Project(tmp_path, settings)


@pytest.fixture
def no_run_project(project: Project) -> Project:
    project.settings = replace(project.settings, run_code=False)
    return project


# --- Real Anki ------------------------------------------------------------------------------------


class Anki:
    """A fresh Anki collection driven through Anki's own backend, as the desktop app would."""

    def __init__(self, path: Path) -> None:
        from anki.collection import Collection

        path.parent.mkdir(parents=True, exist_ok=True)
        self.col = Collection(str(path))

    def import_package(self, apkg: Path):  # noqa: ANN201 - ImportLogWithChanges.Log
        from anki.collection import ImportAnkiPackageOptions, ImportAnkiPackageRequest

        log = self.col.import_anki_package(
            ImportAnkiPackageRequest(package_path=str(apkg), options=ImportAnkiPackageOptions())
        ).log
        self.col.models._clear_cache()  # an import bypasses the Python layer's cache
        return log

    def cards(self):  # noqa: ANN201
        return [self.col.get_card(cid) for cid in sorted(self.col.find_cards(""))]

    def notes(self, note_type: str | None = None):  # noqa: ANN201
        """Every note, or those of one note type ("deckgen Q&A", "deckgen Code")."""
        query = f'"note:{note_type}"' if note_type else ""
        return [self.col.get_note(nid) for nid in sorted(self.col.find_notes(query))]

    def deck_names(self) -> set[str]:
        return {d.name for d in self.col.decks.all_names_and_ids()}

    def review_all(self) -> int:
        """Answer every due card 'good' through the v3 scheduler; returns how many."""
        from anki.scheduler.v3 import CardAnswer

        for deck in self.col.decks.all_names_and_ids():
            config = self.col.decks.config_dict_for_deck_id(deck.id)
            config["new"]["perDay"] = 9999
            config["rev"]["perDay"] = 9999
            self.col.decks.update_config(config)
        answered = 0
        for deck in self.col.decks.all_names_and_ids():
            self.col.decks.select(deck.id)
            while True:
                queued = self.col.sched.get_queued_cards()
                if not queued.cards:
                    break
                top = queued.cards[0]
                card = self.col.get_card(top.card.id)
                card.start_timer()
                answer = self.col.sched.build_answer(card=card, states=top.states, rating=CardAnswer.GOOD)
                self.col.sched.answer_card(answer)
                answered += 1
                if answered > 10_000:
                    raise AssertionError("the queue never empties")
        return answered

    def close(self) -> None:
        self.col.close()


@pytest.fixture
def anki(tmp_path: Path):  # noqa: ANN201
    pytest.importorskip("anki")
    collection = Anki(tmp_path / "anki" / "collection.anki2")
    yield collection
    collection.close()


@dataclass(frozen=True)
class Nobody:
    """The unprivileged user `nobody`, to run the system's Python as a developer's laptop would
    (unprivileged user namespaces, no root)."""

    uid: int
    gid: int
    python: Path  # the system's: the venv's interpreter lives where nobody cannot go

    def run(self, argv: list[str], cwd: Path | str, home: str, timeout: float):  # noqa: ANN201
        import subprocess

        return subprocess.run(argv, cwd=cwd, user=self.uid, group=self.gid, extra_groups=[],
                              env={"PATH": "/usr/bin:/bin", "HOME": home}, capture_output=True,
                              text=True, timeout=timeout)


@pytest.fixture
def nobody() -> Nobody:
    import pwd

    system_python = Path("/usr/bin/python3")
    try:
        entry = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no user nobody")
    if os.geteuid() != 0 or not system_python.exists():
        pytest.skip("needs root (to become nobody) and /usr/bin/python3")
    return Nobody(entry.pw_uid, entry.pw_gid, system_python)

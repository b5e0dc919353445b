"""Which code blocks become code notes, and the article's explanation each one's back shows."""
from __future__ import annotations


import pytest

from deckgen.parse import parse_document
from deckgen.quiz import (
    DATA,
    OUTPUT,
    TEMPLATE,
    TEXT,
    is_syntax_template,
    pick_blocks,
    without_comments,
)
from deckgen.render import Renderer

ARTICLE = """# Python编程基础

## 【一】python中文件有哪些打开模式？

- `'r'`：只读模式
  - 打开一个文件用于读取。如果文件不存在，则会抛出 `FileNotFoundError` 错误。

  ```python
  f = open('file.txt', 'r')
  ```

- `'rb'`：二进制模式

  ```python
  f = open('file.bin', 'rb')  # 读取二进制文件
  ```

## 【二】Linux中修改用户权限的命令有哪些？

#### 1. 修改文件所有者：`chown`

`chown` 命令用于改变文件或目录的所有者。

```bash
chown [选项] 新所有者 文件名
```

示例：

```bash
# 将文件 example.txt 的所有者改为 user1
sudo chown user1 example.txt
```

#### 示例代码

```bash
sudo usermod -aG 组名 用户名
```

## 【三】python字典和json字符串如何相互转化？

#### 从 JSON 文件读取为字典：

```python
import json
with open('data.json') as f:
    print(json.load(f))
```

上述代码打开 data.json，把其中的 JSON 读成字典并打印。

配置文件：

```yaml
name: AI
```

```json
{"name": "AI"}
```

```text
plain words
```

```python
print(1)
```

让我们看看它的输出：

```python
1
```
"""


@pytest.fixture(scope="module")
def questions(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    root = tmp_path_factory.mktemp("quiz")
    path = root / "article.md"
    path.write_text(ARTICLE, encoding="utf-8")
    parsed = parse_document(path, ARTICLE, root=root)
    assert parsed.source is not None
    return list(zip(parsed.source.questions, parsed.answer_tokens))


def test_a_block_in_a_list_item_is_explained_by_that_item(questions) -> None:  # noqa: ANN001
    question, tokens = questions[0]
    kept, dropped = pick_blocks(question, tokens)
    assert not dropped
    assert [k.explanation for k in kept] == [
        "`'r'`：只读模式\n- 打开一个文件用于读取。如果文件不存在，则会抛出 `FileNotFoundError` 错误。",
        "`'rb'`：二进制模式",
    ]


def test_syntax_templates_stay_on_the_qa_card_and_examples_borrow_their_prose(questions) -> None:  # noqa: ANN001
    question, tokens = questions[1]
    kept, dropped = pick_blocks(question, tokens)
    assert dropped == {TEMPLATE: 2}  # `chown [选项] …` and `sudo usermod -aG 组名 用户名`
    (example,) = kept
    assert "sudo chown user1" in example.block.code
    # "示例：" says nothing; the heading and the sentence above the template do
    assert example.explanation == "**1. 修改文件所有者：`chown`**\n\n`chown` 命令用于改变文件或目录的所有者。"


def test_output_data_and_text_blocks_are_no_notes_and_prose_after_a_block_explains_it(questions) -> None:  # noqa: ANN001
    question, tokens = questions[2]
    kept, dropped = pick_blocks(question, tokens)
    assert dropped == {DATA: 2, TEXT: 1, OUTPUT: 1}
    reads, prints = kept
    assert reads.explanation == ("**从 JSON 文件读取为字典：**\n\n"
                                 "上述代码打开 data.json，把其中的 JSON 读成字典并打印。")
    assert prints.explanation == ""  # "配置文件：" and the data blocks explain nothing of it


def test_the_explanations_are_the_same_without_the_parsers_tokens(questions) -> None:  # noqa: ANN001
    for question, tokens in questions:
        assert pick_blocks(question, None) == pick_blocks(question, tokens)


@pytest.mark.parametrize(("code", "template"), [
    ("chmod [选项] 模式 文件名\n", True),
    ("chown [新所有者][:新组] 文件名\n", True),
    ("sudo adduser 用户名\n", True),
    ("git clone <repository-url>\n", True),
    ("chmod 640 example.txt\n", False),
    ("if [ -f a.txt ]; then echo \"文件存在\"; fi\n", False),
    ("ls *.[ch]\n", False),
    ("cat < in.txt > out.txt\n", False),
])
def test_what_counts_as_a_syntax_template(code: str, template: bool) -> None:
    assert is_syntax_template(code) is template


def test_comments_leave_the_front_and_say_whether_they_said_something() -> None:
    renderer = Renderer()
    full = renderer.code("# 给文件 owner.txt 的所有者添加执行权限\nchmod u+x owner.txt  # 执行\n", "bash")
    front, text, said = without_comments(full)
    assert text == "chmod u+x owner.txt\n" and said
    assert front.startswith('<pre class="highlight" data-lang="bash"><code>chmod')
    include = renderer.code("#include <stdio.h>\nint main() { return 0; } // 入口\n", "c")
    assert without_comments(include)[1] == "#include <stdio.h>\nint main() { return 0; }\n"
    only = renderer.code("# 只有注释\n", "python")
    assert without_comments(only) == (only, "# 只有注释\n", False)  # the comments are the code
    assert without_comments(renderer.code("x = 1\n", "python"))[2] is False

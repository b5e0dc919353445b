#!/usr/bin/env python3
"""Benchmark `deckgen build` on knowledge-base-sized input: prints figures, asserts nothing.

    python scripts/benchmark.py            # synthetic 1×, 4×, 16× and ../shared/corpus if present
    python scripts/benchmark.py --scales 1 # just one size
    python scripts/benchmark.py --scales --corpus path/to/Interview-for-Algorithm-Engineer
    python scripts/benchmark.py --scales --rename 10000  # a rebuild after every title changed
    python scripts/benchmark.py --long-lines   # one-line files: 20 MB (refused), 1M-character lines
    python scripts/benchmark.py --pairs 20     # 20 pairs of builds at once: failures, if any

Each build runs as its own process (`python -m deckgen build … --no-run --offline`), so wall time includes
start-up and imports, as a user sees it, and peak memory is that process's maximum resident size.
"Cold" is a first build into an empty output folder (and an empty cache); "unchanged" is a rebuild
with nothing changed. Each figure is the median of --repeat builds.
1× is the size of the upstream knowledge base: about 115 files, 1,600 questions, 3 MB.
"""
from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED_CORPUS = REPO.parent / "shared" / "corpus"

FOLDERS = ["AI绘画基础", "AI视频基础", "大模型基础", "深度学习基础", "机器学习基础", "编程基础：Python",
           "模型部署基础", "计算机基础", "数字人基础", "自动驾驶基础"]
FILES_PER_SCALE = 115
QUESTIONS_PER_FILE = 14
WORDS = ("模型 训练 数据 注意力 梯度 损失 推理 部署 权重 编码 解码 特征 卷积 采样 优化 正则 归一化 的 是 在 "
         "通过 可以 进行 我们 Transformer Attention VAE UNet LoRA Diffusion CUDA TensorRT").split()
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c63f8cfc0f00f0004850180848c2921"
    "0000000049454e44ae426082"
)

# Per question, as measured on the whole knowledge base (../shared/docs/markdown-facts.md:
# 3.1 MB, 1,576 questions, 2,288 math spans, 1,032 fences of which 223 in lists) and on the
# sample in ../shared/corpus (lists, images, tables): about 2 KB, 1.45 formulas, 0.65 code blocks.
INLINE_MATH_PER_QUESTION = 1.15
DISPLAY_MATH_PER_QUESTION = 0.3
CODE_PER_QUESTION = 0.65
CODE_IN_LIST = 0.22


def sentence(rng: random.Random) -> str:
    words = "".join(rng.choice(WORDS) for _ in range(rng.randint(8, 26)))
    if rng.random() < INLINE_MATH_PER_QUESTION / 12:  # about twelve sentences to an answer
        words += f"，其中 $x_{{{rng.randint(1, 9)}}}$ 表示输入"
    if rng.random() < 0.15:
        words += f"，如 **{rng.choice(WORDS)}** 与 `{rng.choice(WORDS)}()`"
    return words + "。"


def code_block(rng: random.Random, indent: str = "") -> str:
    body = "\n".join(f"    x_{i} = torch.randn({i + 1}, 16)  # {rng.choice(WORDS)}"
                     for i in range(rng.randint(4, 14)))
    code = f"```python\nimport torch\n\ndef f():\n{body}\n    return x_0\n```"
    return "\n".join(indent + line for line in code.split("\n"))


def answer(rng: random.Random, image: str) -> str:
    parts = [sentence(rng) + sentence(rng) for _ in range(rng.randint(1, 3))]
    parts.append("### 原理\n\n" + "".join(sentence(rng) for _ in range(2)))
    if rng.random() < DISPLAY_MATH_PER_QUESTION:
        parts.append("$$\n\\mathrm{Attention}(Q,K,V)=\\mathrm{softmax}"
                     "\\left(\\frac{QK^T}{\\sqrt{d_k}}\\right)V\n$$")
    items = [f"- {sentence(rng)}" for _ in range(rng.randint(3, 10))]
    if rng.random() < CODE_PER_QUESTION:
        if rng.random() < CODE_IN_LIST:
            items.append("- 示例：\n\n" + code_block(rng, "  "))
        else:
            parts.append(code_block(rng))
    parts.append("\n".join(items))
    if rng.random() < 0.1:
        parts.append("| 方法 | 说明 |\n| --- | --- |\n" + "\n".join(
            f"| {rng.choice(WORDS)} | {sentence(rng)} |" for _ in range(3)))
    if rng.random() < 0.15:
        parts.append(f"![示意图]({image})")
    if rng.random() < 0.1:
        parts.append("![](https://example.com/remote.png)")
    if rng.random() < 0.2:
        parts.append(f"<font color=DeepSkyBlue>{sentence(rng)}</font>")
    return "\n\n".join(parts)


def make_corpus(target: Path, scale: int, files: int | None = None) -> None:
    """A synthetic knowledge base in the upstream layout, `scale` times its size (or `files` files)."""
    rng = random.Random(scale)
    for n in range(files if files is not None else FILES_PER_SCALE * scale):
        folder = target / FOLDERS[n % len(FOLDERS)]
        (folder / "imgs").mkdir(parents=True, exist_ok=True)
        (folder / "imgs" / f"fig{n}.png").write_bytes(PNG)
        titles = [f"{q + 1}.{rng.choice(WORDS)}{rng.choice(WORDS)}的作用是什么（{n}-{q}）？"
                  for q in range(QUESTIONS_PER_FILE)]
        ids = [re.sub(r"\s", "", t) for t in titles]
        toc = "\n".join(f"- [{t}](#user-content-{i})" for t, i in zip(titles, ids))
        body = "\n\n".join(
            f'<h2 id="{i}">{t}</h2>\n\n{answer(rng, f"./imgs/fig{n}.png")}' for t, i in zip(titles, ids)
        )
        (folder / f"知识点{n:04d}.md").write_text(f"# 目录\n\n{toc}\n\n{body}\n", encoding="utf-8")


def corpus_size(folder: Path) -> tuple[int, int]:
    files = [p for p in folder.rglob("*.md")]
    return len(files), sum(p.stat().st_size for p in files)


def run_build(source: Path, work: Path) -> tuple[float, float, str]:
    """(wall seconds, peak MB, output) of one `deckgen build` process (its CPU seconds, with its
    workers', in LAST_CPU)."""
    global LAST_CPU
    command = [sys.executable, "-m", "deckgen", "build", str(source), "-o", str(work / "build"),
               "--lock", str(work / "deckgen.lock"), "--no-run", "--offline"]  # builds, not downloads
    with tempfile.TemporaryFile() as log:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=work)
        _, status, usage = os.wait4(process.pid, 0)  # the child's own peak, not all children's
        wall = time.perf_counter() - started
        log.seek(0)
        output = log.read().decode("utf-8", "replace")
    LAST_CPU = usage.ru_utime + usage.ru_stime  # its own and its (reaped) workers'
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        raise SystemExit(f"build failed ({code}):\n{output}")
    return wall, usage.ru_maxrss / 1024, output


LAST_CPU = 0.0


def cards_in(output: str) -> int:
    return sum(int(m) for m in re.findall(r"^.*?: (\d+) questions?", output, flags=re.M))


def rename_all(source: Path) -> None:
    """Every question retitled (heading, id and table of contents), its answer unchanged."""
    for path in source.rglob("*.md"):
        text = path.read_text(encoding="utf-8")
        path.write_text(text.replace("的作用是什么（", "有什么用（"), encoding="utf-8")


def measure_rename(questions: int) -> None:
    """A build, then every title changed and the rebuild timed: renames are matched by answer,
    through an index, so this stays near-linear (all pairs of 10,000 took 900 s)."""
    files = -(-questions // QUESTIONS_PER_FILE)
    with tempfile.TemporaryDirectory(prefix="deckgen-rename-") as tmp:
        source, work = Path(tmp) / "kb", Path(tmp) / "work"
        work.mkdir()
        make_corpus(source, 1, files=files)
        cold, _, out = run_build(source, work)
        cold_cpu = LAST_CPU
        rename_all(source)
        seconds, peak, out = run_build(source, work)
        cpu = LAST_CPU
        renamed = len(re.findall(r"^renamed ", out, flags=re.M))
        added = len(re.findall(r"^added ", out, flags=re.M))
    print(f"mass rename      {files:>5} files, {cards_in(out)} questions, every title changed | "
          f"rebuild {seconds:6.2f} s, {cpu:.1f} s CPU (cold build {cold:.2f} s, {cold_cpu:.1f} s CPU) "
          f"{peak:5.0f} MB peak | "
          f"{renamed} renamed, {added} added", flush=True)
    _time_matching(questions)


def _time_matching(n: int) -> None:
    """The identity step alone, in this process: n renamed questions against a lock of n."""
    from deckgen.ids import IdentityResolver, Lock, PlannedNote, normalize_key, settle
    from deckgen.model import Question

    rng = random.Random(n)

    def questions(verb: str) -> list[Question]:
        made = []
        for i in range(n):
            title = f"{rng.choice(WORDS)}{verb}{i}？"
            rng.seed(i)
            answer = "".join(sentence(rng) for _ in range(8))
            made.append(Question(title, answer, Path("a.md"), i, i, FOLDERS[i % 10], (FOLDERS[i % 10],),
                                 normalize_key(title)))
        return made

    first = questions("的作用是什么")
    identities, _ = IdentityResolver(Lock()).questions(first)
    planned = [PlannedNote(i.key, None, "qa", i.guid, q.section, (q.title,), (), q.section, q.title, i)
               for q, i in zip(first, identities)]
    lock = settle(planned, Lock(), {}, {}, 0).lock
    renamed = questions("有什么用")
    started, cpu = time.perf_counter(), time.process_time()
    identities, _ = IdentityResolver(lock).questions(renamed)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    kept = sum(i.renamed_from is not None for i in identities)
    print(f"rename matching  {n} questions renamed at once: {seconds:.2f} s ({cpu:.2f} s CPU) in the "
          f"identity step, {kept} matched to their notes", flush=True)


def measure(name: str, source: Path, repeat: int) -> None:
    """Median of `repeat` cold builds (each into an empty folder) and of as many unchanged rebuilds."""
    files, size = corpus_size(source)
    cold, cold_mb, warm, warm_mb = [], [], [], []
    cards = 0
    for _ in range(repeat):
        with tempfile.TemporaryDirectory(prefix="deckgen-bench-") as tmp:
            seconds, peak, out = run_build(source, Path(tmp))
            cold.append(seconds)
            cold_mb.append(peak)
            cards = cards_in(out)
            seconds, peak, _ = run_build(source, Path(tmp))
            warm.append(seconds)
            warm_mb.append(peak)
    median = statistics.median
    print(f"{name:<16} {files:>5} files {size / 1e6:>6.1f} MB {cards:>6} cards | "
          f"cold {median(cold):6.2f} s {cards / median(cold):>6.0f} cards/s {max(cold_mb):5.0f} MB peak | "
          f"unchanged {median(warm):5.2f} s {max(warm_mb):4.0f} MB peak", flush=True)


# One-line files: (name, what the line repeats, its size in characters). 20 MB is refused (above
# parse.MAX_SOURCE_BYTES); the others are lines just under parse.MAX_LINE_CHARS: plain text, a
# mix of the knowledge base's markup, the densest markup found (a link every 7 characters), and
# `[` left open before one `]` at the end.
LONG_LINES = [
    ("20 MB, one line", "文字 $x_i$ 与 **粗体** 和 `code` [链接](https://e.com) ", 15_000_000),
    ("1M chars plain", "中文文字，标点。 words ", 999_000),
    ("1M chars mixed", "文字 $x_i$ 与 **粗体** 和 `code` [链接](https://e.com) ", 999_000),
    ("1M chars [a](b)", "[a](b) ", 999_000),
    ("1M chars [a … ]", "[a ", 999_000),
]


def measure_long_lines(names: list[str]) -> None:
    """Wall time and peak memory (the largest of the build and its workers) of one build of a
    file that is a single line."""
    for name, unit, size in LONG_LINES:
        if names and not any(n in name for n in names):
            continue
        with tempfile.TemporaryDirectory(prefix="deckgen-long-") as tmp:
            work = Path(tmp)
            (work / "source").mkdir()
            line = unit * (size // len(unit)) + ("]" if unit == "[a " else "")
            (work / "source" / "a.md").write_text(f"# 节\n\n## 【一】问题？\n\n{line}\n", encoding="utf-8")
            probe = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
                     "code = subprocess.run(sys.argv[1:], capture_output=True).returncode; "
                     "print(code, time.perf_counter() - t, "
                     "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)")
            command = [sys.executable, "-c", probe, sys.executable, "-m", "deckgen", "build", "source", "--no-run"]
            done = subprocess.run(command, cwd=work, capture_output=True, text=True)
            code, seconds, peak = done.stdout.split()
            outcome = "built" if code == "0" else f"refused (exit {code})"
            print(f"{name:<16} {(work / 'source' / 'a.md').stat().st_size / 1e6:>6.1f} MB | {outcome:<18} "
                  f"{float(seconds):7.2f} s {float(peak):6.0f} MB peak (build and workers)", flush=True)


def measure_concurrent_pairs(pairs: int) -> None:
    """`pairs` times, two builds of one project at once, each after an edit: how many fail."""
    with tempfile.TemporaryDirectory(prefix="deckgen-pairs-") as tmp:
        work = Path(tmp)
        make_corpus(work / "source", 1)
        article = sorted((work / "source").rglob("*.md"))[0]
        failures = []
        started = time.perf_counter()
        for pair in range(pairs):
            article.write_text(article.read_text(encoding="utf-8") + f"\n编辑 {pair}。\n", encoding="utf-8")
            builds = [subprocess.Popen([sys.executable, "-m", "deckgen", "build", "source", "--no-run"],
                                       cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                      for _ in range(2)]
            for process in builds:
                _, err = process.communicate()
                if process.returncode != 0:
                    failures.append(err.decode("utf-8", "replace").strip())
        print(f"{pairs} concurrent build pairs (synthetic 1×): {len(failures)} of {2 * pairs} builds failed "
              f"in {time.perf_counter() - started:.0f} s", flush=True)
        for failure in failures:
            print("  ", failure.splitlines()[-1] if failure else "(no message)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scales", type=int, nargs="*", default=[1, 4, 16])
    parser.add_argument("--repeat", type=int, default=3, help="builds to take the median of")
    parser.add_argument("--corpus", type=Path, action="append", default=[],
                        help="also a folder of your own, e.g. a checkout of the knowledge base")
    parser.add_argument("--rename", type=int, nargs="?", const=10_000, default=None,
                        help="also time a rebuild after renaming every question (default 10,000)")
    parser.add_argument("--long-lines", nargs="*", metavar="NAME",
                        help="instead: one-line files (all, or those whose name contains NAME)")
    parser.add_argument("--pairs", type=int, metavar="N",
                        help="instead: N pairs of builds of one project run at once; prints failures")
    args = parser.parse_args()
    if args.long_lines is not None:
        measure_long_lines(args.long_lines)
        return
    if args.pairs:
        measure_concurrent_pairs(args.pairs)
        return
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; each build is one process "
          f"(median of {args.repeat}; peak memory: the largest of them)")
    for scale in args.scales:
        with tempfile.TemporaryDirectory(prefix="deckgen-corpus-") as tmp:
            source = Path(tmp) / "kb"
            make_corpus(source, scale)
            measure(f"synthetic {scale}×", source, args.repeat)
    for folder in args.corpus:
        measure(folder.name, folder, args.repeat)
    if args.rename:
        measure_rename(args.rename)
    if SHARED_CORPUS.is_dir():
        with tempfile.TemporaryDirectory(prefix="deckgen-corpus-") as tmp:
            source = Path(tmp) / "corpus"
            shutil.copytree(SHARED_CORPUS, source)  # the shared copy is read-only
            measure("shared/corpus", source, args.repeat)


if __name__ == "__main__":
    main()

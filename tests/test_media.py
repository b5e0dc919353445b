"""Every image reaches the phone: local paths in the forms GitHub shows, remote images downloaded
once and packed, sizes capped, content checked, names clean. Remote images come from a server on
127.0.0.1: the tests reach no other network."""
from __future__ import annotations

import http.server
import json
import re
import sqlite3
import threading
import tracemalloc
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from deckgen import media
from deckgen.build import build
from deckgen.cli import main
from deckgen.config import Settings
from deckgen.model import MediaFile
from deckgen.package import write_package
from deckgen.render import Renderer
from tests.conftest import PNG, SHARED_KB

ROOT = "三年面试五年模拟"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"jpeg body"


def render(text: str, folder: Path, renderer: Renderer | None = None):  # noqa: ANN201
    renderer = renderer or Renderer([folder])
    return renderer.markdown(text, path=folder / "q.md", first_line=10)


def kb_file(root: Path, body: str, name: str = "图片知识点.md") -> Path:
    """A knowledge-base file with one question whose answer is `body`."""
    folder = root / "kb" / "深度学习基础"
    folder.mkdir(parents=True, exist_ok=True)
    stem = Path(name).stem
    (folder / name).write_text(f'<h2 id="{stem}">1.{stem}：这张图说明了什么？</h2>\n\n{body}\n', encoding="utf-8")
    return root / "kb"


def settings_for(tmp_path: Path, source: Path, **changes: object) -> Settings:
    return Settings(sources=(source,), output=tmp_path / "out", lock=tmp_path / "kb.lock",
                    run_code=False, **changes)  # type: ignore[arg-type]


def package(path: Path, tmp_path: Path) -> tuple[list[str], dict[str, bytes]]:
    """(the answers, media by name) of an .apkg."""
    with zipfile.ZipFile(path) as archive:
        names = json.loads(archive.read("media"))
        files = {name: archive.read(index) for index, name in names.items()}
        (tmp_path / "c.anki2").write_bytes(archive.read("collection.anki2"))
    conn = sqlite3.connect(tmp_path / "c.anki2")
    answers = [flds.split("\x1f")[1] for (flds,) in conn.execute("SELECT flds FROM notes")]
    conn.close()
    return answers, files


def sources(card_html: str) -> list[str]:
    return re.findall(r'<img\b[^>]*\ssrc="([^"]*)"', card_html)


# -- local images: the forms GitHub renders ---------------------------------------------------------


@pytest.mark.parametrize("reference", [
    "![图](imgs/x y.png)",
    "![图](./imgs/x y.png)",
    '![图](imgs/x y.png "标题")',
    "![图](imgs/x%20y.png)",
    "![图](<imgs/x y.png>)",
    "![图](imgs/x%20y.png?raw=true)",
    "![图](imgs/x%20y.png#frag)",
    '<img src="imgs/x y.png" alt="图">',
    "<img src='./imgs/x%20y.png' alt=图 width=300>",
    "<div align=center><img src=imgs/x%20y.png></div>",
])
def test_every_form_of_a_local_path_packs_the_image(tmp_path: Path, reference: str) -> None:
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "x y.png").write_bytes(PNG)
    out = render(f"前文 {reference} 后文", tmp_path)
    assert out.diagnostics == []
    assert [m.source for m in out.media] == [(tmp_path / "imgs" / "x y.png").resolve()]
    assert sources(out.html) == [out.media[0].name]
    assert "![" not in out.html and "前文" in out.html and "后文" in out.html


def test_spaced_image_inside_a_link_and_a_list_keeps_its_surroundings(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "Layout Attention.jpg").write_bytes(JPEG)
    out = render("- 第一项 [![图 *一*](imgs/Layout Attention.jpg)](https://e.com) 尾\n- 第二项", tmp_path)
    assert out.diagnostics == []
    name = out.media[0].name
    assert re.fullmatch(r"Layout_Attention-[0-9a-f]{10}\.jpg", name)
    assert f'<a href="https://e.com" rel="noopener noreferrer"><img src="{name}" alt="图 一"></a> 尾' in out.html
    assert "第二项" in out.html


def test_missing_spaced_image_is_a_warning_at_its_line_not_raw_text(tmp_path: Path) -> None:
    out = render("一\n二 ![缺图](imgs/no such.png)", tmp_path)
    assert "![" not in out.html and '<span class="image-missing">缺图</span>' in out.html
    assert [(d.line, d.message) for d in out.diagnostics] == [(11, "image not found: imgs/no such.png")]


# -- names, content and size ------------------------------------------------------------------------


@pytest.mark.parametrize("file_name", [
    'pic.png" onerror="alert(1)',
    "pic.png' onerror='alert(1)",
    "pic.png><script>alert(1)<script>",
    "a b\t<c>.PNG",
])
def test_media_names_are_clean_whatever_the_file_is_called(tmp_path: Path, file_name: str) -> None:
    (tmp_path / file_name).write_bytes(PNG)
    reference = file_name.replace("<", "%3C").replace(">", "%3E").replace("\t", "%09")
    out = render(f"![图](<{reference}>)\n\n<img src=\"{reference.replace(chr(34), '&quot;')}\">", tmp_path)
    assert out.diagnostics == []
    (item,) = out.media
    assert re.fullmatch(r"[\w\-]+-[0-9a-f]{10}\.png", item.name), item.name
    assert sources(out.html) == [item.name, item.name]
    assert "onerror" not in out.html.replace(item.name, "") and "<script" not in out.html


def test_the_extension_comes_from_the_content(tmp_path: Path) -> None:
    (tmp_path / "photo.png").write_bytes(JPEG)  # a JPEG saved under .png
    (tmp_path / "diagram").write_bytes(b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>')
    out = render("![](photo.png) ![](diagram)", tmp_path)
    assert [m.name[-4:] for m in out.media] == [".jpg", ".svg"]


def test_a_file_that_is_no_image_is_refused_with_a_warning(tmp_path: Path) -> None:
    (tmp_path / "notes.png").write_text("<html>not an image</html>")
    out = render("一\n\n![图](notes.png)", tmp_path)
    assert out.media == [] and '<span class="image-missing">图</span>' in out.html
    assert [(d.line, d.message) for d in out.diagnostics] == [
        (12, "image refused: notes.png: not an image (its content is no image format Anki shows)")]


def test_an_image_above_the_cap_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "huge.png"
    with open(big, "wb") as handle:  # 300 MB, sparse: nothing is written but the header
        handle.write(PNG)
        handle.truncate(300 << 20)
    tracemalloc.start()
    try:
        out = render("![大图](huge.png)", tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.media == [] and '<span class="image-missing">大图</span>' in out.html
    assert [(d.line, d.message) for d in out.diagnostics] == [
        (10, "image refused: huge.png: 300.0 MB, above the 20.0 MB cap (max_image_mb)")]
    assert peak < 20 << 20


def test_the_cap_is_a_setting(tmp_path: Path) -> None:
    image = tmp_path / "kb" / "深度学习基础" / "imgs" / "mid.png"
    image.parent.mkdir(parents=True)
    image.write_bytes(PNG + bytes(3 << 20))
    source = kb_file(tmp_path, "![](imgs/mid.png)")
    (tmp_path / "pyproject.toml").write_text("[tool.deckgen]\nmax_image_mb = 2\n")
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "pyproject.toml"), "check", str(source)])
    assert "mid.png: 3.0 MB, above the 2.0 MB cap (max_image_mb)" in result.output
    assert build(settings_for(tmp_path, source, max_image_mb=4)).diagnostics == []


def test_an_image_is_streamed_into_the_package_never_held_whole(tmp_path: Path) -> None:
    image = tmp_path / "big.png"
    with open(image, "wb") as handle:
        handle.write(PNG)
        handle.truncate(60 << 20)
    tracemalloc.start()
    try:
        write_package(tmp_path / "p.apkg", [], {}, [MediaFile(image, "big-0123456789.png")])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 10 << 20
    with zipfile.ZipFile(tmp_path / "p.apkg") as archive:
        assert archive.getinfo("0").file_size == 60 << 20


def test_equal_images_under_two_names_are_stored_once_per_package(tmp_path: Path) -> None:
    folder = tmp_path / "kb" / "深度学习基础"
    (folder / "imgs").mkdir(parents=True)
    (folder / "imgs" / "架构图.png").write_bytes(PNG)
    (folder / "imgs" / "流程图.png").write_bytes(PNG)
    kb_file(tmp_path, "![](imgs/架构图.png) ![](./imgs/架构图.png)", "一.md")
    source = kb_file(tmp_path, "![](imgs/流程图.png)", "二.md")
    settings = settings_for(tmp_path, source)
    assert build(settings).diagnostics == []
    for name in ("深度学习基础.apkg", f"{ROOT}.apkg"):
        answers, files = package(settings.output / name, tmp_path)
        assert list(files.values()) == [PNG]
        assert {src for answer in answers for src in sources(answer)} == set(files)


# -- remote images --------------------------------------------------------------------------------


class _Images(http.server.BaseHTTPRequestHandler):
    """Serves the test's images; counts every request."""

    routes: dict[str, tuple[int, str, bytes]] = {}
    hits: Counter = Counter()

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.hits[self.path] += 1
        if self.path == "/to-file.png":
            self.send_response(302)
            self.send_header("Location", "file:///etc/passwd")
            self.end_headers()
            return
        if self.path == "/slow.png":
            threading.Event().wait(2)
        status, kind, body = self.routes.get(self.path.split("?")[0], (404, "text/plain", b"not found"))
        self.send_response(status)
        self.send_header("Content-Type", kind)
        if self.path == "/cut.png":  # promises more than it sends, then hangs up
            self.send_header("Content-Length", str(len(body) + 1000))
        elif self.path != "/unsized.png":
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except OSError:
            pass  # the client gave up (too big, too slow)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Images.routes = {
        "/fig.png": (200, "image/png", PNG),
        "/photo": (200, "application/octet-stream", JPEG),  # no extension, wrong type: an image all the same
        "/page.png": (200, "image/png", b"<!doctype html><title>login</title>"),
        "/huge.png": (200, "image/png", PNG + bytes(2 << 20)),
        "/unsized.png": (200, "image/png", PNG + bytes(2 << 20)),
        "/slow.png": (200, "image/png", PNG),
        "/cut.png": (200, "image/png", PNG),
    }
    _Images.hits = Counter()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_remote_images_are_downloaded_once_packed_and_work_offline(tmp_path: Path, server: str) -> None:
    kb_file(tmp_path, f"![图]({server}/fig.png)\n\n<img src=\"{server}/photo?a=1&amp;b=2\" alt=照片>", "一.md")
    source = kb_file(tmp_path, f"同一张图：![图]({server}/fig.png)\n\n![again]({server}/fig.png)", "二.md")
    settings = settings_for(tmp_path, source)
    report = build(settings)
    assert report.diagnostics == []
    assert _Images.hits["/fig.png"] == 1 and _Images.hits["/photo?a=1&b=2"] == 1
    answers, files = package(settings.output / f"{ROOT}.apkg", tmp_path)
    assert sorted(files.values()) == sorted([PNG, JPEG])
    assert all(src in files for answer in answers for src in sources(answer))
    assert sum(len(sources(a)) for a in answers) == 4 and server not in "".join(answers)
    assert [(s.images, s.remote_images) for s in report.sections] == [(3, 0)]
    # cached by URL: a changed file rebuilds without asking the server again, even offline
    (source / "深度学习基础" / "二.md").write_text(
        f'<h2 id="二">1.二：这张图说明了什么？</h2>\n\n改了：![图]({server}/fig.png)\n', encoding="utf-8")
    for offline in (False, True):
        assert build(settings_for(tmp_path, source, offline=offline)).diagnostics == []
    assert _Images.hits["/fig.png"] == 1
    assert json.loads((tmp_path / ".deckgen-cache" / "media" / "index.json").read_text())["urls"]


def test_failed_downloads_are_warnings_at_their_lines_and_stay_remote(
        tmp_path: Path, server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(media, "DOWNLOAD_TIMEOUT", 0.5)
    lines = ["page", "huge", "unsized", "missing", "to-file", "cut", "slow"]
    body = "\n\n".join(f"![{name}]({server}/{name}.png)" for name in lines)
    source = kb_file(tmp_path, body)
    settings = settings_for(tmp_path, source, max_image_mb=1)
    report = build(settings)
    warnings = {d.line: d.message for d in report.diagnostics}
    assert all(d.path.name == "图片知识点.md" and d.level == "warning" for d in report.diagnostics)
    expected = {
        3: "not an image (the server sent image/png)",
        5: "2.0 MB, above the 1.0 MB cap (max_image_mb)",
        7: "above the 1.0 MB cap (max_image_mb)",
        9: "the server answered 404 Not Found",
        11: "the server answered 302 Found - Redirection to url 'file:///etc/passwd' is not allowed",
        13: f"the download was cut short ({len(PNG)} of {len(PNG) + 1000} bytes)",
        15: "no answer within 0.5 s",
    }
    assert sorted(warnings) == sorted(expected)
    for line, reason in expected.items():
        url = f"{server}/{lines[(line - 3) // 2]}.png"
        assert warnings[line] == f"remote image not packed: {url}: {reason}; the card loads it from the web"
    answers, files = package(settings.output / f"{ROOT}.apkg", tmp_path)
    assert files == {} and len(sources(answers[0])) == 7 and all(s.startswith(server) for s in sources(answers[0]))
    assert report.sections[0].remote_images == 7
    # a failure is not remembered: the next build, of the same input, tries again
    build(settings)
    assert _Images.hits["/page.png"] == 2


def test_offline_downloads_nothing_and_says_nothing(tmp_path: Path, server: str) -> None:
    source = kb_file(tmp_path, f"![图]({server}/fig.png)")
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(main, ["build", str(source), "-o", str(out), "--lock", str(tmp_path / "l.lock"),
                                  "--no-run", "--offline"])
    assert result.exit_code == 0, result.output
    assert "0 images (1 remote); 0 warnings" in result.output and "warning:" not in result.output
    result = runner.invoke(main, ["check", str(source), "--offline"])
    assert result.exit_code == 0 and "0 error(s), 0 warning(s)" in result.output
    result = runner.invoke(main, ["status", str(source), "-o", str(out), "--lock", str(tmp_path / "l.lock"),
                                  "--no-run", "--offline"])
    assert result.exit_code == 0 and "0 images (1 remote); 0 warnings" in result.output
    assert _Images.hits["/fig.png"] == 0
    answers, files = package(out / f"{ROOT}.apkg", tmp_path)
    assert files == {} and sources(answers[0]) == [f"{server}/fig.png"]
    # the setting does the same
    (tmp_path / "pyproject.toml").write_text("[tool.deckgen]\noffline = true\n")
    result = runner.invoke(main, ["--config", str(tmp_path / "pyproject.toml"), "check", str(source)])
    assert result.exit_code == 0 and _Images.hits["/fig.png"] == 0
    # and without it, check downloads (to report what fails) as build does
    result = runner.invoke(main, ["check", str(source)])
    assert result.exit_code == 0 and _Images.hits["/fig.png"] == 1


def test_a_tampered_media_cache_is_downloaded_again(tmp_path: Path, server: str) -> None:
    source = kb_file(tmp_path, f"![图]({server}/fig.png)")
    settings = settings_for(tmp_path, source)
    build(settings)
    folder = tmp_path / ".deckgen-cache" / "media"
    (data,) = [p for p in folder.iterdir() if p.suffix == ".png"]
    data.write_bytes(b"<script>alert(1)</script>")
    (settings.output / f"{ROOT}.apkg").unlink()  # so the build does its work again
    assert build(settings).diagnostics == []
    assert _Images.hits["/fig.png"] == 2
    assert list(package(settings.output / f"{ROOT}.apkg", tmp_path)[1].values()) == [PNG]


@pytest.mark.parametrize("tamper", [{"sha256": "../../../etc/passwd"}, {"ext": 3}, {"name": None}, "not an entry"])
def test_a_tampered_media_index_entry_is_downloaded_again(tmp_path: Path, server: str, tamper) -> None:  # noqa: ANN001
    source = kb_file(tmp_path, f"![图]({server}/fig.png)")
    settings = settings_for(tmp_path, source)
    build(settings)
    index = tmp_path / ".deckgen-cache" / "media" / "index.json"
    data = json.loads(index.read_text(encoding="utf-8"))
    (url,) = data["urls"]
    data["urls"][url] = {**data["urls"][url], **tamper} if isinstance(tamper, dict) else tamper
    index.write_text(json.dumps(data), encoding="utf-8")
    (settings.output / f"{ROOT}.apkg").unlink()  # so the build does its work again
    assert build(settings).diagnostics == []
    assert _Images.hits["/fig.png"] == 2
    assert list(package(settings.output / f"{ROOT}.apkg", tmp_path)[1].values()) == [PNG]


def test_an_unreachable_host_is_a_warning_not_an_error(tmp_path: Path) -> None:
    source = kb_file(tmp_path, "![图](https://files.example.invalid/a.png)\n\n![图2](https://files.example.invalid/b.png)")
    report = build(settings_for(tmp_path, source))
    assert not report.errors and report.packages
    assert [d.line for d in report.diagnostics] == [3, 5]
    assert all("cannot connect" in d.message for d in report.diagnostics)


# -- the knowledge base ---------------------------------------------------------------------------


@pytest.mark.skipif(not SHARED_KB.is_dir(), reason="../shared/kb is absent")
def test_every_local_image_of_the_knowledge_base_is_packed(tmp_path: Path) -> None:
    settings = Settings(sources=(SHARED_KB,), output=tmp_path / "out", lock=tmp_path / "kb.lock",
                        run_code=False, offline=True)
    report = build(settings)
    answers, files = package(settings.output / f"{ROOT}.apkg", tmp_path)
    assert not any("![" in answer for answer in answers)
    local = [src for answer in answers for src in sources(answer) if not src.startswith(("http:", "https:"))]
    assert len(local) > 250 and all(src in files for src in local)
    # what is not packed is missing upstream too (or an absolute or data: path), each at its line
    for d in report.diagnostics:
        if d.message.startswith("image not found: "):
            assert not (d.path.parent / d.message.removeprefix("image not found: ")).exists()
        else:
            assert not d.message.startswith("image") or "absolute path" in d.message or "data:" in d.message


def test_anki_imports_local_and_downloaded_images_and_misses_none(tmp_path: Path, server: str, anki) -> None:  # noqa: ANN001
    folder = tmp_path / "kb" / "深度学习基础" / "imgs"
    folder.mkdir(parents=True)
    (folder / "Layout Attention.jpg").write_bytes(JPEG)
    source = kb_file(tmp_path, f"![本地](imgs/Layout Attention.jpg)\n\n![远程]({server}/fig.png)")
    settings = settings_for(tmp_path, source)
    assert build(settings).diagnostics == []
    anki.import_package(settings.output / f"{ROOT}.apkg")
    check = anki.col.media.check()
    assert not check.missing and not check.unused
    (note,) = anki.notes("deckgen Q&A")
    stored = {name: (Path(anki.col.media.dir()) / name).read_bytes() for name in sources(note["Answer"])}
    assert sorted(stored.values()) == sorted([JPEG, PNG])
    rendered = anki.cards()[0].render_output().answer_text
    assert all(f'src="{name}"' in rendered for name in stored)

#!/usr/bin/env python3
"""Render a built .apkg's cards as Anki renders them, to HTML pages a browser can show.

    python scripts/preview.py build/深度学习基础.apkg -o preview/ [--night] [--mathjax path/to/tex-chtml.js]

Each card is imported into a throw-away collection with Anki's own backend (the `anki` package,
a test extra) and rendered with `render_output()`; the page wraps the answer side in the card's
CSS and the body classes Anki clients use (`card`, and `nightMode night_mode` with --night).
With --mathjax the page typesets math with that MathJax 3 build, configured like Anki's.
"""
from __future__ import annotations

import argparse
import html
import shutil
import tempfile
from pathlib import Path

MATHJAX_CONFIG = """<script>
window.MathJax = {tex: {inlineMath: [["\\\\(", "\\\\)"]], displayMath: [["\\\\[", "\\\\]"]],
  processEscapes: false}, startup: {typeset: true}};
</script>"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("package", type=Path)
    parser.add_argument("-o", "--output", type=Path, default=Path("preview"))
    parser.add_argument("--night", action="store_true", help="render in night mode")
    parser.add_argument("--mathjax", type=Path, help="a MathJax 3 tex-chtml.js to typeset math")
    args = parser.parse_args()

    from anki.collection import Collection, ImportAnkiPackageOptions, ImportAnkiPackageRequest

    args.output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        col = Collection(str(Path(tmp) / "collection.anki2"))
        col.import_anki_package(ImportAnkiPackageRequest(
            package_path=str(args.package), options=ImportAnkiPackageOptions()))
        col.models._clear_cache()
        classes = "card nightMode night_mode" if args.night else "card"
        script = ""
        if args.mathjax:
            script = f'{MATHJAX_CONFIG}<script src="{args.mathjax.resolve().as_uri()}"></script>'
        media = args.output / "media"  # the collection is temporary: keep its files beside the pages
        shutil.copytree(col.media.dir(), media, dirs_exist_ok=True)
        for number, cid in enumerate(sorted(col.find_cards("")), start=1):
            out = col.get_card(cid).render_output()
            body = out.answer_text.replace('src="', 'src="media/')
            page = (f"<!doctype html><html><head><meta charset='utf-8'>"
                    f"<meta name='viewport' content='width=device-width'>"
                    f"<style>{out.css}</style>{script}</head>"
                    f"<body class='{classes}'>{body}</body></html>")
            path = args.output / f"card-{number:03d}.html"
            path.write_text(page, encoding="utf-8")
            print(path, html.unescape(out.question_text[:60]).replace("\n", " "))
        col.close()


if __name__ == "__main__":
    main()

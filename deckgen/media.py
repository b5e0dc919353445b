"""Images a card shows, made safe to pack: recognised by content, bounded in size, fetched once.

Local images are looked at by the renderer (`local_image`); remote ones are fetched by the build
after rendering (`pack_remote`), so rendering stays free of network I/O and each URL is fetched
once per build, whatever process rendered the card. Downloads are remembered in
`<cache>/media/`: the image data under its SHA-256 and `index.json` mapping each URL to it.

A packed file's name is `<stem>-<sha256[:10]>.<ext>`: the stem cleaned to letters, digits, `_`,
`-` and `.`, the extension from the content (never from the source's name), so no name can
carry quotes, spaces or markup into a card.
"""
from __future__ import annotations

import hashlib
import html
import http.client
import json
import os
import re
import tempfile
import time
import unicodedata
import urllib.error
import urllib.request
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Protocol
from urllib.parse import unquote, urlsplit

from deckgen import datafile
from deckgen.atomic import write_atomic
from deckgen.model import WARNING, Diagnostic, MediaFile, RemoteImage

DOWNLOAD_TIMEOUT = 10.0  # seconds without a byte from the server
DOWNLOAD_DEADLINE = 60.0  # seconds for one whole download
PARALLEL_HOSTS = 8
_HEAD = 4096  # bytes read to recognise a format
_CHUNK = 1 << 16
_INDEX_VERSION = 1

_UNSAFE_NAME_CHARS = re.compile(r"[^\w.\-]+")
_SVG = re.compile(
    rb"^(?:\xef\xbb\xbf)?\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*(?:<!DOCTYPE[^>]*>\s*)?"
    rb"(?:<!--.*?-->\s*)*<svg[\s>]",
    re.IGNORECASE | re.DOTALL,
)
_NAME_DIGEST = re.compile(r"-([0-9a-f]{10})\.[a-z]+$")
_IMG_SRC = re.compile(r'(<img\b[^>]*?\ssrc=")([^"]*)(")', re.IGNORECASE)


class MediaRefused(Exception):
    """The image cannot be packed; the message says why, for a warning."""


def image_extension(head: bytes) -> str | None:
    """The extension of the image format these first bytes start, or None: not an image."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return ".png"
    if head.startswith(b"\xff\xd8\xff"):
        return ".jpg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return ".gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return ".avif"
    if head[:2] == b"BM" and len(head) >= 14 and head[6:10] == b"\0\0\0\0":  # reserved: zero
        return ".bmp"
    if head.startswith(b"\0\0\1\0"):
        return ".ico"
    if _SVG.match(head):  # in an <img>, an SVG's scripts never run
        return ".svg"
    return None


def packed_name(stem: str, digest: str, extension: str) -> str:
    """The file name inside the package: a clean stem, the content's digest and format."""
    stem = _UNSAFE_NAME_CHARS.sub("_", unicodedata.normalize("NFC", stem))
    stem = stem.strip("._")[:60] or "image"
    return f"{stem}-{digest[:10]}{extension}"


def size_text(size: int) -> str:
    return f"{size / 2**30:.1f} GB" if size >= 2**30 else f"{size / 2**20:.1f} MB"


def local_image(file: Path, max_bytes: int) -> str:
    """The packed name of a local image file, read in chunks (never whole).

    Raises MediaRefused when it is above the cap or not an image, OSError when unreadable.
    """
    size = file.stat().st_size
    if size > max_bytes:
        raise MediaRefused(f"{size_text(size)}, above the {size_text(max_bytes)} cap (max_image_mb)")
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        head = handle.read(_HEAD)
        extension = image_extension(head)
        if extension is None:
            raise MediaRefused("not an image (its content is no image format Anki shows)")
        digest.update(head)
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return packed_name(file.stem, digest.hexdigest(), extension)


# --- remote images --------------------------------------------------------------------------------


class _Answer(Protocol):  # deckgen.render.Rendered, without importing the rendering stack
    html: str
    media: list[MediaFile]
    remote: list[RemoteImage]
    remote_images: int


@dataclass(frozen=True)
class Downloaded:
    file: Path  # the image data in the cache
    name: str  # its packed name


@dataclass(frozen=True)
class _IndexEntry:
    """A downloaded image in the index, by its URL."""

    sha256: str
    ext: str  # the data file's extension, from the content
    name: str  # its packed name


class MediaCache:
    """Downloaded images by URL: data files named by SHA-256, and a JSON index (never code)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._index: dict[str, dict] = {}
        try:
            data = json.loads((folder / "index.json").read_text(encoding="utf-8"))
            if isinstance(data, dict) and data.get("version") == _INDEX_VERSION:
                urls = data.get("urls")
                self._index = urls if isinstance(urls, dict) else {}
        except (OSError, ValueError):
            pass  # no cache, or a broken one: download again

    def get(self, url: str, max_bytes: int) -> Downloaded | None:
        try:
            entry = datafile.load(_IndexEntry, self._index.get(url))
        except datafile.DataError:
            return None
        digest, extension, name = entry.sha256, entry.ext, entry.name
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            return None
        file = self.folder / f"{digest}{extension}"
        try:
            size = file.stat().st_size
            with open(file, "rb") as handle:
                found = image_extension(handle.read(_HEAD))
        except OSError:
            return None
        # What the cache holds is checked like a download: an image, within the cap, named cleanly.
        if found != extension or size > max_bytes or name != packed_name(_url_stem(url), digest, extension):
            return None
        return Downloaded(file, name)

    def put(self, url: str, downloaded: Downloaded, digest: str) -> None:
        self._index[url] = datafile.dump(_IndexEntry(digest, downloaded.file.suffix, downloaded.name))

    def save(self) -> None:
        data = json.dumps({"version": _INDEX_VERSION, "urls": self._index}, ensure_ascii=False,
                          indent=1, sort_keys=True)
        try:
            write_atomic(self.folder / "index.json", data)
        except OSError:
            pass  # a cache that cannot be written only costs a download next time


class _OnlyWeb(urllib.request.HTTPRedirectHandler):
    """Redirects are followed only to http(s) URLs."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: ANN001, ANN201
        if urlsplit(newurl).scheme.lower() not in ("http", "https"):
            raise urllib.error.HTTPError(newurl, code, "redirect to a non-web URL", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _HostUnreachable(Exception):
    """A connection-level failure: the host's other images are not tried in this build."""


def download(url: str, folder: Path, max_bytes: int) -> tuple[Downloaded, str]:
    """Fetch one image into `folder`, streamed: (the file and packed name, its SHA-256).

    Raises MediaRefused (too big, not an image, an HTTP error) or _HostUnreachable.
    """
    opener = urllib.request.build_opener(_OnlyWeb)
    request = urllib.request.Request(url, headers={"User-Agent": "deckgen", "Accept": "image/*"})
    deadline = time.monotonic() + DOWNLOAD_DEADLINE
    try:
        response = opener.open(request, timeout=DOWNLOAD_TIMEOUT)
    except urllib.error.HTTPError as error:
        raise MediaRefused(f"the server answered {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", None) or error
        if isinstance(reason, TimeoutError):
            raise _HostUnreachable(f"no answer within {DOWNLOAD_TIMEOUT:g} s") from None
        raise _HostUnreachable(f"cannot connect ({reason})") from None
    with response:
        return _save(response, url, folder, max_bytes, deadline)


def _save(response: http.client.HTTPResponse, url: str, folder: Path, max_bytes: int,
          deadline: float) -> tuple[Downloaded, str]:
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise MediaRefused(f"{size_text(int(length))}, above the {size_text(max_bytes)} cap (max_image_mb)")
    tmp = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".download.", suffix=".tmp", dir=folder)
        digest = hashlib.sha256()
        head = b""
        size = 0
        with os.fdopen(fd, "wb") as out:
            while chunk := response.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise MediaRefused(f"above the {size_text(max_bytes)} cap (max_image_mb)")
                if time.monotonic() > deadline:
                    raise MediaRefused(f"the download took longer than {DOWNLOAD_DEADLINE:g} s")
                if len(head) < _HEAD:
                    head += chunk[: _HEAD - len(head)]
                digest.update(chunk)
                out.write(chunk)
        if length.isdigit() and size != int(length):  # http.client does not always notice
            raise MediaRefused(f"the download was cut short ({size} of {length} bytes)")
        extension = image_extension(head)
        if extension is None:
            kind = response.headers.get("Content-Type", "unknown type")
            raise MediaRefused(f"not an image (the server sent {_short(kind, 60)})")
        hexdigest = digest.hexdigest()
        file = folder / f"{hexdigest}{extension}"
        os.replace(tmp, file)
        return Downloaded(file, packed_name(_url_stem(url), hexdigest, extension)), hexdigest
    except (OSError, http.client.HTTPException) as error:  # a timeout, a cut connection, a full disk
        raise MediaRefused(f"the download failed ({error or type(error).__name__})") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def pack_remote(
    answers: Sequence[tuple[Path, _Answer]], cache_dir: Path, *, max_bytes: int, offline: bool
) -> list[Diagnostic]:
    """Download every remote image of these answers once (or take it from the cache) and pack it:
    the card's `src` becomes the packed file. What cannot be fetched stays remote (shown only
    online) with a warning at its line; `offline` uses the cache only, without a word."""
    cache = MediaCache(cache_dir / "media")
    urls = list(dict.fromkeys(ref.url for _, answer in answers for ref in answer.remote))
    found: dict[str, Downloaded | str] = {}
    todo = []
    for url in urls:
        cached = cache.get(url, max_bytes)
        if cached is not None:
            found[url] = cached
        elif not offline:
            todo.append(url)
    if todo:
        found.update(_download_all(todo, cache, max_bytes))
        cache.save()
    diagnostics = []
    for path, answer in answers:
        packed: dict[str, str] = {}
        for ref in answer.remote:
            result = found.get(ref.url)
            if isinstance(result, Downloaded):
                packed[ref.url] = result.name
                if all(m.name != result.name for m in answer.media):
                    answer.media.append(MediaFile(result.file, result.name))
            elif isinstance(result, str):
                diagnostics.append(Diagnostic(path, ref.line, WARNING,
                                              f"remote image not packed: {_short(ref.url)}: {result}"
                                              "; the card loads it from the web"))
        if packed:
            answer.html = _replace_sources(answer.html, packed)
            answer.remote_images = sum(ref.url not in packed for ref in answer.remote)
    return diagnostics


def _download_all(urls: list[str], cache: MediaCache, max_bytes: int) -> dict[str, Downloaded | str]:
    """Each URL's download or why it failed; hosts in parallel, each host's images in turn, and
    a host that cannot be reached is not tried again in this build."""
    by_host: dict[str, list[str]] = {}
    for url in urls:
        by_host.setdefault(urlsplit(url).netloc.lower(), []).append(url)

    def fetch_host(host_urls: list[str]) -> list[tuple[str, Downloaded | str, str]]:
        results: list[tuple[str, Downloaded | str, str]] = []
        unreachable = ""
        for url in host_urls:
            if unreachable:
                results.append((url, unreachable, ""))
                continue
            try:
                downloaded, digest = download(url, cache.folder, max_bytes)
                results.append((url, downloaded, digest))
            except MediaRefused as refused:
                results.append((url, str(refused), ""))
            except _HostUnreachable as error:
                unreachable = str(error)
                results.append((url, unreachable, ""))
        return results

    found: dict[str, Downloaded | str] = {}
    with ThreadPoolExecutor(min(PARALLEL_HOSTS, len(by_host))) as pool:
        for results in pool.map(fetch_host, by_host.values()):
            for url, result, digest in results:
                found[url] = result
                if isinstance(result, Downloaded):
                    cache.put(url, result, digest)
    return found


def _replace_sources(card_html: str, packed: dict[str, str]) -> str:
    """`<img src>` values that name a packed URL, replaced by the packed file's name."""

    def replace(match: re.Match[str]) -> str:
        name = packed.get(html.unescape(match.group(2)))
        return match.group(0) if name is None else f"{match.group(1)}{html.escape(name)}{match.group(3)}"

    return _IMG_SRC.sub(replace, card_html)


def share_identical(answers: Iterable[_Answer]) -> None:
    """One packed file per content: images whose bytes are equal (two file names, a download and
    a local copy) all point at the first name in sorting order, so a package stores it once."""
    answers = list(answers)
    names: dict[str, set[str]] = {}
    for answer in answers:
        for item in answer.media:
            match = _NAME_DIGEST.search(item.name)
            if match:
                names.setdefault(match.group(1), set()).add(item.name)
    renamed = {n: min(group) for group in names.values() if len(group) > 1 for n in group if n != min(group)}
    if not renamed:
        return
    for answer in answers:
        if any(item.name in renamed for item in answer.media):
            answer.html = _replace_sources(answer.html, renamed)
            kept = {}
            for item in answer.media:
                name = renamed.get(item.name, item.name)
                kept.setdefault(name, MediaFile(item.source, name))
            answer.media[:] = list(kept.values())


def _url_stem(url: str) -> str:
    return PurePosixPath(unquote(urlsplit(url).path)).stem


def _short(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"

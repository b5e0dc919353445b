"""Settings of one build: defaults, then `[tool.deckgen]` in pyproject.toml, then the command line."""
from __future__ import annotations

import sys
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib


DEFAULT_MAX_IMAGE_MB = 20


class ConfigError(Exception):
    """A setting the user must fix; the message says what and how."""


@dataclass(frozen=True)
class Settings:
    sources: tuple[Path, ...] = (Path("source"),)
    output: Path = Path("build")
    root: str = "三年面试五年模拟"  # the parent deck every section becomes a subdeck of
    lock: Path = Path("deckgen.lock")
    cache: Path | None = None  # default: .deckgen-cache beside the lock file
    templates: Path | None = None  # a folder overriding the shipped note-type templates
    run_code: bool = True
    timeout: float = 10.0  # seconds a code example may run
    memory_mb: int = 512  # address-space limit of a code example
    offline: bool = False  # never download remote images (those already cached are still packed)
    max_image_mb: int = DEFAULT_MAX_IMAGE_MB  # an image above this size is refused, never read

    @property
    def cache_dir(self) -> Path:
        """What builds remember (code results, rendered files, last shipped notes): kept out of
        the output folder, so a check or a failed build leaves the output exactly as it was."""
        return self.cache if self.cache is not None else self.lock.parent / ".deckgen-cache"


_PATH_KEYS = {"output", "lock", "templates", "cache"}
_TYPES: dict[str, type] = {
    "root": str,
    "run_code": bool,
    "timeout": (int, float),  # type: ignore[dict-item]
    "memory_mb": int,
    "offline": bool,
    "max_image_mb": int,
}


@dataclass(frozen=True)
class PushSettings:
    """Where `deckgen push` sends a build: `[tool.deckgen.push]`, then the command line. Kept out
    of Settings, so that where a build goes never makes it a different build."""

    url: str = "http://127.0.0.1:8765"  # AnkiConnect's default address
    key: str | None = None  # AnkiConnect's apiKey, when the user set one
    collection: Path | None = None  # push into this closed collection file instead


def find_project_file(start: Path) -> Path | None:
    """The nearest pyproject.toml at or above `start`."""
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_settings(project_file: Path | None) -> Settings:
    """Settings from `[tool.deckgen]`, paths taken relative to the file's folder."""
    if project_file is None:
        return Settings()
    table = {k: v for k, v in _table(project_file).items() if k != "push"}
    return _apply(Settings(), table, base=project_file.parent, origin=f"{project_file} [tool.deckgen]")


def load_push_settings(project_file: Path | None) -> PushSettings:
    """`[tool.deckgen.push]`: url, key, collection (a path relative to the file's folder)."""
    if project_file is None:
        return PushSettings()
    table = _table(project_file).get("push", {})
    origin = f"{project_file} [tool.deckgen.push]"
    if not isinstance(table, dict):
        raise ConfigError(f"{project_file}: [tool.deckgen.push] must be a table")
    changes: dict[str, Any] = {}
    for key, value in table.items():
        if key not in ("url", "key", "collection"):
            raise ConfigError(f"{origin}: unknown setting '{key}' (known: collection, key, url)")
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{origin}: '{key}' must be a non-empty string")
        changes[key] = project_file.parent / Path(value).expanduser() if key == "collection" else value
    return replace(PushSettings(), **changes)


def _table(project_file: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(project_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{project_file}: cannot read [tool.deckgen]: {exc}") from None
    table = data.get("tool", {}).get("deckgen", {})
    if not isinstance(table, dict):
        raise ConfigError(f"{project_file}: [tool.deckgen] must be a table")
    return table


def _apply(settings: Settings, table: dict[str, Any], *, base: Path, origin: str) -> Settings:
    known = {f.name for f in fields(Settings)}
    changes: dict[str, Any] = {}
    for key, value in table.items():
        name = key.replace("-", "_")
        if name not in known:
            raise ConfigError(f"{origin}: unknown setting '{key}' (known: {', '.join(sorted(known))})")
        if name == "sources":
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{origin}: 'sources' must be a list of paths, e.g. [\"source\"]")
            changes[name] = tuple(base / v for v in value)
        elif name in _PATH_KEYS:
            if not isinstance(value, str):
                raise ConfigError(f"{origin}: '{key}' must be a path string, e.g. {key} = \"build\"")
            changes[name] = base / value
        else:
            expected = _TYPES[name]
            if isinstance(value, bool) != (expected is bool) or not isinstance(value, expected):
                raise ConfigError(f"{origin}: '{key}' has the wrong type ({type(value).__name__})")
            changes[name] = value
    if "root" in changes and not changes["root"].strip():
        raise ConfigError(f"{origin}: 'root' must not be empty")
    if "max_image_mb" in changes and changes["max_image_mb"] < 1:
        raise ConfigError(f"{origin}: 'max_image_mb' must be at least 1")
    return replace(settings, **changes)

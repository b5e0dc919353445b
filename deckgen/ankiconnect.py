"""A small client for AnkiConnect, the add-on that lets programs drive a running Anki over HTTP.

One request is one POST of `{"action", "version": 6, "params", "key"}`; the reply is
`{"result", "error"}`. Everything that can go wrong between us and Anki becomes one
AnkiConnectError whose message says what to do.
"""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

API_VERSION = 6  # the version whose request and reply shapes this client speaks
ADDON_CODE = "2055492159"  # AnkiConnect's code on AnkiWeb


class AnkiConnectError(Exception):
    """Anki could not be reached or refused a request; the message is one line saying what to do."""


@dataclass(frozen=True)
class AnkiConnect:
    url: str  # e.g. http://127.0.0.1:8765, the add-on's default
    key: str | None = None
    timeout: float = 10.0  # seconds for a quick request; long ones (an import) pass their own

    def call(self, action: str, timeout: float | None = None, **params: Any) -> Any:
        """The result of one action, or AnkiConnectError."""
        request: dict[str, Any] = {"action": action, "version": API_VERSION, "params": params}
        if self.key is not None:
            request["key"] = self.key
        reply = self._post(request, self.timeout if timeout is None else timeout)
        if not isinstance(reply, dict) or set(reply) != {"result", "error"}:
            # Versions before 6 answer with the bare result: an add-on too old for our requests.
            raise AnkiConnectError(self._too_old("an answer in the shape of API version 5 or older"))
        if reply["error"] is not None:
            raise AnkiConnectError(self._explain(action, str(reply["error"])))
        return reply["result"]

    def check(self) -> int:
        """AnkiConnect's API version, once it is known to be recent enough and to accept our key."""
        version = self.call("version")
        if not isinstance(version, int) or version < API_VERSION:
            raise AnkiConnectError(self._too_old(f"API version {version}"))
        return version

    def _post(self, request: dict[str, Any], timeout: float) -> Any:
        data = json.dumps(request).encode("utf-8")
        http = urllib.request.Request(self.url, data=data, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(http, timeout=timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            raise AnkiConnectError(
                f"{self.url} answered HTTP {exc.code}, which AnkiConnect never does: "
                "is another program using that port? Give AnkiConnect's address with --url"
            ) from None
        except (urllib.error.URLError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise AnkiConnectError(
                    f"Anki did not answer at {self.url} within {timeout:g} s: close any dialog "
                    "open in Anki and try again"
                ) from None
            raise AnkiConnectError(
                f"cannot reach AnkiConnect at {self.url} ({_reason(reason)}): start Anki with the "
                f"AnkiConnect add-on installed (Tools → Add-ons → Get Add-ons…, code {ADDON_CODE}), "
                "or push into a closed collection with --collection"
            ) from None
        except (socket.timeout, TimeoutError):
            raise AnkiConnectError(
                f"Anki did not answer at {self.url} within {timeout:g} s: close any dialog open "
                "in Anki and try again"
            ) from None
        try:
            return json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise AnkiConnectError(
                f"{self.url} did not answer like AnkiConnect: is another program using that port? "
                "Give AnkiConnect's address with --url"
            ) from None

    def _explain(self, action: str, error: str) -> str:
        if "api key" in error.lower():
            if self.key is None:
                return (f"AnkiConnect at {self.url} asks for a key: give its apiKey (Tools → Add-ons → "
                        "AnkiConnect → Config) with --key or [tool.deckgen.push] key")
            return (f"AnkiConnect at {self.url} refused the key: give the apiKey from its config "
                    "(Tools → Add-ons → AnkiConnect → Config) with --key or [tool.deckgen.push] key")
        if error == "unsupported action":
            return self._too_old(f"no action '{action}'")
        return f"AnkiConnect at {self.url} failed to {action}: {error.splitlines()[0] if error else '?'}"

    def _too_old(self, what: str) -> str:
        return (f"the AnkiConnect at {self.url} is too old ({what}; deckgen needs API version "
                f"{API_VERSION}): update it in Anki (Tools → Add-ons → Check for Updates)")


def _reason(reason: object) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    return getattr(reason, "strerror", None) or str(reason)

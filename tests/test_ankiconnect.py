"""What a user sees when AnkiConnect cannot take a push: one line saying what to do.

A stand-in server on 127.0.0.1 answers the way AnkiConnect does (its handler checks the key
before anything else and replies {"result", "error"}; versions before 6 reply with the bare
result); the real add-on in real Anki is tested in test_push_desktop.py.
"""
from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from click.testing import CliRunner

from deckgen.cli import main


class FakeAnkiConnect(ThreadingHTTPServer):
    def __init__(self, *, api_key: str | None = None, version: int = 6, body: bytes | None = None,
                 status: int = 200) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.api_key, self.version, self.body, self.status = api_key, version, body, status
        self.requests: list[dict] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: FakeAnkiConnect

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(request)
        body = self.server.body
        if body is None:
            if request.get("key") != self.server.api_key:
                reply = {"result": None, "error": "valid api key must be provided"}
            elif request["action"] == "version":
                reply = {"result": self.server.version, "error": None}
            elif request["action"] == "findNotes":
                reply = {"result": [], "error": None}
            elif request["action"] == "importPackage":  # as on another machine: no such file there
                path = request["params"]["path"]
                reply = {"result": None, "error": f"[Errno 2] No such file or directory: '{path}'"}
            else:
                reply = {"result": None, "error": "unsupported action"}
            body = json.dumps(reply if self.server.version >= 6 else reply["result"]).encode()
        self.send_response(self.server.status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:  # noqa: ANN002 - quiet
        pass


@pytest.fixture
def fake():  # noqa: ANN201
    servers = []

    def start(**kwargs) -> FakeAnkiConnect:  # noqa: ANN003
        server = FakeAnkiConnect(**kwargs)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def push(project, *args: str):  # noqa: ANN001, ANN201
    return CliRunner().invoke(main, ["push", str(project.root / "source"), "-o", str(project.root / "build"),
                                     "--lock", str(project.root / "deckgen.lock"), "--no-run", *args])


def one_line_error(result, project) -> str:  # noqa: ANN001
    assert result.exit_code == 2, result.output
    lines = result.output.splitlines()
    assert len(lines) == 1 and lines[0].startswith("deckgen: error: "), result.output
    assert not (project.root / "build").exists()  # nothing was built: Anki is checked first
    return lines[0].removeprefix("deckgen: error: ")


def test_anki_not_running(project) -> None:  # noqa: ANN001
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    message = one_line_error(push(project, "--url", url), project)
    assert message == (
        f"cannot reach AnkiConnect at {url} (connection refused): start Anki with the AnkiConnect "
        "add-on installed (Tools → Add-ons → Get Add-ons…, code 2055492159), or push into a closed "
        "collection with --collection"
    )


def test_wrong_or_missing_key(project, fake) -> None:  # noqa: ANN001
    server = fake(api_key="s3cret")
    wrong = one_line_error(push(project, "--url", server.url, "--key", "guess"), project)
    assert wrong == (f"AnkiConnect at {server.url} refused the key: give the apiKey from its config "
                     "(Tools → Add-ons → AnkiConnect → Config) with --key or [tool.deckgen.push] key")
    assert server.requests[-1] == {"action": "version", "version": 6, "params": {}, "key": "guess"}
    missing = one_line_error(push(project, "--url", server.url), project)
    assert missing.startswith(f"AnkiConnect at {server.url} asks for a key: give its apiKey")
    assert "key" not in server.requests[-1]


def test_key_from_the_environment_and_pyproject(project, fake, tmp_path) -> None:  # noqa: ANN001
    server = fake(api_key="s3cret", version=5)  # accepted key: the version check is next
    result = CliRunner().invoke(main, ["push", str(project.root / "source"), "--url", server.url],
                                env={"DECKGEN_ANKICONNECT_KEY": "s3cret"})
    assert "too old" in result.output and server.requests[-1]["key"] == "s3cret"
    config = tmp_path / "pyproject.toml"
    config.write_text(f'[tool.deckgen.push]\nurl = "{server.url}"\nkey = "s3cret"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(config), "push", str(project.root / "source")])
    assert "too old" in result.output and server.requests[-1]["key"] == "s3cret"


@pytest.mark.parametrize("version", [4, 5])
def test_ankiconnect_too_old(project, fake, version) -> None:  # noqa: ANN001
    server = fake(version=version)
    message = one_line_error(push(project, "--url", server.url), project)
    assert message.startswith(f"the AnkiConnect at {server.url} is too old (")
    assert message.endswith("deckgen needs API version 6): update it in Anki "
                            "(Tools → Add-ons → Check for Updates)")


def test_something_else_on_the_port(project, fake) -> None:  # noqa: ANN001
    server = fake(body=b"<html>hello</html>")
    message = one_line_error(push(project, "--url", server.url), project)
    assert message == (f"{server.url} did not answer like AnkiConnect: is another program using that "
                       "port? Give AnkiConnect's address with --url")
    server = fake(body=b"not found", status=404)
    message = one_line_error(push(project, "--url", server.url), project)
    assert message.startswith(f"{server.url} answered HTTP 404, which AnkiConnect never does")


def test_an_anki_that_does_not_answer() -> None:
    """Anki busy with a dialog: AnkiConnect accepts the connection but never answers."""
    from deckgen.ankiconnect import AnkiConnect, AnkiConnectError

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(AnkiConnectError) as error:
            AnkiConnect(url, timeout=0.5).check()
    assert str(error.value) == (f"Anki did not answer at {url} within 0.5 s: close any dialog open in "
                                "Anki and try again")


def test_an_anki_on_another_machine_cannot_read_the_package(project, fake) -> None:  # noqa: ANN001
    server = fake()
    result = push(project, "--url", server.url)
    assert result.exit_code == 2
    package = (project.root / "build" / "三年面试五年模拟.apkg").resolve()
    assert result.output.splitlines()[-1] == (
        f"deckgen: error: Anki at {server.url} cannot read {package}: AnkiConnect imports a file "
        "from Anki's own disk, so push on the machine that runs Anki, or use --collection")

"""make push's checks and the registry's answers (no Docker: a stand-in registry on loopback)."""

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest
from echolab_cluster import registry, stack
from echolab_cluster.errors import ClusterError

DIGEST = "sha256:" + "ab" * 32


class StandIn(http.server.BaseHTTPRequestHandler):
    """Answers a manifest HEAD as registry 2.8 does: 200 and the digest for echolab-server:t."""

    def do_HEAD(self) -> None:  # http.server's name for it
        known = self.path == "/v2/echolab-server/manifests/t"
        accepts = "application/vnd.docker.distribution.manifest.v2+json" in self.headers["Accept"]
        self.send_response(200 if known and accepts else 404)
        if known:
            self.send_header("Docker-Content-Digest", DIGEST)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stand_in() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then let go)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_registry_is_host_and_port():
    assert registry.split("registry:5000") == ("registry", 5000)
    assert registry.split("127.0.0.1:5000") == ("127.0.0.1", 5000)
    for bad in ("registry", "registry:", ":5000", "registry:port", "host:5000/path"):
        with pytest.raises(ClusterError, match="host:port"):
            registry.split(bad)


def test_push_says_in_one_line_when_no_registry_answers():
    address = f"127.0.0.1:{closed_port()}"
    with pytest.raises(ClusterError) as caught:
        registry.push(address, ["echolab-server"], "t", log=pytest.fail)
    message = str(caught.value)
    assert f"no registry answers at {address}" in message and "\n" not in message


def test_something_that_accepts_connections_answers(stand_in):
    registry.check_answers(stand_in)


# The engine's push progress as the SDK decodes it: status records, then the digest in an aux.
PUSHED = [
    {"status": "The push refers to repository [127.0.0.1:5000/x]"},
    {"status": "Pushed", "progressDetail": {}, "id": "abc"},
    {"status": "t: digest: sha256:0123 size: 1570"},
    {"progressDetail": {}, "aux": {"Tag": "t", "Digest": "sha256:0123", "Size": 1570}},
]


def test_the_digest_a_push_reports_is_read_from_its_progress():
    assert registry.pushed_digest(iter(PUSHED), "r/x:t") == "sha256:0123"
    with pytest.raises(ClusterError, match="no digest"):
        registry.pushed_digest(iter(PUSHED[:2]), "r/x:t")


def test_a_push_the_engine_refuses_is_one_line():
    refused = [*PUSHED[:2], {"errorDetail": {"message": "denied"}, "error": "denied:\nno"}]
    with pytest.raises(ClusterError, match=r"^push r/x:t: no$"):
        registry.pushed_digest(iter(refused), "r/x:t")


def test_the_registry_gives_an_images_digest_and_says_when_it_has_none(stand_in):
    assert registry.digest(stand_in, "echolab-server", "t") == DIGEST
    with pytest.raises(ClusterError, match="has no echolab-client:t"):
        registry.digest(stand_in, "echolab-client", "t")


def test_the_registry_service_stays_off_the_swarm_and_the_stack_names_its_images():
    config = stack.compose_config()
    assert config["services"]["registry"]["profiles"] == ["registry"]
    services = stack.generate(config)["services"]
    assert "registry" not in services
    assert stack.images(config) == sorted({spec["image"] for spec in services.values()})
    assert any(image.startswith("echolab-server:") for image in stack.images(config))

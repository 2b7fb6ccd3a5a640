"""compose.yaml and the variant registry agree: one ``server-*`` service per variant, each the
shared x-server block with only its variant and its host ports (123NN and 183NN, NN its step),
and every tool waits for all of them (x-tool's depends_on)."""

from echolab_server.variants import registry

from .lab import compose_config


def test_a_server_service_per_variant_differing_only_in_variant_and_ports() -> None:
    services = compose_config()["services"]
    servers = {
        name.removeprefix("server-"): service
        for name, service in services.items()
        if name.startswith("server-")
    }
    assert sorted(servers) == sorted(registry()), "compose's server-* services and the variants"
    shared = []
    for variant, service in servers.items():
        step = registry()[variant].step
        assert service.pop("command") == ["--variant", variant]
        ports = [(p["host_ip"], p["published"], p["target"]) for p in service.pop("ports")]
        assert ports == [
            ("127.0.0.1", str(12300 + step), 12345),
            ("127.0.0.1", str(18300 + step), 8080),
        ], f"server-{variant}: host ports 123NN and 183NN, NN its step ({step})"
        shared.append(service)
    assert all(service == shared[0] for service in shared), "server services differ elsewhere"


def test_every_tool_starts_every_server() -> None:
    services = compose_config("tools")["services"]
    servers = {f"server-{variant}" for variant in registry()}
    for tool in ("client", "netcat", "loadgen"):
        assert set(services[tool]["depends_on"]) == servers, tool

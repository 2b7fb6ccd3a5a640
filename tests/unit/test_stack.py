"""The swarm stack generated from compose.yaml's resolved config (no Docker needed)."""

import pytest
from echolab_cluster import stack

SERVER = {
    "build": {"context": "server"},
    "image": "echolab-server:t",
    "command": ["--variant", "poll"],
    "entrypoint": None,
    "environment": {"ECHOLAB_QUIET": "0"},
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges:true"],
    "pids_limit": 4096,
    "mem_limit": "1073741824",
    "read_only": True,
    "networks": {"default": None},
    "ports": [
        {"mode": "ingress", "host_ip": "127.0.0.1", "target": 12345, "published": "12306"},
        {"mode": "ingress", "host_ip": "127.0.0.1", "target": 8080, "published": "18306"},
    ],
}
TOOL = {"profiles": ["tools"], "image": "echolab-loadgen:t", "init": True, "command": None}
CONFIG = {"services": {"server-poll": SERVER, "loadgen": TOOL}}


def test_servers_keep_their_settings_and_get_what_a_swarm_needs():
    out = stack.generate(CONFIG)["services"]["server-poll"]
    assert out["command"] == ["--variant", "poll"] and out["read_only"] is True
    assert "entrypoint" not in out  # null in compose: the image's own
    assert not {"build", "profiles", "security_opt", "pids_limit"} & set(out)
    assert out["ports"] == [
        {"target": 12345, "published": 12306, "protocol": "tcp", "mode": "host"},
        {"target": 8080, "published": 18306, "protocol": "tcp", "mode": "host"},
    ]
    deploy = out["deploy"]
    assert deploy["endpoint_mode"] == "dnsrr" and deploy["replicas"] == 1
    assert deploy["placement"] == {
        "constraints": ["node.labels.echolab.server == 1"],
        "max_replicas_per_node": 1,
    }
    assert deploy["resources"] == {"limits": {"memory": "1073741824"}}
    assert out["networks"] == [stack.NETWORK]


def test_tools_are_one_shot_services_that_wait_for_their_target():
    out = stack.generate(CONFIG)["services"]["loadgen"]
    assert out["deploy"]["replicas"] == 0
    assert out["deploy"]["restart_policy"] == {"condition": "none"}
    assert out["deploy"]["update_config"] == {"parallelism": 0}
    assert out["deploy"]["placement"]["constraints"] == ["node.labels.echolab.load == 1"]
    assert out["environment"]["ECHOLAB_WAIT"] == str(stack.TOOL_WAIT_S)
    assert "command" not in out and "ports" not in out


def test_images_come_from_the_registry_when_one_is_named():
    services = stack.generate(CONFIG, registry="10.1.2.3:5000")["services"]
    assert services["server-poll"]["image"] == "10.1.2.3:5000/echolab-server:t"
    assert stack.generate(CONFIG)["services"]["loadgen"]["image"] == "echolab-loadgen:t"


def test_a_compose_key_the_generator_does_not_know_stops_it():
    config = {"services": {"server-poll": SERVER | {"sysctls": {"net.core.somaxconn": 1024}}}}
    with pytest.raises(stack.StackError, match="sysctls"):
        stack.generate(config)


def test_the_published_stats_port_is_read_from_compose():
    assert stack.published(CONFIG, "server-poll", 8080) == 18306
    with pytest.raises(stack.StackError):
        stack.published(CONFIG, "loadgen", 8080)


def test_services_that_belong_to_one_machine_stay_off_the_swarm():
    """The grader's services, Prometheus and tcpdump (in another container's namespace) are
    left out."""
    student = {"profiles": ["grade"], "image": "base", "user": "10001:10001", "volumes": []}
    tcpdump = TOOL | {"cap_add": ["NET_RAW"], "network_mode": "service:server-simple"}
    prometheus = {"profiles": ["observe"], "image": "prometheus", "volumes": []}
    config = {
        "services": CONFIG["services"]
        | {"student": student, "tcpdump": tcpdump, "prometheus": prometheus}
    }
    assert set(stack.generate(config)["services"]) == {"server-poll", "loadgen"}


def test_the_real_compose_yaml_makes_a_stack():
    """Every service of compose.yaml either carries over or is left out for a stated reason."""
    services = stack.generate(stack.compose_config())["services"]
    assert {"client", "loadgen", "server-poll"} <= set(services)

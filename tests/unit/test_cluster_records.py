"""Docker's answers into the cluster's records, and the specs the cluster writes back: pure
functions, tested on answers recorded from a simulated cluster (cluster_answers.json, trimmed)."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from echolab_cluster import records
from echolab_cluster.records import Node, ServiceReplicas, SwarmTask, Task
from echolab_cluster.stack import LOAD_LABEL, SERVER_LABEL

ANSWERS: dict[str, Any] = json.loads((Path(__file__).parent / "cluster_answers.json").read_text())
NODE_IDS = {n["Description"]["Hostname"]: n["ID"] for n in ANSWERS["nodes"]}


def service(name: str) -> dict[str, Any]:
    (found,) = (s for s in ANSWERS["services"] if s["Spec"]["Name"] == f"echolab_{name}")
    return copy.deepcopy(found)


def test_nodes_give_their_hostname_readiness_and_roles():
    nodes = [records.node(attrs) for attrs in ANSWERS["nodes"]]
    assert nodes == [
        Node(NODE_IDS["node1"], "node1", True, (SERVER_LABEL,)),
        Node(NODE_IDS["node2"], "node2", True, (LOAD_LABEL,)),
        Node(NODE_IDS["node3"], "node3", True, (LOAD_LABEL,)),
    ]
    down = copy.deepcopy(ANSWERS["nodes"][1])
    down["Status"] = {"State": "down", "Addr": "172.19.0.3"}  # node2 stopped, as the swarm says
    assert not records.node(down).ready


def test_a_node_without_labels_has_no_role():
    bare = copy.deepcopy(ANSWERS["nodes"][0])
    del bare["Spec"]["Labels"]  # a node never labelled has no Labels key at all
    assert records.node(bare).roles == ()


def test_relabelling_sets_exactly_the_roles_asked_and_keeps_other_labels():
    labels = {SERVER_LABEL: "1", "zone": "a"}
    assert records.relabelled(labels, [LOAD_LABEL]) == {"zone": "a", LOAD_LABEL: "1"}
    assert records.relabelled(None, [SERVER_LABEL, LOAD_LABEL]) == {
        SERVER_LABEL: "1",
        LOAD_LABEL: "1",
    }
    assert records.relabelled(labels, []) == {"zone": "a"}


def test_tasks_say_where_they_ran_how_they_ended_and_why():
    tasks = {t.id: t for t in (records.task(attrs) for attrs in ANSWERS["tasks"])}
    ended = [t for t in tasks.values() if t.state == "complete"]
    assert sorted((t.slot, t.exit_code, t.desired_state) for t in ended) == [
        (1, 0, "shutdown"),
        (2, 0, "shutdown"),
    ]
    assert all(t.ended and not t.stopping and len(t.container_id) == 64 for t in ended)
    (rejected,) = (t for t in tasks.values() if t.state == "rejected")
    assert rejected.ended and rejected.container_id == ""
    assert rejected.error == "No such image: echolab-nothing:none"
    assert rejected.node_id == NODE_IDS["node2"]
    (running,) = (t for t in tasks.values() if t.state == "running")
    assert not running.ended and not running.stopping and running.error == ""
    assert running.node_id == NODE_IDS["node1"] and running.container_id.startswith("65e2ab25")


def test_a_task_told_to_stop_is_stopping_until_its_container_ends():
    (running,) = (a for a in ANSWERS["tasks"] if a["Status"]["State"] == "running")
    for desired, state, stopping in [
        ("shutdown", "running", True),  # moved away, still running
        ("remove", "running", True),  # scaled away, still running
        ("shutdown", "shutdown", False),
        ("running", "running", False),
    ]:
        attrs = copy.deepcopy(running)
        attrs["DesiredState"], attrs["Status"]["State"] = desired, state
        assert records.task(attrs).stopping is stopping, (desired, state)


def test_a_task_not_yet_placed_has_no_node_or_container():
    (running,) = (a for a in ANSWERS["tasks"] if a["Status"]["State"] == "running")
    pending = copy.deepcopy(running)
    del pending["NodeID"]
    pending["Status"] = {"State": "pending", "Message": "pending task scheduling"}
    assert records.task(pending) == SwarmTask(
        running["ID"], 1, "", "running", "pending", None, "", ""
    )


def test_services_give_their_stack_name_and_replicas():
    assert records.service_replicas(service("server-poll")) == ServiceReplicas("server-poll", 1, 1)
    # The client just after a run of two: both wanted, both ended, so none running.
    assert records.service_replicas(service("client")) == ServiceReplicas("client", 0, 2)


def test_a_task_s_last_words_come_from_stderr_first():
    assert Task("t", "node2", "complete", 0, "a\nb\n", "").last_words() == "b"
    assert Task("t", "node2", "failed", 1, "a\n", "x\ny\n").last_words() == "y"
    assert Task("t", "node2", "rejected", None, "", "").last_words() == "(no output)"


def test_an_environment_change_replaces_those_variables_only():
    spec = service("server-poll")["Spec"]
    new = records.with_environment(spec, {"ECHOLAB_QUIET": "1"})
    assert new["TaskTemplate"]["ContainerSpec"]["Env"] == [
        "ECHOLAB_WORK_DELAY=",
        "ECHOLAB_QUIET=1",
    ]
    usual = ["ECHOLAB_QUIET=0", "ECHOLAB_WORK_DELAY="]
    assert spec["TaskTemplate"]["ContainerSpec"]["Env"] == usual  # the spec read is left as is
    unchanged = {key: value for key, value in new.items() if key != "TaskTemplate"}
    assert unchanged == {key: value for key, value in spec.items() if key != "TaskTemplate"}


def test_a_tool_run_forces_new_tasks_with_its_args_and_replicas():
    spec = service("client")["Spec"]
    once = records.with_run(spec, 2, ["--repeat", "100", "--quiet"])
    twice = records.with_run(once, 2, ["--repeat", "100", "--quiet"])
    assert once["Mode"] == {"Replicated": {"Replicas": 2}}
    assert once["TaskTemplate"]["ContainerSpec"]["Args"] == ["--repeat", "100", "--quiet"]
    forced = [s["TaskTemplate"].get("ForceUpdate", 0) for s in (spec, once, twice)]
    assert forced[1] == forced[0] + 1 and forced[2] == forced[0] + 2  # the same args run again
    assert once["UpdateConfig"] == spec["UpdateConfig"]  # all slots replaced at once, still


def test_scaling_changes_the_replicas_only():
    spec = service("server-poll")["Spec"]
    new = records.with_replicas(spec, 2)
    assert new["Mode"] == {"Replicated": {"Replicas": 2}}
    assert new["TaskTemplate"] == spec["TaskTemplate"]
    assert spec["Mode"]["Replicated"]["Replicas"] == 1


def test_a_pin_adds_its_constraint_once_and_an_unpin_removes_only_it():
    spec = service("server-poll")["Spec"]
    usual = spec["TaskTemplate"]["Placement"]["Constraints"]
    pinned = records.with_constraint(spec, "node.hostname==node2", present=True)
    again = records.with_constraint(pinned, "node.hostname==node2", present=True)
    assert again["TaskTemplate"]["Placement"]["Constraints"] == [*usual, "node.hostname==node2"]
    assert again["TaskTemplate"]["Placement"]["MaxReplicas"] == 1
    unpinned = records.with_constraint(again, "node.hostname==node2", present=False)
    assert unpinned["TaskTemplate"]["Placement"]["Constraints"] == usual


def test_a_node_s_address_is_read_on_the_cluster_s_network():
    container = ANSWERS["container"]
    network = next(iter(container["NetworkSettings"]["Networks"]))
    assert records.address_on(container, network) == "172.19.0.3"
    assert records.address_on(container, "another") == ""


def test_the_registry_is_the_guest_on_the_nodes_network():
    network = copy.deepcopy(ANSWERS["network"])
    prefix = network["Name"]
    assert records.guest_address(network, prefix) is None  # nodes only
    # The lab's registry joined (the recording has none): a member not named like the nodes.
    network["Containers"]["f00d"] = {"Name": "echolab-registry-1", "IPv4Address": "172.19.0.5/16"}
    assert records.guest_address(network, prefix) == "172.19.0.5"


@pytest.mark.parametrize(
    ("name", "number"), [("node1", 1), ("node12", 12), ("echolab-cluster-a-node3", 3)]
)
def test_nodes_are_ordered_by_their_number(name: str, number: int):
    assert records.node_number(name) == number


def test_a_containers_run_is_read_from_its_engines_nanosecond_stamps():
    state = {"StartedAt": "2026-12-06T14:50:01.123456789Z", "FinishedAt": "2026-12-06T14:50:31.5Z"}
    ran = records.ran({"State": state})
    assert ran is not None
    assert (ran.finished - ran.started).total_seconds() == pytest.approx(30.376543)
    assert ran.started.tzinfo is not None and ran.started.microsecond == 123456
    never = {"StartedAt": "0001-01-01T00:00:00Z", "FinishedAt": "0001-01-01T00:00:00Z"}
    assert records.ran({"State": never}) is None

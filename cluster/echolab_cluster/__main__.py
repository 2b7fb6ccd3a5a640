"""``python -m echolab_cluster up|bench|down|stack|push``: the Makefile's cluster targets.

  up --nodes 3      nodes, swarm, images, stack (make cluster NODES=3); with --registry
                    registry:5000 the nodes pull from the lab's registry (REGISTRY=registry:5000)
  bench [-- ARGS]   loadgen on every load node at once, one merged report (make cluster-bench)
  compare [-- ARGS] bridge against overlay, one load node against two, one server replica
                    against two: a table (make cluster-compare)
  down              nothing of the cluster left (make cluster-down)
  stack             print the stack for a real swarm (make stack REGISTRY=host:port)
  push IMAGE...     tag and push the images to a registry (make push REGISTRY=host:port)

The cluster is named by $ECHOLAB_CLUSTER, else $ECHOLAB_TAG, so several can share one engine.
"""

import argparse
import json
import sys
from collections.abc import Sequence

from echolab_common.cli import Parser, positive
from echolab_common.wait import Timeout
from echolab_host import DockerError
from echolab_loadgen.merge import render

from . import compare, registry, stack
from .load import BENCH_LOAD, bench, loadgen_options
from .nodes import Cluster


def build_parser() -> Parser:
    p = Parser(prog="echolab_cluster", description="echolab on a Docker Swarm.")
    p.add_argument("--name", help="cluster name (default: $ECHOLAB_CLUSTER or $ECHOLAB_TAG)")
    sub = p.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start a simulated cluster and deploy the stack")
    up.add_argument("--nodes", type=positive(int), default=3, help="nodes (default 3)")
    up.add_argument("--servers", type=positive(int), default=1, help="server nodes (default 1)")
    up.add_argument("--registry", help="name:port of the lab's registry, which the nodes pull from")
    bench = sub.add_parser("bench", help="distributed load, one merged report")
    bench.add_argument("--target", default="server-poll", help="server service (server-poll)")
    bench.add_argument("--replicas", type=positive(int), help="loadgen replicas (a load node each)")
    bench.add_argument("--json", action="store_true", help="print the merged report as JSON")
    bench.add_argument(
        "load", nargs=argparse.REMAINDER, help=f"loadgen options (default: {' '.join(BENCH_LOAD)})"
    )
    comp = sub.add_parser("compare", help="what leaving one machine changes, one table")
    comp.add_argument("--rounds", type=positive(int), default=3, help="rounds (default 3)")
    comp.add_argument(
        "load", nargs=argparse.REMAINDER, help=f"loadgen options (default: {' '.join(BENCH_LOAD)})"
    )
    sub.add_parser("down", help="remove the simulated cluster")
    st = sub.add_parser("stack", help="print the stack file for docker stack deploy")
    st.add_argument("--registry", help="host:port the nodes pull images from")
    push = sub.add_parser("push", help="tag and push images to a registry")
    push.add_argument("--registry", required=True, help="host:port of the registry")
    push.add_argument("images", nargs="+", help="image names, without the tag ($ECHOLAB_TAG)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cluster = Cluster(args.name)
    try:
        if args.command == "up":
            cluster.up(args.nodes, args.servers, args.registry)
        elif args.command == "bench":
            merged = bench(cluster, args.target, args.replicas, args.load)
            print(json.dumps(merged.to_json()) if args.json else render(merged), flush=True)
        elif args.command == "compare":
            runs = compare.compare(cluster, args.rounds, loadgen_options(args.load))
            print(compare.render(runs), flush=True)
        elif args.command == "down":
            cluster.down()
        elif args.command == "push":
            registry.push(args.registry, args.images, cluster.tag)
        else:
            print(stack.render(stack.generate(stack.compose_config(), args.registry)), end="")
    except (DockerError, stack.StackError, Timeout) as exc:
        print(f"echolab-cluster: {exc}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("echolab-cluster: interrupted", file=sys.stderr, flush=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

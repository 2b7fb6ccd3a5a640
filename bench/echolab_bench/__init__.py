"""echolab's benchmark, run on the Docker host: every variant under the same loads, from loadgen.

Host-side only (it drives Docker), so it is not part of any image: ``make bench`` runs it from
the repository's .venv.  Modules: ``docker`` (the stack, pinning, cgroup counters), ``machine``
(where it ran), ``measure`` (interleaved rounds, bounds, spread), ``results`` (what a run
records, as types), ``output`` (tables, chart, docs/bench.md block), ``cli`` (the command line).
"""

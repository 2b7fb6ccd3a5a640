"""make pictures: reading the server's log, and drawing from a run's data (no Docker here)."""

import pytest
from echolab_pictures import cli, figures, logs

THREADS_LOG = """\
Listening on 0.0.0.0:12345 (threads)
Received new connection from  ('172.18.0.3', 40000)
Received: b'Hello, world'
Received new connection from  ('172.18.0.3', 40002)
Received: b'Hello, world'
Total messages received: 1
Total messages received: 1
Received new connection from  ('172.18.0.3', 40004)
Received: b'Hello, world'
Total messages received: 2
"""


def test_totals_pair_each_printed_total_with_its_message_number():
    assert logs.totals(THREADS_LOG) == [(1, 1), (2, 1), (3, 2)]
    assert logs.lost_updates(logs.totals(THREADS_LOG)) == 1


def test_an_exact_count_loses_nothing_and_an_empty_log_has_no_points():
    exact = "".join(f"Total messages received: {n}\n" for n in range(1, 6))
    assert logs.totals(exact) == [(n, n) for n in range(1, 6)]
    assert logs.lost_updates(logs.totals(exact)) == 0
    assert logs.totals("Listening\n") == []
    assert logs.lost_updates([]) == 0


def test_totals_read_through_dockers_timestamps_and_ignore_look_alikes():
    log = (
        "2026-12-06T08:00:00.100000000Z Total messages received: 7\n"
        "2026-12-06T08:00:00.200000000Z Received: b'Total messages received: 99'\n"
    )
    assert logs.totals(log) == [(1, 7)]


STAMPED_LOG = """\
2026-12-06T08:00:00.000000000Z Received new connection from  ('172.18.0.1', 50000)
2026-12-06T08:00:00.001500000Z Received: b'client 1'
2026-12-06T08:00:01.000000000Z Received new connection from  ('172.18.0.1', 50002)
2026-12-06T08:00:04.250000001Z Received: b'client 2'
not a docker line
"""


def test_stamped_lines_keep_sub_second_times():
    lines = logs.stamped(STAMPED_LOG)
    assert len(lines) == 4
    assert lines[1][0] - lines[0][0] == pytest.approx(0.0015, abs=1e-6)
    assert lines[3][1] == "Received: b'client 2'"


def test_accepts_come_from_the_log_in_order():
    start = logs.stamped(STAMPED_LOG)[0][0]
    assert [t - start for t in logs.accepted_at(STAMPED_LOG)] == pytest.approx([0.0, 1.0])


RUN = {
    "date": "2026-12-06 08:00 UTC",
    "commit": "0123456789ab",
    "note": "Taken on a shared 2-core machine under other load (load average 5.0 at the start, "
    "6.0 at the end): CPU and time figures are noisy",
}


def test_the_footer_names_the_run_variants_parameters_and_noise():
    text = figures.footer(RUN, ["threads", "lock"], {"clients": 2, "repeat": 100})
    assert text.splitlines() == [
        "Measured 2026-12-06 08:00 UTC from echolab 0123456789ab.",
        "Variants: threads, lock; clients=2, repeat=100.",
        RUN["note"] + ".",
    ]


def test_the_noise_note_says_when_other_work_was_running():
    assert cli.noise_note(2, 5.3, 6.1).startswith("Taken on a shared 2-core machine under other")
    assert cli.noise_note(8, 0.2, 0.4) == (
        "Taken on a quiet 8-core machine (load average 0.2 at the start, 0.4 at the end)"
    )


def test_race_labels_say_what_was_lost():
    racy = {"points": [(1, 1), (2, 1), (3, 2)], "lost_updates": 1}
    exact = {"points": [(1, 1), (2, 2)], "lost_updates": 0}
    assert figures.race_summary("threads", racy) == (
        "threads: 3 messages, last total 2: lost 1 of 3 updates"
    )
    assert figures.race_summary("lock", exact) == "lock: 2 messages, last total 2: exact"


def svg_text(tmp_path, name, doc):
    figures.save(figures.DRAW[name](doc, RUN), tmp_path / name)
    assert (tmp_path / f"{name}.png").stat().st_size > 10_000
    return (tmp_path / f"{name}.svg").read_text()


def test_threads_vs_lock_is_drawn_with_its_labels_and_run(tmp_path):
    doc = {
        "variants": ["threads", "lock"],
        "parameters": {"clients": 2, "repeat": 2},
        "results": {
            "threads": {"points": [(1, 1), (2, 1), (3, 2), (4, 2)], "lost_updates": 2},
            "lock": {"points": [(n, n) for n in range(1, 5)], "lost_updates": 0},
        },
    }
    svg = svg_text(tmp_path, "threads-vs-lock", doc)
    assert "lost 2 of 4 updates" in svg
    assert "message number" in svg
    assert "Measured 2026-12-06 08:00 UTC from echolab 0123456789ab." in svg


def test_a_wait_is_drawn_on_a_time_line(tmp_path):
    doc = {
        "variants": ["simple"],
        "parameters": {"hold_s": 3.0, "gap_s": 1.0},
        "results": {
            "clients": [
                {"client": 1, "connected": 0.0, "sent": 0.0, "echoed": 0.001, "left": 4.0},
                {"client": 2, "connected": 1.0, "sent": 1.0, "echoed": 4.01, "left": 4.02},
            ],
            "server": {"accepted_newcomer": 4.005},
            "waited_s": 3.01,
        },
    }
    svg = svg_text(tmp_path, "simple-wait", doc)
    assert "client 2 waits 3.01 s for its echo" in svg
    assert "time since client 1 connected (s)" in svg
    assert "the server's log: accept()ed client 2" in svg


def test_readiness_cost_marks_where_select_stops(tmp_path):
    def level(idle, cost):
        runs = [{"server_us_per_msg": cost, "p50_us": 2 * cost}] * 2
        return {"idle": idle, "idle_open": idle, "runs": runs}

    doc = {
        "variants": ["select", "epoll"],
        "parameters": {"fd_setsize": 1024},
        "results": {
            "select": [
                level(0, 30),
                level(1000, 90),
                {"idle": 5000, "idle_open": 1017, "idle_failure": "connection 1018 closed"},
            ],
            "epoll": [level(0, 30), level(1000, 31), level(5000, 30)],
        },
    }
    assert figures.cost_points(doc["results"]["select"], "p50_us") == [
        (0, 60, 60, 60),
        (1000, 180, 180, 180),
    ]
    assert figures.stop_of(doc["results"]["select"]) == (5000, 1017, "connection 1018 closed")
    assert figures.stop_of(doc["results"]["epoll"]) is None
    svg = svg_text(tmp_path, "readiness-cost", doc)
    assert "select stops at FD_SETSIZE = 1024" in svg
    assert "idle connections watched" in svg


def test_bad_arguments_are_one_line(capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(["--only", "threads,nope"])
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "unknown picture threads, nope" in err
    assert cli.levels("1000,0,100,100") == (0, 100, 1000)

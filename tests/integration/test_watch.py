"""Watching the lab live (issue 23, docs/watch.md): Prometheus from the compose profile
``observe`` scrapes every running server, loadgen's pushes give the lost updates, and the
console draws it all in a headless Chromium (Debian's chromium and chromedriver: `make browser`).

Prometheus and the Pushgateway join the lab fixture's project, Prometheus published on an
ephemeral port of its own (never the lab's 9090). ``ECHOLAB_PICTURES=docs/pictures`` keeps the
console's screenshot where docs/watch.md shows it; otherwise it goes to a temporary folder.
"""

import contextlib
import json
import os
import shutil
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from docker.errors import APIError
from echolab_host import engine
from prometheus_client.parser import text_string_to_metric_families

from .lab import VARIANTS, Lab

CONSOLE = "/consoles/echolab.html"
PAGE_S = 20  # seconds a page load may take to draw every graph before it is loaded again
GRAPHS = ("messages", "lost", "connections", "refused", "threads", "memory")  # its graph ids
# Idle connections held on threads and on epoll while the console is drawn (docs/watch.md
# shows 1,000; half is the same picture, sooner on a busy machine), and the loadgens sharing
# them: each idle connection proves itself with an echo, which threads gives after its 0.1 s
# counter update, so one loadgen would take 50 s to open them all.
IDLE = 500
IDLE_LOADGENS = 5
HOLD_S = 120  # seconds loadgen holds them (and runs its load): longer than the test needs
PROCESS_METRICS = (
    "echolab_processes",
    "echolab_threads",
    "echolab_resident_memory_bytes",
    "echolab_open_fds",
)


class Prometheus:
    """The profile's Prometheus in the lab's project, asked through its HTTP API."""

    def __init__(self, address: str) -> None:
        self.url = f"http://{address}"

    def query(self, expr: str) -> dict[str, float]:
        """An instant query: value by variant (each series must have one)."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as answer:
            result = json.load(answer)["data"]["result"]
        return {series["metric"]["variant"]: float(series["value"][1]) for series in result}


@pytest.fixture(scope="module")
def prometheus(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    override = tmp_path_factory.mktemp("observe") / "observe.yaml"
    override.write_text('services:\n  prometheus:\n    ports: !override ["127.0.0.1::9090"]\n')
    observe = ["-f", str(override), "--profile", "observe"]
    lab.compose_run(*observe, "build", "--quiet", "prometheus", timeout=1800)
    services = ["prometheus", "pushgateway"]
    lab.compose_run(*observe, "up", "--detach", "--wait", *services)
    try:
        port = lab.compose_run(*observe, "port", "prometheus", "9090").stdout.strip()
        yield Prometheus(port)
    finally:
        lab.compose_run(*observe, "rm", "--stop", "--force", *services)
        with contextlib.suppress(APIError):  # none made: nothing to remove
            engine().volumes.get(f"{lab.compose.project}_prometheus-data").remove()


def test_prometheus_scrapes_every_running_server(lab: Lab, prometheus: Prometheus) -> None:
    lab.wait_for(
        lambda: set(prometheus.query("echolab_uptime_seconds")) == set(VARIANTS),
        "a series from every running server",
        60,
    )
    up = prometheus.query(
        'count by (variant) (echolab_uptime_seconds and on (instance) up{job="servers"} == 1)'
    )
    assert up == dict.fromkeys(VARIANTS, 1.0), "one target up per server, none twice"


def test_a_stopped_server_drops_out_and_the_others_go_on(lab: Lab, prometheus: Prometheus) -> None:
    scraped = lambda: set(prometheus.query("echolab_uptime_seconds"))  # noqa: E731
    lab.wait_for(lambda: scraped() == set(VARIANTS), "every server scraped", 60)
    lab.compose_run("stop", "server-simple")
    try:
        others = set(VARIANTS) - {"simple"}
        lab.wait_for(lambda: scraped() == others, "server-simple to drop out, the rest not", 60)
        # Scraped now, not a minute ago: every other server's uptime still moves.
        before = prometheus.query("echolab_uptime_seconds")
        lab.wait_for(
            lambda: all(prometheus.query("echolab_uptime_seconds")[v] > before[v] for v in others),
            "fresh samples from the other servers",
            30,
        )
    finally:
        lab.fresh("server-simple")
    lab.wait_for(lambda: scraped() == set(VARIANTS), "server-simple found again once started", 60)


def test_lost_updates_are_what_loadgen_sent_minus_what_the_server_counted(
    lab: Lab, prometheus: Prometheus
) -> None:
    run = lab.run("loadgen", "--target", "server-threads", "--clients", "2", "--repeat", "50",
                  "--json")  # fmt: skip
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.splitlines()[-1])
    assert result["sent"] == 100
    lab.wait_for(
        lambda: prometheus.query("echolab:lost_updates").get("threads") == result["lost_updates"]
        and prometheus.query("echolab_loadgen_sent_total").get("threads") == result["sent"],
        f"Prometheus's lost updates of threads to be loadgen's {result['lost_updates']}",
        30,
    )


def metrics(lab: Lab, service: str) -> str:
    host, port = lab.address(service, 8080)
    with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=10) as answer:
        return answer.read().decode()


@pytest.mark.parametrize("variant", VARIANTS)
def test_metrics_parse_with_the_official_parser(lab: Lab, variant: str) -> None:
    families = list(text_string_to_metric_families(metrics(lab, f"server-{variant}")))
    for family in families:
        assert family.documentation, f"{family.name} has no HELP"
        assert family.type in ("counter", "gauge"), f"{family.name} has no TYPE"
        assert [s.labels for s in family.samples] == [{"variant": variant}], family.name
    value = {family.name: family.samples[0].value for family in families}
    assert set(PROCESS_METRICS) <= set(value)
    # prefork: the parent and its workers (one per core the container may use, at least one).
    assert value["echolab_processes"] >= (2 if variant == "prefork" else 1)
    assert value["echolab_processes"] <= value["echolab_threads"]
    assert value["echolab_resident_memory_bytes"] > 1 << 20
    assert value["echolab_open_fds"] >= 3  # the listener, the stats listener, its waker at least


def chromium():
    """Debian's headless chromium through its chromedriver: nothing is downloaded."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (binary and driver):
        pytest.fail("no chromium or chromedriver: `make browser` installs them", pytrace=False)
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1400,1060"):  # fmt: skip
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


def drawn(browser) -> dict[str, str]:
    """Each graph of the console: 'data' once rickshaw drew a line in it, else its text."""
    return browser.execute_script(
        """
        const out = {};
        for (const box of document.querySelectorAll('.echolab_graph')) {
          const lines = [...box.querySelectorAll('svg path')].filter(p => p.getAttribute('d'));
          out[box.id.replace('echolab_', '')] = lines.length ? 'data' : box.innerText;
        }
        return out;
        """
    )


def open_until_drawn(browser, url: str, deadline: float = 90.0) -> None:
    """Open the console until every graph is drawn with data. A page that stays undrawn for
    ``PAGE_S`` is loaded again: Chromium aborts a page's loads when the host's network changes
    (ERR_NETWORK_CHANGED), which Docker does whenever a container of anyone's starts."""
    end, graphs = time.monotonic() + deadline, {}
    while True:
        browser.get(url)
        page_end = min(end, time.monotonic() + PAGE_S)
        while time.monotonic() < page_end:
            if (graphs := drawn(browser)) == dict.fromkeys(GRAPHS, "data"):
                return
            time.sleep(0.2)
        if time.monotonic() >= end:
            pytest.fail(f"the console's graphs not all drawn within {deadline:.0f} s: {graphs}")


def test_the_console_draws_threads_against_epoll_under_load(
    lab: Lab, prometheus: Prometheus, tmp_path: Path
) -> None:
    """The lessons' picture: idle connections held on threads and on epoll, then a load on
    each. The load starts once every idle connection is open: the server counts an idle
    connection's opening echo as a message, which the load's lost updates would absorb."""
    variants = ("threads", "epoll")
    idle = ("--idle", str(IDLE // IDLE_LOADGENS), "--hold", str(HOLD_S))
    load = ("--connections", "10", "--duration", str(HOLD_S))
    project = os.environ["COMPOSE_PROJECT_NAME"]
    with contextlib.ExitStack() as running:

        def start(variant: str, args: tuple[str, ...], name: str) -> None:
            running.enter_context(
                lab.start("loadgen", "--target", f"server-{variant}", *args,
                          name=f"{project}-watch-{name}")
            )  # fmt: skip

        for variant in variants:
            for i in range(IDLE_LOADGENS):
                start(variant, idle, f"{variant}-idle-{i}")
        lab.wait_for(
            lambda: all(
                prometheus.query("echolab_connections").get(v, 0) >= IDLE for v in variants
            ),
            f"{IDLE} connections open on threads and epoll",
            120,
        )
        threads = prometheus.query("echolab_threads")
        assert threads["threads"] > IDLE, "a thread per connection"
        assert threads["epoll"] < 10, "one loop, whatever the connections"
        for variant in variants:
            start(variant, load, f"{variant}-load")
        lab.wait_for(
            lambda: prometheus.query("echolab:lost_updates").get("threads", 0) > 0
            and prometheus.query("echolab:messages:rate5s").get("epoll", 0) > 0,
            "the race (threads counting less than loadgen sent) and epoll's messages",
            60,
        )
        range_2m = "#pctc" + urllib.parse.quote(json.dumps({"duration": 120, "endTime": 0}))
        browser = chromium()
        try:
            open_until_drawn(browser, prometheus.url + CONSOLE + range_2m)
            pictures = Path(os.environ.get("ECHOLAB_PICTURES") or tmp_path)
            pictures.mkdir(parents=True, exist_ok=True)
            assert browser.save_screenshot(str(pictures / "watch-console.png"))
        finally:
            browser.quit()

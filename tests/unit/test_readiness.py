"""Each event-loop variant's way of asking the kernel, alone on a socket pair.

The tutorial's poll variant registers ``POLLIN & POLLOUT``, which is 0: a socket so registered
is never reported writable. These tests would catch that in any of the three mechanisms.
"""

import socket
from collections.abc import Iterator
from selectors import EVENT_READ, EVENT_WRITE

import pytest
from echolab_server.eventloop import Readiness
from echolab_server.variants.epoll import EpollReadiness
from echolab_server.variants.poll import PollReadiness
from echolab_server.variants.select import SelectReadiness

WAIT = 5.0  # seconds: an answer that is due comes at once; this only bounds a failing test


@pytest.fixture(params=[SelectReadiness, PollReadiness, EpollReadiness])
def readiness(request: pytest.FixtureRequest) -> Iterator[Readiness]:
    mechanism = request.param()
    yield mechanism
    mechanism.close()


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    yield ours, theirs
    ours.close()
    theirs.close()


def test_read_and_write_interest_reports_a_writable_socket(readiness, pair) -> None:
    ours, _ = pair
    readiness.watch(ours.fileno(), EVENT_READ | EVENT_WRITE)
    assert readiness.wait(WAIT) == [(ours.fileno(), EVENT_WRITE)]


def test_arriving_bytes_make_it_readable_and_interest_can_change(readiness, pair) -> None:
    ours, theirs = pair
    readiness.watch(ours.fileno(), EVENT_READ | EVENT_WRITE)
    theirs.sendall(b"Hello, world")
    assert readiness.wait(WAIT) == [(ours.fileno(), EVENT_READ | EVENT_WRITE)]
    readiness.watch(ours.fileno(), EVENT_READ)  # a second watch changes what it waits for
    assert readiness.wait(WAIT) == [(ours.fileno(), EVENT_READ)]


def test_a_forgotten_socket_is_not_reported(readiness, pair) -> None:
    ours, theirs = pair
    readiness.watch(ours.fileno(), EVENT_READ)
    readiness.forget(ours.fileno())
    theirs.sendall(b"x")
    assert readiness.wait(0.05) == []


def test_a_hang_up_is_reported_so_that_recv_sees_it(readiness, pair) -> None:
    ours, theirs = pair
    readiness.watch(ours.fileno(), EVENT_READ)
    theirs.close()
    [(fd, events)] = readiness.wait(WAIT)
    assert fd == ours.fileno() and events & EVENT_READ
    assert ours.recv(1) == b""

"""The NATS link's liveness rules, as values: no sockets, a clock we move by hand."""

from __future__ import annotations

import pytest

from supervisor.nats_liveness import IllegalLinkTransition, LinkState, Liveness

INTERVAL = 20.0


def proven_at(now: float) -> Liveness:
    liveness = Liveness(INTERVAL, now=0.0)
    liveness.connected(now)
    return liveness


def test_a_new_link_is_connecting_until_its_handshake() -> None:
    liveness = Liveness(INTERVAL, now=0.0)
    assert liveness.state is LinkState.CONNECTING
    assert not liveness.is_proven
    assert liveness.check(100.0, client_connected=True, client_closed=False).rebuild is False
    liveness.connected(1.0)
    assert liveness.is_proven
    assert repr(liveness) == "Liveness(connected, ping_interval=20.0, outage_latched=False)"


def test_probes_go_out_four_times_an_interval() -> None:
    assert Liveness(INTERVAL, now=0.0).probe_interval == 5.0


@pytest.mark.parametrize(
    ("silent", "state", "rebuild"),
    [
        (0.0, LinkState.PROVEN, False),
        (INTERVAL, LinkState.PROVEN, False),  # exactly the interval: still proven
        (INTERVAL + 0.001, LinkState.UNPROVEN, True),
        (354.0, LinkState.UNPROVEN, True),  # nats-py's own stale check would only come now
    ],
)
def test_a_connected_client_is_proven_only_while_something_arrives(
    silent: float, state: LinkState, rebuild: bool
) -> None:
    liveness = proven_at(10.0)
    verdict = liveness.check(10.0 + silent, client_connected=True, client_closed=False)
    assert (verdict.state, verdict.rebuild) == (state, rebuild)
    assert liveness.is_proven is (state is LinkState.PROVEN)


def test_progress_keeps_the_link_proven() -> None:
    liveness = proven_at(0.0)
    for now in range(5, 200, 5):
        liveness.progress(float(now))
        assert not liveness.check(float(now), client_connected=True, client_closed=False).rebuild
    assert liveness.is_proven
    liveness.progress(50.0)  # an old timestamp never moves the proof back
    assert liveness.seconds_silent(195.0) == 0.0


def test_a_disconnect_is_left_to_the_client_to_reconnect() -> None:
    liveness = proven_at(0.0)
    verdict = liveness.check(100.0, client_connected=False, client_closed=False)
    assert (verdict.state, verdict.rebuild) == (LinkState.DISCONNECTED, False)
    assert not liveness.is_proven


def test_a_client_closed_under_us_is_rebuilt() -> None:
    liveness = proven_at(0.0)
    verdict = liveness.check(1.0, client_connected=False, client_closed=True)
    assert (verdict.state, verdict.rebuild) == (LinkState.CONNECTING, True)


def test_any_moment_unproven_is_latched_for_the_pruner() -> None:
    liveness = proven_at(0.0)
    assert liveness.take_outage() is False
    liveness.check(25.0, client_connected=True, client_closed=False)  # unproven
    liveness.move(LinkState.CONNECTING)  # rebuilding
    liveness.connected(27.0)  # back before the pruner looked
    assert liveness.is_proven
    assert liveness.take_outage() is True  # the pruner freshens instead of pruning
    assert liveness.take_outage() is False


def test_an_outage_still_going_stays_latched() -> None:
    liveness = proven_at(0.0)
    liveness.check(0.0, client_connected=False, client_closed=False)
    assert liveness.take_outage() is True
    assert liveness.take_outage() is True  # still disconnected
    liveness.connected(5.0)
    assert liveness.take_outage() is True  # the moment between the last look and now
    assert liveness.take_outage() is False


def test_a_closed_link_stays_closed() -> None:
    liveness = proven_at(0.0)
    liveness.move(LinkState.CLOSED)
    with pytest.raises(IllegalLinkTransition, match="from closed to connected"):
        liveness.connected(1.0)

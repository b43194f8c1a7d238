"""The deck's desktop notification (OSC 9 and OSC 777) carries names that come from a cluster
or a profile: whatever they hold, only the notification's own framing reaches the terminal."""

from __future__ import annotations

import pytest

from console.tui.breach_watch import notification

HOSTILE = "digits\x1b]0;pwned\x07\x1b[2J\x9b31m\x1b\\;x"


def test_a_hostile_name_cannot_end_the_notification_or_start_another_sequence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TMUX", raising=False)
    sent = notification("fleetdeck: SLO breach", f"models/{HOSTILE}: p99 900 ms > 40 ms")
    osc9, osc777, rest = sent.split("\x07")
    assert rest == ""
    assert osc9.startswith("\x1b]9;")
    assert "\x1b" not in osc9[1:]
    assert osc777.startswith("\x1b]777;notify;")
    assert "\x1b" not in osc777[1:]
    assert "\x9b" not in sent
    assert osc777.count(";") == 3  # notify;TITLE;BODY: a ';' in the name cannot add a field


def test_inside_tmux_each_sequence_is_wrapped_for_its_passthrough(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TMUX", "/tmp/tmux-0/default,1,0")
    sent = notification("fleetdeck: batch halted", HOSTILE)
    wrapped = sent.split("\x1b\\")
    assert wrapped[-1] == ""
    assert all(part.startswith("\x1bPtmux;\x1b\x1b]") for part in wrapped[:-1])

"""The profile's ``[deck]`` table: a colour per kube context, checked when the profile loads."""

from __future__ import annotations

import pytest

from console.profile import ProfileError, parse_profile


def test_context_colours_are_read_and_a_wrong_colour_or_key_is_refused_by_name() -> None:
    deck = {"context_colors": {"kwok-admin": "red", "prod": "#ff8800"}}
    profile = parse_profile("x", {"backend": "local", "deck": deck}, source=None)
    assert profile.deck.context_colors == {"kwok-admin": "red", "prod": "#ff8800"}
    assert parse_profile("x", {"backend": "local"}, source=None).deck.context_colors == {}
    wrong = {"backend": "local", "deck": {"context_colors": {"prod": "reddish"}}}
    with pytest.raises(ProfileError, match=r"deck\.context_colors\.prod: 'reddish' is not a col"):
        parse_profile("x", wrong, source=None)
    with pytest.raises(ProfileError, match=r"deck\.colours: unknown key"):
        parse_profile("x", {"backend": "local", "deck": {"colours": {}}}, source=None)

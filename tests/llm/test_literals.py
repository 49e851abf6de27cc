"""The literal guard: what must match exactly before one prompt may answer another."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shipyard.llm.literals import literals


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Transfer $100 to Alice", "Send 100 dollars to Alice"),
        ("What is 15% of 2,000?", "Calculate 15% of 2000"),
        ("Book a hotel in Rome for two nights", "Reserve a hotel in Rome for 2 nights"),
        ("Can't I take aspirin?", "Can I not take aspirin?"),
        ("What's the weather in Paris tomorrow?", "Tomorrow's weather forecast for Paris?"),
        ("Flights on May 3rd", "flights on 3 May"),
        ("Set the heating to 21 degrees", "Change the thermostat to 21 degrees"),
    ],
)
def test_paraphrases_keep_their_literals(first: str, second: str) -> None:
    assert literals(first) == literals(second)
    assert literals(first)  # each of these carries something to guard


@pytest.mark.parametrize(
    ("first", "second", "differs_in"),
    [
        ("Transfer $100 to Alice", "Transfer $1000 to Alice", "num:1000"),
        ("Transfer $100 to Alice", "Transfer €100 to Alice", "cur:eur"),
        ("Transfer $100 to Alice", "Transfer $100 to Bob", "name:bob"),
        ("weather in paris", "weather in london", "name:london"),
        ("Can I take ibuprofen with alcohol?", "Can I take paracetamol with alcohol?",
         "name:paracetamol"),
        ("can I take X", "can I not take X", "neg"),
        ("Should I take it with food?", "Shouldn't I take it with food?", "neg"),
        ("Is the shop open on Sunday?", "Is the shop open on Monday?", "day:monday"),
        ("Balance on January 31", "Balance on February 31", "month:2"),
        ("Meet next week", "Meet last week", "when:last-week"),
        ("Should I buy Apple stock?", "Should I sell Apple stock?", "pole:sell"),
        ("flight from Paris to Rome", "flight from Rome to Paris", "order:rome>paris"),
        ("iPhone 15 battery", "iPhone 14 battery", "num:14"),
    ],
)  # fmt: skip
def test_near_misses_differ_in_the_named_literal(first: str, second: str, differs_in: str) -> None:
    assert differs_in in literals(second) - literals(first)


def test_sentence_starts_are_not_names() -> None:
    assert literals("Please tell me a joke. Then tell me another") == frozenset()
    assert literals("Tell me about Alice") == {"name:alice"}


def test_configured_terms_are_literals_as_whole_words() -> None:
    terms = ["blue pill", "Zorvex"]
    assert "term:blue pill" in literals("Can I take the Blue  pill twice?", terms)
    assert "term:zorvex" in literals("is zorvex safe", terms)
    assert not any(item.startswith("term:") for item in literals("a blue pillow", terms))


@given(st.text(max_size=200), st.lists(st.text(max_size=20), max_size=3))
def test_any_text_gives_a_frozenset_of_strings(text: str, terms: list[str]) -> None:
    found = literals(text, terms)
    assert isinstance(found, frozenset)
    assert all((isinstance(item, str) and ":" in item) or item == "neg" for item in found)
    assert literals(text, terms) == found  # a pure function

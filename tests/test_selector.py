"""The label selector parser: every kubectl form, its meaning against label maps, and (by property)
that what it prints parses back to the same selector and that no input escapes as anything but a
SelectorError."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciler.selector import (
    EQUALS,
    EXISTS,
    IN,
    NOT_EQUALS,
    NOT_EXISTS,
    NOT_IN,
    Requirement,
    Selector,
    SelectorError,
    parse,
    parse_all,
)

PLATFORM = {"team": "platform", "tier": "frontier"}
DATA = {"team": "data"}
BARE: dict[str, str] = {}


@pytest.mark.parametrize(("text", "platform", "data", "bare"), [
    ("team=platform", True, False, False),
    ("team==platform", True, False, False),
    ("team!=platform", False, True, True),  # absent counts as "not equal", as in kubectl
    ("team in (platform,data)", True, True, False),
    ("team in ( platform , data )", True, True, False),
    ("team notin (platform)", False, True, True),
    ("tier", True, False, False),
    ("!tier", False, True, True),
    ("team=platform,tier=frontier", True, False, False),
    ("team=platform, tier!=frontier", False, False, False),
    ("team in (data),!tier", False, True, False),
])
def test_each_form_means_what_kubectl_means(text: str, platform: bool, data: bool, bare: bool) -> None:
    selector = parse(text)
    assert (selector.matches(PLATFORM), selector.matches(DATA), selector.matches(BARE)) == (platform, data, bare)


def test_several_selectors_are_anded() -> None:
    both = parse_all(["team in (platform,data)", "!tier"])
    assert [both.matches(labels) for labels in (PLATFORM, DATA, BARE)] == [False, True, False]


def test_values_compare_as_text() -> None:
    assert parse("replicas=3").matches({"replicas": 3})


@pytest.mark.parametrize("text", ["", "   ", "=", "a=", "a==", "a!=", "=b", "a in", "a in (", "a in ()",
                                  "a in (x,)", "a in (x", "a notin x", "a,", ",a", "a,,b", "!", "!!a", "!a=b",
                                  "a b", "a=b=c", "a (x)", "a in (x) y", "a)", "a=(b)"])
def test_malformed_selectors_say_where(text: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse(text)
    assert repr(text) in str(caught.value) and "expected" in str(caught.value) or "empty" in str(caught.value)


WORDS = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Cc", "Zl", "Zp"),
                                       blacklist_characters=",()=!"), min_size=1, max_size=8)


@st.composite
def requirements(draw: st.DrawFn) -> Requirement:
    op = draw(st.sampled_from([EQUALS, NOT_EQUALS, IN, NOT_IN, EXISTS, NOT_EXISTS]))
    key = draw(WORDS)
    if op in (EQUALS, NOT_EQUALS):
        return Requirement(key, op, (draw(WORDS),))
    if op in (IN, NOT_IN):
        return Requirement(key, op, tuple(draw(st.lists(WORDS, min_size=1, max_size=4))))
    return Requirement(key, op)


def reference(requirement: Requirement, labels: dict[str, str]) -> bool:
    """kubectl's meaning, written out plainly."""
    value, values, op = labels.get(requirement.key), requirement.values, requirement.op
    if op == EQUALS:
        return value == values[0]
    if op == NOT_EQUALS:
        return value is None or value != values[0]
    if op == IN:
        return value is not None and value in values
    if op == NOT_IN:
        return value is None or value not in values
    return (value is not None) == (op == EXISTS)


@given(st.lists(requirements(), min_size=1, max_size=5), st.dictionaries(WORDS, WORDS, max_size=5))
def test_printed_selectors_parse_back_and_match_as_the_reference_does(reqs: list[Requirement],
                                                                      labels: dict[str, str]) -> None:
    selector = Selector(tuple(reqs))
    again = parse(selector.text())
    assert again == selector
    assert again.matches(labels) == all(reference(r, labels) for r in reqs)
    spaced = parse(selector.text().replace(",", " , ").replace("(", " ( ").replace(")", " ) "))
    assert spaced == selector


@given(st.text(max_size=40))
def test_any_text_parses_or_is_a_selector_error(text: str) -> None:
    try:
        selector = parse(text)
    except SelectorError as exc:
        assert repr(text) in str(exc)
    else:
        assert parse(selector.text()) == selector

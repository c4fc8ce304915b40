"""Properties over generated filters and events: the canonical text parses back to
the same AST, and ``matches`` obeys boolean algebra and agrees with ``Query``'s own
fields wherever a filter says the same thing as they do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from eventcollector import Event, Query
from eventcollector.filters import (
    And,
    AnyOf,
    Compare,
    Exists,
    Field,
    Filter,
    FilterError,
    Not,
    Operator,
    Or,
    Prefix,
    Text,
    matches,
    parse_filter,
    search_terms,
)
from eventcollector.model import Severity

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
BASE = datetime(2026, 3, 1, tzinfo=UTC)
SYSTEMS = ["alpha", "beta", "gamma"]
TAGS = ["a", "b", "noise", "x y"]
KEYS = ["k", "n", "a.b", 'q"uote', "sp ace"]
WORDS = ["deploy", "timeout", "database", "dé", "ßtraße", "err"]
DATA_VALUES: list[Any] = [None, True, False, 0, 1, 5, 5.0, -2.5, "5", "x", "acme/web", ""]
STRING_FIELDS = ["id", "system", "event_type", "title", "description", "tag",
                 "correlation_id", "source_component", "fingerprint"]  # fmt: skip

# -- filters -----------------------------------------------------------------------------

strings = st.one_of(st.sampled_from([*SYSTEMS, *TAGS, "5", "true", "*", "-x", ""]), st.text())
data_values = st.one_of(
    st.sampled_from(DATA_VALUES),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
numbers = st.one_of(st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False,
                                                                allow_infinity=False))  # fmt: skip
instants = st.datetimes(
    min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
).map(lambda at: at.replace(fold=0))  # fold is not part of an instant
data_fields = st.builds(
    Field,
    st.sampled_from(["data", "metadata"]),
    st.lists(st.one_of(st.sampled_from(KEYS), st.text(min_size=1)), min_size=1, max_size=3).map(
        tuple
    ),
)
_COMPARISONS: list[Operator] = [">", ">=", "<", "<="]
ops = st.sampled_from(_COMPARISONS)


def _typed(field: Field) -> st.SearchStrategy[Any]:
    if field.path:
        return data_values
    if field.name == "timestamp":
        return instants
    if field.name == "severity":
        return st.sampled_from([s.value for s in Severity])
    if field.name == "duration_ms":
        return numbers
    return strings


@st.composite
def any_fields(draw: st.DrawFn) -> Field:
    name = draw(st.sampled_from([*STRING_FIELDS, "timestamp", "severity", "duration_ms", "data"]))
    return draw(data_fields) if name == "data" else Field(name)


@st.composite
def lists(draw: st.DrawFn) -> AnyOf:
    field = draw(any_fields())
    return AnyOf(field, tuple(draw(st.lists(_typed(field), min_size=1, max_size=4))))


@st.composite
def leaves(draw: st.DrawFn) -> Filter:
    field = draw(any_fields())
    name = field.name
    shape = draw(st.sampled_from(["eq", "cmp", "list", "prefix", "exists", "text"]))
    if shape == "text":
        words = draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3))
        return Text(tuple(words), draw(st.booleans()))
    if shape == "exists":
        return Exists(field)
    if shape == "prefix" and (field.path or name in STRING_FIELDS):
        return Prefix(field, draw(strings))
    if shape == "cmp" and (field.path or name in ("timestamp", "severity", "duration_ms")):
        if name == "severity":
            return Compare(field, draw(ops), draw(st.integers(0, 4)))
        value = draw(numbers if field.path else _typed(field))
        return Compare(field, draw(ops), value)
    if shape == "list":
        return draw(lists())
    return Compare(field, "=", draw(_typed(field)))


filters = st.recursive(
    leaves(),
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.lists(inner, min_size=2, max_size=3).map(lambda ops: And(tuple(ops))),
        st.lists(inner, min_size=2, max_size=3).map(lambda ops: Or(tuple(ops))),
    ),
    max_leaves=12,
)


def reparse(node: Filter) -> Filter:
    try:
        return parse_filter(str(node))
    except FilterError as exc:  # a generated tree may nest deeper than the language allows
        assume("nested deeper" not in str(exc))
        raise


@SETTINGS
@given(filters)
def test_canonical_text_parses_back_to_the_same_ast(node: Filter) -> None:
    again = reparse(node)
    assert again == node
    assert repr(again) == repr(node)  # also the literals' types: 1 == True == 1.0 in Python
    assert str(again) == str(node)


# -- events ------------------------------------------------------------------------------

events = st.builds(
    lambda system, severity, tags, title, description, minutes, duration, data, component,
    correlation: Event.create(
        system=system, event_type="workflow.started", severity=severity, tags=tags,
        title=title, description=description, timestamp=BASE - timedelta(minutes=minutes),
        duration_ms=duration, data=data, metadata=data, source_component=component,
        correlation_id=correlation, now=BASE,
    ),
    st.sampled_from(SYSTEMS),
    st.sampled_from([s.value for s in Severity]),
    st.lists(st.sampled_from(TAGS[:3]), max_size=3),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=4).map(" ".join),
    st.lists(st.sampled_from(WORDS), max_size=4).map(" ".join),
    st.integers(0, 600),
    st.one_of(st.none(), st.integers(0, 2000)),
    st.dictionaries(st.sampled_from(KEYS), st.sampled_from(DATA_VALUES), max_size=3),
    st.sampled_from([None, "api", "worker"]),
    st.sampled_from([None, "wf-1"]),
)  # fmt: skip


@SETTINGS
@given(filters, filters, events)
def test_boolean_algebra(a: Filter, b: Filter, event: Event) -> None:
    ma, mb = matches(a, event), matches(b, event)
    assert matches(Not(a), event) is (not ma)
    assert matches(Not(Not(a)), event) is ma
    assert matches(And((a, b)), event) is (ma and mb)
    assert matches(Or((a, b)), event) is (ma or mb)
    # De Morgan, both ways.
    assert matches(Not(And((a, b))), event) is matches(Or((Not(a), Not(b))), event)
    assert matches(Not(Or((a, b))), event) is matches(And((Not(a), Not(b))), event)


@SETTINGS
@given(filters, events)
def test_the_canonical_text_means_the_same(node: Filter, event: Event) -> None:
    assert matches(reparse(node), event) is matches(node, event)


@SETTINGS
@given(lists(), events)
def test_a_list_is_the_or_of_its_values(node: AnyOf, event: Event) -> None:
    each = [Compare(node.field, "=", v) for v in node.values]
    assert matches(node, event) is any(matches(c, event) for c in each)


# -- agreement with Query's own fields ---------------------------------------------------

filter_and_query = st.one_of(
    st.lists(st.sampled_from(SYSTEMS), min_size=1, max_size=3).map(
        lambda v: (f"system:[{', '.join(v)}]", Query(systems=tuple(v)))
    ),
    st.lists(st.sampled_from(TAGS[:3]), min_size=1, max_size=3).map(
        lambda v: (" ".join(f"tag:{t}" for t in v), Query(tags_all=tuple(v)))
    ),
    st.lists(st.sampled_from(TAGS[:3]), min_size=1, max_size=3).map(
        lambda v: (f"tag:[{', '.join(v)}]", Query(tags_any=tuple(v)))
    ),
    st.sampled_from(list(Severity)).map(
        lambda s: (
            f"severity:>={s.value}",
            Query(severities=tuple(x.value for x in Severity if x.rank >= s.rank)),
        )
    ),
    st.integers(0, 2000).map(lambda n: (f"duration:>={n}", Query(min_duration_ms=n))),
    st.integers(0, 600).map(
        lambda m: (
            f"timestamp:>=-{m}m",
            Query(since=BASE - timedelta(minutes=m)),
        )
    ),
    st.lists(st.sampled_from(WORDS), min_size=1, max_size=3).map(
        lambda w: (" ".join(w), Query(search=" ".join(w)))
    ),
    st.sampled_from(["api", "worker"]).map(
        lambda c: (f"component:{c}", Query(source_components=(c,)))
    ),
    st.just(("correlation_id:wf-1", Query(correlation_id="wf-1"))),
)


@SETTINGS
@given(filter_and_query, events)
def test_filters_agree_with_query_fields(pair: tuple[str, Query], event: Event) -> None:
    text, query = pair
    assert matches(parse_filter(text, now=BASE), event) is query.matches(event)


@SETTINGS
@given(st.lists(st.sampled_from(WORDS), min_size=1, max_size=3), events)
def test_a_phrase_implies_its_words(words: list[str], event: Event) -> None:
    phrase = Text(tuple(words), phrase=True)
    if matches(phrase, event):
        assert matches(Text(tuple(words)), event)
    # A one-word phrase is the word.
    assert matches(Text(tuple(words[:1]), phrase=True), event) is matches(
        Text(tuple(words[:1])), event
    )


@SETTINGS
@given(st.text(min_size=1))
def test_search_terms_are_stable(text: str) -> None:
    # The canonical text of a word term joins its words with "-": they must split back.
    words = search_terms(text)
    assert search_terms("-".join(words)) == words

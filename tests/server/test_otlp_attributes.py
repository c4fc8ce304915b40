"""OTLP attribute names split at their dots into objects (``_otlp_common.nested``): what
nests, what stays one key, and that no attribute is ever lost or depends on order."""

from __future__ import annotations

import copy
import itertools
import random
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from eventcollector.server.ingest._otlp_common import nested
from eventcollector.server.limits import depth_exceeds


def test_semantic_convention_names_nest() -> None:
    attrs = {"http.request.method": "GET", "http.route": "/a", "user_agent.original": "curl"}
    assert nested(attrs, 32) == {
        "http": {"request": {"method": "GET"}, "route": "/a"},
        "user_agent": {"original": "curl"},
    }


def test_a_name_that_holds_a_value_keeps_the_dotted_one_flat() -> None:
    # "http" is a string: "http.method" cannot go inside it, whatever the order sent.
    for attrs in ({"http": "x", "http.method": "GET"}, {"http.method": "GET", "http": "x"}):
        assert nested(attrs, 32) == {"http": "x", "http.method": "GET"}
    # Fewer parts first: "a.b" is placed, then "a.b.c" finds a value there.
    assert nested({"a.b.c": 2, "a.b": 1}, 32) == {"a": {"b": 1}, "a.b.c": 2}


def test_a_map_attribute_takes_dotted_names_in() -> None:
    assert nested({"db": {"system": "pg"}, "db.name": "orders"}, 32) == {
        "db": {"system": "pg", "name": "orders"}
    }
    # The same key twice (in the map and dotted): the dotted one stays flat.
    assert nested({"db": {"name": "a"}, "db.name": "b"}, 32) == {
        "db": {"name": "a"},
        "db.name": "b",
    }


def test_empty_parts_and_depth_keep_a_name_whole() -> None:
    odd = {"a..b": 1, ".a": 2, "a.": 3, ".": 4}
    assert nested(odd, 32) == odd
    deep = ".".join("k" * 8)  # 8 parts: "k.k.k.k.k.k.k.k"
    assert nested({deep: 1}, 8) == {deep: 1}  # a scalar at depth 8 would be too deep
    assert nested({deep: 1}, 9)["k"]["k"]["k"]["k"]["k"]["k"]["k"] == {"k": 1}
    assert nested({"a.b": {"c": {"d": 1}}}, 3) == {"a.b": {"c": {"d": 1}}}
    assert nested({"a.b": {"c": {"d": 1}}}, 4) == {"a": {"b": {"c": {"d": 1}}}}


def test_under_and_fixed() -> None:
    # A log body's map goes under the attributes; our own fields win and take nothing in.
    out = nested(
        {"http.method": "GET", "kind": "attr", "status.note": "x"},
        32,
        under={"http": {"host": "h"}, "order": 7},
        fixed={"kind": "server", "status": {"code": "ok"}},
    )
    assert out == {
        "http": {"host": "h", "method": "GET"},
        "order": 7,
        "kind": "server",
        "status": {"code": "ok"},
        "status.note": "x",
    }


def _leaves(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Every scalar with the dotted path to it (a key's own dots included); an empty
    object has none (dotted names may go into it)."""
    if isinstance(value, dict):
        return [
            pair
            for key, child in value.items()
            for pair in _leaves(child, f"{prefix}.{key}" if prefix else key)
        ]
    return [(prefix, repr(value))]


# Names of up to three parts over a few keys (an empty part among them): clashes are likely.
_PARTS = ["a", "b", ""]
_names = st.sampled_from(
    sorted({".".join(p) for n in (1, 2, 3) for p in itertools.product(_PARTS, repeat=n)})
)
_values = st.one_of(
    st.integers(),
    st.text("xy.", max_size=3),
    st.dictionaries(st.sampled_from(["a", "b"]), st.none()),
)


# A worker of a loaded machine may be slow to draw the first input.
@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(_names, _values, max_size=8), st.integers(1, 6), st.randoms())
def test_nothing_is_lost_nor_depends_on_order(
    attrs: dict[str, Any], max_depth: int, rng: random.Random
) -> None:
    sent = copy.deepcopy(attrs)
    out = nested(attrs, max_depth)
    assert attrs == sent  # the caller's maps are not written to
    # Every attribute's value is in the output, at the path its name spells.
    assert sorted(_leaves(out)) == sorted(_leaves(attrs))
    shuffled = list(attrs.items())
    rng.shuffle(shuffled)
    assert nested(dict(shuffled), max_depth) == out
    # Nesting never goes past the bound the values were checked against.
    if not any(depth_exceeds(v, max_depth - 1) for v in attrs.values()):
        assert not depth_exceeds(out, max_depth)

"""The parser: precedence, every operator and shape, aliases, quoting, errors with
their columns, and every limit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from eventcollector.filters import (
    MAX_DEPTH,
    MAX_LIST_VALUES,
    MAX_TERMS,
    MAX_TEXT_BYTES,
    And,
    AnyOf,
    Compare,
    Exists,
    Field,
    FilterError,
    Not,
    Or,
    Prefix,
    Text,
    parse_filter,
    terms,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def p(text: str) -> object:
    return parse_filter(text, now=NOW)


def word(w: str) -> Text:
    return Text((w,))


def eq(name: str, value: object, *path: str) -> Compare:
    return Compare(Field(name, path), "=", value)  # type: ignore[arg-type]


# -- structure -------------------------------------------------------------------------


def test_terms_separated_by_whitespace_are_anded() -> None:
    assert p("a b  c") == And((word("a"), word("b"), word("c")))
    assert p("a AND b c") == p("a b c")


def test_or_binds_looser_than_and() -> None:
    assert p("a b OR c") == Or((And((word("a"), word("b"))), word("c")))
    assert p("a OR b c") == Or((word("a"), And((word("b"), word("c")))))
    assert p("a OR b OR c") == Or((word("a"), word("b"), word("c")))


def test_parentheses_group() -> None:
    assert p("(a OR b) c") == And((Or((word("a"), word("b"))), word("c")))
    assert p("((a))") == word("a")
    # A group keeps its structure: (a b) c is not flattened into a b c.
    assert p("(a b) c") == And((And((word("a"), word("b"))), word("c")))


def test_negation_with_minus_and_not() -> None:
    assert p("-a") == Not(word("a"))
    assert p("NOT a") == Not(word("a"))
    assert p("-(a OR b)") == Not(Or((word("a"), word("b"))))
    assert p("NOT (a b)") == Not(And((word("a"), word("b"))))
    assert p("--a") == Not(Not(word("a")))
    assert p("a -tag:x") == And((word("a"), Not(eq("tag", "x"))))


def test_terms_are_the_leaves_under_and_or_and_not_in_text_order() -> None:
    node = parse_filter('-(a OR tag:x) "b c" (NOT data.n:1 d)', now=NOW)
    assert list(terms(node)) == [
        word("a"),
        eq("tag", "x"),
        Text(("b", "c"), phrase=True),
        eq("data", 1, "n"),
        word("d"),
    ]
    assert list(terms(word("a"))) == [word("a")]


def test_lower_case_keywords_are_words() -> None:
    assert p("a or b") == And((word("a"), word("or"), word("b")))
    assert p("not") == word("not")


def test_a_minus_inside_a_word_is_part_of_it() -> None:
    assert p("foo-bar") == Text(("foo", "bar"))
    assert p("title:-x") == eq("title", "-x")


# -- full text ---------------------------------------------------------------------------


def test_words_and_phrases() -> None:
    assert p("Timeout") == word("timeout")
    assert p('"Connection  REFUSED"') == Text(("connection", "refused"), phrase=True)
    assert p('"one"') == Text(("one",), phrase=True)
    assert p(r'"say \"hi\""') == Text(("say", "hi"), phrase=True)


# -- field terms -------------------------------------------------------------------------


def test_every_shape() -> None:
    assert p("system:mahavishnu") == eq("system", "mahavishnu")
    assert p('title:"Deploy started"') == eq("title", "Deploy started")
    assert p("title:Deploy*") == Prefix(Field("title"), "Deploy")
    assert p('title:"Deploy st"*') == Prefix(Field("title"), "Deploy st")
    assert p("system:[a, b,c]") == AnyOf(Field("system"), ("a", "b", "c"))
    assert p('tag:[ "x y" , z ]') == AnyOf(Field("tag"), ("x y", "z"))
    assert p("correlation_id:*") == Exists(Field("correlation_id"))
    assert p('title:"*"') == eq("title", "*")


@pytest.mark.parametrize("op", [">", ">=", "<", "<="])
def test_every_comparison(op: str) -> None:
    assert p(f"duration_ms:{op}500") == Compare(Field("duration_ms"), op, 500)  # type: ignore[arg-type]
    assert p(f"data.n:{op}1.5") == Compare(Field("data", ("n",)), op, 1.5)  # type: ignore[arg-type]


def test_aliases() -> None:
    assert p("type:test.failed") == eq("event_type", "test.failed")
    assert p("level:error") == eq("severity", "error")
    assert p("tags:x") == eq("tag", "x")
    assert p("component:api") == eq("source_component", "api")
    assert p("duration:>5") == Compare(Field("duration_ms"), ">", 5)


def test_every_fixed_field() -> None:
    for name in ("id", "system", "event_type", "title", "description", "tag",
                 "correlation_id", "source_component"):  # fmt: skip
        assert p(f"{name}:5") == eq(name, "5"), name  # a string on a string field
        assert isinstance(p(f"{name}:5").value, str)  # type: ignore[attr-defined]


def test_severities_by_name_and_rank() -> None:
    assert p("severity:ERROR") == eq("severity", "error")
    assert p("severity:warn") == eq("severity", "warning")
    assert p("severity:>=warning") == Compare(Field("severity"), ">=", 2)
    assert p("severity:<info") == Compare(Field("severity"), "<", 1)
    assert p("severity:[error, critical]") == AnyOf(Field("severity"), ("error", "critical"))


def test_timestamps_absolute_and_relative() -> None:
    at = datetime(2026, 2, 1, 10, 30, tzinfo=UTC)
    assert p("timestamp:>=2026-02-01T10:30:00Z") == Compare(Field("timestamp"), ">=", at)
    assert p("timestamp:<2026-02-01T11:30:00+01:00") == Compare(Field("timestamp"), "<", at)
    assert p("timestamp:>2026-02-01T10:30") == Compare(Field("timestamp"), ">", at)  # naive=UTC
    for text, delta in (("-30m", timedelta(minutes=30)), ("-2h", timedelta(hours=2)),
                        ("-7d", timedelta(days=7)), ("-90s", timedelta(seconds=90)),
                        ("-1w", timedelta(weeks=1)), ("-1.5h", timedelta(hours=1.5))):  # fmt: skip
        assert p(f"timestamp:>{text}") == Compare(Field("timestamp"), ">", NOW - delta)


def test_parse_without_now_uses_the_clock() -> None:
    node = parse_filter("timestamp:>-1h")
    assert isinstance(node, Compare)
    assert isinstance(node.value, datetime)
    assert abs(datetime.now(UTC) - timedelta(hours=1) - node.value) < timedelta(minutes=1)


def test_data_literals_are_typed() -> None:
    assert repr(p("data.n:5")) == repr(eq("data", 5, "n"))
    assert repr(p('data.n:"5"')) == repr(eq("data", "5", "n"))
    assert repr(p("data.n:-2.5e3")) == repr(eq("data", -2500.0, "n"))
    assert repr(p("data.ok:true")) == repr(eq("data", True, "ok"))
    assert repr(p("data.ok:false")) == repr(eq("data", False, "ok"))
    assert repr(p("data.k:null")) == repr(eq("data", None, "k"))
    assert repr(p('data.k:"null"')) == repr(eq("data", "null", "k"))
    # Not JSON numbers: strings.
    assert repr(p("data.v:007")) == repr(eq("data", "007", "v"))
    assert repr(p("data.v:1.")) == repr(eq("data", "1.", "v"))
    assert repr(p("data.v:True")) == repr(eq("data", "True", "v"))
    # Past 64 bits an integer is a float (no backend binds it as an integer).
    assert repr(p(f"data.v:{2**63}")) == repr(eq("data", float(2**63), "v"))
    assert repr(p('data.l:[1, "1", true, null, x]')) == repr(
        AnyOf(Field("data", ("l",)), (1, "1", True, None, "x"))
    )


def test_data_paths() -> None:
    assert p("data.repo:acme/*") == Prefix(Field("data", ("repo",)), "acme/")
    assert p("metadata.host.name:a") == eq("metadata", "a", "host", "name")
    assert p('data."key.with.dots".x:1') == eq("data", 1, "key.with.dots", "x")
    assert p(r'data."a \"q\"":1') == eq("data", 1, 'a "q"')
    assert p("data.k:*") == Exists(Field("data", ("k",)))
    assert p("data.url:http://x:8080/y") == eq("data", "http://x:8080/y", "url")


# -- errors ------------------------------------------------------------------------------

ERRORS = [
    ("severity:", "q: expected a value after 'severity:' at column 10"),
    ("level:>= x", "q: expected a value after 'level:>=' at column 9"),
    ("a severity:)", "q: expected a value after 'severity:' at column 12"),
    ("(a", "q: expected ')' to close the '(' from column 1 at column 3"),
    ("a)", "q: unexpected ')' at column 2"),
    ("()", "q: expected a term after '(', found ')' at column 2"),
    ("a OR", "q: expected a term after 'OR' at column 5"),
    ("a AND OR b", "q: expected a term after 'AND', found 'OR' at column 7"),
    ("AND a", "q: expected a term, found 'AND' at column 1"),
    ("NOT", "q: expected a term after 'NOT' at column 4"),
    ("-(", "q: expected a term after '(' at column 3"),
    ("a ]", "q: unexpected ']' at column 3"),
    ('a "open', "q: unclosed quote at column 3"),
    ('title:"open', "q: unclosed quote at column 7"),
    (
        "x:1",
        "q: unknown field 'x' (one of id, timestamp, system, event_type, severity, "
        "title, description, tag, correlation_id, source_component, duration_ms, fingerprint, "
        "type, level, tags, component, duration, data.KEY, metadata.KEY) at column 1",
    ),
    (
        "  foo.bar:1",
        "q: unknown field 'foo.bar' (one of id, timestamp, system, event_type, "
        "severity, title, description, tag, correlation_id, source_component, duration_ms, "
        "fingerprint, type, level, tags, component, duration, data.KEY, metadata.KEY) at column 3",
    ),
    ("data:1", "q: data: give a key (data.KEY) at column 1"),
    ('data."":1', "q: empty key in 'data.\"\"' at column 1"),
    # Not read as the words "data", "http" and "x": a key path with an empty key.
    ("data.http.:x", "q: empty key in 'data.http.' at column 1"),
    ("a data..b:1", "q: empty key in 'data..b' at column 3"),
    (
        "severity:loud",
        "q: unknown severity 'loud' (one of debug, info, warning, error, critical) at column 10",
    ),
    (
        "severity:>loud",
        "q: unknown severity 'loud' (one of debug, info, warning, error, critical) at column 11",
    ),
    (
        "severity:[error, x]",
        "q: unknown severity 'x' (one of debug, info, warning, error, critical) at column 18",
    ),
    ("severity:err*", "q: 'severity:' takes no prefix ('*') at column 10"),
    ("timestamp:2026*", "q: 'timestamp:' takes no prefix ('*') at column 11"),
    ("title:>a*", "q: 'title:' takes no prefix ('*') at column 8"),
    (
        "timestamp:>yesterday",
        "q: timestamp: expected ISO 8601 or a relative time "
        "(-30m, -2h, -7d), got 'yesterday' at column 12",
    ),
    (
        "timestamp:>-99999999999d",
        "q: timestamp: expected ISO 8601 or a relative time "
        "(-30m, -2h, -7d), got '-99999999999d' at column 12",
    ),
    ("duration:>fast", "q: 'duration:' takes a number, got 'fast' at column 11"),
    ('duration_ms:"5"', "q: 'duration_ms:' takes a number, not a quoted string at column 13"),
    ("duration:>1e999", "q: number out of range: '1e999' at column 11"),
    ("title:>a", "q: 'title:' takes no comparison ('>') at column 8"),
    ("tag:<=a", "q: 'tag:' takes no comparison ('<=') at column 7"),
    ("data.n:>abc", "q: 'data.n:>' compares numbers only, got 'abc' at column 9"),
    ('data.n:>"5"', "q: 'data.n:>' compares numbers only, got '5' at column 9"),
    ("data.n:>true", "q: 'data.n:>' compares numbers only, got 'true' at column 9"),
    ("tag:>*", "q: '*' cannot be compared (after 'tag:') at column 1"),
    ("tag:>[a]", "q: a list cannot be compared (after 'tag:>') at column 6"),
    ("tag:[a,", "q: expected ']' to close the '[' from column 5 at column 8"),
    ("tag:[a b]", "q: expected ',' or ']' in the list at column 8"),
    ("tag:[a,,b]", "q: expected a value in the list at column 8"),
    ("tag:[]", "q: expected a value in the list at column 6"),
    ("tag:]", "q: expected a value after 'tag:' at column 5"),
    ("*", "q: no words to search for in '*' at column 1"),
    ('a "..."', "q: no words to search for in '...' at column 3"),
    ("", "q: empty filter"),
    ("   ", "q: empty filter"),
]


@pytest.mark.parametrize(("text", "message"), ERRORS)
def test_errors_name_the_column(text: str, message: str) -> None:
    with pytest.raises(FilterError) as caught:
        p(text)
    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)
    if "column" in message:
        assert caught.value.column == int(message.rsplit(" ", 1)[1])


def test_not_a_string() -> None:
    with pytest.raises(FilterError, match="q: expected a string, got int"):
        parse_filter(5)  # type: ignore[arg-type]


# -- limits ------------------------------------------------------------------------------


def test_text_limit_is_in_bytes() -> None:
    at_limit = "a" * MAX_TEXT_BYTES
    assert p(at_limit) == word(at_limit)
    with pytest.raises(FilterError, match=f"^q: longer than {MAX_TEXT_BYTES} bytes$"):
        p("a" * (MAX_TEXT_BYTES + 1))
    # 1,400 characters of three bytes each: under the limit in characters, not in bytes.
    with pytest.raises(FilterError, match="longer than"):
        p("€" * 1_400)


def test_term_limit() -> None:
    assert p(" ".join(["a"] * MAX_TERMS)) == And(tuple([word("a")] * MAX_TERMS))
    text = " ".join(["ab"] * (MAX_TERMS + 1))
    with pytest.raises(FilterError) as caught:
        p(text)
    assert str(caught.value) == f"q: more than {MAX_TERMS} terms at column {3 * MAX_TERMS + 1}"


def test_depth_limit_counts_parentheses_and_negations() -> None:
    p("(" * MAX_DEPTH + "a" + ")" * MAX_DEPTH)
    p("-" * MAX_DEPTH + "a")
    p("((((----a))))")
    with pytest.raises(FilterError, match=f"^q: nested deeper than {MAX_DEPTH} at column 9$"):
        p("(" * (MAX_DEPTH + 1) + "a" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(FilterError, match=f"^q: nested deeper than {MAX_DEPTH} at column 12$"):
        p("NOT " + "(" * 3 + "-" * 4 + "-a" + ")" * 3)


def test_list_limit() -> None:
    values = ",".join(str(i) for i in range(MAX_LIST_VALUES))
    node = p(f"data.n:[{values}]")
    assert isinstance(node, AnyOf)
    assert len(node.values) == MAX_LIST_VALUES
    with pytest.raises(FilterError) as caught:
        p(f"data.n:[{values},1]")
    assert str(caught.value).startswith(f"q: more than {MAX_LIST_VALUES} values in a list at")
    assert caught.value.column == len(f"data.n:[{values},") + 1


# -- the cache of parsed texts -------------------------------------------------------


def test_a_text_without_a_timestamp_is_parsed_once_and_shared() -> None:
    first = parse_filter("severity:>=warning data.repo:acme/* -tag:noise")
    again = parse_filter("severity:>=warning data.repo:acme/* -tag:noise", now=NOW)
    assert again is first


def test_a_text_with_a_timestamp_is_parsed_for_its_now() -> None:
    text = "timestamp:>-2h system:a"
    early = parse_filter(text, now=NOW)
    later = parse_filter(text, now=NOW + timedelta(hours=1))
    assert isinstance(early, And)
    assert isinstance(later, And)
    assert early.operands[0] == Compare(Field("timestamp"), ">", NOW - timedelta(hours=2))
    assert later.operands[0] == Compare(Field("timestamp"), ">", NOW - timedelta(hours=1))


def test_a_cached_text_still_checks_now_and_errors_are_never_kept() -> None:
    parse_filter("system:a")
    with pytest.raises(ValueError, match=r"^now: "):
        parse_filter("system:a", now="not a time")  # type: ignore[arg-type]
    for _ in range(2):
        with pytest.raises(FilterError, match="column 8"):
            parse_filter("system:")


def test_the_cache_is_bounded() -> None:
    from eventcollector.filters import _parser

    _parser.clear_cache()
    for i in range(_parser.CACHE_SIZE + 10):
        parse_filter(f"data.n:{i}")
    assert len(_parser._parsed) == _parser.CACHE_SIZE
    assert "data.n:0" not in _parser._parsed  # the oldest went first
    assert f"data.n:{_parser.CACHE_SIZE + 9}" in _parser._parsed

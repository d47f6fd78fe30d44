"""Property: whatever a person or a script sends, the answer is never a 5xx.

hypothesis generates JSON (lone surrogates, NUL, deep nesting, wrong types
included), raw bytes, form posts with any field names and values, the htmx
validation URL with any field name, and the history's filters. The runs are
bounded (max_examples) so the suite stays quick; bench/fuzz_api.py sends
10,000 of these to a real server.
"""

import json
from urllib.parse import quote, quote_from_bytes

from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from imports.forms import MEMBERS, STRING_MEMBERS

from .factories import valid_payload

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Every code point, lone surrogates and NUL included; and, often, ordinary
# text around one of the characters a fuzzer found trouble with.
TRICKY = ["\ud800", "\udfff", "\x00", "²", "٣", "１", "\u202e", "\ufeff", "9" * 4400]
any_text = st.builds(
    "{}{}{}".format, st.text(max_size=3), st.sampled_from(TRICKY), st.text(max_size=3)
) | st.text(st.characters(exclude_categories=()), max_size=40)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | any_text
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(any_text, inner, max_size=4),
    max_leaves=20,
)
members = st.sampled_from(MEMBERS) | any_text


def requests_like_imports():
    """A valid request with members replaced (often by tricky text), added or dropped."""
    text_changes = st.dictionaries(st.sampled_from(STRING_MEMBERS), any_text, max_size=2)
    tag_changes = st.dictionaries(any_text, any_text, max_size=3).map(lambda tags: {"tags": tags})
    any_changes = st.dictionaries(members, json_values, max_size=4)
    return st.builds(
        lambda changes, drops: {
            **{k: v for k, v in valid_payload().items() if k not in drops},
            **changes,
        },
        text_changes | tag_changes | any_changes,
        st.just(set()) | st.sets(st.sampled_from(MEMBERS), max_size=2),
    )


def urlencode_any(pairs):
    """Form encoding that also carries lone surrogates, as a hostile client can."""

    def encode(text):
        return quote_from_bytes(text.encode("utf-8", "surrogatepass"))

    return "&".join(f"{encode(name)}={encode(value)}" for name, value in pairs)


def assert_not_5xx(response):
    assert response.status_code < 500, response.content[:500]


@FUZZ
@given(body=requests_like_imports() | json_values)
def test_the_api_never_answers_5xx_to_json(client, api_headers, body):
    encoded = json.dumps(body, ensure_ascii=True)  # \ud800 escapes for surrogates
    response = client.post(
        "/api/imports", encoded, content_type="application/json", headers=api_headers
    )
    assert_not_5xx(response)
    if response.status_code >= 400:
        assert set(response.json()) >= {"error", "status"}


@FUZZ
@given(
    body=st.binary(max_size=200)
    | st.integers(1, 6000).map(lambda depth: ("[" * depth).encode())
    | st.integers(1, 200).map(lambda depth: ('{"a":' * depth + "1" + "}" * depth).encode())
)
def test_the_api_never_answers_5xx_to_bytes(client, api_headers, body):
    response = client.post(
        "/api/imports", body, content_type="application/json", headers=api_headers
    )
    assert_not_5xx(response)


form_fields = (
    st.sampled_from(MEMBERS)
    | st.sampled_from(["tags-TOTAL_FORMS", "tags-INITIAL_FORMS", "tags_action"])
    | st.builds(
        lambda index, part: f"tags-{index}-{part}", any_text, st.sampled_from(["key", "value"])
    )
    | any_text
)
form_values = any_text | st.integers().map(str) | st.builds(lambda i: f"remove-{i}", any_text)


@FUZZ
@given(pairs=st.lists(st.tuples(form_fields, form_values), max_size=12))
def test_the_form_never_answers_5xx(user_client, pairs):
    base = list(valid_payload().items()) + [("tags-TOTAL_FORMS", "0")]
    response = user_client.post(
        reverse("imports:new"),
        urlencode_any(base + pairs),
        content_type="application/x-www-form-urlencoded",
    )
    assert_not_5xx(response)


@FUZZ
@given(field=form_fields, pairs=st.lists(st.tuples(form_fields, form_values), max_size=6))
def test_the_validation_endpoint_never_answers_5xx(user_client, field, pairs):
    path = "/imports/new/validate/" + quote(field.encode("utf-8", "surrogatepass"), safe="")
    response = user_client.post(
        path,
        urlencode_any(pairs),
        content_type="application/x-www-form-urlencoded",
        headers={"HX-Request": "true"},
    )
    assert_not_5xx(response)


filter_names = st.sampled_from(["q", "status", "platform", "page", "ids"]) | any_text


@FUZZ
@given(
    query=st.lists(
        st.tuples(
            st.sampled_from(["q", "status", "platform", "page", "ids"]) | any_text, form_values
        ),
        max_size=5,
    )
)
def test_the_history_and_its_poller_never_answer_5xx(user_client, query):
    encoded = urlencode_any(query)
    assert_not_5xx(user_client.get("/?" + encoded))
    assert_not_5xx(user_client.get(reverse("imports:history_poll") + "?" + encoded))
    assert_not_5xx(user_client.get("/api/imports?" + encoded))

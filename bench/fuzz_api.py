"""Benchmark: 10,000 hostile requests against the portal on gunicorn, DEBUG off.

    .venv/bin/python bench/fuzz_api.py [--requests 10000] [--clients 8]

The requests come from the hypothesis strategies of tests/test_fuzz.py:
JSON bodies (lone surrogates, NUL, deep nesting, wrong types), raw bytes,
form posts with any fields, the htmx validation URL with any field name, and
the history's and the API's query strings. Uses DATABASE_URL, CACHE_URL and
CELERY_BROKER_URL when set (PostgreSQL and Redis, as in production), else
the embedded defaults in a temporary DATA_DIR. Prints how many answers of
each status came back; figures only, nothing is asserted.
"""

import argparse
import collections
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import requests
from serving import Gunicorn, prepare, production_environ, sign_in


def generate(count):
    """(kind, method, path, body, content_type) tuples drawn by hypothesis."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    from tests import test_fuzz as fuzz
    from tests.factories import valid_payload

    def form(pairs):
        base = list(valid_payload().items()) + [("tags-TOTAL_FORMS", "0")]
        return fuzz.urlencode_any(base + pairs)

    pair_lists = st.lists(st.tuples(fuzz.form_fields, fuzz.form_values), max_size=10)
    urlencoded = "application/x-www-form-urlencoded"
    requests_ = st.one_of(
        (fuzz.requests_like_imports() | fuzz.json_values).map(
            lambda body: ("api-json", "POST", "/api/imports", json.dumps(body), "application/json")
        ),
        fuzz.st.binary(max_size=300).map(
            lambda body: ("api-bytes", "POST", "/api/imports", body, "application/json")
        ),
        st.integers(1, 6000).map(
            lambda depth: ("api-deep", "POST", "/api/imports", "[" * depth, "application/json")
        ),
        pair_lists.map(lambda pairs: ("form", "POST", "/imports/new", form(pairs), urlencoded)),
        st.tuples(fuzz.form_fields, pair_lists).map(
            lambda field_pairs: (
                "validate",
                "POST",
                "/imports/new/validate/"
                + quote(field_pairs[0].encode("utf-8", "surrogatepass"), safe=""),
                fuzz.urlencode_any(field_pairs[1]),
                urlencoded,
            )
        ),
        st.tuples(st.sampled_from(["/", "/imports/in-flight", "/api/imports"]), pair_lists).map(
            lambda path_pairs: (
                "query",
                "GET",
                path_pairs[0] + "?" + fuzz.urlencode_any(path_pairs[1]),
                None,
                None,
            )
        ),
    )
    drawn = []

    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(requests_)
    def draw(request):
        drawn.append(request)

    draw()
    return drawn[:count]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()

    environ = production_environ()
    os.environ.update(DATA_DIR=environ["DATA_DIR"])
    token = prepare(environ)
    started = time.perf_counter()
    fuzzed = generate(args.requests)
    generated_in = time.perf_counter() - started

    with Gunicorn(environ) as server:
        person = sign_in(requests.Session(), server.url)
        robot = {"Authorization": f"Bearer {token}"}

        def send(request):
            kind, method, path, body, content_type = request
            headers = dict(robot) if path.startswith("/api/") else dict(person.headers)
            if content_type:
                headers["Content-Type"] = content_type
            if isinstance(body, str):
                body = body.encode("utf-8", "surrogatepass")
            try:
                response = requests.request(
                    method, server.url + path, data=body, headers=headers, timeout=60
                )
            except requests.RequestException as error:
                return kind, type(error).__name__, 0.0
            return kind, response.status_code, response.elapsed.total_seconds()

        started = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            results = list(pool.map(send, fuzzed))
        elapsed = time.perf_counter() - started

    by_status = collections.Counter(status for _, status, _ in results)
    server_errors = {
        kind: count
        for (kind, status), count in collections.Counter((k, s) for k, s, _ in results).items()
        if not isinstance(status, int) or status >= 500
    }
    slowest = max(seconds for _, _, seconds in results)
    database = environ.get("DATABASE_URL", "sqlite").split(":")[0]
    print(f"database:             {database}")
    print(f"requests:             {len(results)} (generated in {generated_in:.1f} s)")
    print(f"sent in:              {elapsed:.1f} s with {args.clients} clients")
    print(f"by status:            {dict(sorted(by_status.items(), key=str))}")
    print(f"answers >= 500:       {sum(server_errors.values())} {server_errors or ''}")
    print(f"slowest answer:       {slowest:.2f} s")


if __name__ == "__main__":
    main()

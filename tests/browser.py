"""What every browser test module shares: Debian's Chromium, signing in, axe-core, moto's S3.

Each module launches one browser for all its tests (a module-scoped fixture
calling `launch`); every test gets fresh contexts of its own.
"""

import json
import os
import re
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer
from playwright.sync_api import expect, sync_playwright

from imports import aws

from .factories import IMPORT_BUCKET

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_MISSING = not CHROMIUM.exists() and not os.environ.get("CI")
CHROMIUM_MISSING_REASON = (
    f"Chromium is not installed at {CHROMIUM} (apt-get install chromium); "
    "CI installs it and runs these tests"
)

# Without the networking switches Chromium reaches out to Google's servers
# (updates, sync, field trials); this machine allows loopback only.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# axe-core, pinned and vendored for the tests only (never served): see
# tests/vendor/axe-core/VERSION.
AXE = Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js"

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def launch():
    """One headless Chromium for a module's tests."""
    if not CHROMIUM.exists():
        pytest.fail(f"CI is set but Chromium is missing at {CHROMIUM}: install Debian's chromium")
    # Playwright's sync API keeps an asyncio event loop running in the test's
    # thread, so Django's async-safety check would refuse every ORM call the
    # tests (and fixtures such as `user`) make from it. Nothing here shares a
    # connection with async code: the live server answers in threads of its
    # own. Set only while the browser runs, not at import: pytest imports
    # every test module first, and the variable would reach the rest of the
    # session (`check --deploy` in test_security.py rejects it: async.E001).
    with pytest.MonkeyPatch.context() as env, sync_playwright() as playwright:
        env.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


def sign_in(page, user, password=None):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(password or "pw-" + user.username)  # make_member's
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=re.compile("^Imports"))).to_be_visible()


# What each picker on New import shows until it has arrived.
PICKERS_LOADING = (
    "Loading your VM import tasks",
    "Loading the files in the team's import bucket",
)


def wait_for_pickers(page):
    """Wait until no picker on New import is still loading where it shows.

    Each picker asks AWS once the page has loaded, and its list, arriving,
    pushes down all that is below it, by up to its box's height (the four
    seeded tasks, some 200 px). A click in that moment is lost: the mouse
    goes down on a button and up on what moved under it, and Chromium clicks
    neither. So a test that clicks below a picker waits for it first, as a
    person's eye would. A picker in a source section not shown moves
    nothing, and is not waited for.
    """
    for loading in PICKERS_LOADING:
        expect(page.get_by_text(loading)).to_be_hidden()


def goto_new_import(page):
    """New import, with its pickers arrived (wait_for_pickers)."""
    page.goto("/imports/new")
    wait_for_pickers(page)


def axe_violations(page):
    """axe-core's violations on the page as it is now, of any impact.

    The portal's CSP refuses injected scripts, so the page's context must be
    made with bypass_csp=True.
    """
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        "() => axe.run(document, {resultTypes: ['violations']})"
        ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.map(n => ({target: n.target, summary: n.failureSummary}))})))"
    )
    return result


def describe_violations(violations):
    lines = []
    for violation in violations:
        lines.append(f"  [{violation['impact']}] {violation['id']}: {violation['help']}")
        for node in violation["nodes"]:
            lines.append(f"      at {json.dumps(node['target'])}")
            lines.append("        " + (node["summary"] or "").replace("\n", "\n        "))
    return "\n".join(lines)


def horizontal_overflow(page):
    """How many CSS pixels the page is wider than the window (0 when it fits)."""
    return page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - window.innerWidth"
    )


def elements_past_the_right_edge(page, limit=5):
    """The innermost elements that reach past the window's right edge, for a failure message."""
    return page.evaluate(
        """(limit) => {
            const past = (e) => e.getBoundingClientRect().right > window.innerWidth + 0.5;
            const name = (e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "")
                + (typeof e.className === "string" && e.className.trim()
                    ? "." + e.className.trim().split(/\\s+/).join(".") : "");
            const spills = (e) => e.scrollWidth > e.clientWidth + 1 && e.clientWidth > 0
                && getComputedStyle(e).overflowX === "visible";
            return [...document.body.querySelectorAll("*")]
                .filter(e => (past(e) && ![...e.children].some(past)) || spills(e))
                .slice(0, limit)
                .map(e => `${name(e)} (to ${Math.round(e.getBoundingClientRect().right)}px)`);
        }""",
        limit,
    )


def page_problems(page):
    """axe-core's violations, and how far the page is wider than the window; [] when neither."""
    page.wait_for_load_state("networkidle")
    problems = []
    overflow = horizontal_overflow(page)
    if overflow > 0:
        widest = ", ".join(elements_past_the_right_edge(page))
        problems.append(f"  {overflow}px wider than the window: {widest}")
    violations = axe_violations(page)
    if violations:
        problems.append(describe_violations(violations))
    return problems


def history_names(page):
    """The names in the history's table, top to bottom."""
    return page.locator("#history-table .cell-name a").all_inner_texts()


def moto_bucket(monkeypatch, origin):
    """moto's S3 on a free port, the team's import bucket in it, uploads from `origin` allowed.

    The CORS rule is the one Check setup asks for; boto3 is pointed at it
    until the generator ends.
    """
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", endpoint)
    aws.clear_clients()
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    client.create_bucket(Bucket=IMPORT_BUCKET)
    client.put_bucket_cors(
        Bucket=IMPORT_BUCKET,
        CORSConfiguration={
            "CORSRules": [
                {
                    "AllowedOrigins": [origin],
                    "AllowedMethods": ["PUT"],
                    "AllowedHeaders": ["*"],
                    "ExposeHeaders": ["ETag"],
                }
            ]
        },
    )
    yield client
    server.stop()
    aws.clear_clients()

"""What every browser test module shares: Debian's Chromium, signing in, axe-core, moto's S3.

Each module launches one browser for all its tests (a module-scoped fixture
calling `launch`); every test gets fresh contexts of its own. A module whose
fixtures are the plain ones below imports them (`from .browser import
fixture_browser, fixture_page`): pytest finds them there as if the module
defined them, so the module-scoped browser is still one per module. Their
functions are named fixture_*, as pytest's documentation suggests, so that a
test's `page` argument does not redefine an imported `page` (ruff's F811).
"""

import json
import os
import re
import time
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer
from playwright.sync_api import expect, sync_playwright

from imports import aws

from .factories import IMPORT_BUCKET, set_up_disk_imports

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

MIB = 1024 * 1024
# How long, in milliseconds, a test waits for what the status partial polls for.
POLLED = 15_000
# The team's import bucket in moto's S3, whichever port moto_bucket chose.
S3_URLS = re.compile(r"^http://127\.0\.0\.1:\d+/" + IMPORT_BUCKET + "/")


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


@pytest.fixture(scope="module", name="browser")
def fixture_browser():
    yield from launch()


@pytest.fixture(name="page")
def fixture_page(browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    page = context.new_page()
    yield page
    context.close()


def sign_in(page, user, password=None):
    page.goto("/accounts/login/")
    page.get_by_label("Username").fill(user.username)
    page.get_by_label("Password").fill(password or "pw-" + user.username)  # make_member's
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=re.compile("^Imports"))).to_be_visible()
    # The heading shows while the page is still being read; htmx (deferred)
    # starts only after, and a filter changed before then sends nothing.
    page.wait_for_load_state("load")


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


@pytest.fixture(name="s3")
def fixture_s3(monkeypatch, live_server, emulator):
    """moto's S3 on a free port, the team's bucket in it with the CORS rule Check setup asks for."""
    yield from moto_bucket(monkeypatch, live_server.url)


@pytest.fixture(name="disk_team")
def fixture_disk_team(team):
    return set_up_disk_imports(team)


def wait_for(page, condition, timeout=15):
    """Poll while Playwright runs: its route handlers fire only inside its own calls."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        page.wait_for_timeout(100)
    raise AssertionError("timed out")


def raw_disk(path, size):
    """Random bytes (nothing compresses them) with an MBR's boot signature at 510."""
    data = bytearray(os.urandom(size))
    data[510:512] = b"\x55\xaa"
    path.write_bytes(bytes(data))
    return path


def open_new_import(page):
    page.goto("/imports/new")
    expect(page.get_by_role("heading", name="New import")).to_be_visible()


def fill_new_import(page, disk, *, semantic_version="1.0.0"):
    """New import, filled for a disk file from this computer, not yet started."""
    open_new_import(page)
    page.get_by_label("Name").fill("Web server base")
    page.get_by_label("Semantic version").fill(semantic_version)
    page.get_by_label("Platform").select_option("Linux")
    choose_upload(page, disk)


def choose_upload(page, disk):
    page.get_by_label("A disk file from this computer").check()
    page.get_by_label("Disk image file").set_input_files(str(disk))

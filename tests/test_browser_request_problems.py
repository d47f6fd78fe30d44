"""What the pages do when an htmx request goes wrong, and the small things around it.

A session that ended sends the whole page to sign in (not the sign-in page
swapped into a table); a refused or failed request is said in a message
that stays in view; a poll refused for good stops; the tab's title counts
what the page shows; Start import pressed twice records and sends once; a
search typed and left is one step of the browser's history; a Copy button the
browser does not let copy says so; a keyboard user stays on their control as
the polls swap its row or panel.
"""

import re

import pytest
from playwright.sync_api import expect

from imports.models import ImageImport, Status

from .browser import (
    CHROMIUM_MISSING,
    CHROMIUM_MISSING_REASON,
    MIB,
    POLLED,
    S3_URLS,
    fill_new_import,
    fixture_browser,  # noqa: F401 (a fixture: pytest finds it here)
    fixture_disk_team,  # noqa: F401 (a fixture: pytest finds it here)
    fixture_page,  # noqa: F401 (a fixture: pytest finds it here)
    fixture_s3,  # noqa: F401 (a fixture: pytest finds it here)
    history_names,
    raw_disk,
    sign_in,
)
from .factories import ended_imports, make_import

if CHROMIUM_MISSING:
    pytest.skip(CHROMIUM_MISSING_REASON, allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HISTORY_TABLE = re.compile(r"/\?status=")


@pytest.fixture
def history(team, user):
    ended_imports(team, user)


def test_a_filter_changed_after_the_session_ended_opens_the_sign_in_page(page, user, history):
    sign_in(page, user)
    page.context.clear_cookies()  # signed out elsewhere, or the session's age reached

    page.get_by_label("Status").select_option("failed")

    # Back, once signed in, to the page the person was on.
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=%2F$"))
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("main")).to_have_count(1)  # a page, not one inside another


def test_a_request_the_portal_fails_is_said_and_the_message_goes_with_the_next(page, user, history):
    sign_in(page, user)
    problem = page.get_by_role("alert")
    page.route(HISTORY_TABLE, lambda route: route.fulfill(status=500, body="oops"))

    page.get_by_label("Status").select_option("failed")

    expect(problem).to_have_text(
        "The portal could not do this just now (it answered 500). Try again in a moment."
    )
    expect(problem).to_be_in_viewport()
    assert history_names(page) == ["Withdrawn", "Broken", "Web"]  # the table as it was

    page.unroute(HISTORY_TABLE)
    page.get_by_label("Status").select_option("available")
    expect(page.locator("#history-table .cell-name a")).to_have_text(["Web"])
    expect(problem).to_be_hidden()


def test_a_network_gone_is_said(page, user, history):
    sign_in(page, user)
    page.route(HISTORY_TABLE, lambda route: route.abort("internetdisconnected"))

    page.get_by_label("Status").select_option("failed")

    expect(page.get_by_role("alert")).to_have_text(
        "The portal could not be reached: check the network connection, then try again."
    )


def test_a_poll_refused_for_good_stops_and_says_why(page, user, team):
    image_import = make_import(team, user, Status.IMPORTING)
    sign_in(page, user)
    polls = []

    def gone(route):
        polls.append(route.request.url)
        route.fulfill(status=404, body="Not found")

    page.route(re.compile(rf"/imports/{image_import.pk}/status"), gone)
    page.goto(f"/imports/{image_import.pk}")

    expect(page.get_by_role("alert")).to_have_text(
        "This is no longer there (404): it was removed, or you are no longer in its team. "
        "Reload the page.",
        timeout=POLLED,
    )
    asked = len(polls)
    page.wait_for_timeout(3 * image_import.poll_milliseconds)
    assert len(polls) == asked  # no poll after the refusal


def test_the_tab_s_title_counts_the_running_imports_shown(page, user, team):
    make_import(team, user, Status.IMPORTING, name="Running")
    make_import(team, user, Status.AVAILABLE, name="Done")
    sign_in(page, user)
    expect(page).to_have_title(re.compile(r"^\(1 running\) Imports"))

    page.get_by_label("Status").select_option("available")
    expect(page.locator("#history-table .cell-name a")).to_have_text(["Done"])
    expect(page).to_have_title(re.compile(r"^Imports"))


def test_a_search_typed_and_left_is_one_request_and_one_step_back(page, user, history):
    sign_in(page, user)
    asked = []
    page.on("request", lambda request: "q=Web" in request.url and asked.append(request.url))
    search = page.get_by_role("searchbox", name="Search")

    search.fill("Web")
    expect(page.locator("#history-table .cell-name a")).to_have_text(["Web"])
    search.press("Tab")  # its change event, which the delayed input already answered
    page.wait_for_timeout(600)

    assert len(asked) == 1, asked
    page.go_back()
    expect(page).to_have_url(re.compile(r"/$"))


def test_start_import_pressed_twice_records_and_sends_once(page, user, disk_team, s3, tmp_path):
    posts = []
    page.on(
        "request",
        lambda r: r.method == "POST" and r.url.endswith("/imports/new") and posts.append(1),
    )
    held = []
    page.route(S3_URLS, lambda route: held.append(route))  # the parts wait: still uploading
    sign_in(page, user)
    fill_new_import(page, raw_disk(tmp_path / "web.raw", 12 * MIB))
    start = page.get_by_role("button", name="Start import")

    start.dispatch_event("click")  # two presses before the first answer
    start.dispatch_event("click")

    expect(page.locator("#upload-panel [data-upload-state]")).to_contain_text("Uploading")
    page.wait_for_timeout(500)
    assert len(posts) == 1
    assert ImageImport.objects.count() == 1


def test_where_the_browser_cannot_copy_the_button_says_to_copy_by_hand(page, user, history):
    # No clipboard: a plain http:// page not on this machine.
    page.add_init_script("Object.defineProperty(navigator, 'clipboard', {value: undefined})")
    sign_in(page, user)
    copy = page.get_by_role("button", name="Copy AMI ID in us-east-1 of Web")
    label = copy.inner_text()

    copy.click()
    expect(copy).to_have_text("Copy by hand")
    expect(page.locator("#copy-status")).to_have_text(
        "The browser did not let the page copy AMI ID in us-east-1 of Web: select it and copy "
        "it by hand."
    )
    copy.click()  # again within the pause: its own label still comes back
    expect(copy).to_have_text(label, timeout=3_000)


def polled(page, path, times):
    """Wait until the page's poll of `path` has been answered `times` times."""
    answers = []
    page.on("response", lambda response: path in response.url and answers.append(response))
    for _ in range(POLLED // 250):
        if len(answers) >= times:
            return
        page.wait_for_timeout(250)
    raise AssertionError(f"{path} polled {len(answers)} times, not {times}")


def test_a_keyboard_user_on_a_running_row_stays_there_as_the_rows_are_polled(page, user, team):
    running = make_import(team, user, Status.IMPORTING, name="Running")
    sign_in(page, user)
    row = page.locator(f"#import-{running.pk}")
    link = row.locator(".cell-name a")
    link.focus()
    row.evaluate("row => { row.dataset.before = 'yes'; }")

    polled(page, "/imports/in-flight", 2)

    expect(row).not_to_have_attribute("data-before", "yes")  # swapped in anew
    expect(link).to_be_focused()


def test_a_keyboard_user_on_the_status_panel_stays_there_as_it_is_polled(page, user, team):
    running = make_import(team, user, Status.QUEUED, name="Running")
    sign_in(page, user)
    page.goto(f"/imports/{running.pk}")
    panel = page.locator("#status")
    cancel = panel.get_by_role("link", name=re.compile("^Cancel"))
    cancel.focus()
    panel.evaluate("panel => { panel.dataset.before = 'yes'; }")
    # A change, so that the next poll answers the whole panel, not a 204:
    # an attempt AWS asked to retry, queued again (and still cancellable).
    running.claim()
    running.mark_retrying(code="ServiceUnavailable", message="Image Builder is busy", delay=60)

    polled(page, f"/imports/{running.pk}/status", 2)

    expect(panel).not_to_have_attribute("data-before", "yes")  # swapped in anew
    expect(cancel).to_be_focused()

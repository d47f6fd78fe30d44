"""The history's filters in a browser: Cancelled, an AMI ID pasted, and the count line.

At 390 and 1280 px: axe-core finds no violation, the page fits the window,
and the search's hint sits under the filters; by keyboard alone the filters
narrow the table in place (htmx), and the count line says what is shown.
"""

import pytest
from playwright.sync_api import expect

from imports.models import Status

from .browser import (
    CHROMIUM_MISSING,
    CHROMIUM_MISSING_REASON,
    DESKTOP,
    PHONE,
    axe_violations,
    describe_violations,
    history_names,
    horizontal_overflow,
    launch,
    sign_in,
)
from .factories import ENDED_AMI, ended_imports

if CHROMIUM_MISSING:
    pytest.skip(CHROMIUM_MISSING_REASON, allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AMI = ENDED_AMI


@pytest.fixture(scope="module")
def browser():
    yield from launch()


@pytest.fixture
def history(team, user):
    ended_imports(team, user)


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "1280px"])
def test_the_filters_pass_axe_fit_and_show_the_hint_under_them(
    browser, live_server, history, user, viewport
):
    context = browser.new_context(base_url=live_server.url, viewport=viewport, bypass_csp=True)
    page = context.new_page()
    sign_in(page, user)
    page.goto("/?status=cancelled")
    expect(page.locator(".pager span")).to_have_text("1 matching import")
    search = page.get_by_role("searchbox", name="Search")
    hint = page.locator("#filter-q-help")
    expect(search).to_have_attribute("aria-describedby", "filter-q-help")
    assert hint.bounding_box()["y"] >= search.bounding_box()["y"] + search.bounding_box()["height"]
    violations = axe_violations(page)
    assert not violations, describe_violations(violations)
    assert horizontal_overflow(page) == 0
    context.close()


def test_by_keyboard_the_filters_narrow_the_table_in_place(browser, live_server, history, user):
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    page = context.new_page()
    sign_in(page, user)
    expect(page.locator(".pager span")).to_have_text("3 imports")
    status = page.get_by_label("Status")
    status.focus()
    # Down from Any through the statuses to the last, Cancelled: a closed
    # select changes (and says change) with each arrow key.
    for _ in range(len(Status.values) + 1):
        page.keyboard.press("ArrowDown")
    expect(status).to_have_value("cancelled")
    # htmx queues the changes: a filter passed on the way (Failed, also "1
    # matching import") may show first, so wait for Cancelled's own answer.
    # A list, because the table has three rows until the first answer comes:
    # a single text fails at once on more than one row, where a list waits.
    expect(page.locator("#history-table .status")).to_have_text(["Cancelled"])
    expect(page.locator(".pager span")).to_have_text("1 matching import")
    assert history_names(page) == ["Withdrawn"]
    page.keyboard.press("ArrowUp")  # Failed: the failed import only
    expect(page.locator("#history-table .cell-name a")).to_have_text(["Broken"])

    page.keyboard.press("Home")  # Any
    expect(status).to_have_value("")
    page.keyboard.press("Tab")  # Platform
    page.keyboard.press("Tab")  # Search
    expect(page.get_by_role("searchbox", name="Search")).to_be_focused()
    page.keyboard.type(AMI)
    expect(page.locator("#history-table .cell-name a")).to_have_text(["Web"])
    expect(page.locator(".pager span")).to_have_text("1 matching import")
    assert f"q={AMI}" in page.url  # the address keeps the search (hx-push-url)
    context.close()

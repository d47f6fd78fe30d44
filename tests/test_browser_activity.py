"""The Team activity page in the browser: on a phone and a desktop, and by keyboard."""

import re

import pytest
from playwright.sync_api import expect

from imports.models import Membership

from .activity import busy_team
from .browser import (
    CHROMIUM_MISSING,
    CHROMIUM_MISSING_REASON,
    DESKTOP,
    PHONE,
    launch,
    page_problems,
    sign_in,
)

if CHROMIUM_MISSING:
    pytest.skip(CHROMIUM_MISSING_REASON, allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def browser():
    yield from launch()


@pytest.fixture
def activity(team, user):
    """alice, admin of a team with a day's activity behind it."""
    Membership.objects.filter(user=user, team=team).update(role=Membership.Role.ADMIN)
    return busy_team(team, user)


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "1280px"])
def test_the_activity_passes_axe_and_fits_the_window(
    browser, live_server, activity, user, viewport
):
    context = browser.new_context(base_url=live_server.url, viewport=viewport, bypass_csp=True)
    page = context.new_page()
    sign_in(page, user)
    found = {}
    for name, url in {
        "the team, with its link": "/team",
        "everything": "/team/activity",
        "one kind": "/team/activity?kind=members",
        "a cursor not made here": "/team/activity?older=x",
        "a kind the page does not know": "/team/activity?kind=nope",
    }.items():
        page.goto(url)
        problems = page_problems(page)
        if problems:
            found[name] = problems
    page.goto("/team/activity")
    expect(page.locator("tbody tr")).to_have_count(11)
    context.close()
    assert not found, "\n" + "\n".join(
        f"{name}:\n" + "\n".join(problems) for name, problems in found.items()
    )


def test_an_empty_activity_says_so_and_passes_axe(browser, live_server, team, user):
    Membership.objects.filter(user=user, team=team).update(role=Membership.Role.ADMIN)
    context = browser.new_context(base_url=live_server.url, viewport=PHONE, bypass_csp=True)
    page = context.new_page()
    sign_in(page, user)
    page.goto("/team/activity")
    expect(page.get_by_text("Nothing has happened in the team yet.")).to_be_visible()
    assert page_problems(page) == []
    context.close()


def test_a_team_admin_reads_the_activity_by_keyboard(
    browser, live_server, activity, user, settings
):
    settings.HISTORY_PAGE_SIZE = 2
    context = browser.new_context(base_url=live_server.url, viewport=DESKTOP)
    page = context.new_page()
    sign_in(page, user)
    page.goto("/team")
    link = page.get_by_role("link", name="Team activity")
    tab_to(page, link)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("^Activity"))

    kind = page.get_by_label("Kind")
    tab_to(page, kind)
    kind.select_option("members")  # what the arrow keys do in an open list
    tab_to(page, page.get_by_role("button", name="Show"))
    page.keyboard.press("Enter")
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("Role changed")
    expect(page).to_have_url(re.compile(r"kind=members"))

    tab_to(page, page.get_by_role("link", name=re.compile("^Older")))
    page.keyboard.press("Enter")
    expect(rows).to_have_count(1)  # the first member change of the day
    expect(rows.first).to_contain_text("bob added as Submitter")
    expect(kind).to_have_value("members")

    page.goto("/team/activity?kind=imports")
    tab_to(page, page.get_by_role("link", name="Legacy CRM").first)
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(f"/imports/{activity['crm'].pk}$"))
    context.close()


def tab_to(page, target, limit=60):
    """Press Tab until `target` has the focus, as a person without a mouse would."""
    for _ in range(limit):
        if target.evaluate("element => element === document.activeElement"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{target} was not reached in {limit} presses of Tab")

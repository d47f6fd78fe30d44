"""In a browser: the sign-in page's way forward, a long address pasted, a webhook left to its URL.

At 390 px and 1280 px each page fits the window and axe-core finds nothing.
"""

import pytest
from playwright.sync_api import expect

from imports.models import Membership
from notifications.models import Webhook

from .browser import (
    CHROMIUM_MISSING,
    CHROMIUM_MISSING_REASON,
    DESKTOP,
    PHONE,
    launch,
    page_problems,
    sign_in,
)
from .factories import make_member

if CHROMIUM_MISSING:
    pytest.skip(CHROMIUM_MISSING_REASON, allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VIEWPORTS = pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "1280px"])


@pytest.fixture(scope="module")
def browser():
    yield from launch()


@pytest.fixture
def admin_page(browser, live_server, team, request):
    """ada, team admin, signed in, in a window of the test's viewport."""
    context = browser.new_context(
        base_url=live_server.url, viewport=request.node.callspec.params["viewport"], bypass_csp=True
    )
    page = context.new_page()
    sign_in(page, make_member("ada", team, Membership.Role.ADMIN))
    yield page
    context.close()


@VIEWPORTS
def test_the_sign_in_page_says_whom_to_ask_and_passes_axe(browser, live_server, db, viewport):
    context = browser.new_context(base_url=live_server.url, viewport=viewport, bypass_csp=True)
    page = context.new_page()
    page.goto("/accounts/login/")

    expect(page.get_by_text("Forgot your password? Ask a portal admin")).to_be_visible()
    problems = page_problems(page)
    context.close()
    assert not problems, "\n".join(problems)


@VIEWPORTS
def test_a_long_address_pasted_is_kept_whole_and_told_its_limit(admin_page, viewport):
    page = admin_page
    page.goto("/team")
    field = page.get_by_label("Username or e-mail")
    field.fill("x" * 300 + "@example.com")  # as a paste: no maxlength cuts it
    expect(field).to_have_value("x" * 300 + "@example.com")
    page.get_by_role("button", name="Add", exact=True).click()

    expect(
        page.get_by_text("An e-mail address has at most 254 characters; this one has 312.")
    ).to_be_visible()
    problems = page_problems(page)
    assert not problems, "\n".join(problems)


@VIEWPORTS
def test_a_webhook_whose_kind_is_left_to_its_url_is_generic_json(admin_page, settings, viewport):
    settings.WEBHOOK_ALLOW_PRIVATE = True  # as under make run: no DNS here
    page = admin_page
    page.goto("/team/webhooks/new")
    expect(page.get_by_label("Kind")).to_have_value("")
    problems = page_problems(page)
    page.get_by_label("Webhook URL").fill("http://169.254.169.254/latest")
    page.get_by_label("Webhook URL").press("Enter")

    expect(page.get_by_role("alert")).to_contain_text("your receiver hears")
    expect(page.get_by_role("heading", name="How your receiver checks a message")).to_be_visible()
    assert Webhook.objects.get().kind == "json"
    assert not problems, "\n".join(problems)

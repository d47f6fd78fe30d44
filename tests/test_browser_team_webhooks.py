"""The Team page's webhooks with their last deliveries, on a phone and on a desktop."""

import pytest
from playwright.sync_api import expect

from imports.models import Membership, Status
from notifications.models import Delivery, Event, Webhook

from .browser import (
    CHROMIUM_MISSING,
    CHROMIUM_MISSING_REASON,
    DESKTOP,
    PHONE,
    axe_violations,
    describe_violations,
    elements_past_the_right_edge,
    horizontal_overflow,
    launch,
    sign_in,
)
from .factories import make_import, make_member

if CHROMIUM_MISSING:
    pytest.skip(CHROMIUM_MISSING_REASON, allow_module_level=True)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# What a receiver answered, as the sender records it: its body, often without a space.
LONG_ERROR = (
    'Answered 503: {"error":"service_unavailable",'
    '"request_id":"0123456789abcdef0123456789abcdef0123456789abcdef"}'
)


@pytest.fixture(scope="module")
def browser():
    yield from launch()


@pytest.fixture
def webhook_with_deliveries(team, user, monkeypatch):
    """ada, team admin, with a Slack webhook: a delivered test and an import's failed delivery."""
    from notifications import tasks

    monkeypatch.setattr(tasks, "queue", lambda pks: None)  # no worker here
    admin = make_member("ada", team, Membership.Role.ADMIN)
    webhook = Webhook.add(
        team=team,
        url="https://hooks.slack.com/services/T0000/B0000/XXXXXXXXXXXXXXXXXXXXXXXX",
        kind=Webhook.Kind.SLACK,
        events=[Event.FAILED.value],
        by=admin,
    )
    Delivery.objects.create(
        channel=Delivery.Channel.WEBHOOK,
        event=Event.TEST,
        team=team,
        webhook=webhook,
        payload={"event": Event.TEST.value, "import": None, "sentBy": "ada"},
        status=Delivery.Status.DELIVERED,
        status_code=200,
        attempts=1,
    )
    make_import(team, user, Status.IMPORTING).mark_failed(code="X", message="broken")
    failed = Delivery.objects.get(event=Event.FAILED)
    Delivery.objects.filter(pk=failed.pk).update(
        status=Delivery.Status.FAILED, status_code=503, error=LONG_ERROR, attempts=8
    )
    return admin, failed


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "1280px"])
def test_the_team_page_with_deliveries_fits_the_window_and_passes_axe(
    browser, live_server, webhook_with_deliveries, viewport
):
    admin, failed = webhook_with_deliveries
    context = browser.new_context(base_url=live_server.url, viewport=viewport, bypass_csp=True)
    page = context.new_page()
    sign_in(page, admin)
    page.goto("/team")
    row = page.locator(f"#delivery-{failed.pk}")
    expect(row).to_contain_text("503")
    page.screenshot(path=f"/tmp/team-deliveries-{viewport['width']}.png", full_page=True)

    overflow = horizontal_overflow(page)
    past = ", ".join(elements_past_the_right_edge(page))
    assert overflow <= 0, f"{overflow}px wider than the {viewport['width']}px window: {past}"
    violations = axe_violations(page)
    assert not violations, "\n" + describe_violations(violations)
    context.close()


def test_a_delivery_is_a_readable_card_on_a_phone_and_redelivers(
    browser, live_server, webhook_with_deliveries
):
    admin, failed = webhook_with_deliveries
    context = browser.new_context(base_url=live_server.url, viewport=PHONE)
    page = context.new_page()
    sign_in(page, admin)
    page.goto("/team")
    card = page.locator(f"#delivery-{failed.pk}")
    box = card.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    # Each value is labelled on the card (the labels are CSS, not text content).
    for label, value in {
        "Status": "Failed",
        "Code": "503",
        "Attempts": "8",
        "Error": "service_unavailable",
    }.items():
        cell = card.locator(f'td[data-label="{label}"]')
        expect(cell).to_contain_text(value)
        cell_box = cell.bounding_box()
        assert cell_box["x"] + cell_box["width"] <= PHONE["width"], label
    page.locator("#webhooks").screenshot(path="/tmp/team-deliveries-390-webhooks.png")
    redeliver = card.get_by_role("button", name="Redeliver")
    button = redeliver.bounding_box()
    assert button["x"] + button["width"] <= PHONE["width"]

    redeliver.focus()
    page.keyboard.press("Enter")

    expect(page.get_by_role("status")).to_contain_text("Delivery queued again")
    assert Delivery.objects.filter(redelivery_of=failed).count() == 1
    context.close()

"""A cancel's event says Cancelled on the import's page and in the admin, as team activity does.

A cancel is stored as status failed with the error code Cancelled; its
event (Action.CANCELLED) is told apart from a failure by its action.
"""

from django.urls import reverse

from imports.models import Status

from .factories import make_import

AUDIT = "admin:imports_auditevent_changelist"


def cancelled_import(team, user):
    image_import = make_import(team, user, Status.QUEUED)
    assert image_import.withdraw(user=user)
    return image_import


def failed_import(team, user):
    image_import = make_import(team, user, Status.QUEUED)
    image_import.claim()
    image_import.mark_failed(code="ClientException", message="nope")
    return image_import


def timeline(client, image_import):
    page = client.get(reverse("imports:detail", args=[image_import.pk])).content.decode()
    return page[page.index('id="timeline"') :]


def test_a_withdrawn_import_s_timeline_says_cancelled(user_client, team, user):
    shown = timeline(user_client, cancelled_import(team, user))
    assert "Queued &rarr; Cancelled" in shown
    assert "&rarr; Failed" not in shown


def test_a_cancelled_running_import_s_timeline_says_cancelled(user_client, team, user):
    image_import = make_import(team, user, Status.QUEUED)
    image_import.claim()
    image_import.mark_importing(image_arn="arn:x", request_id="r", client_token="t")
    assert image_import.mark_cancelled(user=user, ec2_state="deleting")
    shown = timeline(user_client, image_import)
    assert "Importing &rarr; Cancelled" in shown
    assert "&rarr; Failed" not in shown


def test_a_failure_still_says_failed(user_client, team, user):
    assert "Submitting &rarr; Failed" in timeline(user_client, failed_import(team, user))


def test_the_polled_timeline_says_cancelled_too(user_client, team, user):
    image_import = make_import(team, user, Status.QUEUED)
    seen = image_import.version
    image_import.withdraw(user=user)
    polled = user_client.get(
        reverse("imports:status", args=[image_import.pk]), {"seen": seen}, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "Queued &rarr; Cancelled" in polled


def test_the_admin_s_status_column_says_cancelled(admin_client, team, user):
    cancelled_import(team, user)
    failed_import(team, user)
    content = admin_client.get(reverse(AUDIT)).content.decode()
    assert "Queued → Cancelled" in content
    assert "Queued → Failed" not in content
    assert "Submitting → Failed" in content


def test_the_admin_s_import_status_filter_tells_cancelled_from_failed(admin_client, team, user):
    cancelled = cancelled_import(team, user)
    failed = failed_import(team, user)
    url = reverse(AUDIT)

    listing = admin_client.get(url).content.decode()
    assert "?import_status=cancelled" in listing and ">Cancelled</a>" in listing

    by_cancelled = admin_client.get(url, {"import_status": "cancelled"})
    assert {event.image_import_id for event in by_cancelled.context["cl"].result_list} == {
        cancelled.pk
    }
    by_failed = admin_client.get(url, {"import_status": "failed"})
    assert {event.image_import_id for event in by_failed.context["cl"].result_list} == {failed.pk}


def test_an_unknown_import_status_lists_nothing_and_does_not_fail(admin_client, team, user):
    cancelled_import(team, user)
    response = admin_client.get(reverse(AUDIT), {"import_status": "done"})
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []

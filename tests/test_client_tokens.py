"""The client token AWS is sent: the team's own, made from the token the person gave.

AWS keeps client tokens per account, and teams share accounts (every team
without a role of its own imports into the portal's). A token as typed would
make one team's import find another team's image, or be refused as that
team's other request.
"""

from imports import tasks
from imports.models import ImageImport, Status, aws_client_token

from .factories import make_import, make_member, valid_payload


def test_the_token_sent_is_the_teams_own_and_the_persons_finds_the_import(team, user, payload):
    image_import, _ = ImageImport.submit(team=team, user=user, payload=payload)
    sent = image_import.payload["clientToken"]
    assert sent == aws_client_token(team.pk, payload["clientToken"])
    assert len(sent) == 36  # ImportVmImage's limit
    assert image_import.client_token == payload["clientToken"]
    # The person's token and request again: the same import, nothing new.
    again, created = ImageImport.submit(team=team, user=user, payload=payload)
    assert (again, created) == (image_import, False)


def test_two_teams_in_one_account_with_one_token_get_an_image_each(
    team, other_team, user, emulator, retries_queued
):
    bob = make_member("bob", other_team)
    # Neither team has a role: both import into the portal's own account.
    ours, _ = ImageImport.submit(team=team, user=user, payload=valid_payload())
    theirs, _ = ImageImport.submit(team=other_team, user=bob, payload=valid_payload())
    assert ours.payload["clientToken"] != theirs.payload["clientToken"]

    for image_import in (ours, theirs):
        tasks.submit_import(image_import.pk)
        image_import.refresh_from_db()
        assert image_import.status == Status.IMPORTING, image_import.error_message
    assert ours.image_arn != theirs.image_arn
    calls = emulator.calls()["clientTokens"]
    assert calls == {ours.payload["clientToken"]: 1, theirs.payload["clientToken"]: 1}


def test_an_import_recorded_with_the_token_as_typed_keeps_sending_it(team, user, imagebuilder_stub):
    # Recorded before the portal made tokens the team's own: its retries must
    # send what its first attempt sent, or AWS would make a second image.
    earlier = make_import(team, user)  # its payload as it was stored then
    assert earlier.payload["clientToken"] == earlier.client_token
    arn = "arn:aws:imagebuilder:us-east-1:123456789012:image/web-server-base/1.0.0/1"
    imagebuilder_stub.add_response(
        "import_vm_image",
        {"requestId": "r", "clientToken": earlier.client_token, "imageArn": arn},
        expected_params=earlier.payload,
    )
    tasks.submit_import(earlier.pk)
    earlier.refresh_from_db()
    assert earlier.status == Status.IMPORTING
    # And the same request again finds it, as before.
    again, created = ImageImport.submit(team=team, user=user, payload=dict(earlier.payload))
    assert (again.pk, created) == (earlier.pk, False)

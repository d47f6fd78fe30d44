"""A team with a day's activity behind it, for the Team activity page's browser tests.

Every event is written by the model method that writes it in the portal, so
the page shows the very words people will read; the addresses are set as
AuditMiddleware sets them while it serves a request.
"""

import uuid
from contextlib import contextmanager

from imports import audit
from imports.models import ApiToken, ImageImport, Membership, Team
from notifications.models import Webhook

from .factories import make_member, valid_payload

ROLE_ARN = "arn:aws:iam::123456789012:role/ImageBuilderImportForThePaymentsPlatformTeam"


@contextmanager
def serving_client(address):
    """As AuditMiddleware does while it serves a request from `address`."""
    token = audit._client_ip.set(address)
    try:
        yield
    finally:
        audit._client_ip.reset(token)


def busy_team(team, admin):
    """`team` after a day's work of its `admin`, a submitter (bob) and the worker."""
    bob = make_member("bob", Team.objects.get_or_create(name="elsewhere")[0])
    carol = make_member("carol", Team.objects.get_or_create(name="elsewhere")[0])
    with serving_client("203.0.113.24"):
        target = {name: getattr(team, name) for name in Team.TARGET_FIELDS}
        team.change_target(
            {
                **target,
                "aws_region": "us-east-1",
                "aws_account_id": "123456789012",
                "aws_role_arn": ROLE_ARN,
            },
            by=admin,
        )
        team.add_member(bob, Membership.Role.SUBMITTER, by=admin)
        carols = team.add_member(carol, Membership.Role.VIEWER, by=admin)
    with serving_client("198.51.100.17"):
        ApiToken.issue(user=bob, team=team, name="ci-pipeline")
        web = submitted(team, bob, "Web server base")
    web.claim()  # the worker: no person, no address
    web.mark_importing(
        image_arn="arn:aws:imagebuilder:us-east-1:123456789012:image/web-server-base/1.2.0/1",
        request_id=str(uuid.uuid4()),
        client_token=web.client_token,
    )
    with serving_client("198.51.100.17"):
        crm = submitted(team, bob, "Legacy CRM")
        crm.withdraw(user=bob)
    with serving_client("2001:db8::42"):
        carols.change_role(Membership.Role.SUBMITTER, by=admin)
        Webhook.add(
            team=team,
            url="https://hooks.slack.com/services/T000/B000/XXXX",
            kind=Webhook.Kind.SLACK,
            events=["import.available", "import.failed"],
            by=admin,
        )
    return {"bob": bob, "carol": carol, "web": web, "crm": crm}


def submitted(team, user, name):
    payload = valid_payload(clientToken=str(uuid.uuid4()), name=name)
    image_import, _ = ImageImport.submit(team=team, user=user, payload=payload)
    return image_import

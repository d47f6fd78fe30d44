"""What a webhook receives: the signed generic JSON, Slack's and Teams' shapes; no SSRF."""

import json
import socket
import ssl

import pytest
import trustme
import urllib3
from django.conf import settings

from imports.api import serialize
from imports.models import Status
from notifications import delivery as sender
from notifications import safehttp, tasks
from notifications.models import Delivery, Event, Webhook

from .factories import make_import
from .receivers import HttpReceiver, verify

AVAILABLE_AMIS = [{"region": "us-east-1", "image": "ami-0a1b2c3d4e5f60718", "accountId": "1"}]


@pytest.fixture
def loopback(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    settings.PORTAL_URL = "https://portal.example.com"
    return settings


def delivered_to(receiver, team, user, kind, event="available"):
    """End an import, send its one webhook delivery, and answer what the receiver got."""
    webhook = Webhook.add(team=team, url=receiver.url(), kind=kind, events=list(Event), by=user)
    image_import = make_import(team, user, Status.IMPORTING, name="Web server base")
    if event == "available":
        image_import.mark_available(amis=AVAILABLE_AMIS)
    else:
        image_import.mark_failed(
            code="ClientException", message="You are not authorized to perform this operation"
        )
    delivery = Delivery.objects.get(webhook=webhook)
    assert tasks.send_delivery(delivery.pk) == "delivered"
    return webhook, image_import, receiver.requests[-1]


def test_the_generic_json_is_the_api_object_signed_over_the_raw_body(team, user, loopback):
    with HttpReceiver() as receiver:
        webhook, image_import, request = delivered_to(receiver, team, user, Webhook.Kind.JSON)

    body = request["body"]
    assert verify(webhook.secret, request["headers"], body)
    assert not verify("whsec_wrong", request["headers"], body)
    assert not verify(webhook.secret, request["headers"], body.replace(b"Web", b"Wob"))
    image_import.refresh_from_db()
    assert json.loads(body) == {
        "event": "import.available",
        "import": serialize(image_import),
        "team": {"id": team.pk, "name": team.name},
        "url": f"{settings.PORTAL_URL.rstrip('/')}/imports/{image_import.pk}",
    }
    assert request["headers"]["X-Portal-Event"] == "import.available"
    assert request["headers"]["Content-Type"] == "application/json"


def test_slack_gets_a_block_kit_message(team, user, loopback):
    with HttpReceiver() as receiver:
        _, image_import, request = delivered_to(receiver, team, user, Webhook.Kind.SLACK, "failed")

    message = json.loads(request["body"])
    # https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks: a
    # top-level `text` (the notification's fallback) and up to 50 blocks.
    assert message["text"] == "Import failed: Web server base 1.0.0"
    assert 1 <= len(message["blocks"]) <= 50
    header, section, actions = message["blocks"]
    assert header == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Import failed: Web server base 1.0.0"},
    }
    assert section["type"] == "section" and section["text"]["type"] == "mrkdwn"
    assert len(section["text"]["text"]) <= 3000
    assert "*Reason:* You are not authorized to perform this operation" in section["text"]["text"]
    assert "*What to do:* AWS refused the call for lack of permissions" in section["text"]["text"]
    (button,) = actions["elements"]
    assert actions["type"] == "actions" and button["type"] == "button"
    assert button["text"]["type"] == "plain_text"
    assert button["url"] == f"https://portal.example.com/imports/{image_import.pk}"
    assert "X-Portal-Signature" not in request["headers"]  # Slack's URL is its secret


def test_teams_gets_an_adaptive_card_in_a_message_envelope(team, user, loopback):
    with HttpReceiver() as receiver:
        _, image_import, request = delivered_to(receiver, team, user, Webhook.Kind.TEAMS)

    message = json.loads(request["body"])
    assert message["type"] == "message"
    (attachment,) = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert card["type"] == "AdaptiveCard" and card["version"] == "1.4"
    assert card["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    title, facts = card["body"]
    assert (
        title["type"] == "TextBlock" and title["text"] == "Import available: Web server base 1.0.0"
    )
    assert facts["type"] == "FactSet"
    assert {"title": "AMIs", "value": "ami-0a1b2c3d4e5f60718 (us-east-1)"} in facts["facts"]
    # Whose import, for a channel several teams read.
    assert {"title": "Team", "value": "platform"} in facts["facts"]
    assert {"title": "Started by", "value": "alice"} in facts["facts"]
    assert all(set(fact) == {"title", "value"} for fact in facts["facts"])
    assert card["actions"] == [
        {
            "type": "Action.OpenUrl",
            "title": "Open in the portal",
            "url": f"https://portal.example.com/imports/{image_import.pk}",
        }
    ]


def test_each_attempt_is_signed_anew_with_its_own_timestamp(team, user):
    webhook = Webhook.add(
        team=team, url="https://hooks.example.com/x", kind="json", events=[], by=user
    )
    delivery = Delivery(
        webhook=webhook,
        channel="webhook",
        event=Event.TEST,
        payload={"event": "webhook.test", "import": None},
    )
    body, first = sender.webhook_request(delivery, now=1_700_000_000)
    _, second = sender.webhook_request(delivery, now=1_700_000_060)
    assert first["X-Portal-Signature"] != second["X-Portal-Signature"]
    assert first["X-Portal-Delivery"] == second["X-Portal-Delivery"]
    assert verify(webhook.secret, first, body) and verify(webhook.secret, second, body)


# -- SSRF ---------------------------------------------------------------------

REFUSED = [
    ("http://hooks.example.com/x", "https://"),
    ("ftp://hooks.example.com/x", "https://"),
    ("https://user:pw@hooks.example.com/x", "user name or password"),
    ("https:///x", "no host"),
    ("https://127.0.0.1/x", "127.0.0.1"),
    ("https://127.1/x", "127.0.0.1"),
    ("https://2130706433/x", "127.0.0.1"),  # decimal
    ("https://0x7f000001/x", "127.0.0.1"),  # hexadecimal
    ("https://017700000001/x", "127.0.0.1"),  # octal
    ("https://localhost/x", "localhost"),
    ("https://localhost./x", "localhost"),
    ("https://LocalHost.:443/x", "localhost"),
    ("https://api.localhost/x", "localhost"),
    ("https://[::1]/x", "::1"),
    ("https://[::ffff:127.0.0.1]/x", "::ffff:127.0.0.1"),
    ("https://[::ffff:a9fe:a9fe]/x", "::ffff:a9fe:a9fe"),  # metadata, IPv4-mapped
    ("https://0.0.0.0/x", "0.0.0.0"),
    ("https://10.1.2.3/x", "10.1.2.3"),
    ("https://172.16.0.1/x", "172.16.0.1"),
    ("https://192.168.1.1/x", "192.168.1.1"),
    ("https://100.64.0.1/x", "100.64.0.1"),  # carrier-grade NAT
    ("https://169.254.169.254/latest/meta-data/", "169.254.169.254"),  # instance metadata
    ("https://[fd00:ec2::254]/x", "fd00:ec2::254"),  # instance metadata over IPv6
    ("https://[fe80::1]/x", "fe80::1"),
    ("https://[fc00::1]/x", "fc00::1"),
    ("https://224.0.0.1/x", "224.0.0.1"),
    # IPv4 inside IPv6 that a translator or an old stack reaches.
    ("https://[64:ff9b::a9fe:a9fe]/x", "64:ff9b::a9fe:a9fe"),  # NAT64: the metadata service
    ("https://[64:ff9b::a00:1]:8443/x", "64:ff9b::a00:1"),  # NAT64: 10.0.0.1
    ("https://[64:ff9b:1::808:808]/x", "64:ff9b:1::808:808"),  # NAT64 for local use
    ("https://[::127.0.0.1]/x", "::127.0.0.1"),  # IPv4-compatible
    ("https://[::ffff:0:a9fe:a9fe]/x", "::ffff:0:a9fe:a9fe"),  # IPv4-translated
    ("https://[fec0::1]/x", "fec0::1"),  # site-local
    ("https://192.88.99.1/x", "192.88.99.1"),  # 6to4 relays
]


def test_nat64_to_a_public_address_passes(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    assert safehttp.check("https://[64:ff9b::808:808]/x").host == "64:ff9b::808:808"


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_a_url_that_could_reach_inside_is_refused(url, reason, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(safehttp.BlockedUrl, match=reason.replace(".", r"\.")):
        safehttp.check(url)


def fake_dns(monkeypatch, *answers):
    """getaddrinfo answering each look-up with the next address (the last one repeats)."""
    answers = list(answers)
    looked_up = []

    def getaddrinfo(host, port, *args, **kwargs):
        looked_up.append(host)
        address = answers.pop(0) if len(answers) > 1 else answers[0]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(safehttp.socket, "getaddrinfo", getaddrinfo)
    return looked_up


def test_a_public_name_passes(settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    fake_dns(monkeypatch, "93.184.215.14")
    assert safehttp.check("https://hooks.example.com/services/T0/B0/x").host == "hooks.example.com"


def test_a_name_that_resolves_to_a_private_address_is_refused(settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    fake_dns(monkeypatch, "10.0.0.5")
    with pytest.raises(safehttp.BlockedUrl, match="10.0.0.5"):
        safehttp.check("https://intranet.example.com/x")


def test_dns_rebinding_is_caught_at_connect_time(team, user, settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    looked_up = fake_dns(monkeypatch, "93.184.215.14", "127.0.0.1")
    safehttp.check("https://rebind.example.com/x")  # public when the admin saves it

    with pytest.raises(safehttp.BlockedUrl, match="127.0.0.1"):
        safehttp.post("https://rebind.example.com/x", b"{}", {}, timeout=1)
    assert looked_up == ["rebind.example.com", "rebind.example.com"]


def test_the_connection_goes_to_the_checked_address_with_the_name_as_host(settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    fake_dns(monkeypatch, "127.0.0.1")
    with HttpReceiver() as receiver:
        response = safehttp.post(
            f"http://hooks.example.test:{receiver.port}/in?x=1", b"{}", {}, timeout=2
        )
    assert response.status == 200
    (request,) = receiver.requests
    assert request["headers"]["Host"] == f"hooks.example.test:{receiver.port}"
    assert request["path"] == "/in?x=1"


def test_allow_private_lifts_the_https_and_address_rules(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    assert safehttp.check("http://127.0.0.1:9000/x").port == 9000
    settings.WEBHOOK_ALLOW_PRIVATE = False
    with pytest.raises(safehttp.BlockedUrl):
        safehttp.check("http://127.0.0.1:9000/x")


def test_a_blocked_url_fails_the_delivery_without_a_connection(team, user, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    webhook = Webhook.objects.create(
        team=team, url="https://127.0.0.1:9/x", kind="json", events=[Event.AVAILABLE]
    )
    make_import(team, user, Status.IMPORTING).mark_available(amis=[])
    delivery = Delivery.objects.get(webhook=webhook)

    assert tasks.send_delivery(delivery.pk) == "failed"
    delivery.refresh_from_db()
    assert "private, loopback" in delivery.error


@pytest.fixture
def tls_receiver(settings, tmp_path):
    """An HTTPS receiver with a certificate for hooks.example.test from a test CA."""
    ca = trustme.CA()
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("hooks.example.test").configure_cert(server_context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    settings.WEBHOOK_CA_BUNDLE = str(bundle)
    with HttpReceiver(tls=server_context) as receiver:
        yield receiver


def test_tls_is_checked_against_the_name_while_connecting_to_the_pinned_address(
    tls_receiver, settings, monkeypatch
):
    settings.WEBHOOK_ALLOW_PRIVATE = True  # the receiver is on loopback
    fake_dns(monkeypatch, "127.0.0.1")

    response = safehttp.post(
        f"https://hooks.example.test:{tls_receiver.port}/in", b"{}", {}, timeout=2
    )

    assert response.status == 200
    assert tls_receiver.requests[0]["headers"]["Host"] == f"hooks.example.test:{tls_receiver.port}"


def test_a_certificate_for_another_name_is_refused(tls_receiver, settings, monkeypatch):
    settings.WEBHOOK_ALLOW_PRIVATE = True
    fake_dns(monkeypatch, "127.0.0.1")

    with pytest.raises(urllib3.exceptions.SSLError):
        safehttp.post(f"https://other.example.test:{tls_receiver.port}/in", b"{}", {}, timeout=2)
    assert tls_receiver.requests == []

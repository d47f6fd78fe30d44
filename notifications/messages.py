"""What each channel receives: the generic JSON, Slack's Block Kit, a Teams
Adaptive Card, and the e-mail's subject and context.

All are built from a delivery's stored payload, `{"event", "import"}` (the
import as GET /api/imports/<id> shows it) plus the plain-language `hint`.
"""

import json

from django.conf import settings
from django.urls import reverse

from .models import Event


def import_url(import_json):
    path = reverse("imports:detail", args=[import_json["id"]])
    return settings.PORTAL_URL.rstrip("/") + path


def portal_url():
    return settings.PORTAL_URL.rstrip("/") + "/"


def title(payload):
    event, image_import = payload["event"], payload.get("import")
    if event == Event.TEST:
        return "Test message from the VM Import Portal"
    if event == Event.WEBHOOK_PAUSED:
        return "A webhook was paused"
    name = f"{image_import['name']} {image_import.get('semanticVersion') or ''}".strip()
    return {
        Event.AVAILABLE: f"Import available: {name}",
        Event.FAILED: f"Import failed: {name}",
        Event.CANCELLED: f"Import cancelled: {name}",
        Event.UPLOAD_FINISHED: f"Upload finished: {name}",
    }.get(event, f"{event}: {name}")


def facts(payload):
    """(label, value) pairs that say what happened, for every channel alike."""
    event, image_import = payload["event"], payload.get("import")
    if event == Event.TEST:
        return [("Sent by", payload.get("sentBy", "a team admin"))]
    if image_import is None:
        return []
    found = [("Import", f"#{image_import['id']} ({image_import['platform']})")]
    if payload.get("team"):
        found.append(("Team", payload["team"]["name"]))
    if payload.get("startedBy"):
        found.append(("Started by", payload["startedBy"]))
    if event == Event.AVAILABLE:
        found.append(("Image ARN", image_import.get("imageArn") or "(none)"))
        amis = image_import.get("amis") or []
        found.append(
            ("AMIs", ", ".join(f"{ami['image']} ({ami['region']})" for ami in amis) or "(none)")
        )
    elif event in (Event.FAILED, Event.CANCELLED):
        error = image_import.get("error") or {}
        found.append(("Reason", error.get("message") or "(none given)"))
        if error.get("code") and event == Event.FAILED:
            found.append(("Error code", error["code"]))
        if payload.get("hint"):
            found.append(("What to do", payload["hint"]))
    return found


def link(payload):
    if payload.get("url"):
        return payload["url"]
    if payload.get("import"):
        return import_url(payload["import"])
    return portal_url()


def generic_body(payload):
    """The signed JSON: {"event", "import", "team", "url"}, compact and in a stable order.

    `team` and `url` are null where the event has none (a test message) or
    the delivery was recorded before they were added. Both are the stored
    payload's: every try of one delivery signs the very same body.
    """
    body = {
        "event": payload["event"],
        "import": payload.get("import"),
        "team": payload.get("team"),
        "url": payload.get("url"),
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


def slack_body(payload):
    """A Block Kit message for a Slack incoming webhook, with a plain `text` fallback."""
    heading = title(payload)
    lines = "\n".join(f"*{label}:* {mrkdwn_escape(value)}" for label, value in facts(payload))
    message = {
        "text": heading,  # notifications and screen readers show this
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": heading[:150]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": lines[:3000]}},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": "Open in the portal"},
                        "url": link(payload),
                        "action_id": "open-import",
                    }
                ],
            },
        ],
    }
    return json.dumps(message).encode()


def mrkdwn_escape(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def teams_body(payload):
    """An Adaptive Card in the message envelope Teams' workflow webhooks take."""
    card = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": title(payload),
                "size": "Medium",
                "weight": "Bolder",
                "wrap": True,
            },
            {
                "type": "FactSet",
                "facts": [{"title": label, "value": str(value)} for label, value in facts(payload)],
            },
        ],
        "actions": [
            {"type": "Action.OpenUrl", "title": "Open in the portal", "url": link(payload)}
        ],
    }
    message = {
        "type": "message",
        "attachments": [
            {
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": None,
                "content": card,
            }
        ],
    }
    return json.dumps(message).encode()

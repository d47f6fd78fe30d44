"""Send one delivery, once: an e-mail or a webhook call. Retrying is the task's business.

`send` answers an Outcome: delivered, or not with whether trying again may
help (timeouts, connection errors, 429 and 5xx, a busy mail server) and what
to show the team admin. Secrets (the webhook URL's path, its signing secret)
are never put in an error or a log line.
"""

import logging
import smtplib
import time
from dataclasses import dataclass

import urllib3
from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from . import messages, safehttp, signing
from .models import Delivery, Webhook

logger = logging.getLogger(__name__)

USER_AGENT = "VM-Import-Portal-Webhook/1"


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    retryable: bool = False
    status_code: int | None = None
    error: str = ""


def send(delivery):
    if delivery.channel == Delivery.Channel.WEBHOOK:
        return send_webhook(delivery)
    return send_email(delivery)


# -- webhooks --------------------------------------------------------------


def webhook_request(delivery, *, now=None):
    """(body, headers) for this delivery's webhook; signed anew on every attempt."""
    webhook = delivery.webhook
    key = str(delivery.idempotency_key)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "X-Portal-Event": delivery.event,
        "X-Portal-Delivery": key,
        "Idempotency-Key": key,
    }
    if webhook.kind == Webhook.Kind.SLACK:
        return messages.slack_body(delivery.payload), headers
    if webhook.kind == Webhook.Kind.TEAMS:
        return messages.teams_body(delivery.payload), headers
    body = messages.generic_body(delivery.payload)
    timestamp = int(now if now is not None else time.time())
    headers[signing.TIMESTAMP_HEADER] = str(timestamp)
    headers[signing.SIGNATURE_HEADER] = signing.sign(webhook.secret, timestamp, body)
    return body, headers


def send_webhook(delivery):
    body, headers = webhook_request(delivery)
    try:
        response = safehttp.post(
            delivery.webhook.url, body, headers, timeout=settings.WEBHOOK_TIMEOUT
        )
    except safehttp.BlockedUrl as error:
        return Outcome(False, retryable=False, error=str(error))
    except urllib3.exceptions.TimeoutError:
        return Outcome(False, retryable=True, error="Timed out waiting for the receiver.")
    except urllib3.exceptions.SSLError:
        return Outcome(False, retryable=False, error="TLS failed: the certificate was refused.")
    except (urllib3.exceptions.HTTPError, OSError) as error:
        # The exception's text may hold the address but never the URL's path.
        return Outcome(False, retryable=True, error=f"Connection failed: {type(error).__name__}")
    status = response.status
    if 200 <= status < 300:
        return Outcome(True, status_code=status)
    if 300 <= status < 400:
        return Outcome(
            False, status_code=status, error=f"Answered {status}: redirects are not followed."
        )
    retryable = status == 429 or status >= 500
    snippet = response.body[:200].decode("utf-8", "replace")
    return Outcome(False, retryable, status, f"Answered {status}: {snippet}".strip())


# -- e-mail ------------------------------------------------------------------


def email_message(delivery):
    user = delivery.recipient
    payload = delivery.payload
    context = {
        "user": user,
        "title": messages.title(payload),
        "facts": messages.facts(payload),
        "link": messages.link(payload),
        "event": payload["event"],
        "webhook": delivery.webhook,
        "profile_url": settings.PORTAL_URL.rstrip("/") + "/profile",
        "team_url": settings.PORTAL_URL.rstrip("/") + "/team",
    }
    template = "webhook_paused" if delivery.event == "webhook.paused" else "import_ended"
    message = EmailMultiAlternatives(
        subject=f"[VM Import Portal] {context['title']}",
        body=render_to_string(f"notifications/email/{template}.txt", context),
        to=[user.email],
        headers={
            # The same Message-ID on every attempt: mail systems drop duplicates.
            "Message-ID": f"<{delivery.idempotency_key}@vm-import-portal>",
            "X-Portal-Delivery": str(delivery.idempotency_key),
            "X-Portal-Event": delivery.event,
        },
    )
    message.attach_alternative(
        render_to_string(f"notifications/email/{template}.html", context), "text/html"
    )
    return message


def send_email(delivery):
    if not delivery.recipient.email:
        return Outcome(False, error="The person has no e-mail address.")
    try:
        email_message(delivery).send()
    except smtplib.SMTPResponseException as error:
        # 4xx: the server asks to come back later; 5xx: it refuses for good.
        return Outcome(False, error.smtp_code < 500, error.smtp_code, f"SMTP {error.smtp_code}")
    except smtplib.SMTPRecipientsRefused:
        return Outcome(False, error="The mail server refused the recipient.")
    except (smtplib.SMTPException, OSError) as error:
        return Outcome(False, retryable=True, error=f"Mail server unreachable: {error}")
    except ValueError as error:
        # An address stored before its domain was checked for mail
        # (inputs.mail_domain_problem): no retry encodes it.
        return Outcome(False, error=f"The address cannot be written on a mail: {error}")
    return Outcome(True)

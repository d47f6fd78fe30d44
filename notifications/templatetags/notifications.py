from django import template

from ..models import Delivery, Event

register = template.Library()

LAST_DELIVERIES = 5


@register.inclusion_tag("notifications/team_webhooks.html", takes_context=True)
def team_webhooks(context):
    """The Team page's webhooks section, with each webhook's last deliveries."""
    team, can_manage = context["team"], context.get("can_manage", False)
    webhooks = list(team.webhooks.all()) if can_manage else []
    for webhook in webhooks:
        webhook.last_deliveries = list(
            Delivery.objects.filter(webhook=webhook, channel=Delivery.Channel.WEBHOOK)[
                :LAST_DELIVERIES
            ]
        )
    return {
        "team": team,
        "can_manage": can_manage,
        "webhooks": webhooks,
        "import_events": [
            (event.value, event.label)
            for event in (Event.AVAILABLE, Event.FAILED, Event.CANCELLED, Event.UPLOAD_FINISHED)
        ],
        "csrf_token": context.get("csrf_token"),
        "request": context.get("request"),
    }

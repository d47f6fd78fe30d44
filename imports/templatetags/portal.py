import re
from datetime import UTC

from django import template
from django.utils import timezone
from django.utils.html import format_html

from imports import errors, vocabulary
from imports.models import IMAGE_STATES_IN_ORDER, Action
from imports.vocabulary import image_state_words

register = template.Library()


@register.filter
def byte_size(size):
    """1.5 GiB, as the API's messages say it, kept on one line."""
    return errors.byte_size(size).replace(" ", "\xa0")


@register.filter
def labelled(error, label):
    """An error as the summary lists it: under its field's label, unless it starts with it.

    Every message is written to stand alone (the API sends the same ones), so
    most already name their field: "Name is required.", not "Name: Name is...".
    """
    return str(error) if str(error).lower().startswith(str(label).lower()) else f"{label}: {error}"


@register.filter
def seconds(delta):
    """A timedelta in whole seconds, for portal.js to count on from."""
    return max(0, int(delta.total_seconds()))


@register.filter
def duration(delta):
    """A timedelta as people say it: 45s, 3m 12s, 2h 05m (portal.js's duration too)."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


@register.filter
def image_state_label(state):
    """Image Builder's BUILDING as every page says it: Building."""
    return image_state_words(state).capitalize()


@register.filter
def truncate_middle(text, length=32):
    """arn:aws:imagebuilder:us-e…/web-base/1.0.0/1: both ends of a long ID stay readable."""
    text = str(text or "")
    if len(text) <= length:
        return text
    head = (length - 1) // 2
    tail = length - 1 - head
    return f"{text[:head]}…{text[-tail:]}"


@register.simple_tag
def image_steps(image_import):
    """Each image state with how far the import got: done, current or to do."""
    current = image_import.image_state
    if current == "AVAILABLE" or image_import.status == "available":
        reached = len(IMAGE_STATES_IN_ORDER)
    elif current in IMAGE_STATES_IN_ORDER:
        reached = IMAGE_STATES_IN_ORDER.index(current)
    else:
        reached = -1
    steps = []
    for index, state in enumerate(IMAGE_STATES_IN_ORDER):
        if index < reached:
            progress = "done"
        elif index == reached:
            progress = "current"
        else:
            progress = "todo"
        steps.append({"label": image_state_label(state), "progress": progress})
    return steps


@register.filter
def utc_text(moment):
    """2026-11-28 02:05:13 UTC: how every page, message and the admin write a time."""
    if not moment:
        return ""
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, UTC)
    return timezone.localtime(moment, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


@register.filter
def utc_time(moment):
    """A time as utc_text writes it, in a <time> element that machines read too."""
    if not moment:
        return ""
    return format_html('<time datetime="{}">{}</time>', moment.isoformat(), utc_text(moment))


@register.filter
def status_event(event):
    """Whether an audit event only reports an import's status or progress.

    Its headline is then what happened (Queued → Submitting), not the
    action's name, which every such event shares.
    """
    return event.action == Action.STATUS


@register.filter
def status_label(status):
    """importing as every page says a status: Importing."""
    return vocabulary.status_label(status)


AMI_START = re.compile(r"ami-([0-9a-f]*)", re.IGNORECASE)


@register.simple_tag
def short_search(query, token_prefix_min, ami_digits_min):
    """Why a search too short to be a prefix found nothing, or "".

    A client token is found from its first token_prefix_min characters, an
    AMI ID from ami- and ami_digits_min digits (imports/forms.py): a shorter
    start finds neither, however many imports it begins.
    """
    query = (query or "").strip()
    ami = AMI_START.fullmatch(query)
    if ami and len(ami[1]) < ami_digits_min:
        return (
            f"An AMI ID is found whole or from ami- and its first {ami_digits_min} digits; "
            f"{query} has {len(ami[1])}."
        )
    if query and len(query) < token_prefix_min:
        return (
            f"A client token is found whole or from its first {token_prefix_min} characters; "
            f"{query} has {len(query)}."
        )
    return ""

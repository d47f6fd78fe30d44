from django import template

from imports.models import IMAGE_STATES_IN_ORDER

register = template.Library()


@register.filter
def duration(delta):
    """A timedelta as people say it: 45s, 3m 12s, 2h 05m."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


@register.simple_tag
def image_states():
    return IMAGE_STATES_IN_ORDER

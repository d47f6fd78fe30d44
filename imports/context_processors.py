from django.conf import settings

from . import aws, teams


def portal(request):
    """The header's team switcher on every page.

    Callables, so that the query runs only where a template shows the header,
    never for the small polled partials.
    """
    portal = {"aws_emulated": aws.uses_local_emulator()}
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        # The sign-in page names the file `make run` wrote, where it really is;
        # never in production, where the server's paths are nobody's business.
        if settings.DEBUG:
            portal["admin_credentials_file"] = settings.DATA_DIR / "admin-credentials.txt"
        return portal
    return {
        **portal,
        "current_membership": lambda: teams.current_membership(request),
        "memberships": lambda: teams.memberships(request),
        "can_submit": lambda: getattr(teams.current_membership(request), "can_submit", False),
    }

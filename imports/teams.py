"""Which team a person is acting for.

A person may belong to several teams; the session remembers the one they
chose, and everything they see or submit is scoped to it.
"""

from .models import Membership

SESSION_KEY = "team_id"


def memberships(request):
    """The person's memberships, team names in order; read once per request."""
    if not hasattr(request, "_memberships"):
        request._memberships = list(
            Membership.objects.filter(user=request.user)
            .select_related("team")
            .order_by("team__name")
        )
    return request._memberships


def current_membership(request):
    """The membership for the team the person is acting for, or None."""
    if not request.user.is_authenticated:
        return None
    mine = memberships(request)
    chosen = request.session.get(SESSION_KEY)
    for membership in mine:
        if membership.team_id == chosen:
            return membership
    return mine[0] if mine else None


def membership_in(request, team_id):
    return next((m for m in memberships(request) if m.team_id == team_id), None)


def switch_team(request, team_id):
    """Act for team_id from now on; False if the person is not in that team."""
    if any(m.team_id == team_id for m in memberships(request)):
        request.session[SESSION_KEY] = team_id
        return True
    return False


def can_submit(membership):
    return membership is not None and membership.role != Membership.Role.VIEWER

"""Which team a person is acting for.

A person may belong to several teams; the session remembers the one they
act for, and everything they see or submit is scoped to it. The session is
written in two places only: at sign-in (the first of their teams) and when
they switch team. Reading the current team never writes. The team's rows
a person is shown (its imports, its activity) are read here, scoped to it.
"""

from dataclasses import dataclass

from django.db.models import OuterRef, Subquery, Value

from .models import Action, AuditEvent, ImageImport, Membership, Team

SESSION_KEY = "team_id"


def memberships(request):
    """The person's memberships, team names in order; read once per request.

    A superuser sees every team, as a team admin of those they are not in.
    """
    if not hasattr(request, "_memberships"):
        mine = list(Membership.objects.filter(user=request.user).select_related("team"))
        if request.user.is_superuser:
            joined = {membership.team_id for membership in mine}
            mine += [
                Membership(team=team, user=request.user, role=Membership.Role.ADMIN)
                for team in Team.objects.exclude(pk__in=joined)
            ]
        request._memberships = sorted(mine, key=lambda membership: membership.team.name)
    return request._memberships


def current_membership(request):
    """The membership for the team the person acts for, or None.

    The team in the session if the person is still in it, else their first.
    """
    if not request.user.is_authenticated:
        return None
    mine = memberships(request)
    chosen = request.session.get(SESSION_KEY)
    return next((m for m in mine if m.team_id == chosen), mine[0] if mine else None)


def membership_in(request, team_id):
    return next((m for m in memberships(request) if m.team_id == team_id), None)


def switch_team(request, team_id):
    """Act for team_id from now on; False if the person is not in that team."""
    membership = membership_in(request, team_id)
    if membership is None:
        return False
    request.session[SESSION_KEY] = membership.team_id
    return True


def choose_team_on_sign_in(sender, request, user, **kwargs):
    """Remember the first team at sign-in, so the polled partials need no membership query."""
    if request is None or not hasattr(request, "session"):
        return
    request.user = user  # login() sets it only on requests that already had one
    current = current_membership(request)
    if current is not None:
        request.session[SESSION_KEY] = current.team_id


def team_imports(request):
    """The imports of the team the person acts for, in one query.

    Membership is checked in the query itself, and each import carries the
    person's role in its team as `viewer_role`, so a polled partial decides
    what to offer without another query. A superuser acts as a team admin.
    """
    team_id = request.session.get(SESSION_KEY)
    if team_id is None:
        membership = current_membership(request)
        team_id = membership.team_id if membership else None
    imports = ImageImport.objects.filter(team_id=team_id)
    if request.user.is_superuser:
        return imports.annotate(viewer_role=Value(Membership.Role.ADMIN.value))
    role = Membership.objects.filter(team=OuterRef("team"), user=request.user).values("role")
    return imports.annotate(viewer_role=Subquery(role[:1])).filter(viewer_role__isnull=False)


@dataclass(frozen=True)
class ActivityKind:
    label: str
    actions: tuple


# What a team's activity can be narrowed to, by the actions' own prefixes, so
# that an import action added later is an import's activity without a word
# here. Sign-ins and profile changes are a person's, not a team's: they have
# no team, and are in no kind.
ACTIVITY_KINDS = {
    "imports": ActivityKind(
        "Imports", tuple(action for action in Action if action.startswith("import."))
    ),
    "members": ActivityKind(
        "Members and roles",
        (
            Action.MEMBER_ADDED,
            Action.MEMBER_INVITED,
            Action.INVITATION_RESENT,
            Action.INVITATION_ACCEPTED,
            Action.ROLE_CHANGED,
            Action.MEMBER_REMOVED,
        ),
    ),
    "target": ActivityKind("AWS target", (Action.TARGET_CHANGED,)),
    "tokens": ActivityKind("API tokens", (Action.TOKEN_CREATED, Action.TOKEN_REVOKED)),
    "webhooks": ActivityKind(
        "Webhooks", tuple(action for action in Action if action.startswith("webhook."))
    ),
}


def team_activity(team, kind=""):
    """The team's audit events of one kind (or all), each with its actor and import.

    Only rows that name the team: events with no team (sign-ins, profile
    changes) and other teams' never come into it.
    """
    events = AuditEvent.objects.filter(team=team)
    if kind:
        events = events.filter(action__in=ACTIVITY_KINDS[kind].actions)
    return events.select_related("actor", "image_import")

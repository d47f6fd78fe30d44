"""Which team a person is acting for.

A person may belong to several teams; the session remembers the one they
chose, and everything they see or submit is scoped to it.
"""

from .models import Action, AuditEvent, ImageImport, Membership, Team

SESSION_KEY = "team_id"
ROLE_SESSION_KEY = "team_role"


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
    """The membership for the team the person is acting for, or None."""
    if not request.user.is_authenticated:
        return None
    mine = memberships(request)
    chosen = request.session.get(SESSION_KEY)
    current = next((m for m in mine if m.team_id == chosen), mine[0] if mine else None)
    if current is not None:
        remember(request, current)
    return current


def remember(request, membership):
    """Keep the team and role in the session, so that the small polled partials
    can scope and decide what to show without a query. Every action still
    checks the role in the database."""
    if request.session.get(SESSION_KEY) != membership.team_id:
        request.session[SESSION_KEY] = membership.team_id
    if request.session.get(ROLE_SESSION_KEY) != membership.role:
        request.session[ROLE_SESSION_KEY] = membership.role


def session_can_submit(request):
    role = request.session.get(ROLE_SESSION_KEY)
    return role is not None and role != Membership.Role.VIEWER


def team_imports(request):
    """The imports of the team the person acts for: one query, membership checked in it."""
    team_id = request.session.get(SESSION_KEY)
    if team_id is None:
        membership = current_membership(request)
        team_id = membership.team_id if membership else None
    imports = ImageImport.objects.filter(team_id=team_id)
    if not request.user.is_superuser:
        imports = imports.filter(team__memberships__user=request.user)
    return imports


def membership_in(request, team_id):
    return next((m for m in memberships(request) if m.team_id == team_id), None)


def switch_team(request, team_id):
    """Act for team_id from now on; False if the person is not in that team."""
    membership = membership_in(request, team_id)
    if membership is None:
        return False
    remember(request, membership)
    return True


def can_submit(membership):
    return membership is not None and membership.role != Membership.Role.VIEWER


def can_manage(membership):
    return membership is not None and membership.role == Membership.Role.ADMIN


# -- changes a team admin makes: each one an audit event -------------------------


def add_member(team, user, role, *, by):
    membership = Membership.objects.create(team=team, user=user, role=role)
    AuditEvent.record(
        Action.MEMBER_ADDED,
        actor=by,
        team=team,
        detail=f"{user.get_username()} added as {membership.get_role_display()}",
    )
    return membership


def change_role(membership, role, *, by):
    old = membership.get_role_display()
    if membership.role == role:
        return False
    membership.role = role
    membership.save(update_fields=["role"])
    AuditEvent.record(
        Action.ROLE_CHANGED,
        actor=by,
        team=membership.team,
        detail=f"{membership.user.get_username()}: {old} -> {membership.get_role_display()}",
    )
    return True


def remove_member(membership, *, by):
    membership.delete()
    AuditEvent.record(
        Action.MEMBER_REMOVED,
        actor=by,
        team=membership.team,
        detail=f"{membership.user.get_username()} removed",
    )


TARGET_FIELDS = ("aws_region", "aws_account_id", "aws_role_arn")


def change_target(team, new_values, *, by):
    """Record a change of the team's AWS target; returns what changed."""
    old = Team.objects.get(pk=team.pk)
    changes = [
        f"{name}: {getattr(old, name) or '(none)'} -> {new_values[name] or '(none)'}"
        for name in TARGET_FIELDS
        if getattr(old, name) != new_values[name]
    ]
    if changes:
        Team.objects.filter(pk=team.pk).update(**{name: new_values[name] for name in TARGET_FIELDS})
        for name in TARGET_FIELDS:
            setattr(team, name, new_values[name])
        AuditEvent.record(Action.TARGET_CHANGED, actor=by, team=team, detail="; ".join(changes))
    return changes

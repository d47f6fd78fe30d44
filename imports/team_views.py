"""Team self-service: members and roles, the AWS target, API tokens, the team's activity."""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import invitations, paging, setup_checks, teams
from .errors import bad_request_answer
from .models import ApiToken, Membership, Team
from .team_forms import (
    ActivityFilterForm,
    AddMemberForm,
    AwsTargetForm,
    InvitedMemberForm,
    RoleForm,
    TokenForm,
)


def managed_membership(request, refusal="Only a team admin can change the team."):
    """The person's membership of the team they act for, if they are its admin."""
    membership = teams.current_membership(request)
    if membership is None:
        raise Http404("You are not in any team.")
    if not membership.can_manage:
        raise PermissionDenied(refusal)
    return membership


@login_required
@require_http_methods(["GET", "POST"])
def team_settings(request):
    membership = teams.current_membership(request)
    if membership is None:
        raise Http404("You are not in any team.")
    team = membership.team
    target_form = AwsTargetForm(
        initial={name: getattr(team, name) for name in team.TARGET_FIELDS}, team=team
    )
    add_form = AddMemberForm(team=team)
    if request.method == "POST":
        membership = managed_membership(request)
        action = request.POST.get("action")
        if action == "target":
            target_form = AwsTargetForm(request.POST, team=team)
            if target_form.is_valid():
                changes = team.change_target(target_form.cleaned_data, by=request.user)
                messages.success(request, target_saved(target_form, changes))
                return redirect("imports:team")
        elif action == "add_member":
            add_form = AddMemberForm(request.POST, team=team)
            if add_form.is_valid():
                done, problem = invitations.bring_in(team, add_form, by=request.user)
                if problem:
                    messages.warning(request, invitations.mail_failed(problem))
                else:
                    messages.success(request, done)
                return redirect("imports:team")
        else:
            return redirect("imports:team")
    context = {
        "team": team,
        "membership": membership,
        "can_manage": membership.can_manage,
        "members": members_of(team),
        "roles": Membership.Role.choices,
        "target_form": target_form,
        "add_form": add_form,
        "invitation_lifetime": invitations.link_lifetime(),
    }
    return render(request, "imports/team.html", context)


def target_saved(form, changes):
    if not changes:
        return "Nothing changed."
    if form.account_cleared_with_role:
        return "AWS target saved. The account ID was cleared with the role it came from."
    return "AWS target saved."


def members_of(team):
    """The team's members by username, each invitation still waiting marked with when it went.

    `invited_at` is set on an invited member who has not set a password yet.
    """
    members = list(team.memberships.select_related("user").order_by("user__username"))
    waiting = [member.user for member in members if invitations.is_pending(member.user)]
    sent = invitations.invitations_sent(waiting)
    for member in members:
        member.invited_at = sent.get(member.user_id)
    return members


@login_required
@require_GET
def team_activity(request):
    """The team's audit for its admins, newest first: who did what, when, from where."""
    membership = managed_membership(request, "Only a team admin can see the team's activity.")
    # As on the history, a kind a stale or edited link got wrong is left out:
    # the page shows everything, its select on Everything, rather than a 400.
    filters = ActivityFilterForm(request.GET)
    filters.is_valid()
    kind = filters.cleaned_data.get("kind", "")
    try:
        # The history's size and paging: a page deep in years of progress
        # events costs what the first does.
        page = paging.keyset_page(
            teams.team_activity(membership.team, kind),
            size=settings.HISTORY_PAGE_SIZE,
            older_than=request.GET.get("older"),
            newer_than=request.GET.get("newer"),
        )
    except paging.BadCursor as error:
        return bad_request_answer(request, str(error))
    context = {
        "team": membership.team,
        "page": page,
        "page_summary": page.summary("matching event" if kind else "event"),
        "kinds": teams.ACTIVITY_KINDS,
        "kind": kind,
        "kind_label": teams.ACTIVITY_KINDS[kind].label if kind else "",
        "filter_query": urlencode({"kind": kind}) if kind else "",
    }
    if request.htmx.target == "activity-table":
        return render(request, "imports/team_activity.html#table", context)
    return render(request, "imports/team_activity.html", context)


@login_required
@require_POST
def check_setup(request):
    """Run the setup checks against the team's bucket and role; show each outcome and fix."""
    membership = teams.current_membership(request)
    if membership is None:
        raise Http404("You are not in any team.")
    if not membership.can_submit:
        raise PermissionDenied("Submitters and team admins check the setup.")
    origin = request.build_absolute_uri("/").rstrip("/")
    context = {"checks": setup_checks.run_all(membership.team, origin=origin), "checked": True}
    if request.htmx:
        return render(request, "imports/team.html#setup_checks", context)
    return render(
        request,
        "imports/team.html",
        {
            **context,
            "team": membership.team,
            "membership": membership,
            "can_manage": membership.can_manage,
            "members": members_of(membership.team),
            "roles": Membership.Role.choices,
            "target_form": AwsTargetForm(
                initial={name: getattr(membership.team, name) for name in Team.TARGET_FIELDS},
                team=membership.team,
            ),
            "add_form": AddMemberForm(team=membership.team),
            "invitation_lifetime": invitations.link_lifetime(),
        },
    )


def team_member(team, pk):
    """The membership `pk` of `team`, with its person: 404 for one of another team."""
    return get_object_or_404(Membership.objects.select_related("user", "team"), pk=pk, team=team)


@login_required
@require_POST
def change_member(request):
    membership = managed_membership(request)
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose a member and a role.")
        return redirect("imports:team")
    member = team_member(membership.team, form.cleaned_data["membership"])
    if member.user == request.user and form.cleaned_data["role"] != Membership.Role.ADMIN:
        messages.error(request, "You cannot lower your own role; ask another team admin.")
        return redirect("imports:team")
    try:
        changed = member.change_role(form.cleaned_data["role"], by=request.user)
    except Membership.DoesNotExist:
        messages.error(request, member.removed_meanwhile() + ".")
        return redirect("imports:team")
    if changed:
        messages.success(
            request, f"{member.user.get_username()} is now {member.get_role_display()}."
        )
    return redirect("imports:team")


@login_required
@require_http_methods(["GET", "POST"])
def remove_member(request, pk):
    """GET asks the team admin to confirm; POST removes the member."""
    membership = managed_membership(request)
    member = team_member(membership.team, pk)
    username = member.user.get_username()
    if member.user == request.user:
        messages.error(request, "You cannot remove yourself; ask another team admin.")
        return redirect("imports:team")
    if request.method == "GET":
        explanation = "They lose access to the team's imports at once. "
        if invitations.is_pending(member.user):
            explanation = "The invitation's link stops working at once. "
        return render(
            request,
            "confirm.html",
            {
                "title": f"Remove {username}?",
                "question": f"Remove {username} from team {member.team.name}?",
                "explanation": explanation + "A team admin can add them again later.",
                "action": request.path,
                "confirm_label": f"Yes, remove {username}",
                "back_url": reverse("imports:team"),
            },
        )
    member.remove(by=request.user)
    invitations.withdraw(member.user)
    messages.success(request, f"{username} removed from the team.")
    return redirect("imports:team")


@login_required
@require_POST
def resend_invitation(request):
    """A fresh link for an invited member who has not set a password; the old ones stop working."""
    membership = managed_membership(request)
    form = InvitedMemberForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose an invited member to send the invitation to again.")
        return redirect("imports:team")
    member = team_member(membership.team, form.cleaned_data["membership"])
    username = member.user.get_username()
    if not invitations.is_invited(member.user):
        messages.error(request, f"{username} has set a password already: no invitation waits.")
        return redirect("imports:team")
    invitations.renew_link(member, by=request.user)
    problem = invitations.send_invitation(member, by=request.user)
    if problem:
        messages.warning(request, invitations.mail_failed(problem))
    else:
        messages.success(
            request, f"Invitation sent again to {member.user.email}; earlier links no longer work."
        )
    return redirect("imports:team")


# The raw token crosses one redirect in the session, then is gone: the page
# that shows it is never cached and a reload shows it no more.
NEW_TOKEN_SESSION_KEY = "new_api_token"


@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request):
    mine = teams.memberships(request)
    form = TokenForm(memberships=mine)
    if request.method == "POST":
        form = TokenForm(request.POST, memberships=mine)
        if form.is_valid():
            team = next(m.team for m in mine if m.team_id == form.cleaned_data["team"])
            _, raw_token = ApiToken.issue(
                user=request.user, team=team, name=form.cleaned_data["name"]
            )
            request.session[NEW_TOKEN_SESSION_KEY] = raw_token
            return no_store(redirect("imports:tokens"))
    tokens = (
        ApiToken.objects.filter(user=request.user).select_related("team").order_by("-created_at")
    )
    new_token = request.session.pop(NEW_TOKEN_SESSION_KEY, None)
    context = {"form": form, "tokens": tokens, "new_token": new_token}
    return no_store(render(request, "imports/tokens.html", context))


def no_store(response):
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_http_methods(["GET", "POST"])
def revoke_token(request, pk):
    """GET asks the person to confirm; POST revokes."""
    api_token = get_object_or_404(ApiToken, pk=pk, user=request.user)
    if request.method == "GET":
        if not api_token.is_active:
            return redirect("imports:tokens")
        label = api_token.name or "(unnamed)"
        return render(
            request,
            "confirm.html",
            {
                "title": "Revoke this token?",
                "question": f"Revoke the API token {label!r} ({api_token.prefix}…) "
                f"for team {api_token.team.name}?",
                "explanation": "Anything that uses it is refused from now on. "
                "This cannot be undone; you can create a new token.",
                "action": request.path,
                "confirm_label": "Yes, revoke it",
                "back_url": reverse("imports:tokens"),
            },
        )
    if api_token.revoke(by=request.user):
        messages.success(request, f"Token {api_token.name!r} revoked; it no longer works.")
    return redirect("imports:tokens")

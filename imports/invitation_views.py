"""The invited person's side: open the e-mailed link, set a password, land in the team."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.forms import SetPasswordForm
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from . import invitations, teams

# The link's team, account and token move from the address into the session
# on the first visit, as Django's own password reset does: the token then
# leaves no trace in the browser's history, and no later page can leak it.
LINK_SESSION_KEY = "invitation_link"
LINK_FIELDS = ("team", "uid", "token")
# Django's own, as at sign-in: the AxesStandaloneBackend only counts wrong passwords.
PASSWORD_BACKEND = "django.contrib.auth.backends.ModelBackend"


@require_http_methods(["GET", "POST"])
def accept_invitation(request):
    """GET with the link's query: check it and keep it; then the form to set a password."""
    if any(field in request.GET for field in LINK_FIELDS):
        return open_link(request)
    link = request.session.get(LINK_SESSION_KEY)
    membership = invitations.membership_for_link(**link) if isinstance(link, dict) else None
    if membership is None:
        return link_not_valid(request)
    form = SetPasswordForm(membership.user)
    if request.method == "POST":
        form = SetPasswordForm(membership.user, request.POST)
        if form.is_valid():
            return welcome(request, membership, form)
    context = {"membership": membership, "form": form}
    return render(request, "registration/invitation_accept.html", context)


def open_link(request):
    if invitations.too_many_bad_links(request):
        return render(request, "registration/invitation_invalid.html", {"paused": True}, status=429)
    link = {field: request.GET.get(field, "")[:200] for field in LINK_FIELDS}
    if invitations.membership_for_link(**link) is None:
        invitations.note_bad_link(request)
        return link_not_valid(request)
    request.session[LINK_SESSION_KEY] = link
    return redirect("imports:accept_invitation")


def link_not_valid(request):
    request.session.pop(LINK_SESSION_KEY, None)
    return render(request, "registration/invitation_invalid.html", {"paused": False})


def welcome(request, membership, form):
    """The password is set (the link is used up): sign in, act for the team, see its history."""
    user = invitations.accept(membership, form)
    request.session.pop(LINK_SESSION_KEY, None)
    # Someone else may have been signed in on this browser: forget their teams.
    request.__dict__.pop("_memberships", None)
    login(request, user, backend=PASSWORD_BACKEND)
    teams.switch_team(request, membership.team_id)
    messages.success(
        request,
        f"Welcome, {user.get_username()}: you are in team {membership.team.name} as "
        f"{membership.get_role_display()}. Sign in from now on with this username and password.",
    )
    return redirect("imports:history")

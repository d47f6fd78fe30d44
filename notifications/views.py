"""The profile page (a person's e-mail choice) and a team's webhooks."""

from functools import partial
from urllib.parse import urlsplit

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from imports import teams
from imports.team_views import no_store

from . import tasks
from .forms import EventsForm, ProfileForm, WebhookForm
from .models import Delivery, Event, NotificationSettings, Webhook, change_email_address


@login_required
@require_http_methods(["GET", "POST"])
def profile(request):
    choices = NotificationSettings.for_user(request.user)
    form = ProfileForm(initial={"email": request.user.email, "email_on_end": choices.email_on_end})
    if request.method == "POST":
        form = ProfileForm(request.POST)
        if form.is_valid():
            user = request.user
            changed = change_email_address(user, form.cleaned_data["email"], by=user)
            changed |= choices.change(email_on_end=form.cleaned_data["email_on_end"], by=user)
            messages.success(request, "Saved." if changed else "Nothing changed.")
            return redirect("notifications:profile")
    return render(request, "notifications/profile.html", {"form": form, "choices": choices})


def managed_team(request):
    membership = teams.current_membership(request)
    if membership is None:
        raise Http404("You are not in any team.")
    if not membership.can_manage:
        raise PermissionDenied("Only a team admin can change the team's webhooks.")
    return membership.team


def host(webhook):
    """Where a webhook goes, as messages name it: the host only (a URL's path may be its secret)."""
    return urlsplit(webhook.url).netloc


def team_webhook(request, pk):
    return get_object_or_404(Webhook, pk=pk, team=managed_team(request))


# The webhook just added, across one redirect: its page shows the secret once.
ADDED_WEBHOOK_SESSION_KEY = "added_webhook"


@sensitive_post_parameters("url")  # a Slack or Teams URL is a secret: keep it out of error reports
@login_required
@require_http_methods(["GET", "POST"])
def add_webhook(request):
    team = managed_team(request)
    form = WebhookForm()
    if request.method == "POST":
        form = WebhookForm(request.POST)
        if form.is_valid():
            webhook = Webhook.add(team=team, by=request.user, **form.cleaned_data)
            # A redirect, so that a reload never adds it twice; the session
            # carries the key, not the secret, and only to the next page.
            request.session[ADDED_WEBHOOK_SESSION_KEY] = webhook.pk
            return no_store(redirect("notifications:webhook_added"))
    return render(request, "notifications/webhook_form.html", {"form": form, "team": team})


@login_required
@require_GET
def webhook_added(request):
    """The secret of the webhook just added, shown once: a reload goes to the Team page."""
    team = managed_team(request)
    pk = request.session.pop(ADDED_WEBHOOK_SESSION_KEY, None)
    webhook = Webhook.objects.filter(pk=pk, team=team).first() if pk else None
    if webhook is None:
        return no_store(redirect("imports:team"))
    return no_store(render(request, "notifications/webhook_added.html", {"webhook": webhook}))


@login_required
@require_POST
def change_webhook(request, pk):
    webhook = team_webhook(request, pk)
    if request.POST.get("resume"):
        if webhook.resume(by=request.user):
            messages.success(request, f"The webhook to {host(webhook)} is on again.")
        return redirect("imports:team")
    form = EventsForm(request.POST)
    try:
        changed = form.is_valid() and webhook.change_events(
            form.cleaned_data["events"], by=request.user
        )
    except Webhook.DoesNotExist:
        return removed_meanwhile(request, webhook)
    if changed:
        chosen = [f"“{Event(value).label}”" for value in form.cleaned_data["events"]]
        if len(chosen) > 1:
            said = f"now sends {', '.join(chosen[:-1])} and {chosen[-1]}."
        elif chosen:
            said = f"now sends {chosen[0]} only."
        else:
            said = "now sends nothing until you choose an event."
        messages.success(request, f"Saved: the webhook to {host(webhook)} {said}")
    return redirect("imports:team")


@login_required
@require_POST
def remove_webhook(request, pk):
    webhook = team_webhook(request, pk)
    webhook.remove(by=request.user)
    messages.success(request, f"The webhook to {host(webhook)} is removed: nothing more is sent.")
    return redirect("imports:team")


def removed_meanwhile(request, webhook):
    """Another team admin removed the webhook between this page and this request."""
    messages.error(
        request, f"The webhook to {host(webhook)} was removed meanwhile, by another admin."
    )
    return redirect("imports:team")


@login_required
@require_POST
def test_webhook(request, pk):
    webhook = team_webhook(request, pk)
    try:
        delivery = webhook.send_test(by=request.user)
    except Webhook.DoesNotExist:
        return removed_meanwhile(request, webhook)
    transaction.on_commit(partial(tasks.queue, [delivery.pk]))
    messages.success(
        request,
        f"Test message queued for {host(webhook)}: "
        "its result shows under Last deliveries in a moment.",
    )
    return redirect("imports:team")


@login_required
@require_POST
def redeliver(request, pk):
    delivery = get_object_or_404(
        Delivery.objects.select_related("webhook"),  # read now: another admin may remove it
        pk=pk,
        channel=Delivery.Channel.WEBHOOK,
        webhook__team=managed_team(request),
    )
    if not delivery.is_settled:
        # A second delivery beside one still being tried: the receiver would get it twice.
        messages.info(
            request,
            f"That delivery is still being tried (attempt {delivery.attempts}); "
            "it can be sent again once it has succeeded or failed.",
        )
        return redirect("imports:team")
    try:
        again = delivery.redeliver(by=request.user)
    except Webhook.DoesNotExist:
        return removed_meanwhile(request, delivery.webhook)
    transaction.on_commit(partial(tasks.queue, [again.pk]))
    messages.success(
        request,
        f"Delivery queued again: “{delivery.get_event_display()}” goes to "
        f"{host(delivery.webhook)} once more.",
    )
    return redirect("imports:team")

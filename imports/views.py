"""HTML pages and the htmx partials they swap.

Each page is one template; the regions htmx replaces are named partials in
it, rendered alone when htmx asks. Every link and button also works without
JavaScript.
"""

import json

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling

from . import aws, services, teams
from .forms import PLATFORMS, TAGS_MAX, ImportVmImageForm, TagFormSet, tag_rows
from .hints import failure_hint
from .inputs import parse_int
from .models import ClientTokenConflict, ImageImport, Membership, Status

POLL_STOP_STATUS = HttpResponseStopPolling.status_code


@login_required
@require_GET
def history(request):
    membership = teams.current_membership(request)
    imports = ImageImport.objects.none()
    if membership:
        imports = ImageImport.objects.filter(team=membership.team)
    status = request.GET.get("status", "")
    if status in Status.values:
        imports = imports.filter(status=status)
    platform = request.GET.get("platform", "")
    if platform:
        imports = imports.filter(platform=platform)
    query = request.GET.get("q", "").strip()
    if query:
        imports = imports.filter(
            Q(name__icontains=query)
            | Q(client_token=query)
            | Q(image_arn__icontains=query)
            | Q(vm_import_task_id__icontains=query)
        )
    page = Paginator(imports, settings.HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    filters = request.GET.copy()
    filters.pop("page", None)
    context = {
        "page": page,
        "in_flight": in_flight_ids(page),
        "membership": membership,
        "statuses": Status.choices,
        "platforms": PLATFORMS,
        "filters": {"status": status, "platform": platform, "q": query},
        "filter_query": filters.urlencode(),
    }
    if request.htmx.target == "history-table":
        return render(request, "imports/history.html#table", context)
    return render(request, "imports/history.html", context)


def in_flight_ids(imports):
    return ",".join(str(i.pk) for i in imports if not i.is_terminal)


@login_required
@require_GET
def history_poll(request):
    """One poll for the whole history page: the rows still in flight, in one query.

    The rows come back as out-of-band swaps, with the poller itself carrying
    the ids still in flight; when none is left, polling stops.
    """
    ids = parse_ids(request.GET.get("ids", ""))
    if ids is None:
        return HttpResponseBadRequest("ids must be import numbers separated by commas.")
    imports = list(teams.team_imports(request).filter(pk__in=ids))
    context = {"imports": imports, "in_flight": in_flight_ids(imports)}
    response = render(request, "imports/history.html#poll", context)
    if not context["in_flight"]:
        response.status_code = POLL_STOP_STATUS
    return response


MAX_POLLED_IDS = 100


def parse_ids(text):
    """Comma-separated ASCII-digit ids (at most MAX_POLLED_IDS), or None if malformed."""
    parts = [part for part in text.split(",") if part]
    if len(parts) > MAX_POLLED_IDS:
        return None
    ids = [parse_int(part) for part in parts]
    return None if None in ids else ids


@login_required
@require_http_methods(["GET", "POST"])
def new_import(request):
    membership = teams.current_membership(request)
    if membership is None or not membership.can_submit:
        raise PermissionDenied("You need the submitter role in a team to start imports.")
    if request.method == "GET":
        return render_form(request, ImportVmImageForm())
    if "tags_action" in request.POST:
        return edit_tag_rows(request)

    form = ImportVmImageForm(request.POST)
    if not form.is_valid():
        return render_form(request, form)
    try:
        image_import, created = services.submit_import(
            team=membership.team,
            user=request.user,
            payload=form.payload(),
        )
    except ClientTokenConflict as conflict:
        return render_conflict(request, form, conflict.existing)
    if created:
        messages.success(request, "Import recorded; the worker is sending it to AWS.")
    return redirect_to(request, reverse("imports:detail", args=[image_import.pk]))


def render_form(request, form, status=200):
    """The whole page, or just the form for htmx (which swaps only 2xx answers)."""
    live_validation(form)
    if request.htmx:
        return render(request, "imports/new.html#form", {"form": form})
    return render(request, "imports/new.html", {"form": form}, status=status)


def render_conflict(request, form, existing):
    """The same token was used for other values: say so, and offer a fresh token."""
    fresh = ImportVmImageForm(request.POST.copy())
    fresh.data["clientToken"] = ImportVmImageForm().initial["clientToken"]
    fresh.is_valid()
    fresh.add_error(
        None,
        f"This form was already submitted as import #{existing.pk} with different values. "
        "Check that import first; submitting again now starts a new, separate import.",
    )
    return render_form(request, fresh, status=409)


def edit_tag_rows(request):
    """Add or remove a tag row, keeping what was typed; no validation yet."""
    rows = tag_rows(request.POST)
    action = request.POST["tags_action"]
    if action == "add" and len(rows) < TAGS_MAX:
        rows.append(("", ""))
    elif action.startswith("remove-"):
        index = parse_int(action.removeprefix("remove-"))
        if index is None:
            return HttpResponseBadRequest("tags_action must be add or remove-<row number>.")
        if index < len(rows):
            del rows[index]
    form = ImportVmImageForm(initial=request.POST.dict())
    form.tags = TagFormSet(
        initial=[{"key": k, "value": v} for k, v in rows], prefix=form.tags.prefix
    )
    if request.htmx:
        live_validation(form)
        return render(request, "imports/new.html#tags", {"form": form})
    return render_form(request, form)


@login_required
@require_POST
def validate_field(request, field):
    """Check one field as the person leaves it, and answer with its errors."""
    form = ImportVmImageForm(request.POST)
    form.is_valid()
    errors = form.errors.get(field, [])
    if field.startswith(form.tags.prefix + "-"):
        text, _, name = field[len(form.tags.prefix) + 1 :].partition("-")
        index = parse_int(text)
        if index is None:
            return HttpResponseBadRequest("A tag field is tags-<row number>-key or -value.")
        if index < len(form.tags.forms):
            errors = form.tags.forms[index].errors.get(name, [])
    return render(request, "imports/new.html#field_errors", {"name": field, "errors": errors})


def live_validation(form):
    """Ask htmx to post each field when the person leaves it."""
    form.fields["vmImportTaskId"].widget.attrs["list"] = "vm-import-tasks"
    for bound_field in [*form, *(f for row in form.tags for f in row)]:
        if bound_field.is_hidden:
            continue
        bound_field.field.widget.attrs.update(
            {
                "hx-post": reverse("imports:validate", args=[bound_field.html_name]),
                "hx-trigger": "change",
                "hx-target": f"#errors-{bound_field.html_name}",
                "hx-swap": "outerHTML",
                "aria-describedby": f"help-{bound_field.html_name} errors-{bound_field.html_name}",
            }
        )


@login_required
@require_GET
def vm_import_tasks(request):
    """The picker: the team's VM import tasks, or a message if they cannot be listed."""
    membership = teams.current_membership(request)
    if membership is None:
        raise Http404
    try:
        tasks = services.vm_import_tasks(membership.team)
        problem = ""
    except aws.AwsError as error:
        tasks, problem = [], error.message
    return render(
        request, "imports/new.html#task_picker", {"tasks": tasks, "task_problem": problem}
    )


@login_required
@require_POST
def cancel(request, pk):
    image_import = get_object_or_404(teams.team_imports(request), pk=pk)
    if not Membership.role_can_submit(image_import.viewer_role):
        raise PermissionDenied("You need the submitter role in this team to cancel imports.")
    outcome = services.cancel_import(image_import, user=request.user)
    (messages.success if outcome.cancelled else messages.error)(request, outcome.message)
    return redirect_to(request, reverse("imports:detail", args=[image_import.pk]))


@login_required
@require_GET
def detail(request, pk):
    image_import = get_object_or_404(
        teams.team_imports(request).select_related("submitted_by", "team"), pk=pk
    )
    context = {
        "image_import": image_import,
        "may_cancel": may_cancel(image_import),
        "events": image_import.events.select_related("actor"),
        "payload_json": json.dumps(image_import.payload, indent=2, ensure_ascii=False),
        "hint": failure_hint(image_import),
    }
    return render(request, "imports/detail.html", context)


@login_required
@require_GET
def status(request, pk):
    """The polled status panel: one query for the import, and stop when it is done.

    When the import changed since the poll before (its `seen` version), the
    timeline comes along as an out-of-band swap: one more query, only then.
    """
    image_import = get_object_or_404(teams.team_imports(request), pk=pk)
    context = {
        "image_import": image_import,
        "hint": failure_hint(image_import),
        "may_cancel": may_cancel(image_import),
    }
    html = render_to_string("imports/detail.html#status", context, request)
    if request.GET.get("seen") not in (None, image_import.version):
        events = image_import.events.select_related("actor")
        html += render_to_string(
            "imports/detail.html#timeline", {"events": events, "oob": True}, request
        )
    return stop_polling_when_done(HttpResponse(html), image_import)


def may_cancel(image_import):
    """For an import from teams.team_imports(), which carries the person's role."""
    return image_import.can_cancel and Membership.role_can_submit(image_import.viewer_role)


def stop_polling_when_done(response, image_import):
    if image_import.is_terminal:
        response.status_code = POLL_STOP_STATUS
    return response


@login_required
@require_POST
def switch_team(request):
    team_id = parse_int(request.POST.get("team", ""))
    if team_id is None or not teams.switch_team(request, team_id):
        return HttpResponse("You are not a member of that team.", status=400)
    return redirect_to(request, safe_next(request) or reverse("imports:history"))


def safe_next(request):
    target = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return ""


def redirect_to(request, url):
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)

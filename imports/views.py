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
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, HttpResponseStopPolling

from . import aws, paging, services, teams
from .errors import bad_request_answer
from .forms import (
    PLATFORMS,
    TAGS_MAX,
    ImportFilterForm,
    NewImportForm,
    TagFormSet,
    tag_formset_data,
    tag_rows,
)
from .hints import failure_hint
from .inputs import parse_int
from .models import (
    ClientTokenConflict,
    ImageImport,
    Membership,
    Source,
    Status,
)
from .polling import remember_poll_access
from .upload_views import upload_plan

POLL_STOP_STATUS = HttpResponseStopPolling.status_code


@login_required
@require_GET
def history(request):
    membership = teams.current_membership(request)
    imports = ImageImport.objects.none()
    if membership:
        imports = ImageImport.objects.filter(team=membership.team)
    # A filter a link made wrong (?status=done) is left out, as the page
    # offers only valid ones; the API's list says 400 to the same.
    filters = ImportFilterForm(request.GET)
    filters.is_valid()
    imports = filters.narrow(imports)
    try:
        page = paging.keyset_page(
            imports,
            size=settings.HISTORY_PAGE_SIZE,
            older_than=request.GET.get("older"),
            newer_than=request.GET.get("newer"),
            page=request.GET.get("page"),
            search=filters.searching,
        )
    except paging.BadCursor as error:
        return bad_request_answer(request, str(error))
    context = {
        "page": page,
        "page_summary": page.summary("matching import" if filters.narrowing else "import"),
        "in_flight": in_flight_ids(page),
        "membership": membership,
        # The filter's own choices, Cancelled among them, less its "Any".
        "statuses": filters.fields["status"].choices[1:],
        "platforms": PLATFORMS,
        "filters": {name: filters.cleaned_data.get(name, "") for name in filters.fields},
        "filter_query": filters.query,
        "left_out": filters.left_out(),
        "token_prefix_min": filters.token_prefix_min,
        "ami_digits_min": filters.ami_digits_min,
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
        return bad_request_answer(request, "ids must be import numbers separated by commas.")
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
        return render_form(request, form_like_earlier(request) or new_import_form(request))
    switched = team_switched_since_opened(request, membership)
    if switched:
        # Before anything else the post asks (a tag row, the import): the
        # form drawn again is the current team's, and says so.
        form = new_import_form(request, request.POST)
        form.add_error(None, switched)
        return render_form(request, form)
    if "tags_action" in request.POST:
        return edit_tag_rows(request)

    form = new_import_form(request, request.POST)
    if not form.is_valid():
        return render_form(request, form)
    submission = services.submission_to_record(membership.team, form)
    if submission is None:
        return render_form(request, form)
    try:
        image_import, created = services.submit_import(
            team=membership.team, user=request.user, **submission
        )
    except ClientTokenConflict as conflict:
        return render_conflict(request, form, conflict.existing)
    detail_url = reverse("imports:detail", args=[image_import.pk])
    if request.headers.get("Accept", "").startswith("application/json"):
        # The upload page's script: where to send the file's parts next.
        answer = {"id": image_import.pk, "status": image_import.status, "detailUrl": detail_url}
        if image_import.source == Source.UPLOAD:
            answer["upload"] = upload_plan(image_import)
        return JsonResponse(answer, status=201 if created else 200)
    # No flash message: the import's own page says what is happening, and
    # stops saying it once it is no longer true.
    return redirect_to(request, detail_url)


def form_like_earlier(request):
    """?from=<id>: the form filled in as that import of the team was, or None.

    For starting again after a failure without typing it all again; the
    client token is new, and a file to upload is chosen again.
    """
    pk = parse_int(request.GET.get("from", ""))
    earlier = teams.team_imports(request).filter(pk=pk).first() if pk is not None else None
    if earlier is None:
        return None
    initial, rows = NewImportForm.settings_of(
        earlier.payload, earlier.source, earlier.import_image_payload
    )
    form = new_import_form(request, initial=initial)
    if rows:  # bound, as edit_tag_rows draws them: the form itself stays unbound
        form.tags = TagFormSet(tag_formset_data(rows), prefix=form.tags.prefix)
    form.started_from = earlier
    return form


def team_switched_since_opened(request, membership):
    """Why the import is not started, if the person switched team since the form was opened.

    The switch happened elsewhere (another tab): the import would otherwise
    go to a team, an AWS account and a bucket the person did not see here.
    """
    opened_for = parse_int(request.POST.get("team", ""))
    if opened_for is None or opened_for == membership.team_id:
        return ""
    then = teams.membership_in(request, opened_for)
    then_named = f"team {then.team.name}" if then else "another team"
    return (
        f"This form was opened for {then_named}; you have since switched to team "
        f"{membership.team.name}, perhaps in another tab. Nothing was sent: check the form "
        f"for {membership.team.name} and start the import again, or switch back first."
    )


def new_import_form(request, data=None, **kwargs):
    """The New import form, knowing the team's import bucket and prefix."""
    team = teams.current_membership(request).team
    return NewImportForm(
        data, import_bucket=team.import_bucket, import_prefix=team.import_prefix, **kwargs
    )


def render_form(request, form, status=200, focus_name=True):
    """The whole page, or just the form for htmx (which swaps only 2xx answers)."""
    live_validation(form, focus_name=focus_name)
    if request.htmx:
        return render(request, "imports/new.html#form", {"form": form})
    response = render(request, "imports/new.html", {"form": form}, status=status)
    return allow_upload_to_s3(response, teams.current_membership(request).team)


def allow_upload_to_s3(response, team):
    """upload.js PUTs the file's parts to the team's bucket: the CSP allows that origin only."""
    if team.import_bucket:
        try:
            origin = aws.upload_origin(team.import_bucket, target=aws.Target.for_team(team))
        except aws.AwsError:
            return response  # the page still works; an upload will say S3 was refused
        response._csp_update = {"connect-src": [origin]}
    return response


def shared_task_warning(image_import):
    """A warning naming the team's other imports in flight from the same VM import task.

    Cancelling the task ends them too: EC2 has one task, whoever imports from it.
    """
    others = list(services.imports_sharing_task(image_import).values_list("pk", flat=True))
    if not others:
        return ""
    named = ", ".join(f"#{pk}" for pk in others)
    plural = "s" if len(others) > 1 else ""
    return (
        f" Import{plural} {named} of this team also import{'' if plural else 's'} from this "
        f"task: cancelling it ends {'them' if plural else 'it'} too."
    )


def render_conflict(request, form, existing):
    """The same token was used for other values: say so, and offer a fresh token."""
    fresh = new_import_form(request, request.POST.copy())
    fresh.data["clientToken"] = NewImportForm().initial["clientToken"]
    fresh.is_valid()
    fresh.add_error(
        None,
        format_html(
            'This form was already submitted as <a href="{}">import #{}</a> with different '
            "values. Check that import first; submitting again now starts a new, separate "
            "import.",
            reverse("imports:detail", args=[existing.pk]),
            existing.pk,
        ),
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
            return bad_request_answer(request, "tags_action must be add or remove-<row number>.")
        if index < len(rows):
            del rows[index]
    form = new_import_form(request, initial=request.POST.dict())
    # Bound, so that a row whose key breaks a rule keeps saying so once the
    # rows are drawn again; blank rows are not judged (empty_permitted).
    form.tags = TagFormSet(tag_formset_data(rows), prefix=form.tags.prefix)
    form.tags.is_valid()
    if request.htmx:
        live_validation(form, focus_name=False)
        return render(request, "imports/new.html#tags", {"form": form})
    # Without JavaScript the whole page comes back: focus stays off Name.
    return render_form(request, form, focus_name=False)


@login_required
@require_POST
def validate_field(request, field):
    """Check one field as the person leaves it, and answer with its errors."""
    membership = teams.current_membership(request)
    if membership is None:
        raise Http404
    form = new_import_form(request, request.POST)
    form.is_valid()
    errors = form.errors.get(field, [])
    if field == "s3Key" and not errors and form.cleaned_data.get("source") == Source.S3_OBJECT:
        # A key that follows every rule: is there a file under it? (S3 HeadObject)
        key, bucket = form.cleaned_data.get("s3Key"), form.import_bucket
        problem = key and bucket and services.bucket_file_problem(membership.team, bucket, key)
        errors = [problem] if problem else []
    if field.startswith(form.tags.prefix + "-"):
        text, _, name = field[len(form.tags.prefix) + 1 :].partition("-")
        index = parse_int(text)
        if index is None:
            return bad_request_answer(request, "A tag field is tags-<row number>-key or -value.")
        if index < len(form.tags.forms):
            errors = form.tags.forms[index].errors.get(name, [])
    return render(request, "imports/new.html#field_errors", {"name": field, "errors": errors})


def live_validation(form, focus_name=True):
    """Ask htmx to post each field when the person leaves it.

    No `maxlength`: the browser would cut a long paste without a word. The
    limit goes to portal.js instead, which says so as the person types.
    """
    form.fields["vmImportTaskId"].widget.attrs["list"] = "vm-import-tasks"
    if "s3Key" in form.fields:
        form.fields["s3Key"].widget.attrs["list"] = "bucket-files"
        # portal.js fills an empty Disk format from the key's extension.
        form.fields["s3Key"].widget.attrs["data-formats"] = json.dumps(aws.FORMAT_BY_EXTENSION)
    if focus_name and not form.is_bound:
        form.fields["name"].widget.attrs["autofocus"] = True
    for bound_field in [*form, *(f for row in form.tags for f in row)]:
        if bound_field.is_hidden:
            continue
        attrs = bound_field.field.widget.attrs
        if attrs.pop("maxlength", None):
            attrs["data-maxlength"] = bound_field.field.max_length
            attrs["data-label"] = bound_field.label
        described_by = f"help-{bound_field.html_name} errors-{bound_field.html_name}"
        attrs.update(
            {
                "hx-post": reverse("imports:validate", args=[bound_field.html_name]),
                "hx-trigger": "change",
                "hx-target": f"#errors-{bound_field.html_name}",
                "hx-swap": "outerHTML",
                "aria-describedby": described_by,
                "aria-invalid": "true" if bound_field.errors else "false",
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
@require_GET
def bucket_files(request):
    """The picker: the disk files in the team's import bucket, or why there are none."""
    membership = teams.current_membership(request)
    if membership is None:
        raise Http404
    team, files, problem = membership.team, [], ""
    if team.import_bucket:
        try:
            files = services.bucket_files(team)
        except aws.AwsError as error:
            problem = error.message
    return render(
        request,
        "imports/new.html#file_picker",
        {"files": files, "file_problem": problem, "team": team},
    )


@login_required
@require_http_methods(["GET", "POST"])
def cancel(request, pk):
    """GET asks the person to confirm; POST cancels."""
    image_import = get_object_or_404(teams.team_imports(request), pk=pk)
    if not Membership.role_can_submit(image_import.viewer_role):
        raise PermissionDenied("You need the submitter role in this team to cancel imports.")
    detail_url = reverse("imports:detail", args=[image_import.pk])
    if request.method == "GET":
        if not image_import.can_cancel:
            messages.info(request, services.cannot_cancel_reason(image_import))
            return redirect(detail_url)
        explanation = (
            services.cancel_consequence(image_import)
            + " This cannot be undone."
            + shared_task_warning(image_import)
        )
        return render(
            request,
            "confirm.html",
            {
                "title": "Cancel this import?",
                "question": f"Cancel the import “{image_import.name}” (#{image_import.pk})?",
                "explanation": explanation,
                "action": request.path,
                "confirm_label": "Yes, cancel the import",
                "back_url": detail_url,
                "back_label": "No, keep it running",
            },
        )
    outcome = services.cancel_import(image_import, user=request.user)
    (messages.success if outcome.cancelled else messages.error)(request, outcome.message)
    return redirect_to(request, reverse("imports:detail", args=[image_import.pk]))


@login_required
@require_GET
def detail(request, pk):
    image_import = (
        teams.team_imports(request).select_related("submitted_by", "team").filter(pk=pk).first()
    )
    if image_import is None:
        return offer_its_team(request, pk)
    context = {
        **status_panel(image_import),
        "events": image_import.events.select_related("actor"),
        "payload_json": indented_json(image_import.payload),
        "import_image_json": indented_json(image_import.import_image_payload),
        "upload": upload_to_resume(image_import),
        # The page opened right after the click, usually before the worker
        # stored the image ARN: ask once as soon as it has loaded. Only the
        # page does, never a polled answer, so no answer can set off another.
        "poll_at_once": image_import.awaiting_arn,
    }
    remember_poll_access(request, image_import)  # its first polls, unchanged, are 204s
    response = render(request, "imports/detail.html", context)
    return allow_upload_to_s3(response, image_import.team) if context["upload"] else response


def offer_its_team(request, pk):
    """An import of another of the person's teams (a link in an e-mail): offer to switch.

    Anyone else gets the 404 a missing import gets, so nothing is learnt of it.
    """
    team_id = ImageImport.objects.filter(pk=pk).values_list("team_id", flat=True).first()
    membership = teams.membership_in(request, team_id) if team_id is not None else None
    if membership is None:
        raise Http404(f"No import {pk} in this team.")
    acting = teams.current_membership(request)
    return render(
        request,
        "confirm.html",
        {
            "title": f"Import #{pk} is team {membership.team.name}'s",
            "question": (
                f"You are acting for team {acting.team.name}; import #{pk} belongs to team "
                f"{membership.team.name}, which you are also in. Switch to it to see the import?"
            ),
            "action": reverse("imports:switch_team"),
            "fields": [("team", membership.team_id), ("next", request.path)],
            "confirm_label": f"Switch to {membership.team.name}",
            "confirm_class": "primary",
            "back_url": reverse("imports:history"),
            "back_label": f"Stay in {acting.team.name}",
        },
    )


def indented_json(request_payload):
    """A request (ImportVmImage's, ImportImage's) as the page shows it, or "" for none."""
    if not request_payload:
        return ""
    return json.dumps(request_payload, indent=2, ensure_ascii=False)


def upload_to_resume(image_import):
    """What the page's script needs to resume an upload after a reload, or None."""
    if image_import.status != Status.UPLOADING or not Membership.role_can_submit(
        image_import.viewer_role
    ):
        return None
    plan = upload_plan(image_import)
    return {
        **plan,
        "fileName": plan["key"].rsplit("/", 1)[-1],
        "fileSize": image_import.upload_size,
        "fileFingerprint": image_import.upload_fingerprint,
    }


@require_GET
@login_required
def status(request, pk):
    """The polled status panel in full: one query for the import, and stop when it is done.

    An unchanged poll never gets here: imports/polling.py answers it 204
    from the cache.

    When the import changed since the poll before (its `seen` version), the
    timeline comes along as an out-of-band swap: one more query, only then.
    So do the request's parts that change (EC2 names the VM import task),
    from the row already read.
    """
    image_import = get_object_or_404(teams.team_imports(request), pk=pk)
    html = render_to_string("imports/detail.html#status", status_panel(image_import), request)
    if request.GET.get("seen") not in (None, image_import.version):
        events = image_import.events.select_related("actor")
        oob = {
            "image_import": image_import,
            "events": events,
            "payload_json": indented_json(image_import.payload),
            "oob": True,
        }
        for part in ("request_heading", "request_task", "request_payload", "timeline"):
            html += render_to_string(f"imports/detail.html#{part}", oob, request)
    remember_poll_access(request, image_import)
    return stop_polling_when_done(HttpResponse(html), image_import)


def status_panel(image_import):
    """What the status panel (detail.html#status) shows: the page's and every poll's."""
    cancellable = may_cancel(image_import)
    return {
        "image_import": image_import,
        "hint": failure_hint(image_import),
        "may_cancel": cancellable,
        # Shown beside the Cancel button only; for a retried import it reads
        # the audit (lost answers), which a viewer's poll need not pay for.
        "cancel_consequence": services.cancel_consequence(image_import) if cancellable else "",
        "cancel_refusal": services.cannot_cancel_reason(image_import),
        "may_start_again": may_start_again(image_import),
    }


def may_start_again(image_import):
    """A failed or cancelled import offers a new one filled in as it was, to submitters."""
    return image_import.is_failed and Membership.role_can_submit(image_import.viewer_role)


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
        return bad_request_answer(request, "You are not a member of that team.")
    return redirect_to(request, safe_next(request) or reverse("imports:history"))


def safe_next(request):
    """The page to go back to: a path of this portal's, or "" (never another site)."""
    target = request.POST.get("next", "")
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}
    ):
        return target
    return ""


def redirect_to(request, url):
    """To a URL (never a view's name: `redirect` would try "abc" as one)."""
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return HttpResponseRedirect(url)

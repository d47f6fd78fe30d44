"""The JSON API: the same form, the same rules, for automation.

Requests authenticate with `Authorization: Bearer <token>`; a token acts as
its user within its team. Every answer, errors included, is JSON; errors
have the one shape of `errors.api_error`, and the whole API is described in
`openapi.json` beside this module, served at /api/openapi.json.
"""

import functools
import json
from pathlib import Path

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from . import aws, paging, services
from .errors import api_error
from .forms import IMPORT_IMAGE_OPTIONS, ImportFilterForm, NewImportForm, RequestShapeError
from .inputs import MAX_JSON_DEPTH, json_problem
from .models import ApiToken, ClientTokenConflict, ImageImport, Membership


class DuplicateMemberError(ValueError):
    pass


def api_view(*methods, query=()):
    """Bearer authentication, allowed methods and query parameters, JSON answers for each.

    `query` names the query parameters a GET takes (other methods take none);
    any other name is a 400, as an unknown member of a body is: a script
    that sends ?stauts= or ?limit= learns so instead of getting every import.
    """

    def decorator(view):
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                response = api_error(405, f"Method {request.method} is not allowed here.")
                response["Allow"] = ", ".join(methods)
                return response
            raw_token = bearer_token(request)
            api_token = ApiToken.authenticate(raw_token) if raw_token else None
            if api_token is None:
                response = api_error(401, unauthenticated_reason(raw_token))
                response["WWW-Authenticate"] = 'Bearer realm="api"'
                return response
            request.api_token = api_token
            problem = query_problem(request.GET, query if request.method == "GET" else ())
            if problem:
                return api_error(400, problem)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def bearer_token(request):
    """The token of an `Authorization: Bearer <token>` header, or ""."""
    scheme, _, raw_token = request.headers.get("Authorization", "").partition(" ")
    return raw_token.strip() if scheme.lower() == "bearer" else ""


def unauthenticated_reason(raw_token):
    if not raw_token:
        return "Authentication required: send Authorization: Bearer <token>."
    return (
        "This API token is not valid: it is mistyped, it was revoked, or its user is no "
        "longer in its team. Create a new one on the API tokens page."
    )


def query_problem(given, allowed):
    """Why the query string is refused, or "": a name not in `allowed`, or one given twice."""
    unknown = [name for name in given if name not in allowed]
    if unknown:
        names = ", ".join(repr(name[:40]) for name in unknown[:5])
        takes = f"takes only {', '.join(allowed)}" if allowed else "takes none"
        plural = "s" if len(unknown) > 1 else ""
        return f"Unknown query parameter{plural} {names}: this call {takes}."
    for name in allowed:
        if len(given.getlist(name)) > 1:
            return f"The query parameter {name} is given more than once; give it once."
    return ""


def reject_duplicates(pairs):
    """json object_pairs_hook: a repeated member is an error, never a silent overwrite."""
    seen = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateMemberError(key)
        seen[key] = value
    return seen


def decode_json(body):
    """The decoded body, or raise ValueError with a message for the person."""
    if not body.strip():
        raise ValueError("The request body is empty; send a JSON object.")
    try:
        decoded = json.loads(body.decode("utf-8"), object_pairs_hook=reject_duplicates)
    except RecursionError:
        raise ValueError(
            f"The request body is nested too deeply (at most {MAX_JSON_DEPTH} levels)."
        ) from None
    except UnicodeDecodeError:
        raise ValueError("The request body is not UTF-8 text.") from None
    except DuplicateMemberError as error:
        raise ValueError(f'The member "{error}" appears twice in one JSON object.') from None
    except json.JSONDecodeError as error:
        raise ValueError(f"The request body is not valid JSON: {error}.") from None
    except ValueError:  # int()'s own limit: a number of thousands of digits
        raise ValueError("The request body holds a number too long to read.") from None
    # JSON's \uD800 escapes decode to lone surrogates, and \u0000 to NUL:
    # neither can be stored, so neither gets past here.
    problem = json_problem(decoded)
    if problem:
        raise ValueError(f"The request cannot be accepted: {problem}.")
    return decoded


PAGING_PARAMETERS = ("older", "newer", "page")
LIST_PARAMETERS = (*ImportFilterForm.base_fields, *PAGING_PARAMETERS)


@api_view("GET", "POST", query=LIST_PARAMETERS)
def imports_collection(request):
    if request.method == "POST":
        return create_import(request)
    return list_imports(request)


def list_imports(request):
    """The team's imports, newest first, by the history's keyset rule (imports/paging.py).

    `next` and `previous` are whole URLs whose opaque cursor names the last
    (first) row shown, so following `next` to its end lists every import
    once, however many arrive meanwhile. `page=N` still answers page N.
    The history page's filters (status, platform, q) narrow it, by its rule.
    """
    filters = ImportFilterForm(request.GET)
    if not filters.is_valid():
        return invalid({name: list(messages) for name, messages in filters.errors.items()})
    imports = filters.narrow(ImageImport.objects.filter(team=request.api_token.team))
    try:
        page = paging.keyset_page(
            imports,
            size=settings.API_PAGE_SIZE,
            older_than=request.GET.get("older"),
            newer_than=request.GET.get("newer"),
            page=request.GET.get("page"),
            search=filters.searching,
        )
    except paging.BadCursor as error:
        return api_error(400, str(error))
    return JsonResponse(
        {
            "count": page.count,
            "countCapped": page.count_capped,
            "next": page_url(request, "older", page.older),
            "previous": page_url(request, "newer", page.newer),
            "results": [serialize(image_import) for image_import in page],
        }
    )


def page_url(request, direction, cursor):
    """This list's absolute URL at `cursor`, with any other query parameters kept."""
    if cursor is None:
        return None
    query = request.GET.copy()
    for parameter in PAGING_PARAMETERS:
        query.pop(parameter, None)
    query[direction] = cursor
    return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")


def create_import(request):
    api_token = request.api_token
    if not Membership.role_can_submit(api_token.member_role):
        return api_error(403, "This token's user may not submit imports in its team.")
    if not request.body and "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        # The server hands Django no chunked body: it would read as empty.
        return api_error(411, "Send the body with a Content-Length header, not chunked.")
    try:
        team = api_token.team
        form = NewImportForm.from_json(
            decode_json(request.body),
            import_bucket=team.import_bucket,
            import_prefix=team.import_prefix,
        )
    except RequestShapeError as error:  # before ValueError, its base
        return invalid(error.errors)
    except ValueError as error:
        return api_error(400, str(error) + content_type_hint(request))
    if not form.is_valid():
        return invalid(form.error_map())
    submission = services.submission_to_record(team, form)
    if submission is None:
        return invalid(form.error_map())
    try:
        image_import, created = services.submit_import(
            team=api_token.team, user=api_token.user, **submission
        )
    except ClientTokenConflict as conflict:
        return api_error(
            409,
            f"clientToken {conflict.existing.client_token!r} was already used for a "
            "different request; use a new clientToken for a new import.",
            id=conflict.existing.pk,
        )
    return JsonResponse(serialize(image_import), status=201 if created else 200)


def content_type_hint(request):
    """For a body that is not JSON, sent as something else: what to send instead.

    The body is read as JSON whatever its Content-Type (curl -d says
    application/x-www-form-urlencoded); only when that fails is the type named.
    """
    if request.content_type == "application/json":
        return ""
    sent = request.content_type or "no Content-Type"
    return f" (It was sent as {sent}: send a JSON object, Content-Type: application/json.)"


def invalid(errors):
    members = ", ".join(errors)
    return api_error(400, f"The request is invalid; see errors ({members}).", errors=errors)


@api_view("GET")
def import_detail(request, pk):
    image_import = ImageImport.objects.filter(team=request.api_token.team, pk=pk).first()
    if image_import is None:
        return api_error(404, f"No import {pk} in this team.")
    return JsonResponse(serialize(image_import))


@api_view("POST")
def cancel_import(request, pk):
    """The page's Cancel: withdraw an import not yet sent, or ask EC2 to cancel its task.

    Answers the import as it now stands. Cancelling one already cancelled
    answers it again (a retried call must not look like a failure); one that
    cannot be cancelled, or that EC2 would not cancel, is a 409 saying why.
    """
    api_token = request.api_token
    image_import = ImageImport.objects.filter(team=api_token.team, pk=pk).first()
    if image_import is None:
        return api_error(404, f"No import {pk} in this team.")
    if not Membership.role_can_submit(api_token.member_role):
        return api_error(403, "This token's user may not cancel imports in its team.")
    if not image_import.is_cancelled:
        outcome = services.cancel_import(image_import, user=api_token.user)
        if not outcome.cancelled:
            return api_error(409, outcome.message, id=image_import.pk)
        image_import.refresh_from_db()
    return JsonResponse(serialize(image_import))


@api_view("GET")
def vm_import_tasks(request):
    """The VM import tasks of the team's account and region, completed ones first."""
    try:
        tasks = services.vm_import_tasks(request.api_token.team)
    except aws.AwsError as error:
        return api_error(502, f"AWS did not list the VM import tasks: {error.message}")
    return JsonResponse([task.as_json() for task in tasks], safe=False)


OPENAPI = json.loads((Path(__file__).parent / "openapi.json").read_text())


@csrf_exempt  # answers 405 to anything but a read
def openapi(request):
    """The API's OpenAPI 3.1 description; public, like any API's documentation."""
    if request.method not in ("GET", "HEAD"):
        response = api_error(405, f"Method {request.method} is not allowed here.")
        response["Allow"] = "GET, HEAD"
        return response
    return JsonResponse(OPENAPI)


def serialize(image_import):
    payload = image_import.payload
    error = None
    if image_import.error_code and image_import.is_failed:
        error = {"code": image_import.error_code, "message": image_import.error_message}
    return {
        "id": image_import.pk,
        "clientToken": image_import.client_token,
        "status": image_import.status,
        "name": payload.get("name"),
        "description": payload.get("description"),
        "semanticVersion": payload.get("semanticVersion"),
        "platform": payload.get("platform"),
        "osVersion": payload.get("osVersion"),
        "source": image_import.source,
        "vmImportTaskId": image_import.vm_import_task_id or None,
        "diskContainer": image_import.disk_container,
        "importImageOptions": import_image_options(image_import),
        "loggingConfiguration": payload.get("loggingConfiguration"),
        "tags": payload.get("tags", {}),
        "imageArn": image_import.image_arn or None,
        "requestId": image_import.request_id or None,
        "error": error,
        "progress": image_import.progress,
        "statusMessage": image_import.status_message or None,
        "imageState": image_import.image_state or None,
        "amis": image_import.amis,
        "createdAt": image_import.created_at.isoformat(),
        "updatedAt": image_import.updated_at.isoformat(),
    }


def import_image_options(image_import):
    """The ImportImage options the request gave, by their API names; None for a task."""
    if not image_import.is_disk_import:
        return None
    request = image_import.import_image_payload
    return {name: request[member] for name, member, _ in IMPORT_IMAGE_OPTIONS if member in request}

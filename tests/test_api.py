import json

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client

from imports.models import ApiToken, ImageImport, Membership, Status

from .factories import sent_to_aws, valid_payload
from .helpers import Statements, at_once

URL = "/api/imports"
TAKES = "status, platform, q, older, newer, page"


def post(client, body, headers, content_type="application/json", url=URL):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post(url, data=data, content_type=content_type, headers=headers)


def test_it_creates_an_import_and_queues_the_aws_call(
    client, api_headers, payload, team, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        response = post(client, payload, api_headers)
    assert response.status_code == 201
    body = response.json()
    assert body["status"] == "queued"
    assert body["clientToken"] == payload["clientToken"]
    assert body["tags"] == {}
    assert body["imageArn"] is None and body["error"] is None
    assert len(callbacks) == 1
    assert ImageImport.objects.get().payload == sent_to_aws(team, payload)


def test_a_post_is_the_token_then_the_import_with_its_event(client, api_headers):
    post(client, valid_payload(clientToken="first"), api_headers)  # stamps last_used_at
    # The token with its user, team and the membership's role in one SELECT;
    # then the import and its event, committed together.
    with Statements() as said:
        response = post(client, valid_payload(clientToken="second"), api_headers)
    assert response.status_code == 201
    if connection.vendor == "postgresql":
        # Both in one statement (WITH created AS (INSERT ...) INSERT ...), atomic
        # alone; its savepoint is there only because this test runs in a transaction.
        assert (said.statements, said.transactions) == (2, 1), said
        assert said.sql[1].startswith("WITH created AS (INSERT")
    else:
        assert (said.statements, said.transactions) == (3, 1), said


def test_the_same_token_and_body_again_answers_200_with_the_same_import_and_no_second_call(
    client, api_headers, payload, django_capture_on_commit_callbacks
):
    first = post(client, payload, api_headers).json()
    with django_capture_on_commit_callbacks() as callbacks:
        again = post(client, payload, api_headers)
    assert again.status_code == 200
    assert again.json()["id"] == first["id"]
    assert callbacks == []
    assert ImageImport.objects.count() == 1


def test_the_same_token_with_a_different_body_is_a_409(client, api_headers, payload):
    first = post(client, payload, api_headers).json()
    response = post(client, {**payload, "name": "Something else"}, api_headers)
    assert response.status_code == 409
    assert "already used for a different request" in response.json()["error"]
    assert response.json()["id"] == first["id"]


def test_invalid_members_answer_400_with_errors_by_seed_name(client, api_headers):
    body = valid_payload(semanticVersion="1.0.0/1", platform="linux", tags={"aws:x": "y"})
    response = post(client, body, api_headers)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"semanticVersion", "platform", "tags"}
    assert ImageImport.objects.count() == 0


def test_a_member_of_the_wrong_json_type_is_a_400_naming_it(client, api_headers):
    response = post(client, valid_payload(name=12), api_headers)
    assert response.status_code == 400
    assert response.json() == {
        "error": "The request is invalid; see errors (name).",
        "status": 400,
        "errors": {"name": ["name must be a JSON string, not a number."]},
    }


@pytest.mark.parametrize(
    "body, message",
    [
        ("{not json", "not valid JSON"),
        ("", "empty"),
        ("   ", "empty"),
        ("[1, 2]", "must be a JSON object"),
        ('"text"', "must be a JSON object"),
        (b"\xff\xfe", "not UTF-8"),
        ('{"name": "a", "name": "b"}', 'member "name" appears twice'),
    ],
)
def test_malformed_bodies_are_400_never_500(client, api_headers, body, message):
    response = post(client, body, api_headers)
    assert response.status_code == 400
    assert message in str(response.json())


def test_duplicate_tag_keys_in_json_are_refused(client, api_headers):
    body = json.dumps(valid_payload())[:-1] + ', "tags": {"team": "a", "team": "b"}}'
    response = post(client, body, api_headers)
    assert response.status_code == 400
    assert 'member "team" appears twice' in response.json()["error"]


@pytest.mark.parametrize(
    "header, reason",
    [
        (None, "Authentication required: send Authorization: Bearer <token>."),
        ("Bearer", "Authentication required"),
        ("Basic abc", "Authentication required"),
        ("Token x", "Authentication required"),
        ("Bearer wrong", "This API token is not valid: it is mistyped, it was revoked"),
    ],
)
def test_missing_or_wrong_tokens_are_401_saying_which(db, client, payload, header, reason):
    headers = {"Authorization": header} if header else {}
    response = post(client, payload, headers)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"].startswith(reason)
    assert client.get(URL, headers=headers).status_code == 401


def test_a_token_stops_working_when_its_user_leaves_the_team(client, api_headers, user, team):
    Membership.objects.filter(user=user, team=team).delete()
    response = client.get(URL, headers=api_headers)
    assert response.status_code == 401
    assert "its user is no longer in its team" in response.json()["error"]


def test_a_viewer_token_may_read_but_not_submit(client, api_headers, user, payload):
    Membership.objects.filter(user=user).update(role=Membership.Role.VIEWER)
    assert post(client, payload, api_headers).status_code == 403
    assert client.get(URL, headers=api_headers).status_code == 200


def test_wrong_methods_are_405_in_json(client, api_headers, image_import):
    response = client.delete(URL, headers=api_headers)
    assert response.status_code == 405
    assert response["Allow"] == "GET, POST"
    assert client.post(f"{URL}/{image_import.pk}", headers=api_headers).status_code == 405


# -- query parameters: the documented ones, each once ----------------------------


@pytest.mark.parametrize(
    "query",
    [
        {"stauts": "failed"},
        {"Status": "failed"},
        {"search": "web"},
        {"limit": "abc"},
        {"limit": "10"},
        {"_": "1700000000"},
        {"Page": "2"},
    ],
)
def test_a_query_parameter_the_list_does_not_take_is_a_400_naming_those_it_does(
    client, api_headers, image_import, query
):
    response = client.get(URL, query, headers=api_headers)
    assert response.status_code == 400
    [name] = query
    assert response.json() == {
        "error": f"Unknown query parameter '{name}': this call takes only {TAKES}.",
        "status": 400,
    }


def test_every_unknown_parameter_is_named(client, api_headers):
    response = client.get(URL, {"stauts": "failed", "limit": "5", "page": "1"}, headers=api_headers)
    assert response.json()["error"] == (
        f"Unknown query parameters 'stauts', 'limit': this call takes only {TAKES}."
    )


def test_a_query_parameter_given_twice_is_a_400(client, api_headers):
    response = client.get(f"{URL}?page=1&page=2", headers=api_headers)
    assert response.json() == {
        "error": "The query parameter page is given more than once; give it once.",
        "status": 400,
    }


def test_calls_without_parameters_take_none(client, api_headers, image_import):
    for url in (f"{URL}/{image_import.pk}?fields=all", "/api/vm-import-tasks?status=completed"):
        response = client.get(url, headers=api_headers)
        assert response.status_code == 400
        assert response.json()["error"].endswith(": this call takes none.")


def test_the_token_is_checked_before_the_query(db, client):
    assert client.get(URL, {"stauts": "failed"}).status_code == 401


def test_a_post_takes_no_query_parameter_and_records_nothing(client, api_headers, payload):
    for query in ("dryRun=true", "page=1"):
        response = post(client, payload, api_headers, url=f"{URL}?{query}")
        assert response.status_code == 400
        assert response.json()["error"].endswith(": this call takes none.")
    assert not ImageImport.objects.exists()


def test_the_documented_parameters_still_answer_200(client, api_headers, image_import):
    assert client.get(URL, headers=api_headers).status_code == 200
    body = client.get(URL, {"page": "1"}, headers=api_headers).json()
    assert [item["id"] for item in body["results"]] == [image_import.pk]
    assert client.get(f"{URL}/{image_import.pk}", headers=api_headers).status_code == 200


def test_get_one_import_returns_every_documented_field(client, api_headers, image_import, payload):
    response = client.get(f"{URL}/{image_import.pk}", headers=api_headers)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "id",
        "clientToken",
        "status",
        "name",
        "description",
        "semanticVersion",
        "platform",
        "osVersion",
        "vmImportTaskId",
        "source",
        "diskContainer",
        "importImageOptions",
        "loggingConfiguration",
        "tags",
        "imageArn",
        "requestId",
        "error",
        "createdAt",
        "updatedAt",
        "progress",
        "statusMessage",
        "imageState",
        "amis",
    }
    assert body["name"] == payload["name"]
    assert body["description"] is None
    assert body["source"] == "vm_import_task"
    assert body["vmImportTaskId"] == payload["vmImportTaskId"]
    assert body["diskContainer"] is None and body["importImageOptions"] is None


def test_a_failed_import_reports_its_error(client, api_headers, image_import):
    image_import.mark_failed(code="ClientException", message="Unknown VM import task.")
    body = client.get(f"{URL}/{image_import.pk}", headers=api_headers).json()
    assert body["status"] == Status.FAILED
    assert body["error"] == {"code": "ClientException", "message": "Unknown VM import task."}


def test_another_teams_import_is_404(client, image_import, other_team, outsider):
    _, raw = ApiToken.issue(user=outsider, team=other_team)
    response = client.get(f"{URL}/{image_import.pk}", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 404
    listed = client.get(URL, headers={"Authorization": f"Bearer {raw}"}).json()
    assert listed["count"] == 0


def test_create_api_token_command_creates_user_team_and_a_working_token(db, capsys, payload):
    call_command("create_api_token", "robot", "--team", "automation")
    raw_token = capsys.readouterr().out.strip().splitlines()[-1]
    token = ApiToken.objects.get()
    assert token.digest == ApiToken.digest_of(raw_token)  # stored hashed, never in clear
    assert raw_token not in token.digest
    assert not token.user.has_usable_password()
    response = Client().post(
        URL,
        data=payload,
        content_type="application/json",
        headers={"Authorization": f"Bearer {raw_token}"},
    )
    assert response.status_code == 201
    assert ImageImport.objects.get().team.name == "automation"


@pytest.mark.django_db(transaction=True)
def test_concurrent_identical_requests_make_one_import(team, user, payload):
    _, raw_token = ApiToken.issue(user=user, team=team)

    def send():
        return (
            Client()
            .post(
                URL,
                data=payload,
                content_type="application/json",
                headers={"Authorization": f"Bearer {raw_token}"},
            )
            .status_code
        )

    assert sorted(at_once(send)) == [200, 200, 200, 201]
    assert ImageImport.objects.count() == 1


def test_a_token_in_use_is_stamped_at_most_once_a_minute(client, api_headers, image_import):
    client.get(URL, headers=api_headers)
    first = ApiToken.objects.get().last_used_at
    client.get(URL, headers=api_headers)
    assert ApiToken.objects.get().last_used_at == first  # no write for a second call

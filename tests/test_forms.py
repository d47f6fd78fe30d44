"""Both edges of every ImportVmImage constraint (docs/spec/ImportVmImage.txt)."""

import pytest

from imports.forms import ImportVmImageForm, RequestShapeError, tag_formset_data

from .factories import valid_payload


def errors_for(**overrides):
    form = ImportVmImageForm.from_json(valid_payload(**overrides))
    assert not form.is_valid()
    return form.error_map()


def is_valid(**overrides):
    return ImportVmImageForm.from_json(valid_payload(**overrides)).is_valid()


def test_a_minimal_valid_request_builds_the_exact_payload():
    form = ImportVmImageForm.from_json(valid_payload())
    assert form.is_valid(), form.error_map()
    assert form.payload() == valid_payload()


def test_blank_optional_members_and_empty_tags_are_left_out():
    form = ImportVmImageForm.from_json(valid_payload(description="   ", osVersion="", tags={}))
    assert form.is_valid()
    assert set(form.payload()) == {
        "clientToken",
        "name",
        "semanticVersion",
        "platform",
        "vmImportTaskId",
    }


def test_surrounding_whitespace_is_stripped_from_every_member():
    form = ImportVmImageForm.from_json(
        valid_payload(
            name="  Web  ", platform=" Linux ", semanticVersion=" 1.2.3\n", tags={" team ": " web "}
        )
    )
    assert form.is_valid(), form.error_map()
    payload = form.payload()
    assert payload["name"] == "Web"
    assert payload["platform"] == "Linux"
    assert payload["semanticVersion"] == "1.2.3"
    assert payload["tags"] == {"team": "web"}


# clientToken: required, 1-36 characters, case-sensitive.


def test_it_accepts_a_client_token_of_1_and_36_characters():
    assert is_valid(clientToken="a")
    assert is_valid(clientToken="x" * 36)


def test_it_rejects_a_client_token_of_37_characters():
    assert errors_for(clientToken="x" * 37) == {
        "clientToken": ["Client token must be at most 36 characters; this one has 37."]
    }


def test_it_requires_a_client_token():
    assert errors_for(clientToken=None) == {"clientToken": ["Client token is required."]}
    assert errors_for(clientToken="  ") == {"clientToken": ["Client token is required."]}


def test_client_tokens_keep_their_case():
    form = ImportVmImageForm.from_json(valid_payload(clientToken="AbC"))
    assert form.is_valid()
    assert form.payload()["clientToken"] == "AbC"


# name and description: 1-1024 characters, counted as characters not bytes.


@pytest.mark.parametrize("member, label", [("name", "Name"), ("description", "Description")])
def test_it_accepts_1_and_1024_characters(member, label):
    assert is_valid(**{member: "n"})
    assert is_valid(**{member: "é" * 1024})  # 2048 bytes in UTF-8, still 1024 characters


@pytest.mark.parametrize("member, label", [("name", "Name"), ("description", "Description")])
def test_it_rejects_1025_characters(member, label):
    assert errors_for(**{member: "n" * 1025}) == {
        member: [f"{label} must be at most 1024 characters; this one has 1025."]
    }


def test_it_requires_a_name_and_treats_only_spaces_as_empty():
    assert errors_for(name=None) == {"name": ["Name is required."]}
    assert errors_for(name=" \t ") == {"name": ["Name is required."]}


def test_description_is_optional():
    assert is_valid(description=None)


# osVersion: optional, at least 1 character, no maximum.


def test_os_version_has_no_maximum_length():
    form = ImportVmImageForm.from_json(valid_payload(osVersion="9" * 5000))
    assert form.is_valid()
    assert form.payload()["osVersion"] == "9" * 5000


# platform: exactly Windows, Linux or macOS.


@pytest.mark.parametrize("platform", ["Windows", "Linux", "macOS"])
def test_it_accepts_each_platform(platform):
    assert is_valid(platform=platform)


@pytest.mark.parametrize("platform", ["linux", "MacOS", "Ubuntu"])
def test_it_rejects_a_platform_that_is_not_exactly_one_of_the_three(platform):
    assert errors_for(platform=platform) == {
        "platform": [
            f"Platform must be exactly one of Windows, Linux, macOS (case matters); "
            f"{platform} is not."
        ]
    }


def test_it_requires_a_platform():
    assert errors_for(platform=None) == {"platform": ["Platform is required."]}


# semanticVersion: ^[0-9]+\.[0-9]+\.[0-9]+$, each node 0..2^30-1.


@pytest.mark.parametrize(
    "version", ["0.0.0", "1.0.0", "2021.01.01", "1073741823.1073741823.1073741823"]
)
def test_it_accepts_semantic_versions_within_the_limits(version):
    assert is_valid(semanticVersion=version)


@pytest.mark.parametrize(
    "version", ["1073741824.0.0", "0.1073741824.0", "0.0.1073741824", "0.0.99999999999999999999999"]
)
def test_it_rejects_a_node_above_2_to_the_30_minus_1(version):
    (message,) = errors_for(semanticVersion=version)["semanticVersion"]
    assert "at most 1073741823" in message


def test_leading_zeros_do_not_make_a_node_too_large():
    assert is_valid(semanticVersion="000000000001.0.0")


def test_it_refuses_the_build_node_because_aws_assigns_it():
    (message,) = errors_for(semanticVersion="1.0.0/1")["semanticVersion"]
    assert "AWS assigns the build number" in message


@pytest.mark.parametrize(
    "version",
    [
        "1.0",
        "1.0.0.0",
        "v1.0.0",
        "1.0.0-beta",
        "1..0",
        "1.0.0\n",
        "1.0.0\nx",
        "١.٠.٠",
        "1.0.０",
        "a.b.c",
    ],
)
def test_it_rejects_what_the_pattern_does_not_match(version):
    form = ImportVmImageForm.from_json(valid_payload(semanticVersion=version))
    if version == "1.0.0\n":
        # Only surrounding whitespace is stripped; what remains matches.
        assert form.is_valid()
        return
    assert not form.is_valid()
    (message,) = form.error_map()["semanticVersion"]
    assert "three whole numbers" in message


# vmImportTaskId: required, 1-1024.


def test_vm_import_task_id_edges():
    assert is_valid(vmImportTaskId="i")
    assert is_valid(vmImportTaskId="i" * 1024)
    assert errors_for(vmImportTaskId="i" * 1025) == {
        "vmImportTaskId": ["VM import task ID must be at most 1024 characters; this one has 1025."]
    }
    assert errors_for(vmImportTaskId=None) == {"vmImportTaskId": ["VM import task ID is required."]}


# tags: at most 50; key 1-128 matching the seed's pattern; value 0-256.


def test_it_accepts_50_tags_and_rejects_51():
    assert is_valid(tags={f"k{i}": "v" for i in range(50)})
    assert errors_for(tags={f"k{i}": "v" for i in range(51)}) == {
        "tags": ["At most 50 tags are allowed; this request has 51."]
    }


def test_tag_key_length_edges():
    assert is_valid(tags={"k": ""})
    assert is_valid(tags={"k" * 128: "v"})
    (message,) = errors_for(tags={"k" * 129: "v"})["tags"]
    assert message.endswith("Tag key must be at most 128 characters; this one has 129.")


def test_tag_value_length_edges():
    assert is_valid(tags={"k": ""})
    assert is_valid(tags={"k": "v" * 256})
    (message,) = errors_for(tags={"k": "v" * 257})["tags"]
    assert message.endswith("Tag value must be at most 256 characters; this one has 257.")


def test_it_rejects_a_tag_key_starting_with_aws():
    (message,) = errors_for(tags={"aws:team": "x"})["tags"]
    assert 'may not begin with "aws:"' in message
    assert is_valid(tags={"team:aws:": "x"})


@pytest.mark.parametrize(
    "key", ["team", "a+b", "a-b", "a=b", "a.b", "a_b", "a:b", "a/b", "2024", "AWS:x"]
)
def test_it_accepts_tag_keys_both_aws_documents_admit(key):
    assert is_valid(tags={key: "v"})


@pytest.mark.parametrize(
    "key", ["a,b", "a;b", "a<b", "a b", "a@b", "a>b", "a?b", "a#b", "é", "a\nb"]
)
def test_it_rejects_tag_keys_outside_the_pattern(key):
    (message,) = errors_for(tags={key: "v"})["tags"]
    assert "characters that are not allowed" in message


def test_a_duplicate_tag_key_is_an_error_never_an_overwrite():
    form = ImportVmImageForm(
        {**valid_payload(), **tag_formset_data([("team", "a"), ("team", "b")])}
    )
    assert not form.is_valid()
    assert form.error_map()["tags"] == ['Each tag key may be used once; repeated: "team".']


def test_keys_that_differ_only_after_stripping_are_duplicates():
    form = ImportVmImageForm(
        {**valid_payload(), **tag_formset_data([("team", "a"), (" team ", "b")])}
    )
    assert not form.is_valid()


def test_blank_tag_rows_from_the_page_are_ignored():
    form = ImportVmImageForm({**valid_payload(), **tag_formset_data([("", ""), ("k", "v")])})
    assert form.is_valid(), form.error_map()
    assert form.payload()["tags"] == {"k": "v"}


def test_an_empty_tag_key_in_json_is_an_error_never_dropped():
    # On the page an empty row is just left over; in JSON, "" was sent on purpose.
    for tags in ({"": ""}, {"": "v"}):
        with pytest.raises(RequestShapeError) as error:
            ImportVmImageForm.from_json({**valid_payload(), "tags": tags})
        assert error.value.errors == {"tags": ["A tag key may not be empty: 1-128 characters."]}


def test_a_tag_value_without_a_key_is_an_error():
    form = ImportVmImageForm({**valid_payload(), **tag_formset_data([("", "orphan")])})
    assert not form.is_valid()
    assert form.error_map()["tags"] == ["Tag 1 (''): Tag key is required."]


# JSON shapes.


@pytest.mark.parametrize(
    "member, value, expected",
    [
        ("name", 5, "name must be a JSON string, not a number."),
        ("platform", ["Linux"], "platform must be a JSON string, not an array."),
        ("semanticVersion", True, "semanticVersion must be a JSON string, not a boolean."),
        ("tags", ["a"], "tags must be a JSON object whose values are strings."),
        ("tags", {"a": 1}, "tags must be a JSON object whose values are strings."),
    ],
)
def test_a_member_of_the_wrong_json_type_is_named(member, value, expected):
    with pytest.raises(RequestShapeError) as raised:
        ImportVmImageForm.from_json(valid_payload(**{member: value}))
    assert raised.value.errors == {member: [expected]}


def test_an_unknown_member_is_named():
    with pytest.raises(RequestShapeError) as raised:
        ImportVmImageForm.from_json({**valid_payload(), "imageName": "web"})
    assert list(raised.value.errors) == ["imageName"]


def test_a_body_that_is_not_an_object_is_refused():
    with pytest.raises(RequestShapeError):
        ImportVmImageForm.from_json(["not", "an", "object"])


def test_json_null_reads_as_an_absent_member():
    assert is_valid(description=None)
    form = ImportVmImageForm.from_json({**valid_payload(), "description": None})
    assert form.is_valid()
    assert "description" not in form.payload()


def test_an_unbound_form_offers_a_fresh_uuid_token():
    first, second = ImportVmImageForm(), ImportVmImageForm()
    assert len(first.initial["clientToken"]) == 36
    assert first.initial["clientToken"] != second.initial["clientToken"]


def test_a_forms_choice_fields_share_their_choices_and_nothing_else():
    from imports.forms import NewImportForm

    first, second = NewImportForm(), NewImportForm()
    shared = NewImportForm.base_fields["format"]
    assert first.fields["format"].choices is shared.choices  # not copied per form
    assert first.fields["format"].widget.choices is shared.widget.choices
    first.fields["format"].widget.attrs["list"] = "formats"  # as the New import page does
    first.fields["format"].choices = [("ova", "ova")]
    assert "list" not in second.fields["format"].widget.attrs
    assert "list" not in shared.widget.attrs
    assert second.fields["format"].choices is shared.choices
    assert ("vmdk", "VMDK") in shared.choices


def test_an_amis_id_for_the_task_says_what_a_task_id_looks_like():
    form = ImportVmImageForm.from_json(valid_payload(vmImportTaskId="ami-0eca4fd498d969090"))
    assert not form.is_valid()
    assert form.errors["vmImportTaskId"] == [
        "ami-0eca4fd498d969090 is an AMI's ID; a VM import task's ID starts with import-ami-."
    ]

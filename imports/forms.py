"""The ImportVmImage request: every constraint of the API, in one place.

The contract is the seed spec (shared/spec/ImportVmImage.txt); where
botocore's model differs (a longer clientToken, another tag key pattern, a
loggingConfiguration member), the seed wins. The web form, the JSON API and
the local emulator all validate through `ImportVmImageForm`, so a rule
changed here changes everywhere.
"""

import re
import uuid

from django import forms
from django.core.exceptions import ValidationError

from .inputs import parse_int

CLIENT_TOKEN_MAX = 36
NAME_MAX = 1024
DESCRIPTION_MAX = 1024
VM_IMPORT_TASK_ID_MAX = 1024
PLATFORMS = ("Windows", "Linux", "macOS")
SEMANTIC_VERSION_PATTERN = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+")
SEMANTIC_VERSION_NODE_MAX = 2**30 - 1  # 1073741823
TAGS_MAX = 50
TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
# The seed's `^(?!aws:)[a-zA-Z+-=._:/]+$`, read exactly as a regular
# expression does: "+-=" is the range from "+" to "=", which also admits the
# digits and , ; <. fullmatch() is used because `$` would also accept a
# trailing newline.
TAG_KEY_PATTERN = re.compile(r"(?!aws:)[a-zA-Z+-=._:/]+")
TAG_KEY_ALLOWED = "letters, digits and + , - . / : ; < = _"

# Request members in the spec's order. All but `tags` are JSON strings.
STRING_MEMBERS = (
    "clientToken",
    "description",
    "name",
    "osVersion",
    "platform",
    "semanticVersion",
    "vmImportTaskId",
)
MEMBERS = (*STRING_MEMBERS, "tags")


class RequestShapeError(ValueError):
    """A JSON request whose members have the wrong JSON types or names."""

    def __init__(self, errors):
        super().__init__(errors)
        self.errors = errors


def validate_semantic_version(value):
    if not SEMANTIC_VERSION_PATTERN.fullmatch(value):
        if re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+/.*", value):
            raise ValidationError(
                "Give only major.minor.patch, like 1.0.0: AWS assigns the build number "
                "after the slash itself.",
                code="build_node",
            )
        raise ValidationError(
            "Semantic version must be three whole numbers separated by dots, like 1.0.0 "
            "(digits 0-9 only, no spaces, letters or suffixes).",
            code="pattern",
        )
    for node_name, node in zip(("major", "minor", "patch"), value.split("."), strict=True):
        digits = node.lstrip("0") or "0"
        # The length check first keeps int() away from absurdly long input.
        if len(digits) > 10 or int(digits) > SEMANTIC_VERSION_NODE_MAX:
            raise ValidationError(
                f"The {node_name} number is too large: each of the three numbers may be "
                f"at most {SEMANTIC_VERSION_NODE_MAX} (2^30-1).",
                code="node_max",
            )


def validate_tag_key(key):
    if key.startswith("aws:"):
        raise ValidationError(
            'Tag keys may not begin with "aws:"; that prefix is reserved for AWS.',
            code="reserved_prefix",
        )
    if not TAG_KEY_PATTERN.fullmatch(key):
        bad = sorted({char for char in key if not TAG_KEY_PATTERN.fullmatch(char)})
        shown = " ".join("space" if char == " " else repr(char) for char in bad)
        raise ValidationError(
            f"Tag key has characters that are not allowed ({shown}); use only {TAG_KEY_ALLOWED}.",
            code="pattern",
        )


def _messages(label, *, max_length=None):
    messages = {"required": f"{label} is required."}
    if max_length:
        messages["max_length"] = (
            f"{label} must be at most %(limit_value)d characters; this one has %(show_value)d."
        )
    return messages


def text_field(label, help_text, *, max_length=None, required=True, widget=None):
    return forms.CharField(
        label=label,
        help_text=help_text,
        max_length=max_length,
        required=required,
        widget=widget,
        error_messages=_messages(label, max_length=max_length),
    )


class StrippedChoiceField(forms.ChoiceField):
    """A choice field that, like every other field here, ignores surrounding spaces."""

    def to_python(self, value):
        return super().to_python(value).strip()


class TagForm(forms.Form):
    key = text_field(
        "Tag key",
        f"1-{TAG_KEY_MAX} characters: {TAG_KEY_ALLOWED}; not starting with aws:",
        max_length=TAG_KEY_MAX,
    )
    value = text_field(
        "Tag value", f"0-{TAG_VALUE_MAX} characters", max_length=TAG_VALUE_MAX, required=False
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["key"].validators.append(validate_tag_key)


class BaseTagFormSet(forms.BaseFormSet):
    def full_clean(self):
        super().full_clean()
        # More rows than absolute_max: Django refuses them (and builds only
        # the first 50); say it as the rule of 50 tags does.
        if self.is_bound and self.management_form.is_valid():
            total = self.management_form.cleaned_data["TOTAL_FORMS"]
            if total > self.absolute_max:
                self._non_form_errors = self.error_class(
                    [f"At most {TAGS_MAX} tags are allowed; this request has {total}."],
                    error_class="nonform",
                    renderer=self.renderer,
                )

    def clean(self):
        keys = [form.cleaned_data["key"] for form in self.forms if form.cleaned_data.get("key")]
        if len(keys) > TAGS_MAX:
            raise ValidationError(
                f"At most {TAGS_MAX} tags are allowed; this request has {len(keys)}.",
                code="too_many_tags",
            )
        repeated = sorted({key for key in keys if keys.count(key) > 1})
        if repeated:
            raise ValidationError(
                "Each tag key may be used once; repeated: "
                + ", ".join(f'"{key}"' for key in repeated)
                + ".",
                code="duplicate_tag_key",
            )

    def as_map(self):
        return {
            form.cleaned_data["key"]: form.cleaned_data["value"]
            for form in self.forms
            if form.cleaned_data.get("key")
        }


# The page never holds more rows than the API allows tags: absolute_max
# bounds the work a hostile request can ask for (a post claiming 1,000 rows is
# refused, not rendered), and clean() counts only the rows with a key.
TagFormSet = forms.formset_factory(
    TagForm, formset=BaseTagFormSet, extra=0, max_num=TAGS_MAX, absolute_max=TAGS_MAX
)
TAGS_PREFIX = "tags"


def tag_formset_data(pairs):
    """Formset POST data for a sequence of (key, value) pairs."""
    pairs = list(pairs)
    data = {
        f"{TAGS_PREFIX}-TOTAL_FORMS": str(len(pairs)),
        f"{TAGS_PREFIX}-INITIAL_FORMS": "0",
    }
    for index, (key, value) in enumerate(pairs):
        data[f"{TAGS_PREFIX}-{index}-key"] = key
        data[f"{TAGS_PREFIX}-{index}-value"] = value
    return data


def tag_rows(data):
    """The (key, value) rows a submitted page holds, blank ones included."""
    total = parse_int(data.get(f"{TAGS_PREFIX}-TOTAL_FORMS", "0")) or 0
    return [
        (data.get(f"{TAGS_PREFIX}-{i}-key", ""), data.get(f"{TAGS_PREFIX}-{i}-value", ""))
        for i in range(max(0, min(total, TagFormSet.absolute_max)))
    ]


class ImportVmImageForm(forms.Form):
    """One ImportVmImage request. Field names are the API's member names."""

    clientToken = text_field(
        "Client token",
        f"1-{CLIENT_TOKEN_MAX} characters, case-sensitive; the same token never creates a "
        "second image.",
        max_length=CLIENT_TOKEN_MAX,
        widget=forms.HiddenInput,
    )
    name = text_field(
        "Name", f"1-{NAME_MAX} characters: the name of the base image.", max_length=NAME_MAX
    )
    description = text_field(
        "Description",
        f"Optional, up to {DESCRIPTION_MAX} characters.",
        max_length=DESCRIPTION_MAX,
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    semanticVersion = text_field(
        "Semantic version",
        "major.minor.patch, like 1.0.0; each number 0 to 1073741823. AWS adds the build number.",
    )
    platform = StrippedChoiceField(
        label="Platform",
        help_text="Exactly one of " + ", ".join(PLATFORMS) + ".",
        choices=[("", "Choose a platform")] + [(p, p) for p in PLATFORMS],
        error_messages={
            "required": "Platform is required.",
            "invalid_choice": "Platform must be exactly one of "
            + ", ".join(PLATFORMS)
            + " (case matters); %(value)s is not.",
        },
    )
    osVersion = text_field("OS version", "Optional, for example 22.04 or 2022.", required=False)
    vmImportTaskId = text_field(
        "VM import task ID",
        f"The EC2 VM import task (import-ami-...), 1-{VM_IMPORT_TASK_ID_MAX} characters.",
        max_length=VM_IMPORT_TASK_ID_MAX,
    )

    def __init__(self, data=None, *args, **kwargs):
        kwargs.setdefault("initial", {})
        kwargs["initial"].setdefault("clientToken", str(uuid.uuid4()))
        super().__init__(data, *args, **kwargs)
        self.fields["semanticVersion"].validators.append(validate_semantic_version)
        self.tags = TagFormSet(data, prefix=TAGS_PREFIX)

    @classmethod
    def from_json(cls, body):
        """A bound form for a decoded JSON request; RequestShapeError for wrong types."""
        if not isinstance(body, dict):
            raise RequestShapeError({"body": ["The request body must be a JSON object."]})
        errors = {}
        for member, value in body.items():
            if member not in MEMBERS:
                errors[member] = [f"Unknown member; the members are: {', '.join(MEMBERS)}."]
            elif value is None:
                continue  # JSON null reads as an absent member
            elif member == "tags":
                if not isinstance(value, dict) or not all(
                    isinstance(v, str) for v in value.values()
                ):
                    errors[member] = ["tags must be a JSON object whose values are strings."]
            elif not isinstance(value, str):
                errors[member] = [f"{member} must be a JSON string, not {json_type(value)}."]
        if errors:
            raise RequestShapeError(errors)
        data = {m: body[m] for m in STRING_MEMBERS if body.get(m) is not None}
        data.update(tag_formset_data((body.get("tags") or {}).items()))
        return cls(data)

    def is_valid(self):
        form_valid = super().is_valid()
        return self.tags.is_valid() and form_valid

    def payload(self):
        """The exact request to send: blank optional members and empty tags left out."""
        payload = {m: self.cleaned_data[m] for m in STRING_MEMBERS if self.cleaned_data.get(m)}
        tags = self.tags.as_map()
        if tags:
            payload["tags"] = tags
        return payload

    def error_map(self):
        """Errors keyed by request member, as the API and the emulator report them."""
        errors = {name: list(messages) for name, messages in self.errors.items()}
        tag_errors = list(self.tags.non_form_errors())
        for index, form in enumerate(self.tags.forms):
            key = form.data.get(form.add_prefix("key"), "")
            for messages in form.errors.values():
                tag_errors += [f"Tag {index + 1} ({key!r}): {message}" for message in messages]
        if tag_errors:
            errors["tags"] = tag_errors
        return errors


def json_type(value):
    return {
        bool: "a boolean",
        int: "a number",
        float: "a number",
        list: "an array",
        dict: "an object",
    }.get(type(value), "a non-string value")

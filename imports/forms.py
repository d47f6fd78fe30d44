"""The ImportVmImage request: every constraint of the API, in one place.

The contract is the seed spec, docs/spec/ImportVmImage.txt (AWS's Image
Builder API Reference); where botocore's model of the service differs (a
longer clientToken, another tag key pattern), the stricter rule wins here,
so the portal never sends what AWS refuses. The web form and the JSON API
both validate through `NewImportForm`: `ImportVmImageForm`'s members plus
where the disk comes from (a browser upload, a file in the team's bucket, or
an existing VM import task), EC2 ImportImage's options and
`loggingConfiguration`. A rule changed here changes in both. The local
emulator (fakeaws/) judges requests by botocore's model instead, never by
this module; tests/test_differential.py holds the two side by side.
"""

import copy
import posixpath
import re
import unicodedata
import uuid
from urllib.parse import urlencode

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db.models import Q

from . import aws
from .inputs import parse_int
from .vocabulary import CANCELLED, Source, Status

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
# Tag keys: the characters both AWS documents agree on. The API reference's
# `^(?!aws:)[a-zA-Z+-=._:/]+$`, read as a regular expression, makes "+-=" a
# range that admits , ; < too, which botocore's model
# (`^(?!aws:)[a-zA-Z0-9\s_.:/=+\-@]*$`) and so AWS refuse; the model admits
# spaces and @, which the reference does not. Accepting only what both admit
# means the portal never sends a key AWS refuses. fullmatch() because `$`
# would also accept a trailing newline.
TAG_KEY_PATTERN = re.compile(r"(?!aws:)[a-zA-Z0-9+\-=._:/]+")
TAG_KEY_ALLOWED = "letters, digits and + - = . _ : /"

# Image Builder writes an import's logs only under its own prefix.
LOG_GROUP_MAX = 512
LOG_GROUP_PATTERN = re.compile(rf"[a-zA-Z0-9\-_/\.]{{1,{LOG_GROUP_MAX}}}")
LOG_GROUP_PREFIX = "/aws/imagebuilder/"

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


class FixedChoiceField(forms.ChoiceField):
    """A choice field whose choices are set once, with the form class: copies share them.

    Django copies every field for each form it builds, and a ChoiceField's
    copy deep-copies its choices, then normalises them again for its widget:
    half the cost of building the New import form, once per API POST (issue
    14). Nothing changes these choices in place, and assigning new ones to a
    form's field replaces that copy's list only, so sharing them is safe.
    """

    def __deepcopy__(self, memo):
        # The widget copied as Widget.__deepcopy__ copies it, its choices
        # shared; Field.__deepcopy__ then finds it in the memo.
        widget = copy.copy(self.widget)
        widget.attrs = self.widget.attrs.copy()
        memo[id(self.widget)] = widget
        return forms.Field.__deepcopy__(self, memo)


class StrippedChoiceField(FixedChoiceField):
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
        f"major.minor.patch, like 1.0.0; each number 0 to {SEMANTIC_VERSION_NODE_MAX}. "
        "AWS adds the build number.",
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

    def clean_vmImportTaskId(self):
        task_id = self.cleaned_data["vmImportTaskId"]
        if task_id.startswith("ami-"):
            # The AMI a finished task made is the usual mistake: Image Builder
            # would only answer that no such task exists.
            raise ValidationError(
                f"{task_id} is an AMI's ID; a VM import task's ID starts with import-ami-.",
                code="ami_not_task",
            )
        return task_id

    @classmethod
    def from_json(cls, body, **kwargs):
        """A bound form for a decoded JSON request; RequestShapeError for wrong types."""
        if not isinstance(body, dict):
            raise RequestShapeError({"body": ["The request body must be a JSON object."]})
        errors = {}
        for member, value in body.items():
            if member not in cls.members:
                errors[member] = [f"Unknown member; the members are: {', '.join(cls.members)}."]
            elif value is None:
                continue  # JSON null reads as an absent member
            elif member in cls.object_members:
                errors.update(cls.object_member_errors(member, value))
            elif member == "tags":
                if not isinstance(value, dict) or not all(
                    isinstance(v, str) for v in value.values()
                ):
                    errors[member] = ["tags must be a JSON object whose values are strings."]
                elif "" in value:
                    # The form drops an empty row; a member named "" was sent on purpose.
                    errors[member] = [f"A tag key may not be empty: 1-{TAG_KEY_MAX} characters."]
            elif not isinstance(value, str):
                errors[member] = [f"{member} must be a JSON string, not {json_type(value)}."]
        if errors:
            raise RequestShapeError(errors)
        data = {m: body[m] for m in STRING_MEMBERS if body.get(m) is not None}
        data.update(tag_formset_data((body.get("tags") or {}).items()))
        return cls(cls.nested_data(body, data), **kwargs)

    members = MEMBERS
    object_members = {}

    @classmethod
    def object_member_errors(cls, member, value):
        """The errors of a JSON object member whose own members have fixed types."""
        shape = cls.object_members[member]
        if not isinstance(value, dict):
            return {member: [f"{member} must be a JSON object, not {json_type(value)}."]}
        # Keyed by the member at fault, importImageOptions.encrypted, as the
        # form's own errors are (member_of); an unknown one by its object.
        errors = {}
        for name, inner in value.items():
            if name not in shape:
                errors.setdefault(member, []).append(
                    f"{name}: unknown member; the members are: {', '.join(shape)}."
                )
            elif inner is not None and not isinstance(inner, shape[name]):
                wanted = JSON_TYPE_NAMES[shape[name]]
                errors[f"{member}.{name}"] = [
                    f"{member}.{name} must be {wanted}, not {json_type(inner)}."
                ]
        return errors

    @classmethod
    def nested_data(cls, body, data):
        """Form data for the request's object members: none here, NewImportForm's."""
        return data

    # Form fields inside an object member of the request, for error_map().
    member_of = {}

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
        errors = {}
        for name, messages in self.errors.items():
            errors.setdefault(self.member_of.get(name, name), []).extend(messages)
        tag_errors = list(self.tags.non_form_errors())
        for index, form in enumerate(self.tags.forms):
            key = form.data.get(form.add_prefix("key"), "")
            for messages in form.errors.values():
                tag_errors += [f"Tag {index + 1} ({key!r}): {message}" for message in messages]
        if tag_errors:
            errors["tags"] = tag_errors
        return errors


# A member's Python type as the API's messages name it: "must be a JSON object".
JSON_TYPE_NAMES = {str: "a JSON string", bool: "a JSON boolean", dict: "a JSON object"}


def json_type(value):
    """What JSON sent: "a string", "a number"... (for "x must be ..., not <this>")."""
    return {
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        list: "an array",
        dict: "an object",
    }.get(type(value), "null")


# -- a new import: the ImportVmImage request plus where its disk comes from ----

# ImportImage's options: the API's name (the form field's), EC2's member, the JSON type.
IMPORT_IMAGE_OPTIONS = (
    ("architecture", "Architecture", str),
    ("bootMode", "BootMode", str),
    ("licenseType", "LicenseType", str),
    ("usageOperation", "UsageOperation", str),
    ("encrypted", "Encrypted", bool),
    ("kmsKeyId", "KmsKeyId", str),
)

# The page's words for the sources.
SOURCES = (
    (Source.UPLOAD, "A disk file from this computer"),
    (Source.S3_OBJECT, "A disk file already in the team's import bucket"),
    (Source.VM_IMPORT_TASK, "An existing EC2 VM import task"),
)
# EC2 ImportImage's rules (the EC2 API reference and botocore's ec2 model;
# tests compare the enums with botocore's).
DISK_FORMATS = ("ova", "vmdk", "vhd", "vhdx", "raw")
DISK_PLATFORMS = ("Windows", "Linux")  # EC2 VM import has no macOS
ARCHITECTURES = ("i386", "x86_64", "arm64")
BOOT_MODES = ("legacy-bios", "uefi", "uefi-preferred")
LICENSE_TYPES = ("AWS", "BYOL")
USAGE_OPERATION_PATTERN = re.compile(r"RunInstances(:[0-9A-Za-z]{4})?")
KMS_KEY_PATTERN = re.compile(
    r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}"
    r"|alias/[a-zA-Z0-9/_-]{1,250}"
    r"|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key/[0-9a-zA-Z-]{1,64}|alias/[a-zA-Z0-9/_-]{1,250}))"
)
S3_KEY_MAX = 1024
# The import task carries the tags (ImportImage accepts only this resource type).
IMPORT_TASK_RESOURCE = "import-image-task"


def choice_field(label, choices, help_text, *, required=False, blank="EC2's default", words=str):
    """A choice among AWS's values, each offered as `words(value)` says it."""
    return StrippedChoiceField(
        label=label,
        help_text=help_text,
        required=required,
        choices=[("", blank if not required else "Choose")]
        + [(value, words(value)) for value in choices],
        error_messages={
            "required": f"{label} is required.",
            "invalid_choice": f"{label} must be one of {', '.join(choices)}; %(value)s is not.",
        },
    )


def safe_file_name(name):
    """The last path part of a browser's file name, in characters S3 keys keep safely."""
    name = unicodedata.normalize("NFKD", posixpath.basename(name.replace("\\", "/")))
    name = name.encode("ascii", "ignore").decode()
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip(".-")
    return name[:200] or "disk"


# A client token may hold any character; as a key's folder only these are kept.
FOLDER_SAFE_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
UPLOAD_FOLDER_NAMESPACE = uuid.UUID("5c0b7f8e-2d4a-4f6b-9a1e-7d3c2b1a0f9e")


def upload_folder(client_token):
    """The folder of an upload's key: one per import, named by its client token.

    The same request again names the same key, and two imports of a team
    never share one (its tokens are unique). A token that is not a plain
    name (a "/" would reach into another folder, ".." above it) is
    replaced by a UUID made from it, the same each time, after a "~" that no
    plain name has: the UUID is a plain name too, and a teammate sending it
    as a token must not reach the same key.
    """
    if FOLDER_SAFE_TOKEN.fullmatch(client_token):
        return client_token
    return "~" + str(uuid.uuid5(UPLOAD_FOLDER_NAMESPACE, client_token))


class NewImportForm(ImportVmImageForm):
    """A new import from any of the three sources; the API maps its JSON onto it.

    The ImportVmImage request is the parent form's; for a disk file the EC2
    ImportImage request is built here too (without the ClientToken and the
    RoleName, which the service adds). `import_bucket` and `import_prefix`
    are the team's: uploads go there, and an existing object must be there.
    """

    source = FixedChoiceField(
        label="Source",
        choices=SOURCES,
        required=False,
        initial=Source.VM_IMPORT_TASK,
        widget=forms.RadioSelect,
        error_messages={
            "invalid_choice": "Source must be one of "
            + ", ".join(value for value, _ in SOURCES)
            + "; %(value)s is not."
        },
    )
    # Required with a disk file (clean), which is where the page shows it:
    # EC2 has no default format, so the empty choice asks for one.
    format = choice_field(
        "Disk format",
        DISK_FORMATS,
        "The disk file's format: OVA, VMDK, VHD, VHDX or RAW.",
        blank="Choose",
        words=str.upper,  # as people write them, and as the page's format hints do
    )
    s3Bucket = text_field("S3 bucket", "The team's import bucket.", required=False)
    s3Key = text_field(
        "S3 key",
        f"The disk file's key in the team's import bucket, 1-{S3_KEY_MAX} characters.",
        max_length=S3_KEY_MAX,
        required=False,
    )
    fileName = text_field("File name", "The name of the file being uploaded.", required=False)
    fileSize = forms.IntegerField(
        label="File size",
        required=False,
        min_value=1,
        max_value=aws.S3_MAX_OBJECT,
        error_messages={
            "min_value": "The file is empty; a disk image has at least 1 byte.",
            "max_value": f"S3 keeps objects of at most 5 TiB ({aws.S3_MAX_OBJECT} bytes).",
            "invalid": "File size must be a whole number of bytes.",
        },
    )
    fileFingerprint = forms.RegexField(
        label="File fingerprint",
        required=False,
        regex=r"\A[0-9a-f]{64}\Z",
        error_messages={
            "invalid": "File fingerprint must be the SHA-256 the page computes of the file: "
            "64 lowercase hexadecimal characters."
        },
    )
    architecture = choice_field("Architecture", ARCHITECTURES, "The disk's CPU architecture.")
    bootMode = choice_field("Boot mode", BOOT_MODES, "How the disk boots.")
    licenseType = choice_field(
        "License type", LICENSE_TYPES, "AWS (license included) or BYOL (bring your own)."
    )
    usageOperation = text_field(
        "Usage operation",
        "Instead of a license type: the billing code, like RunInstances:0002.",
        required=False,
    )
    encrypted = forms.BooleanField(label="Encrypt the snapshots", required=False)
    kmsKeyId = text_field(
        "KMS key",
        "Optional with encryption: a key ID, alias/name or ARN; empty: the account's EBS key.",
        max_length=2048,
        required=False,
    )

    logGroupName = text_field(
        "Log group",
        f"Optional: a CloudWatch Logs group under {LOG_GROUP_PREFIX} for the import's logs "
        "(letters, digits and - _ / .).",
        max_length=LOG_GROUP_MAX,
        required=False,
    )

    DISK_FIELDS = (
        "format",
        "s3Bucket",
        "s3Key",
        "fileName",
        "fileSize",
        "fileFingerprint",
        "architecture",
        "bootMode",
        "licenseType",
        "usageOperation",
        "encrypted",
        "kmsKeyId",
    )

    def __init__(
        self, data=None, *args, import_bucket="", import_prefix="", from_api=False, **kwargs
    ):
        super().__init__(data, *args, **kwargs)
        self.import_bucket = import_bucket
        self.import_prefix = import_prefix
        # A JSON request (from_json): it has no source radio, only its members.
        self.from_api = from_api
        self.fields["vmImportTaskId"].required = False

    @staticmethod
    def format_required_message(cleaned, source):
        """The missing format's message, naming the format the file's name suggests."""
        name = cleaned.get("s3Key" if source == Source.S3_OBJECT else "fileName") or ""
        named = aws.format_named_by(name)
        if not named:
            return "Disk format is required for a disk file."
        return f"Disk format is required for a disk file. The file's name suggests {named}."

    def clean_logGroupName(self):
        name = self.cleaned_data["logGroupName"]
        if not name:
            return name
        if not LOG_GROUP_PATTERN.fullmatch(name):
            raise ValidationError(
                "Log group names use only letters, digits and - _ / . (no spaces).",
                code="log_group_pattern",
            )
        if not name.startswith(LOG_GROUP_PREFIX) or name == LOG_GROUP_PREFIX:
            raise ValidationError(
                f"The log group must be inside {LOG_GROUP_PREFIX}, like "
                f"{LOG_GROUP_PREFIX}imports: Image Builder writes only there.",
                code="log_group_prefix",
            )
        return name

    def clean_source(self):
        return self.cleaned_data["source"] or Source.VM_IMPORT_TASK

    def clean_usageOperation(self):
        operation = self.cleaned_data["usageOperation"]
        if operation and not USAGE_OPERATION_PATTERN.fullmatch(operation):
            raise ValidationError(
                "A usage operation looks like RunInstances or RunInstances:0002 "
                "(see EC2's billing codes).",
                code="usage_operation",
            )
        return operation

    def clean_kmsKeyId(self):
        key = self.cleaned_data["kmsKeyId"]
        if key and not KMS_KEY_PATTERN.fullmatch(key):
            raise ValidationError(
                "A KMS key is a key ID (1234abcd-...), a multi-Region key (mrk-...), "
                "alias/name, or a key or alias ARN.",
                code="kms_key",
            )
        return key

    def clean(self):
        cleaned = super().clean()
        source = cleaned.get("source")
        if source == Source.VM_IMPORT_TASK:
            self.clean_task_source(cleaned)
        elif source in (Source.UPLOAD, Source.S3_OBJECT):
            self.clean_disk_source(cleaned, source)
            self.clean_import_image_options(cleaned)
        return cleaned

    def clean_task_source(self, cleaned):
        if not cleaned.get("vmImportTaskId") and "vmImportTaskId" not in self.errors:
            self.add_error("vmImportTaskId", self.task_required_message())
        given = [name for name in self.DISK_FIELDS if cleaned.get(name)]
        if given:
            self.add_error(
                None,
                "An existing VM import task already is a disk image: give either "
                "vmImportTaskId or a disk file, not both (here: " + ", ".join(given) + ").",
            )

    def task_required_message(self):
        """What a missing task ID says: on the page, of its chosen source; in the API, of both.

        The page's source radio says the person chose a VM import task. An
        API request comes here when it gave neither source (a diskContainer
        makes it a disk file's, nested_data): it may have meant either.
        """
        if not self.from_api:
            return "VM import task ID is required."
        return (
            "A source is required: give vmImportTaskId for an existing VM import task, "
            "or diskContainer for a disk file in the team's import bucket."
        )

    def clean_disk_source(self, cleaned, source):
        if cleaned.get("vmImportTaskId"):
            self.add_error(
                "vmImportTaskId",
                "Give either a VM import task or a disk file, not both: EC2 makes the VM "
                "import task from the disk file.",
            )
        if cleaned.get("platform") and cleaned["platform"] not in DISK_PLATFORMS:
            self.add_error(
                "platform",
                "A disk file's platform must be Windows or Linux: EC2 VM import has no macOS.",
            )
        if not cleaned.get("format") and "format" not in self.errors:
            self.add_error("format", self.format_required_message(cleaned, source))
        if not self.import_bucket:
            self.add_error(
                None,
                "This team has no import bucket: a team admin sets one on the Team page first.",
            )
        if source == Source.S3_OBJECT:
            self.clean_s3_object(cleaned)
        else:
            self.clean_upload(cleaned)

    def clean_import_image_options(self, cleaned):
        if cleaned.get("licenseType") and cleaned.get("usageOperation"):
            self.add_error(
                "usageOperation",
                "Give a license type or a usage operation, not both (EC2 refuses both).",
            )
        if cleaned.get("kmsKeyId") and not cleaned.get("encrypted"):
            self.add_error("kmsKeyId", "A KMS key needs encryption switched on.")

    def clean_s3_object(self, cleaned):
        # The page names only the key: the bucket can only be the team's.
        bucket = cleaned.get("s3Bucket") or self.import_bucket
        key = cleaned.get("s3Key")
        if self.import_bucket and bucket != self.import_bucket:
            self.add_error(
                "s3Bucket",
                f"The disk file must be in the team's import bucket, {self.import_bucket}: "
                "only that bucket is checked and readable by the VM import role.",
            )
        if not key and "s3Key" not in self.errors:
            self.add_error("s3Key", "S3 key is required for a file in the bucket.")
        elif key and not key.startswith(self.import_prefix):
            self.add_error(
                "s3Key", f"The key must start with the team's prefix, {self.import_prefix}."
            )
        elif key and key.endswith("/"):
            self.add_error("s3Key", "The key names a folder; give the disk file's key.")

    def clean_upload(self, cleaned):
        if not cleaned.get("fileName") and "fileName" not in self.errors:
            self.add_error("fileName", "File name is required for an upload.")
        if cleaned.get("fileSize") is None and "fileSize" not in self.errors:
            self.add_error("fileSize", "File size is required for an upload.")
        for name in ("s3Bucket", "s3Key"):
            if cleaned.get(name):
                self.add_error(name, "The portal chooses where an upload goes; leave this out.")

    @property
    def chosen_source(self):
        return self.cleaned_data["source"]

    def payload(self):
        """The ImportVmImage request; for a disk file without vmImportTaskId (EC2 names it)."""
        payload = super().payload()
        if self.cleaned_data.get("logGroupName"):
            payload["loggingConfiguration"] = {"logGroupName": self.cleaned_data["logGroupName"]}
        if self.chosen_source != Source.VM_IMPORT_TASK:
            payload.pop("vmImportTaskId", None)
        return payload

    def disk_key(self):
        """The object key: the person's for a file in the bucket, the portal's for an upload."""
        if self.chosen_source == Source.S3_OBJECT:
            return self.cleaned_data["s3Key"]
        folder = upload_folder(self.cleaned_data["clientToken"])
        return f"{self.import_prefix}{folder}/{safe_file_name(self.cleaned_data['fileName'])}"

    def import_image_request(self):
        """EC2 ImportImage's request, less ClientToken and RoleName; None for a VM import task."""
        if self.chosen_source == Source.VM_IMPORT_TASK:
            return None
        cleaned = self.cleaned_data
        request = {
            "Platform": cleaned["platform"],
            "DiskContainers": [
                {
                    "Format": cleaned["format"].upper(),
                    "UserBucket": {"S3Bucket": self.import_bucket, "S3Key": self.disk_key()},
                }
            ],
        }
        if cleaned.get("description"):
            request["Description"] = cleaned["description"]
        for name, member, _ in IMPORT_IMAGE_OPTIONS:
            if cleaned.get(name):  # Encrypted only when true, as EC2's default is false
                request[member] = cleaned[name]
        tags = self.tags.as_map()
        if tags:
            request["TagSpecifications"] = [
                {
                    "ResourceType": IMPORT_TASK_RESOURCE,
                    "Tags": [{"Key": key, "Value": value} for key, value in tags.items()],
                }
            ]
        return request

    def submission(self):
        """What services.submit_import records: both requests and where the disk comes from."""
        uploading = self.chosen_source == Source.UPLOAD  # the file's size and fingerprint
        return {
            "payload": self.payload(),
            "source": self.chosen_source,
            "import_image_payload": self.import_image_request(),
            "upload_size": self.cleaned_data.get("fileSize") if uploading else None,
            "upload_fingerprint": self.cleaned_data.get("fileFingerprint", "") if uploading else "",
        }

    @staticmethod
    def settings_of(payload, source, import_image_payload):
        """A recorded import's requests as this form's initial values and tag rows.

        The inverse of payload() and import_image_request(), less what cannot
        be the same twice: the client token (a new one is made) and the file
        to upload (chosen again); and, for a disk file, the VM import task EC2
        made of it, which the new import's own ImportImage makes anew.
        """
        initial = {name: payload[name] for name in STRING_MEMBERS if payload.get(name)}
        initial.pop("clientToken", None)
        if source != Source.VM_IMPORT_TASK:
            initial.pop("vmImportTaskId", None)
        initial["source"] = source
        log_group = (payload.get("loggingConfiguration") or {}).get("logGroupName")
        if log_group:
            initial["logGroupName"] = log_group
        if source != Source.VM_IMPORT_TASK:
            container = import_image_payload["DiskContainers"][0]
            initial["format"] = container["Format"].lower()
            if source == Source.S3_OBJECT:
                initial["s3Key"] = container["UserBucket"]["S3Key"]
            for name, member, _ in IMPORT_IMAGE_OPTIONS:
                if member in import_image_payload:
                    initial[name] = import_image_payload[member]
        return initial, list((payload.get("tags") or {}).items())

    # -- the API's JSON members on this form's fields ---------------------------

    members = (*MEMBERS, "loggingConfiguration", "diskContainer", "importImageOptions")
    object_members = {
        "loggingConfiguration": {"logGroupName": str},
        "diskContainer": {"format": str, "userBucket": dict},
        "importImageOptions": {name: kind for name, _, kind in IMPORT_IMAGE_OPTIONS},
    }
    member_of = {
        "logGroupName": "loggingConfiguration.logGroupName",
        "format": "diskContainer.format",
        "s3Bucket": "diskContainer.userBucket.s3Bucket",
        "s3Key": "diskContainer.userBucket.s3Key",
        **{name: f"importImageOptions.{name}" for name, _, _ in IMPORT_IMAGE_OPTIONS},
        # The one error of no field: the team has no import bucket for a disk.
        NON_FIELD_ERRORS: "diskContainer",
    }

    @classmethod
    def object_member_errors(cls, member, value):
        errors = super().object_member_errors(member, value)
        if member == "diskContainer" and not errors:
            bucket = value.get("userBucket") or {}
            for name, inner in bucket.items():
                if name not in ("s3Bucket", "s3Key"):
                    errors.setdefault(f"{member}.userBucket", []).append(
                        f"userBucket.{name}: unknown member; the members are: s3Bucket, s3Key."
                    )
                elif inner is not None and not isinstance(inner, str):
                    nested = f"{member}.userBucket.{name}"
                    errors[nested] = [f"{nested} must be a JSON string, not {json_type(inner)}."]
        return errors

    @classmethod
    def nested_data(cls, body, data):
        logging = body.get("loggingConfiguration") or {}
        if logging.get("logGroupName") is not None:
            data["logGroupName"] = logging["logGroupName"]
        disk = body.get("diskContainer")
        options = body.get("importImageOptions") or {}
        if disk is not None:
            bucket = disk.get("userBucket") or {}
            data.update(
                source=Source.S3_OBJECT,
                format=disk.get("format") or "",
                s3Bucket=bucket.get("s3Bucket") or "",
                s3Key=bucket.get("s3Key") or "",
            )
        for name, value in options.items():
            if name == "encrypted":
                if value:
                    data["encrypted"] = "on"
            elif value is not None:
                data[name] = value
        return data

    @classmethod
    def from_json(cls, body, **kwargs):
        if isinstance(body, dict):
            disk = body.get("diskContainer")
            if disk is not None and body.get("vmImportTaskId") is not None:
                raise RequestShapeError(
                    {
                        "diskContainer": [
                            "Give exactly one source: diskContainer or vmImportTaskId, not both."
                        ]
                    }
                )
            if disk is None and body.get("importImageOptions") is not None:
                raise RequestShapeError(
                    {
                        "importImageOptions": [
                            "importImageOptions are EC2 ImportImage's options for a disk file: "
                            "they need a diskContainer."
                        ]
                    }
                )
        return super().from_json(body, from_api=True, **kwargs)


def filter_choice(name, values, labels=None):
    """An optional filter among `values`, whose refusal lists them (the API's 400 says it)."""
    labels = labels or {}
    return FixedChoiceField(
        required=False,
        choices=[("", "Any"), *((value, labels.get(value, value)) for value in values)],
        error_messages={
            "invalid_choice": f"{name} must be one of {', '.join(values)}; not %(value)s."
        },
    )


# The history's status filter: the stored statuses, and Cancelled, which is
# stored as `failed` with the error code Cancelled but which every page names
# apart. Failed then means failed and not cancelled, so what a filter lists
# is what each of its rows says.
CANCELLED_FILTER = "cancelled"
STATUS_FILTERS = (*Status.values, CANCELLED_FILTER)
STATUS_FILTER_LABELS = {**dict(Status.choices), CANCELLED_FILTER: "Cancelled"}

# A search this long or longer also finds client tokens that start with it.
# Shorter, a prefix of a UUID token matches one import in 16 (one character),
# in 4,096 (three): a list, not the import someone has in mind. From four
# characters, 1 in 65,536; a whole token of any length is found as before.
TOKEN_PREFIX_MIN = 4
# An AMI ID, or its start from ami- and AMI_DIGITS_MIN of its (8 or 17)
# hexadecimal digits: only such a search looks in the AMIs, whose JSON also
# holds regions, account IDs and the member names ("image" would match
# every available import). Fewer digits: new AMI IDs all start ami-0.
AMI_DIGITS_MIN = 4
AMI_ID_PATTERN = re.compile(rf"ami-([0-9a-f]{{{AMI_DIGITS_MIN},17}})", re.IGNORECASE)


class ImportFilterForm(forms.Form):
    """The history's filters, for its page and the API's list alike: one rule for both.

    Each narrows the team's imports; the search looks in the name, the disk
    file's S3 key (so its file name), the image ARN and the VM import task
    ID, finds an import by any of its AMI IDs
    (whole, or ami- and its first AMI_DIGITS_MIN digits), and by its client
    token, whole or from its first TOKEN_PREFIX_MIN characters.
    """

    status = filter_choice("status", STATUS_FILTERS, STATUS_FILTER_LABELS)
    platform = filter_choice("platform", PLATFORMS)
    q = forms.CharField(required=False)

    # For the page's hint on what the search finds.
    token_prefix_min = TOKEN_PREFIX_MIN
    ami_digits_min = AMI_DIGITS_MIN

    def narrow(self, imports):
        """`imports` narrowed by the filters that are valid (after is_valid)."""
        status, platform, query = map(self.cleaned_data.get, ("status", "platform", "q"))
        if status:
            imports = imports.filter(status_condition(status))
        if platform:
            imports = imports.filter(platform=platform)
        if query:
            imports = imports.filter(search_condition(query))
        return imports

    @property
    def searching(self):
        """Whether the search (costly: trigram lookups) is among the filters."""
        return bool(self.cleaned_data.get("q"))

    @property
    def narrowing(self):
        """Whether any filter narrows the list (after is_valid), so its count is of matches."""
        return any(self.cleaned_data.get(name) for name in self.fields)

    @property
    def query(self):
        """The valid filters as a query string (after is_valid), for links that keep them.

        A filter a link made wrong, which the page left out, is not carried on.
        """
        valid = {name: self.cleaned_data.get(name) for name in self.fields}
        return urlencode({name: value for name, value in valid.items() if value})

    def left_out(self):
        """[(name, value)] of the filters the page left out as wrong (after is_valid)."""
        return [(name, self.data.get(name)) for name in self.fields if name in self.errors]


def status_condition(status):
    """The rows a status filter lists: as each row's status reads, Cancelled apart.

    Every branch keeps `status =`, so the index (team, status) still finds
    the rows; the error code is then read from those rows only.
    """
    if status == CANCELLED_FILTER:
        return Q(status=Status.FAILED, error_code=CANCELLED)
    if status == Status.FAILED:
        return Q(status=Status.FAILED) & ~Q(error_code=CANCELLED)
    return Q(status=status)


def search_condition(query):
    """What `q` finds: each alternative one that an index answers on PostgreSQL.

    A whole client token reads the unique (team, client_token) index; every
    other alternative is UPPER(column::text) LIKE ..., the expression of the
    trigram indexes of migrations 0005, 0014 and 0018. So the alternatives become
    one BitmapOr of index scans: one without an index would scan the table.
    """
    condition = (
        Q(name__icontains=query)
        | Q(disk_key__icontains=query)
        | Q(client_token=query)
        | Q(image_arn__icontains=query)
        | Q(vm_import_task_id__icontains=query)
    )
    if len(query) >= TOKEN_PREFIX_MIN:
        condition |= Q(client_token__istartswith=query)
    ami = AMI_ID_PATTERN.fullmatch(query)
    if ami:
        # In the AMIs' JSON text an ID starts a quoted value, [{"image":
        # "ami-0123...", ...}], hence the quote. The digits alone ask the
        # index for their rare trigrams only: the whole pattern's "ami"
        # ones are in every row with an AMI, and read 15 times as many
        # index pages at 100,000 imports (3.4 ms against 0.3).
        condition |= Q(amis__icontains=ami[1]) & Q(amis__icontains=f'"{query}')
    return condition

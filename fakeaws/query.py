"""Query-protocol parameters (EC2, STS) read back into a model's members.

botocore flattens a request into form fields by the model's shapes, and this
reads them back through the same shapes, so the services get typed members
under the model's names, and the emulator learns which fields named nothing:

    STS (query):  RoleSessionName=s   Tags.member.1.Key=k     (lists: Name.member.N)
    EC2 (ec2):    DryRun=true         TagSpecification.1.Tag.1.Key=k

EC2 spells a member by its locationName with a capital first letter (or its
queryName) and numbers list items straight after the name, without
`.member`; the query protocol uses the locationName as it is.
"""

import base64
import binascii
import re
from datetime import UTC, datetime

from .validation import ShapeError

# Fields every query request carries besides the operation's members, and the
# SigV4 fields of a presigned URL.
ENVELOPE = frozenset({"Action", "Version"})


def decode(shape, params, *, ec2):
    """(members, unknown field names) for the input `shape` of one operation."""
    reader = Reader(params, ec2=ec2)
    members = reader.structure(shape, "", ()) or {}
    unknown = sorted(
        name for name in set(params) - reader.used - ENVELOPE if not name.startswith("X-Amz-")
    )
    return members, unknown


class Reader:
    def __init__(self, params, *, ec2):
        self.params = params
        self.ec2 = ec2
        self.used = set()

    def value(self, shape, field, location):
        kind = shape.type_name
        if kind == "structure":
            return self.structure(shape, field, location)
        if kind == "list":
            return self.list(shape, field, location)
        if kind == "map":
            return self.map(shape, field, location)
        if field not in self.params:
            return None
        self.used.add(field)
        return scalar(shape, self.params[field], location)

    def structure(self, shape, prefix, location):
        members = {}
        for name, member_shape in shape.members.items():
            field = joined(prefix, self.field_name(name, member_shape))
            value = self.value(member_shape, field, (*location, name))
            if value is not None:
                members[name] = value
        if prefix and not members:
            return None
        return members

    def list(self, shape, field, location):
        if self.params.get(field) == "":
            # How the query protocol sends an empty list.
            self.used.add(field)
            return []
        if self.ec2 or shape.serialization.get("flattened"):
            base = field
        else:
            base = f"{field}.{shape.member.serialization.get('name', 'member')}"
        positions = self.positions(base)
        if not positions:
            return None
        return [self.value(shape.member, f"{base}.{n}", (*location, n)) for n in positions]

    def map(self, shape, field, location):
        base = field if self.ec2 or shape.serialization.get("flattened") else f"{field}.entry"
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        entries = {}
        for n in self.positions(base):
            key = self.value(shape.key, f"{base}.{n}.{key_name}", (*location, n))
            entries[key] = self.value(shape.value, f"{base}.{n}.{value_name}", (*location, n))
        return entries or None

    def field_name(self, name, shape):
        serialization = shape.serialization
        if not self.ec2:
            return serialization.get("name", name)
        if "queryName" in serialization:
            return serialization["queryName"]
        location_name = serialization.get("name")
        return location_name[:1].upper() + location_name[1:] if location_name else name

    def positions(self, base):
        """The item numbers under `base.N...`, in order."""
        pattern = re.compile(re.escape(base) + r"\.(\d+)(?:\.|$)")
        return sorted({int(m[1]) for m in map(pattern.match, self.params) if m})


def joined(prefix, name):
    return f"{prefix}.{name}" if prefix else name


def scalar(shape, text, location):
    """A field's text as the model's type; ShapeError if it cannot be one."""
    kind = shape.type_name
    try:
        if kind == "string":
            return text
        if kind in ("integer", "long"):
            if not re.fullmatch(r"-?[0-9]+", text):
                raise ValueError(text)
            return int(text)
        if kind in ("float", "double"):
            return float(text)
        if kind == "boolean":
            if text not in ("true", "false"):
                raise ValueError(text)
            return text == "true"
        if kind == "timestamp":
            return timestamp(text)
        if kind == "blob":
            return base64.b64decode(text, validate=True)
    except (ValueError, binascii.Error):
        raise ShapeError(location, text, kind) from None
    raise ShapeError(location, text, kind)


def timestamp(text):
    """botocore sends ISO 8601 (2024-05-01T12:00:00Z); epoch seconds are read too."""
    if re.fullmatch(r"[0-9]+(\.[0-9]+)?", text):
        return datetime.fromtimestamp(float(text), UTC)
    return datetime.fromisoformat(text)

"""Requests judged by AWS's own definitions: the service models botocore ships.

The emulator restates no rule of an API. The input shape of each operation
comes from botocore's loader (`service_model()`), and every member of a
request is checked against it: `required`, the type, `min` and `max` (the
length of a string, list or map; the value of a number), `pattern` and
`enum`, down through structures, lists and maps. botocore itself checks only
types, required members and `min` before it sends anything, so the rest is
what only the service would refuse, and what the emulator must refuse too.

Broken constraints are told in the words AWS's services use:

    1 validation error detected: Value 'x' at 'name' failed to satisfy
    constraint: Member must have length less than or equal to 1024

A value of the wrong type never reaches those checks: `ShapeError` is raised
first, as a service fails to read such a request before it validates it.
"""

import datetime
import functools
import re
import sys
import unicodedata
from dataclasses import dataclass

import botocore.session

# -- the models ---------------------------------------------------------------


@functools.cache
def botocore_session():
    return botocore.session.get_session()


@functools.cache
def service_model(service_name):
    """botocore's model of a service, through botocore's own loader."""
    return botocore_session().get_service_model(service_name)


def operation_model(service_name, operation):
    return service_model(service_name).operation_model(operation)


@functools.cache
def error_statuses(service_name):
    """{error code: HTTP status}, from the `error` trait of the model's exception shapes."""
    return {
        shape.error_code: shape.metadata["error"]["httpStatusCode"]
        for shape in service_model(service_name).error_shapes
        if "httpStatusCode" in shape.metadata.get("error", {})
    }


# -- what a request broke -------------------------------------------------------


class Key(str):
    """A map key in a location, told apart from a member name."""


@dataclass(frozen=True)
class Violation:
    """One broken constraint: where, the value found there, and the rule."""

    location: tuple  # member names, list positions (from 1) and map Keys, outermost first
    value: object
    constraint: str

    @property
    def path(self):
        return coral_path(self.location)

    def __str__(self):
        shown = "null" if self.value is None else f"'{java_text(self.value)}'"
        return f"Value {shown} at '{self.path}' failed to satisfy constraint: {self.constraint}"


class ShapeError(ValueError):
    """A value that is not of its shape's type (a JSON number for a string, say)."""

    def __init__(self, location, value, expected):
        super().__init__(f"{coral_path(location) or 'the request'}: expected {expected}")
        self.location = location
        self.value = value
        self.expected = expected  # the model's type name: string, integer, structure...


def describe(violations):
    """AWS's sentence for a list of violations."""
    count = len(violations)
    noun = "error" if count == 1 else "errors"
    return f"{count} validation {noun} detected: " + "; ".join(map(str, violations))


def coral_path(location):
    """A location as AWS's messages name it: `tags`, `targets.1.member.name`."""
    parts = []
    for part in location:
        if isinstance(part, int):
            parts.append(f"{part}.member")
        elif isinstance(part, Key):
            parts.append(str(part))
        else:
            parts.append(part[:1].lower() + part[1:])
    return ".".join(parts)


def model_path(location):
    """A location by the model's own member names: `TagSpecifications.1.ResourceType`."""
    return ".".join(str(part) for part in location)


def java_text(value):
    """A value as Java's toString() shows it in AWS's messages: {k=v}, [a, b], true."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{java_text(k)}={java_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(java_text(item) for item in value) + "]"
    return str(value)


# -- the walk -------------------------------------------------------------------


def violations(shape, value, location=()):
    """Every constraint of `shape` that `value` breaks; ShapeError if it is of another type.

    None is an absent value: whether it may be absent is the enclosing
    structure's `required` to say.
    """
    if value is None:
        return []
    kind = shape.type_name
    if not is_of_type(kind, value):
        raise ShapeError(location, value, kind)
    if kind == "structure":
        return structure_violations(shape, value, location)
    found = [Violation(location, value, rule) for rule in broken_rules(shape, value)]
    if kind == "list":
        found += nested_violations(shape.member, dict(enumerate(value, 1)), value, location)
    elif kind == "map":
        key_rules = rules(shape.key)
        if any(broken_rules(shape.key, key) for key in value):
            found.append(
                Violation(location, value, f"Map keys must satisfy constraint: [{key_rules}]")
            )
        keyed = {Key(key): item for key, item in value.items()}
        found += nested_violations(shape.value, keyed, value, location, "Map value")
    return found


def structure_violations(shape, members, location):
    # Members the model does not define are not looked at: what a service does
    # with them is its protocol's business (see imagebuilder.py and query.py).
    found = []
    for name, member_shape in shape.members.items():
        value = members.get(name)
        if value is None and name in shape.required_members:
            found.append(Violation((*location, name), None, "Member must not be null"))
        found += violations(member_shape, value, (*location, name))
    return found


def nested_violations(shape, items, container, location, label="Member"):
    """The members of a list or the values of a map.

    AWS names a structure inside a collection by its position
    (`targets.1.member.name`), but reports plain values once for the whole
    collection: "Member must satisfy constraint: [...]".
    """
    if shape.type_name in ("structure", "list", "map"):
        found = []
        for position, item in items.items():
            found += violations(shape, item, (*location, position))
        return found
    broken = False
    for position, item in items.items():
        if item is not None and not is_of_type(shape.type_name, item):
            raise ShapeError((*location, position), item, shape.type_name)
        broken = broken or item is None or bool(broken_rules(shape, item))
    if not broken:
        return []
    return [Violation(location, container, f"{label} must satisfy constraint: [{rules(shape)}]")]


def is_of_type(kind, value):
    if isinstance(value, bool):
        return kind == "boolean"
    return isinstance(value, TYPES[kind])


# The Python values each model type takes, as read from JSON or decoded from a
# query string (query.py turns timestamps into datetimes and blobs into bytes).
TYPES = {
    "string": str,
    "integer": int,
    "long": int,
    "float": (int, float),
    "double": (int, float),
    "boolean": bool,
    "structure": dict,
    "map": dict,
    "list": list,
    "timestamp": (int, float, str, datetime.datetime),
    "blob": (str, bytes),
}


def broken_rules(shape, value):
    """The sentences of the constraints on `shape` itself that `value` breaks."""
    metadata = shape.metadata
    broken = []
    if shape.type_name in ("string", "list", "map", "blob"):
        # Smithy counts a string's length in Unicode scalar values: len() does.
        size, measure = len(value), "length"
    elif shape.type_name in ("integer", "long", "float", "double"):
        size, measure = value, "value"
    else:
        size = measure = None
    if measure and "max" in metadata and size > metadata["max"]:
        broken.append(f"Member must have {measure} less than or equal to {metadata['max']}")
    if measure and "min" in metadata and size < metadata["min"]:
        broken.append(f"Member must have {measure} greater than or equal to {metadata['min']}")
    if shape.type_name == "string":
        if "pattern" in metadata and not compiled(metadata["pattern"]).fullmatch(value):
            broken.append(f"Member must satisfy regular expression pattern: {metadata['pattern']}")
        if shape.enum and value not in shape.enum:
            broken.append(f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
    return broken


def rules(shape):
    """Every constraint on a shape, in AWS's order, for "... must satisfy constraint: [...]"."""
    metadata = shape.metadata
    measure = "value" if shape.type_name in ("integer", "long", "float", "double") else "length"
    listed = []
    if "max" in metadata:
        listed.append(f"Member must have {measure} less than or equal to {metadata['max']}")
    if "min" in metadata:
        listed.append(f"Member must have {measure} greater than or equal to {metadata['min']}")
    if "pattern" in metadata:
        listed.append(f"Member must satisfy regular expression pattern: {metadata['pattern']}")
    if getattr(shape, "enum", None):
        listed.append(f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
    return ", ".join(listed)


# -- patterns -------------------------------------------------------------------
#
# The models' patterns are the services' own (Java) regular expressions, and
# a service matches the whole value against one, whatever its anchors say:
# Image Builder's `^[0-9]+\.[0-9]+\.[0-9]+$` is anchored, STS's
# `[\w+=,.@-]*` is not, yet STS refuses the session name "my session" with
# "Member must satisfy regular expression pattern: [\w+=,.@-]*", which a
# search would have accepted (the empty match at the start). So: fullmatch.
# That also keeps `$` honest: in Python `$` matches before a final newline,
# and re.search("^[0-9]+$", "1\n") succeeds where AWS's whole-value match
# fails.
#
# A guess: java.util.regex's defaults, which the Java-only syntax in STS's
# model (\p{L}) points to: \w, \d and \s are ASCII there, so re.ASCII here.
# Java's \p{..} Unicode categories have no Python `re` equivalent; they are
# spelled out as the ranges of that category.

UNICODE_PROPERTY = re.compile(r"\\([pP])\{([A-Z][a-z]?)\}")


@functools.cache
def compiled(pattern):
    return re.compile(python_syntax(pattern), re.ASCII)


def python_syntax(pattern):
    """A model's (Java) pattern in Python's syntax: \\p{L} and friends spelled out."""
    out, position, in_class = [], 0, False
    while position < len(pattern):
        char = pattern[position]
        if char == "\\":
            match = UNICODE_PROPERTY.match(pattern, position)
            if match is None:
                out.append(pattern[position : position + 2])
                position += 2
                continue
            ranges = category_ranges(match[2])
            if match[1] == "P":
                if in_class:
                    raise ValueError(f"\\P{{..}} inside a character class: {pattern}")
                out.append(f"[^{ranges}]")
            else:
                out.append(ranges if in_class else f"[{ranges}]")
            position = match.end()
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        out.append(char)
        position += 1
    return "".join(out)


@functools.cache
def category_ranges(category):
    """A character-class body for a Unicode general category (L, Lu, N, Z...)."""
    spans, start, previous = [], None, None
    for code in range(sys.maxunicode + 1):
        if unicodedata.category(chr(code)).startswith(category):
            if start is None:
                start = code
            previous = code
        elif start is not None:
            spans.append((start, previous))
            start = None
    if start is not None:
        spans.append((start, previous))
    return "".join(
        escaped(low) if low == high else f"{escaped(low)}-{escaped(high)}" for low, high in spans
    )


def escaped(code):
    return f"\\U{code:08x}" if code > 0xFFFF else f"\\u{code:04x}"

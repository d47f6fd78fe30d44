"""What the services share on the wire: requests, responses, errors, XML."""

import json
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import parse_qs, urlsplit

from .state import DEFAULT_REGION

# "Credential=AKID/20240501/eu-west-1/imagebuilder/aws4_request" in a SigV4
# Authorization header: the region and service the client signed for.
CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")


class ServiceError(Exception):
    """An error answer; each service renders it in its own protocol."""

    def __init__(self, code, message):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass
class Request:
    method: str
    target: str  # the path with its query string
    headers: dict  # lowercased names
    body: bytes = b""

    @cached_property
    def path(self):
        return urlsplit(self.target).path

    @cached_property
    def query(self):
        return flat(parse_qs(urlsplit(self.target).query, keep_blank_values=True))

    @cached_property
    def form(self):
        """Query-protocol parameters: the query string and a urlencoded body."""
        params = dict(self.query)
        if self.method == "POST":
            text = self.body.decode("utf-8", errors="replace")
            params.update(flat(parse_qs(text, keep_blank_values=True)))
        return params

    @cached_property
    def credential_scope(self):
        match = CREDENTIAL_SCOPE.search(self.headers.get("authorization", ""))
        return match.groups() if match else (None, None)

    @property
    def region(self):
        return self.credential_scope[0] or DEFAULT_REGION

    @property
    def signing_service(self):
        return self.credential_scope[1]

    def json(self):
        """The decoded JSON body; an empty body reads as an empty object."""
        if not self.body.strip():
            return {}
        return json.loads(self.body)


def flat(multi):
    return {name: values[-1] for name, values in multi.items()}


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict = field(default_factory=dict)


def json_response(status, document, headers=None):
    return Response(
        status,
        json.dumps(document).encode(),
        {"Content-Type": "application/json", **(headers or {})},
    )


def xml_response(status, root):
    return Response(
        status,
        ET.tostring(root, encoding="utf-8", xml_declaration=True),
        {"Content-Type": "text/xml;charset=UTF-8"},
    )


def xml_element(name, value, namespace=None):
    """An XML element for a value: dicts become children, lists `item`s."""
    element = ET.Element(name, {"xmlns": namespace} if namespace else {})
    add_content(element, value)
    return element


def add_content(element, value):
    if isinstance(value, dict):
        for name, child in value.items():
            if child is not None:
                element.append(xml_element(name, child))
    elif isinstance(value, list):
        for child in value:
            element.append(xml_element("item", child))
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    else:
        element.text = str(value)

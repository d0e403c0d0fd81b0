"""The HMC REST API's documents: Atom feeds and entries around ``uom`` and ``web`` objects,
and the request documents clients send (LogonRequest, JobRequest).

Two rules from the real clients: an Atom body carries no XML declaration with an encoding
(pypowervm parses the body as a ``str`` and lxml refuses one), and every element below an
object's root is in the root's namespace (pypowervm looks children up in it).
"""

from __future__ import annotations

import hashlib
import time
import uuid as uuidlib
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

ATOM = "http://www.w3.org/2005/Atom"
UOM = "http://www.ibm.com/xmlns/systems/power/firmware/uom/mc/2012_10/"
WEB = "http://www.ibm.com/xmlns/systems/power/firmware/web/mc/2012_10/"
SCHEMA_VERSION = "V1_10_0"
AUTHOR = "IBM Power Systems Management Console"

ATOM_TYPE = "application/atom+xml"
MAX_BODY = 256 * 1024  # no request document of the API is near this


class ObjectBuilder:
    """One object's element tree (``ManagedSystem``, ``JobResponse``...), every element in
    the object's namespace, with the HMC's ``Metadata/Atom`` first."""

    # The elements are built unqualified and the root given the namespace as its default
    # when serialized (ElementTree's default_namespace refuses unqualified attributes).
    def __init__(self, ns: str, tag: str, atom_id: str | None = None) -> None:
        self.ns = ns
        self.tag = tag
        self.root = ET.Element(tag, {"schemaVersion": SCHEMA_VERSION})
        meta = ET.SubElement(ET.SubElement(self.root, "Metadata"), "Atom")
        if atom_id:
            ET.SubElement(meta, "AtomID").text = atom_id

    def group(self, tag: str, parent: ET.Element | None = None) -> ET.Element:
        return ET.SubElement(self.root if parent is None else parent, tag,
                             {"schemaVersion": SCHEMA_VERSION})

    def add(self, tag: str, value: object, parent: ET.Element | None = None) -> ET.Element:
        el = ET.SubElement(self.root if parent is None else parent, tag)
        el.text = text_of(value)
        return el

    def fields(self, values: Mapping[str, object], parent: ET.Element | None = None) -> None:
        for tag, value in values.items():
            if value is not None:
                self.add(tag, value, parent)

    def link(self, tag: str, href: str, parent: ET.Element | None = None) -> None:
        ET.SubElement(self.root if parent is None else parent, tag,
                      {"href": href, "rel": "related"})

    def xml(self) -> str:
        text = ET.tostring(self.root, encoding="unicode")
        head = f"<{self.tag} "
        assert text.startswith(head)
        return f'{head}xmlns="{self.ns}" ' + text[len(head):]


def text_of(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return f"{value:.1f}"
    return str(value)


@dataclass(frozen=True)
class Entry:
    """An Atom entry: ``id`` (the object's UUID), its SELF link, its content."""

    id: str
    title: str
    href: str
    content_type: str   # "application/vnd.ibm.powervm.uom+xml; type=ManagedSystem"
    content: str        # the object's XML (ObjectBuilder.xml())

    @property
    def etag(self) -> str:
        """Changes whenever the object does (clients send it back in If-None-Match)."""
        return str(int(hashlib.sha1(self.content.encode()).hexdigest()[:12], 16))

    def xml(self, *, in_feed: bool = False) -> str:
        etag = (f'<etag:etag xmlns:etag="{UOM}">{self.etag}</etag:etag>'
                if in_feed else "")
        body = (f"<id>{escape(self.id)}</id><title>{escape(self.title)}</title>"
                f"<published>{_now()}</published>"
                f"<link rel=\"SELF\" href={quoteattr(self.href)}/>"
                f"<author><name>{AUTHOR}</name></author>{etag}"
                f"<content type={quoteattr(self.content_type)}>{self.content}</content>")
        return body if in_feed else f'<entry xmlns="{ATOM}">{body}</entry>'


def feed(entries: Iterable[Entry], *, href: str, title: str) -> str:
    inner = "".join(f"<entry>{e.xml(in_feed=True)}</entry>" for e in entries)
    feed_id = str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, href))
    return (f'<feed xmlns="{ATOM}"><id>{feed_id}</id><updated>{_now()}</updated>'
            f"<link rel=\"SELF\" href={quoteattr(href)}/><title>{escape(title)}</title>"
            f"<generator>{AUTHOR}</generator>{inner}</feed>")


def feed_etag(entries: Iterable[Entry]) -> str:
    return str(int(hashlib.sha1("".join(e.etag for e in entries).encode())
                   .hexdigest()[:12], 16))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())


# -- request documents -------------------------------------------------------------------------
class BadDocument(ValueError):
    """A request body that is not the document it should be (the message says why)."""


def parse(body: bytes, root_tag: str) -> ET.Element:
    """The request document whose root is ``root_tag`` (in the web namespace, or in none;
    whatever prefix a client gives it). DTDs and entities are refused before parsing."""
    if len(body) > MAX_BODY:
        raise BadDocument(f"{len(body)} bytes is more than a {root_tag} can be")
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise BadDocument("it declares a DTD or entities (not taken)")
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise BadDocument(f"it is not well-formed XML ({exc})") from None
    if local(root.tag) != root_tag:
        raise BadDocument(f"its root element is {local(root.tag)}, not {root_tag}")
    return root


def local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def child_text(el: ET.Element, name: str) -> str | None:
    """The text of the first child named ``name`` (any namespace)."""
    for c in el:
        if local(c.tag) == name:
            return (c.text or "").strip()
    return None


def children(el: ET.Element, name: str) -> list[ET.Element]:
    return [c for c in el if local(c.tag) == name]

"""A strict reader for WeCom's XML: one document, no DTD, no entity declarations.

WeCom never sends a DOCTYPE, so refusing one closes the door on entity expansion and external
entities without a third-party parser.
"""

from __future__ import annotations

from typing import NoReturn
from xml.etree.ElementTree import Element, TreeBuilder
from xml.parsers import expat

from smr.inbound.wecom.errors import MalformedCallback


def _forbidden(*_args: object) -> NoReturn:
    raise MalformedCallback("XML with a DOCTYPE or entity declarations is not accepted.")


def parse(data: bytes) -> Element:
    """The document's root element. Raises MalformedCallback."""
    builder = TreeBuilder()
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _forbidden
    parser.EntityDeclHandler = _forbidden
    parser.StartElementHandler = lambda tag, attrs: builder.start(tag, dict(attrs))
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        message = expat.ErrorString(exc.code)
        raise MalformedCallback(
            f"Not well-formed XML: {message} (line {exc.lineno}, column {exc.offset})."
        ) from None
    return builder.close()

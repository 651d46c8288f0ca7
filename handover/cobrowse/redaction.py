"""What of a citizen's page may reach the agent: the gateway's own pass over rrweb events.

The citizen's browser already masks every input value (rrweb's `maskAllInputs`) and the
text of every element marked `cobrowse-mask`. This pass does it again on what arrives,
so a masking gap in the browser library, an old widget or a forged page leaks nothing:

- only the event kinds a live view needs pass (snapshots, DOM changes, pointer, scroll,
  viewport, inputs of allowed fields, style changes); console logs, canvas, fonts, media,
  custom and plugin events are dropped;
- a form field (input, textarea, select) is in clear only when the page's path lists its
  `name` in COBROWSE_CLEAR_FIELDS: every other field's `value`, `checked` and `selected`
  attributes are masked or dropped, and its input events are dropped whole;
- text inside a `cobrowse-mask` element or a textarea that is not allowed is masked;
- the page address loses its query and fragment (they may carry personal data).

One `PageRedactor` per citizen co-browse socket (one page at a time): it learns the node
ids of fields and masked elements from the full snapshot and the DOM changes after it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK_CLASS = "cobrowse-mask"

# rrweb's event types (EventType) and incremental sources (IncrementalSource).
FULL_SNAPSHOT, INCREMENTAL, META = 2, 3, 4
MUTATION, INPUT = 0, 5
PASSING_SOURCES = frozenset({
    0,  # Mutation
    1,  # MouseMove
    2,  # MouseInteraction
    3,  # Scroll
    4,  # ViewportResize
    5,  # Input (only of allowed fields, below)
    6,  # TouchMove
    8,  # StyleSheetRule
    13,  # StyleDeclaration
    15,  # AdoptedStyleSheet
})  # fmt: skip
# rrweb-snapshot's node types.
ELEMENT, TEXT = 2, 3
FIELDS = frozenset({"input", "textarea", "select"})
FIELD_STATE = ("value", "checked", "selected")


def masked(text: str) -> str:
    """Every character but white space becomes `*` (the layout stays about the same)."""
    return re.sub(r"\S", "*", text)


def page_path(href: str) -> str:
    return urlsplit(href).path or "/"


def without_query(href: str) -> str:
    parts = urlsplit(href)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class PageRedactor:
    def __init__(self, clear_fields: Mapping[str, Iterable[str]]) -> None:
        self._clear_by_path = {path: frozenset(names) for path, names in clear_fields.items()}
        self._clear: frozenset[str] = frozenset()
        self.path = ""
        self._fields: dict[int, bool] = {}  # field node id → shown in clear
        self._masked: set[int] = set()  # ids whose text is masked (and their descendants)
        self.saw_full_snapshot = False

    def redact(self, events: list[Any]) -> list[dict[str, Any]]:
        """The events that may pass, redacted; anything not shaped like rrweb's is dropped."""
        passed = []
        for event in events:
            if isinstance(event, dict) and (kept := self._event(event)) is not None:
                passed.append(kept)
        return passed

    def _event(self, event: dict[str, Any]) -> dict[str, Any] | None:
        kind, data = event.get("type"), event.get("data")
        if not isinstance(data, dict) or not isinstance(event.get("timestamp"), int | float):
            return None
        if kind == META:
            href = data.get("href")
            if not isinstance(href, str):
                return None
            self.path = page_path(href)
            self._clear = self._clear_by_path.get(self.path, frozenset())
            return {**event, "data": {**data, "href": without_query(href)}}
        if kind == FULL_SNAPSHOT:
            if not isinstance(data.get("node"), dict):
                return None
            self._fields, self._masked = {}, set()
            self.saw_full_snapshot = True
            self._node(data["node"], parent_masked=False, in_field=None)
            return event
        if kind != INCREMENTAL or not self.saw_full_snapshot:
            return None
        source = data.get("source")
        if source not in PASSING_SOURCES:
            return None
        if source == INPUT:
            return event if self._fields.get(data.get("id"), False) is True else None  # type: ignore[arg-type]
        if source == MUTATION:
            self._mutation(data)
        return event

    def _node(self, node: Any, *, parent_masked: bool, in_field: bool | None) -> None:
        """Learn and redact a serialized node and its children, in place."""
        if not isinstance(node, dict):
            return
        node_id = node.get("id")
        is_masked = parent_masked
        field_clear = in_field
        if node.get("type") == ELEMENT:
            attributes = node.get("attributes")
            if not isinstance(attributes, dict):
                attributes = node["attributes"] = {}
            classes = str(attributes.get("class", "")).split()
            if MASK_CLASS in classes:
                is_masked = True
            tag = str(node.get("tagName", "")).lower()
            if tag in FIELDS:
                field_clear = str(attributes.get("name", "")) in self._clear and not is_masked
                if isinstance(node_id, int):
                    self._fields[node_id] = field_clear
                if tag == "textarea" and not field_clear:
                    is_masked = True
            if field_clear is False or (tag == "option" and in_field is False):
                self._hide_state(attributes)
        elif node.get("type") == TEXT and is_masked and isinstance(node.get("textContent"), str):
            node["textContent"] = masked(node["textContent"])
        if is_masked and isinstance(node_id, int):
            self._masked.add(node_id)
        children = node.get("childNodes")
        if isinstance(children, list):
            for child in children:
                self._node(child, parent_masked=is_masked, in_field=field_clear)

    @staticmethod
    def _hide_state(attributes: dict[str, Any]) -> None:
        for name in FIELD_STATE:
            if name not in attributes:
                continue
            if name == "value" and isinstance(attributes[name], str):
                attributes[name] = masked(attributes[name])
            else:
                del attributes[name]

    def _mutation(self, data: dict[str, Any]) -> None:
        for add in data.get("adds") or []:
            if isinstance(add, dict):
                parent = add.get("parentId")
                parent_field = self._fields.get(parent) if isinstance(parent, int) else None
                self._node(add.get("node"), parent_masked=parent in self._masked,
                           in_field=parent_field)  # fmt: skip
        for text in data.get("texts") or []:
            if isinstance(text, dict) and text.get("id") in self._masked:
                if isinstance(text.get("value"), str):
                    text["value"] = masked(text["value"])
        for change in data.get("attributes") or []:
            if not isinstance(change, dict) or not isinstance(change.get("attributes"), dict):
                continue
            node_id = change.get("id")
            if self._fields.get(node_id) is False:  # type: ignore[arg-type]
                self._hide_state(change["attributes"])
            classes = change["attributes"].get("class")
            if isinstance(classes, str) and MASK_CLASS in classes.split():
                # Marked sensitive after the snapshot: its later texts are masked. (Its
                # present children keep what they showed; the page sets the class first.)
                if isinstance(node_id, int):
                    self._masked.add(node_id)

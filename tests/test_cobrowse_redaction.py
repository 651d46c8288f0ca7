"""The gateway's own masking of a shared page (what a masking gap in the browser would leak),
and what it keeps for a console that falls behind."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from handover.cobrowse.redaction import PageRedactor
from handover.cobrowse.relay import AgentBacklog

PATH = "/portal/photovoltaik/antrag"
CLEAR = {PATH: ["power_kwp", "listed"]}


def element(node_id: int, tag: str, children: list[Any] | None = None, **attributes: Any) -> Any:
    return {"type": 2, "id": node_id, "tagName": tag, "attributes": attributes,
            "childNodes": children or []}  # fmt: skip


def text(node_id: int, content: str) -> Any:
    return {"type": 3, "id": node_id, "textContent": content}


def meta(href: str = f"https://portal.example{PATH}?email=lena@example.org#top") -> Any:
    return {"type": 4, "timestamp": 1, "data": {"href": href, "width": 800, "height": 600}}


def snapshot() -> Any:
    form = element(10, "form", [
        element(11, "input", name="last_name", value="Meyer", type="text"),
        element(12, "input", name="power_kwp", value="9.8", type="number"),
        element(13, "input", name="listed", value="nein", type="radio", checked=True),
        element(14, "input", name="listed_other", value="ja", type="radio", checked=True),
        element(15, "textarea", [text(16, "Mein Dach ist alt")], name="notes", value="alt"),
        element(17, "select", [element(18, "option", [text(19, "Bayernwerk")], selected=True,
                                       value="bayernwerk")], name="grid_operator"),
        element(20, "dl", [element(21, "dd", [text(22, "Lena Meyer")])],
                **{"class": "x cobrowse-mask"}),
        element(23, "p", [text(24, "Schritt 2 von 5")]),
    ])  # fmt: skip
    node = {"type": 0, "id": 1, "childNodes": [element(2, "html", [element(3, "body", [form])])]}
    return {"type": 2, "timestamp": 2, "data": {"node": node, "initialOffset": {"top": 0}}}


def incremental(source: int, **data: Any) -> Any:
    return {"type": 3, "timestamp": 3, "data": {"source": source, **data}}


def nodes(event: Any) -> dict[int, Any]:
    found: dict[int, Any] = {}

    def walk(node: Any) -> None:
        found[node["id"]] = node
        for child in node.get("childNodes", []):
            walk(child)

    walk(event["data"]["node"])
    return found


def test_only_allowed_fields_keep_their_values_and_masked_text_is_masked() -> None:
    redactor = PageRedactor(CLEAR)
    page_meta, full = redactor.redact([meta(), snapshot()])
    assert page_meta["data"]["href"] == f"https://portal.example{PATH}"
    seen = nodes(full)
    assert seen[11]["attributes"]["value"] == "*****"
    assert seen[12]["attributes"]["value"] == "9.8"
    assert seen[13]["attributes"]["checked"] is True  # an allowed radio group
    assert "checked" not in seen[14]["attributes"]
    assert (
        seen[15]["attributes"]["value"] == "***" and seen[16]["textContent"] == "**** **** *** ***"
    )
    assert "selected" not in seen[18]["attributes"]  # a select that is not allowed
    assert seen[22]["textContent"] == "**** *****"
    assert seen[24]["textContent"] == "Schritt 2 von 5"


def test_input_events_of_fields_not_allowed_are_dropped() -> None:
    redactor = PageRedactor(CLEAR)
    redactor.redact([meta(), snapshot()])
    typed = [incremental(5, id=11, text="Meyer", isChecked=False),
             incremental(5, id=12, text="10", isChecked=False),
             incremental(5, id=999, text="unknown node", isChecked=False)]  # fmt: skip
    assert [e["data"]["id"] for e in redactor.redact(typed)] == [12]


def test_on_another_page_nothing_is_in_clear() -> None:
    redactor = PageRedactor(CLEAR)
    _, full = redactor.redact([meta("https://portal.example/portal/other"), snapshot()])
    assert nodes(full)[12]["attributes"]["value"] == "***"
    assert redactor.redact([incremental(5, id=12, text="10")]) == []


def test_nodes_added_later_are_learnt_and_masked() -> None:
    redactor = PageRedactor(CLEAR)
    redactor.redact([meta(), snapshot()])
    added = incremental(0, adds=[
        {"parentId": 10, "nextId": None,
         "node": element(30, "input", name="email", value="l@x.de")},
        {"parentId": 20, "nextId": None, "node": text(31, "lena@example.org")},
    ], texts=[{"id": 22, "value": "Lena M."}], removes=[],
       attributes=[{"id": 11, "attributes": {"value": "Meier", "class": "a"}}])  # fmt: skip
    (out,) = redactor.redact([added])
    adds = out["data"]["adds"]
    assert adds[0]["node"]["attributes"]["value"] == "******"
    assert adds[1]["node"]["textContent"] == "****************"
    assert out["data"]["texts"] == [{"id": 22, "value": "**** **"}]
    assert out["data"]["attributes"][0]["attributes"] == {"value": "*****", "class": "a"}
    assert redactor.redact([incremental(5, id=30, text="l@x.de")]) == []


def test_logs_canvas_custom_events_and_anything_before_a_snapshot_are_dropped() -> None:
    redactor = PageRedactor(CLEAR)
    assert redactor.redact([incremental(1, positions=[])]) == []  # no snapshot yet
    redactor.redact([meta(), snapshot()])
    dropped = [incremental(11, level="log", payload=["lena@example.org"]),
               incremental(9, id=5, commands=[]),
               {"type": 5, "timestamp": 4, "data": {"tag": "x", "payload": {}}},
               {"type": 6, "timestamp": 4, "data": {"plugin": "x"}},
               "not an event", {"type": 3, "data": {"source": 1}}]  # fmt: skip
    assert redactor.redact(dropped) == []
    moved = incremental(1, positions=[{"x": 1, "y": 2, "id": 3, "timeOffset": 0}])
    assert redactor.redact([copy.deepcopy(moved)]) == [moved]


def test_a_console_that_falls_behind_loses_its_backlog_and_waits_for_a_full_snapshot() -> None:
    backlog = AgentBacklog(max_bytes=100)
    assert backlog.offer("F" + "a" * 40) and backlog.offer("I" + "b" * 40)
    assert not backlog.offer("I" + "c" * 40)  # over: everything queued is dropped
    assert backlog.waiting_for_full and backlog.dropped == 3
    assert backlog.offer("I" + "d" * 10)  # taken, but not queued: no snapshot yet
    assert backlog.offer("F" + "e" * 10)
    assert not backlog.waiting_for_full
    assert asyncio.run(backlog.next()) == "e" * 10

"""The conversation eval: how a turn's reply is scored, where a turn ends, and one real play."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pytest

from benchmarks.conversation_eval import (
    MUNICH_DLDB,
    Conversation,
    Turn,
    exchange,
    figures,
    known_service_ids,
    load_conversations,
    play_all,
    score_turn,
    service_ids_of,
    transcript,
    turn_kind,
    warm_up,
)
from handover.conversation.citizen_texts import citizen_text
from knowledge_index.build import load_questions
from tests.frame_socket import Frame
from tests.services import Service

ROOT = Path(__file__).resolve().parent.parent
CONVERSATIONS = Path(__file__).parent / "conversations" / "musterstadt.jsonl"
PERSO = "https://www.musterstadt.example/dienstleistungen/personalausweis-beantragen"
GEWERBE_DLDB = (
    "https://stadt.muenchen.de/en/buergerservice/terminvereinbarung.html/#/services/1063423"
)
MUNICH_IDS = {"1063423", "1063435", "1063755"}
ARTICLE_IDS = {"personalausweis-beantragen", "reisepass-beantragen"}


def bot(text: str, links: Sequence[str] = (), buttons: Sequence[tuple[str, str]] = ()) -> Frame:
    frame: Frame = {"type": "message", "seq": 2, "from": "bot", "text": text}
    if links:
        frame["links"] = [{"title": "Dienstleistung", "url": url} for url in links]
    if buttons:
        frame["buttons"] = [{"title": title, "payload": payload} for title, payload in buttons]
    return frame


def perso(must_contain: tuple[str, ...] = ()) -> Turn:
    return Turn("Was kostet das?", ("personalausweis-beantragen",), "cost", must_contain)


# --- links that name services -----------------------------------------------------------


def test_a_dldb_service_url_names_the_service_after_services() -> None:
    assert service_ids_of(GEWERBE_DLDB) == {"1063423"}
    assert service_ids_of(GEWERBE_DLDB, MUNICH_IDS) == {"1063423"}
    assert service_ids_of("https://example.org/x/services/1063423?lang=de", MUNICH_IDS) == {
        "1063423"
    }
    assert service_ids_of("https://example.org/#/services/1063423/", MUNICH_IDS) == {"1063423"}


def test_a_longer_id_is_not_taken_for_its_prefix() -> None:
    assert service_ids_of(GEWERBE_DLDB + "9", MUNICH_IDS) == set()


def test_an_article_url_names_the_article_by_its_last_segment() -> None:
    assert service_ids_of(PERSO) == {"personalausweis-beantragen"}
    assert service_ids_of(PERSO + "/", ARTICLE_IDS) == {"personalausweis-beantragen"}


def test_links_that_are_no_known_service_name_none() -> None:
    assert service_ids_of("https://www.musterstadt.example/buergerbuero", ARTICLE_IDS) == set()
    assert service_ids_of("https://stadt.muenchen.de/locations/10546", MUNICH_IDS) == set()


def test_known_ids_come_from_the_articles_or_the_catalogue(tmp_path: Path) -> None:
    ids = known_service_ids(ROOT / "data" / "knowledge")
    assert "personalausweis-beantragen" in ids and "README" not in ids
    catalogue = tmp_path / "services_de.json"
    catalogue.write_text('{"data": [{"id": "1063423"}, {"id": 1063435}], "meta": {}}')
    assert known_service_ids(catalogue) == {"1063423", "1063435"}


# --- scoring a turn ----------------------------------------------------------------------


def test_the_right_link_with_the_fee_in_any_euro_form_is_correct() -> None:
    for wanted, said in [
        ("46 Euro", "Der Personalausweis kostet 46 €."),
        ("46 €", "Der Personalausweis kostet 46 EUR."),
        ("46 EUR", "Der Personalausweis kostet 46\u00a0Euro."),
        ("46 euro", "Der Personalausweis kostet 46€."),
    ]:
        record = score_turn(perso((wanted,)), [bot(said, [PERSO])], kind="facet")
        assert record.correct and record.text_ok, (wanted, said)
        assert record.service_ids == ["personalausweis-beantragen"]


def test_zero_cents_read_like_the_whole_amount_on_both_sides() -> None:
    assert score_turn(perso(("46 Euro",)), [bot("Er kostet 46,00 €.", [PERSO])]).correct
    assert score_turn(perso(("46,00 €",)), [bot("Er kostet 46 Euro.", [PERSO])]).correct
    assert score_turn(perso(("20",)), [bot("Gebühr: 20,00 Euro", [PERSO])]).correct
    assert not score_turn(perso(("27,10",)), [bot("Gebühr: 27 Euro", [PERSO])]).correct


def test_the_right_link_without_any_wanted_text_is_not_correct_nor_a_wrong_service() -> None:
    record = score_turn(perso(("46",)), [bot("Den Ausweis beantragen Sie im Bürgerbüro.", [PERSO])])
    assert not record.correct and record.text_ok is False
    assert not record.wrong_service


def test_the_text_of_every_bot_message_of_the_reply_counts_case_insensitively() -> None:
    turn = Turn("Wo?", ("1063755",), "place", ("Ruppertstr",))
    frames = [
        bot("Feuerwerk: …", [GEWERBE_DLDB.replace("1063423", "1063755")]),
        {"type": "message", "seq": 3, "from": "citizen", "text": "Ruppertstraße"},
        bot("Zuständig ist die Stelle in der RUPPERTSTRASSE 19."),
    ]
    assert score_turn(turn, frames, known=MUNICH_IDS).correct


def test_a_link_to_another_service_is_a_wrong_service() -> None:
    turn = Turn("Gewerbe abmelden", ("1063435",))
    record = score_turn(turn, [bot("Gewerbe-Anmeldung: …", [GEWERBE_DLDB])], known=MUNICH_IDS)
    assert not record.correct and record.wrong_service
    assert record.service_ids == ["1063423"]


def test_one_expected_link_among_others_is_correct() -> None:
    turn = Turn("Gewerbe abmelden", ("1063435",))
    frames = [bot("…", [GEWERBE_DLDB, GEWERBE_DLDB.replace("1063423", "1063435")])]
    record = score_turn(turn, frames, known=MUNICH_IDS)
    assert record.correct and not record.wrong_service


def test_out_of_scope_is_correct_only_without_a_service_link() -> None:
    turn = Turn("Kennen Sie einen guten Italiener?", ())
    declined = score_turn(turn, [bot("Dazu habe ich leider keine Antwort.")], kind="out_of_scope")
    assert declined.correct and not declined.answered_with_service
    answered = score_turn(turn, [bot("Gewerbe-Anmeldung", [GEWERBE_DLDB])], known=MUNICH_IDS)
    assert not answered.correct and answered.answered_with_service
    assert not answered.wrong_service  # only answerable turns have a wrong service
    other_link = [bot("Rufen Sie an.", ["https://www.115.de/"])]
    assert score_turn(turn, other_link, known=MUNICH_IDS).correct


def test_meinen_sie_buttons_with_an_expected_service_are_offered_not_correct() -> None:
    turn = Turn("Ich höre mit meinem Gewerbe auf", ("1063435",))
    buttons = [
        ("Gewerbe-Anmeldung", '/ask_question{"knowledge_doc": "1063423"}'),
        ("Gewerbe-Abmeldung", '/ask_question{"knowledge_doc":"1063435","knowledge_facet":"cost"}'),
        ("Etwas anderes", "/deny"),
    ]
    frames = [bot("Meinen Sie …?", buttons=buttons)]
    record = score_turn(turn, frames, known=MUNICH_IDS)
    assert record.offered and not record.correct and not record.wrong_service
    assert record.offered_ids == ["1063423", "1063435"]


def test_quick_replies_of_an_answer_are_no_offer() -> None:
    turn = Turn("Personalausweis", ("personalausweis-beantragen",))
    payload = (
        '/ask_question{"knowledge_doc": "personalausweis-beantragen", "knowledge_facet": "cost"}'
    )
    record = score_turn(
        turn, [bot("Personalausweis beantragen: …", [PERSO], [("Kosten", payload)])]
    )
    assert record.correct and not record.offered
    # The quick replies may come as a message of their own.
    frames = [
        bot("Personalausweis beantragen: …", [PERSO]),
        bot("Was möchten Sie dazu wissen?", buttons=[("Kosten", payload)]),
    ]
    record = score_turn(turn, frames, known=ARTICLE_IDS)
    assert record.correct and not record.offered and record.offered_ids == []


def test_a_handover_is_seen_in_a_state_frame_or_in_the_no_agent_offer() -> None:
    queued: Frame = {"type": "state", "seq": 3, "state": "queued", "reason": "citizen_request"}
    assert score_turn(perso(), [bot("Ich verbinde Sie."), queued]).handover == "queued"
    offline = bot(citizen_text("no_agent", "de", hours="Mo-Fr 08:00-18:00"))
    assert score_turn(perso(), [offline]).handover == "ticket"
    assert score_turn(perso(), [bot("Personalausweis …", [PERSO])]).handover is None


def test_turn_kinds() -> None:
    assert turn_kind(0, Turn("a", ("x",))) == "first"
    assert turn_kind(1, Turn("b", ("x",), "cost")) == "facet"
    assert turn_kind(1, Turn("c", ("y",))) == "switch"
    assert turn_kind(2, Turn("d", ())) == "out_of_scope"


def test_figures_count_by_kind_facet_and_rate() -> None:
    wrong = [bot("Gewerbe-Anmeldung", [GEWERBE_DLDB])]
    records = [
        score_turn(perso(), [bot("…", [PERSO])], kind="first", conversation="a"),
        score_turn(perso(("46",)), [bot("…", [PERSO])], kind="facet", conversation="a", index=1),
        score_turn(
            Turn("x", ("1063435",)), wrong, kind="first", known=MUNICH_IDS, conversation="b"
        ),
        score_turn(Turn("y", ()), wrong, kind="out_of_scope", known=MUNICH_IDS, conversation="b"),
    ]
    result = figures(records)
    assert result["n_conversations"] == 2 and result["n_turns"] == 4
    assert result["first"] == {
        "n": 2, "correct": 1, "rate": 0.5, "correct_or_offered": 1, "correct_or_offered_rate": 0.5,
    }  # fmt: skip
    assert result["facets"]["cost"] == {"n": 1, "correct": 0, "rate": 0.0}
    assert result["facets"]["online"] == {"n": 0, "correct": 0, "rate": None}
    assert result["wrong_service_rate"] == round(1 / 3, 3)
    assert result["out_of_scope_answered_rate"] == 1.0
    assert result["overall"] == 0.25
    assert result["latency_p50_ms"] is None


# --- where a turn ends -------------------------------------------------------------------


class ScriptedClient:
    """Plays the gateway's side: (delay in s, frame) after each `say`."""

    def __init__(self, script: list[tuple[float, Frame]]) -> None:
        self.script = list(script)
        self.sent_at = 0.0

    async def say(self, text: str) -> str:
        self.sent_at = time.perf_counter()
        return "c1"

    async def receive(self, timeout: float = 20.0) -> Frame:
        if not self.script:
            await asyncio.sleep(timeout)
            raise TimeoutError
        delay, frame = self.script[0]
        wait = self.sent_at + delay - time.perf_counter()
        if wait > timeout:
            await asyncio.sleep(timeout)
            raise TimeoutError
        await asyncio.sleep(max(wait, 0))
        self.script.pop(0)
        return frame


async def test_a_turn_ends_after_a_quiet_period_and_earlier_frames_are_given_back() -> None:
    client = ScriptedClient([
        (0.0, bot("late answer of the turn before") | {"seq": 4}),
        (0.0, {"type": "ack", "client_id": "c1", "seq": 5}),
        (0.0, {"type": "message", "seq": 5, "from": "citizen", "text": "Was kostet das?"}),
        (0.05, bot("46,00 €", [PERSO]) | {"seq": 6}),
        (0.07, bot("Hat Ihnen das geholfen?") | {"seq": 7}),
        (0.5, bot("the next turn's") | {"seq": 9}),
    ])  # fmt: skip
    done, late = await exchange(cast(Any, client), "Was kostet das?", quiet_s=0.15, timeout_s=2)
    assert [f["seq"] for f in late] == [4]
    assert done.ack_seq == 5 and [f["seq"] for f in done.frames] == [6, 7]
    assert done.latency_ms is not None and 40 <= done.latency_ms < 200
    assert not done.timed_out


async def test_a_turn_without_any_reply_times_out() -> None:
    client = ScriptedClient([(0.0, {"type": "ack", "client_id": "c1", "seq": 1})])
    done, _ = await exchange(cast(Any, client), "Hallo", quiet_s=0.05, timeout_s=0.2)
    assert done.timed_out and done.frames == []


async def test_a_turn_the_bot_finished_without_a_message_ends_without_waiting_for_the_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("benchmarks.conversation_eval.POLL_AFTER_S", 0.05)
    monkeypatch.setattr("benchmarks.conversation_eval.POLL_EVERY_S", 0.05)
    asked: list[int] = []

    async def bot_done(seq: int) -> bool:
        asked.append(seq)
        return len(asked) >= 2

    client = ScriptedClient([(0.0, {"type": "ack", "client_id": "c1", "seq": 3})])
    started = time.perf_counter()
    done, _ = await exchange(
        cast(Any, client), "Hallo", quiet_s=0.05, timeout_s=10, bot_done=bot_done
    )
    assert time.perf_counter() - started < 2
    assert asked == [3, 3] and done.frames == [] and not done.timed_out


async def test_an_error_frame_ends_the_turn_at_once() -> None:
    error: Frame = {"type": "error", "code": "bot_unavailable", "message": "…"}
    client = ScriptedClient([(0.0, {"type": "ack", "client_id": "c1", "seq": 1}), (0.01, error)])
    done, _ = await exchange(cast(Any, client), "Hallo", quiet_s=5, timeout_s=10)
    assert done.frames == [error] and not done.timed_out
    assert score_turn(perso(), done.frames).error == "bot_unavailable"


# --- through the real stack --------------------------------------------------------------


@pytest.mark.rasa
async def test_the_musterstadt_conversations_are_answered_right_turn_by_turn(
    ws_url: str, rasa_server: Service
) -> None:
    # The conversations of the table on the sample city: every turn must be right.
    conversations = load_conversations(CONVERSATIONS)
    known = known_service_ids(ROOT / "data" / "knowledge")
    played = await play_all(ws_url, conversations, known, timeout_s=60, rasa_url=rasa_server.url)
    records = [record for conversation in played for record in conversation]
    assert [(r.conversation, r.index) for r in records] == [
        (c.id, i) for c in conversations for i in range(len(c.turns))
    ]
    assert [r.kind for r in played[0]] == ["first", "facet", "facet", "facet"]
    # The harness saw the end of every turn, from a frame or from Rasa's tracker.
    assert not any(r.timed_out for r in records), records
    report = "\n".join(transcript(conversation) for conversation in played)
    assert all(r.correct for r in records), report


MUNICH_DEV = ROOT.parent / "shared" / "eval" / "muenchen-dev-conversations.jsonl"
MUNICH_QUESTIONS = ROOT.parent / "shared" / "eval" / "muenchen-dev-questions.jsonl"
MUNICH_OWN = sorted((Path(__file__).parent / "conversations").glob("muenchen*.jsonl"))


@pytest.mark.rasa
@pytest.mark.skipif(
    not (MUNICH_DLDB.exists() and MUNICH_DEV.exists() and MUNICH_QUESTIONS.exists()),
    reason="no Munich data",
)
def test_the_munich_development_conversations_stay_above_their_measured_floor() -> None:
    # Floors a little below what docs/knowledge.md reports, so a regression shows and noise
    # (a question or two) does not. The targets of issue 11 are far above them.
    from benchmarks.assistant import running_assistant

    conversations = load_conversations(MUNICH_DEV)
    # Written for services no dev set uses (docs/knowledge.md): played in the same run.
    own = [c for path in MUNICH_OWN for c in load_conversations(path)]
    outside = [
        Conversation(id=f"q{number}", turns=(Turn(text=str(question["query"])),))
        for number, question in enumerate(load_questions(MUNICH_QUESTIONS))
        if not question["expected"]
    ]
    assert len(outside) == 6
    known = known_service_ids(MUNICH_DLDB)
    with running_assistant(
        "munich-conversations-", env={"KNOWLEDGE_SOURCE": str(MUNICH_DLDB)}
    ) as stack:
        assert stack.gateway is not None
        ws_url = f"ws://127.0.0.1:{stack.gateway.port}/ws/chat"
        asyncio.run(warm_up(ws_url, stack.rasa.url))
        # Three at a time: the same figures, count for count, as one at a time on all four
        # Munich sets (compared), in a third of the time; most of a turn is the quiet period
        # that ends it.
        play = functools.partial(play_all, known=known, rasa_url=stack.rasa.url, concurrency=3)
        played = asyncio.run(play(ws_url, conversations))
        played_own = asyncio.run(play(ws_url, own))
        played_outside = asyncio.run(play(ws_url, outside))
    # The dev questions no service answers ("Rezept für Schweinebraten", "FC Bayern"): the
    # index alone is sure of a service for two of them by citizens' example phrasings; the
    # assistant must decline all (the classifier's out of scope needs the catalogue's own text).
    answered = [r for c in played_outside for r in c if r.answered_with_service]
    assert not answered, "\n".join(transcript(c) for c in played_outside)
    own_records = [record for conversation in played_own for record in conversation]
    own_result = figures(own_records)
    own_report = "\n".join(transcript(c) for c in played_own) + f"\n{own_result}"
    # "Was zahle ich für den Ersatz?" once answered for another service (two wrong turns).
    # Measured 0.073 (8 of 110 turns): the rental-car trip through California answered with
    # the passenger-transport licence (w03) and its two follow-ups, one blind follow-up, and
    # four facet follow-ups answered for each of three services offered, none of them hers
    # (w01, b15: "Das hängt davon ab, welche …").
    assert own_result["wrong_service_rate"] <= 0.09, own_report
    assert own_result["out_of_scope_answered_rate"] == 0.0, own_report
    records = [record for conversation in played for record in conversation]
    result = figures(records)
    report = "\n".join(transcript(conversation) for conversation in played) + f"\n{result}"
    assert not any(r.timed_out for r in records), report
    # Measured 0.60 / 1.00 / 1.00 (docs/knowledge.md).
    assert result["first"]["rate"] >= 0.5, report
    assert result["first"]["correct_or_offered_rate"] >= 0.92, report
    assert result["facet"]["rate"] >= 0.85, report
    assert result["wrong_service_rate"] <= 0.05, report
    assert result["out_of_scope_answered_rate"] == 0.0, report
    assert result["handovers"] == 0, report

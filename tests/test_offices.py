"""Offices as records: loading, opening hours, finding by name, question types, answers."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from knowledge_index.hours import BERLIN, OpeningHours
from knowledge_index.offices import (
    Office,
    OfficeAsk,
    OfficeAskKind,
    OfficeDirectory,
    OfficeService,
    describe,
    describe_list,
    load_offices,
    load_saved_offices,
    office_question,
    read_offices,
    save_offices,
)

ROOT = Path(__file__).resolve().parents[1]
ARTICLES = ROOT / "data" / "knowledge"
MUNICH = Path(__file__).parents[1] / "../shared/data/muenchen-dldb/services_de.json"

MITTE_HOURS = "Mo–Fr 8:00–12:30, Do 14:00–18:00"
THURSDAY_1PM = datetime(2026, 11, 26, 13, 0, tzinfo=BERLIN)


def _minutes(text: str) -> int:
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


def _week(hours: OpeningHours) -> list[list[tuple[int, int]]]:
    return [[(i.start, i.end) for i in hours.intervals_on(day)] for day in range(7)]


# --- opening hours -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (MITTE_HOURS, {0: ["8:00-12:30"], 3: ["8:00-12:30", "14:00-18:00"], 5: []}),
        (
            "Mo, Di, Do, Fr 8:30–12:00, Do 14:00–17:00",
            {1: ["8:30-12:00"], 2: [], 3: ["8:30-12:00", "14:00-17:00"], 4: ["8:30-12:00"]},
        ),
        ("Mo–Do 8:00–16:00, Fr 8:00–13:00", {3: ["8:00-16:00"], 4: ["8:00-13:00"], 5: []}),
        ("Di–Fr 10:00–18:00, Sa 8:00–14:00", {0: [], 1: ["10:00-18:00"], 5: ["8:00-14:00"], 6: []}),
        ("Mo-Fr 8 Uhr - 12 Uhr", {0: ["8:00-12:00"], 4: ["8:00-12:00"], 5: []}),
        ("Mo.–Fr. 8.00–12.30 Uhr", {2: ["8:00-12:30"]}),
        ("montags bis freitags von 8 bis 12 Uhr", {4: ["8:00-12:00"], 6: []}),
        (
            "Mo–Fr 8:00–12:00 und 14:00–16:00; Sa geschlossen",
            {2: ["8:00-12:00", "14:00-16:00"], 5: []},
        ),
    ],
)
def test_the_german_hours_formats_parse_into_weekly_intervals(
    text: str, expected: dict[int, list[str]]
) -> None:
    hours = OpeningHours.parse(text)
    assert hours.known
    for day, ranges in expected.items():
        wanted = [tuple(_minutes(t) for t in r.split("-")) for r in ranges]
        assert _week(hours)[day] == wanted, (text, day)


def test_a_parenthesised_remark_is_kept_as_the_note_of_the_range_before_it() -> None:
    hours = OpeningHours.parse("Mo–Fr 8:00–12:00, Di 14:00–17:00 (nach Terminvereinbarung)")
    tuesday = hours.intervals_on(1)
    assert [(i.start, i.end, i.note) for i in tuesday] == [
        (480, 720, ""),
        (840, 1020, "nach Terminvereinbarung"),
    ]
    assert hours.notes == ("nach Terminvereinbarung",)
    assert [i.note for i in hours.intervals_on(0)] == [""]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "nach Vereinbarung",
        "rund um die Uhr",
        "Mo–Fr 8:00",
        "12:00–8:00 Mo",
        "Mo–Fr 18:00–8:00",
        "Mo 8:00–25:00",
        "werktags 8–12 Uhr",
    ],
)
def test_unreadable_hours_know_nothing_and_keep_the_text(text: str) -> None:
    hours = OpeningHours.parse(text)
    assert not hours.known and hours.text == text
    assert hours.is_open(THURSDAY_1PM) is None
    assert hours.next_opening(THURSDAY_1PM) is None
    assert hours.intervals_on(0) == ()


def test_a_day_is_rendered_in_german_and_english() -> None:
    hours = OpeningHours.parse(MITTE_HOURS)
    assert hours.describe_day(5) == "Samstag: geschlossen"
    assert hours.describe_day(3) == "Donnerstag: 8:00–12:30 und 14:00–18:00 Uhr"
    assert hours.describe_day(3, english=True) == "Thursday: 8:00–12:30 and 14:00–18:00"
    week = hours.week_text(english=True)
    assert week == "Mon–Wed, Fri 8:00–12:30; Thu 8:00–12:30 and 14:00–18:00"


def test_is_open_at_berlin_times() -> None:
    hours = OpeningHours.parse(MITTE_HOURS)
    assert hours.is_open(datetime(2026, 11, 26, 8, 0, tzinfo=BERLIN)) is True
    assert hours.is_open(datetime(2026, 11, 26, 12, 30, tzinfo=BERLIN)) is False  # end is open
    assert hours.is_open(datetime(2026, 11, 26, 13, 0, tzinfo=BERLIN)) is False
    assert hours.is_open(datetime(2026, 11, 26, 17, 59, tzinfo=BERLIN)) is True
    assert hours.is_open(datetime(2026, 11, 27, 15, 0, tzinfo=BERLIN)) is False  # Friday
    assert hours.is_open(datetime(2026, 11, 28, 10, 0, tzinfo=BERLIN)) is False  # Saturday
    # Naive datetimes are Berlin wall-clock time; aware ones are converted.
    assert hours.is_open(datetime(2026, 11, 26, 8, 30)) is True
    assert hours.is_open(datetime(2026, 11, 26, 7, 30, tzinfo=UTC)) is True  # 8:30 CET


def test_is_open_follows_the_daylight_saving_change() -> None:
    hours = OpeningHours.parse(MITTE_HOURS)
    # 06:30 UTC is 7:30 in winter time (Friday 27 March 2026) and 8:30 in summer time
    # (Monday 30 March 2026, the day after the change).
    assert hours.is_open(datetime(2026, 3, 27, 6, 30, tzinfo=UTC)) is False
    assert hours.is_open(datetime(2026, 3, 30, 6, 30, tzinfo=UTC)) is True
    # And back: on Monday 26 October 2026 06:30 UTC is 7:30 again.
    assert hours.is_open(datetime(2026, 10, 23, 6, 30, tzinfo=UTC)) is True
    assert hours.is_open(datetime(2026, 10, 26, 6, 30, tzinfo=UTC)) is False
    following = hours.next_opening(datetime(2026, 3, 28, 12, 0, tzinfo=BERLIN))
    assert following == datetime(2026, 3, 30, 8, 0, tzinfo=BERLIN)
    assert following is not None and following.utcoffset() == timedelta(hours=2)


def test_next_opening_is_the_next_start_after_the_given_time() -> None:
    hours = OpeningHours.parse(MITTE_HOURS)
    assert hours.next_opening(THURSDAY_1PM) == datetime(2026, 11, 26, 14, 0, tzinfo=BERLIN)
    assert hours.next_opening(datetime(2026, 11, 26, 18, 0, tzinfo=BERLIN)) == datetime(
        2026, 11, 27, 8, 0, tzinfo=BERLIN
    )
    assert hours.next_opening(datetime(2026, 11, 27, 12, 30)) == datetime(
        2026, 11, 30, 8, 0, tzinfo=BERLIN
    )


# --- loading -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def musterstadt() -> OfficeDirectory:
    return OfficeDirectory(load_offices(ARTICLES))


@pytest.fixture(scope="module")
def munich() -> OfficeDirectory:
    if not MUNICH.exists():
        pytest.skip("the Munich DLDB export (../shared/data/muenchen-dldb) is not here")
    return OfficeDirectory(load_offices(MUNICH))


def test_articles_give_one_office_per_name_with_the_articles_naming_it(
    musterstadt: OfficeDirectory,
) -> None:
    mitte = musterstadt.get("buergerbuero-musterstadt-mitte")
    assert mitte is not None
    assert mitte.address == "Rathausplatz 1, 12345 Musterstadt"
    assert mitte.phone == "+49 1234 567-100" and mitte.hours == MITTE_HOURS
    assert mitte.email == "buergerbuero@musterstadt.example" and mitte.url == ""
    assert "personalausweis-beantragen" in mitte.services
    names = {o.name for o in musterstadt}
    assert {
        "Standesamt Musterstadt",
        "Ordnungsamt Musterstadt",
        "Bauamt Musterstadt – Untere Bauaufsichtsbehörde",
    } <= names
    # Sub-units named in "Zuständige Stelle" between the name and the street are aliases.
    ordnungsamt = musterstadt.get("ordnungsamt-musterstadt")
    assert ordnungsamt is not None and "Fundbüro" in ordnungsamt.aliases


def test_a_branch_named_with_street_and_phone_in_the_body_is_an_office(
    musterstadt: OfficeDirectory,
) -> None:
    nord = musterstadt.get("buergerbuero-musterstadt-nord")
    assert nord is not None
    assert nord.address == "Lindenallee 42, 12345 Musterstadt"
    assert nord.phone == "+49 1234 567-150"
    assert nord.hours == "Mo–Fr 8:00–12:30, Di 14:00–18:00"
    assert "personalausweis-beantragen" in nord.services
    assert "briefwahl-wahlschein" not in nord.services
    assert nord in musterstadt.offices_for("reisepass-beantragen")


def test_a_malformed_article_is_skipped_and_reported(tmp_path: Path) -> None:
    shutil.copy(ARTICLES / "fundbuero.md", tmp_path)
    (tmp_path / "broken.md").write_text("---\nid: broken\noffice: [not, a, mapping]\n---\nText\n")
    (tmp_path / "bad-yaml.md").write_text("---\nid: x\ntitle: a: b: c\n---\n")
    loaded = read_offices(tmp_path)
    assert [o.name for o in loaded.offices] == ["Ordnungsamt Musterstadt"]
    assert len(loaded.skipped) == 2
    assert any("broken.md" in s and "office" in s for s in loaded.skipped)


def test_a_malformed_location_record_is_skipped_and_reported(tmp_path: Path) -> None:
    services = tmp_path / "services_de.json"
    services.write_text(json.dumps({"data": [{"id": "1", "name": "Dienst"}]}))
    good = {
        "id": "7",
        "name": "Fundbüro (KVR-III/32)",
        "displayName": "Fundbüro",
        "displayNameAlternatives": ["Fundsachen"],
        "address": {
            "street": "Ruppertstraße",
            "house_number": "19",
            "postal_code": "80337",
            "city": "München",
        },
        "contact": {"phone": "089 233-1", "email": "fund@example.org"},
        "meta": {"url": "https://example.org/#/locations/{locationId}"},
        "services": [
            {
                "service": "1",
                "duration": 15,
                "appointment": {"link": "https://example.org/book/1/7"},
                "onlineprocessing": {"link": "https://example.org/online/1"},
            },
            {"no": "service"},
        ],
    }
    records = [good, {"id": "8"}, "not a record", {"id": "9", "name": "X", "address": "nowhere"}]
    (tmp_path / "locations_de.json").write_text(json.dumps({"data": records}))
    loaded = read_offices(services)
    assert [o.id for o in loaded.offices] == ["7"]
    office = loaded.offices[0]
    assert office.display_name == "Fundbüro" and "Fundsachen" in office.aliases
    assert office.address == "Ruppertstraße 19, 80337 München"
    assert office.url == "https://example.org/#/locations/7" and office.hours == ""
    assert office.services == ("1",)
    assert office.service_details["1"] == OfficeService(
        "https://example.org/book/1/7", "https://example.org/online/1", 15
    )
    assert len(loaded.skipped) == 4  # three bad records and one bad services entry
    assert any("location #1 (id 8)" in s and "'name'" in s for s in loaded.skipped)


def test_teams_of_one_munich_office_are_one_record(munich: OfficeDirectory) -> None:
    zulassung = [o for o in munich if o.display_name == "KfZ Zulassungsstelle"]
    assert len(zulassung) == 1 and len(zulassung[0].location_ids) > 1
    assert zulassung[0].address == "Eichstätter Straße 2, 80686 München"
    bürgerbüros = [o for o in munich if o.display_name.startswith("Bürgerbüro")]
    assert len(bürgerbüros) == 6


def test_offices_for_a_service_lists_where_it_is_offered(munich: OfficeDirectory) -> None:
    offices = munich.offices_for("1063428")
    assert "Bürgerbüro Orleansplatz" in [o.display_name for o in offices]
    orleansplatz = next(o for o in offices if o.display_name == "Bürgerbüro Orleansplatz")
    detail = orleansplatz.service_details["1063428"]
    assert "1063428" in detail.appointment_link and detail.duration_min


def test_offices_survive_a_save_and_load_round_trip(
    musterstadt: OfficeDirectory, tmp_path: Path
) -> None:
    office = Office(
        id="7",
        name="Fundbüro (KVR)",
        display_name="Fundbüro",
        aliases=("Fundsachen",),
        address="Ruppertstraße 19, 80337 München",
        services=("1", "2"),
        service_details={"1": OfficeService("https://a", "https://b", 15)},
        location_ids=("7",),
    )
    path = tmp_path / "offices.json"
    save_offices(path, [*musterstadt, office])
    loaded = load_saved_offices(path)
    assert loaded == [*musterstadt, office]
    assert load_saved_offices(tmp_path / "missing.json") == []


# --- finding offices ---------------------------------------------------------------


def test_where_is_the_buergerbuero_finds_mitte_first(musterstadt: OfficeDirectory) -> None:
    found = musterstadt.find("Wo ist das Bürgerbüro?")
    assert [o.name for o, _ in found] == [
        "Bürgerbüro Musterstadt-Mitte",
        "Bürgerbüro Musterstadt-Nord",
    ]


def test_a_genitive_names_the_office(musterstadt: OfficeDirectory) -> None:
    found = musterstadt.find("Telefonnummer des Standesamts")
    assert [o.name for o, _ in found] == ["Standesamt Musterstadt"]


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("Wo ist das Bauamt?", "Bauamt Musterstadt – Untere Bauaufsichtsbehörde"),
        ("Wo ist die Kfz-Zulassungsstelle?", "Straßenverkehrsamt Musterstadt"),
        ("Adresse des Fundbüros", "Ordnungsamt Musterstadt"),
        ("Where is the registry office?", "Standesamt Musterstadt"),
    ],
)
def test_names_aliases_and_sub_units_find_their_office(
    musterstadt: OfficeDirectory, query: str, name: str
) -> None:
    assert musterstadt.find(query)[0][0].name == name


def test_a_question_without_an_office_name_finds_none(musterstadt: OfficeDirectory) -> None:
    assert musterstadt.find("Wie melde ich meinen Wohnsitz an?") == []
    assert musterstadt.find("") == []


def test_a_common_word_of_a_name_alone_names_no_office(munich: OfficeDirectory) -> None:
    # "neue" is one word of "Feuerwache 10 - Riem / Neue Messe": a citizen's new flat is not it.
    story = "Ich bin in eine neue Wohnung gezogen. Wie verhindere ich, dass er davon erfährt?"
    assert munich.find(story) == []
    assert munich.find("Wo ist die Feuerwache Neue Messe?")[0][0].display_name.startswith(
        "Feuerwache 10"
    )


def test_the_munich_fundbuero_is_found_with_its_address(munich: OfficeDirectory) -> None:
    found = munich.find("Wo ist das Fundbüro?")
    assert found and all(o.display_name == "Fundbüro" for o, _ in found)
    assert any(o.address.startswith("Ruppertstraße") for o, _ in found)
    text = describe(found[0][0], office_question("Wo ist das Fundbüro?"))
    assert found[0][0].address in text


def test_a_shared_display_name_finds_all_and_a_specific_name_ranks_first(
    munich: OfficeDirectory,
) -> None:
    every = munich.find("Wo ist das Bürgerbüro?")
    assert len(every) == 6 and all(o.display_name.startswith("Bürgerbüro") for o, _ in every)
    specific = munich.find("Wo ist das Bürgerbüro Pasing?")
    assert specific[0][0].display_name == "Bürgerbüro Pasing"
    assert all(score < specific[0][1] for _, score in specific[1:])
    assert munich.find("Bürgerbüro am Orleansplatz")[0][0].display_name == (
        "Bürgerbüro Orleansplatz"
    )
    assert munich.find("Zulassungsstelle")[0][0].display_name == "KfZ Zulassungsstelle"


# --- question types ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "kind", "weekday", "english"),
    [
        ("Wo ist das Bürgerbüro?", OfficeAskKind.ADDRESS, None, False),
        ("Wo kann ich das machen?", OfficeAskKind.ADDRESS, None, False),
        ("Telefonnummer des Standesamts", OfficeAskKind.PHONE, None, False),
        ("Wie ist die E-Mail-Adresse des Bauamts?", OfficeAskKind.EMAIL, None, False),
        ("Wann hat das Bürgerbüro geöffnet?", OfficeAskKind.HOURS, None, False),
        ("Öffnungszeiten Standesamt", OfficeAskKind.HOURS, None, False),
        ("Hat das Bürgerbüro am Samstag offen?", OfficeAskKind.OPEN_ON, 5, False),
        ("Ist das Bürgerbüro samstags geöffnet?", OfficeAskKind.OPEN_ON, 5, False),
        ("Hat das Bürgerbüro morgen auf?", OfficeAskKind.OPEN_ON, 4, False),
        ("Ist das Bürgerbüro heute geöffnet?", OfficeAskKind.OPEN_ON, 3, False),
        ("Ist es jetzt offen?", OfficeAskKind.OPEN_NOW, None, False),
        ("Hat das Standesamt gerade geöffnet?", OfficeAskKind.OPEN_NOW, None, False),
        ("Ist das Bürgerbüro heute noch offen?", OfficeAskKind.OPEN_NOW, None, False),
        ("Where is the citizens' office?", OfficeAskKind.ADDRESS, None, True),
        ("What is the phone number of the registry office?", OfficeAskKind.PHONE, None, True),
        ("What are the opening hours?", OfficeAskKind.HOURS, None, True),
        ("Is the citizens' office open on Saturday?", OfficeAskKind.OPEN_ON, 5, True),
        ("Is it open now?", OfficeAskKind.OPEN_NOW, None, True),
        ("Where can I open a business?", OfficeAskKind.ADDRESS, None, True),
    ],
)
def test_office_questions_are_recognised_in_german_and_english(
    query: str, kind: OfficeAskKind, weekday: int | None, english: bool
) -> None:
    ask = office_question(query, now=THURSDAY_1PM)
    assert ask is not None and ask.kind is kind, query
    assert ask.weekday == weekday and ask.english is english


def test_relative_days_are_kept_for_the_answer() -> None:
    ask = office_question("Hat das Bürgerbüro morgen offen?", now=THURSDAY_1PM)
    assert ask == OfficeAsk(OfficeAskKind.OPEN_ON, 4, "morgen")


def test_a_question_whether_it_is_closed_gets_yes_and_no_the_right_way_round(
    musterstadt: OfficeDirectory,
) -> None:
    ask = office_question("Ist das Bürgerbüro jetzt geschlossen?")
    assert ask is not None and ask.kind is OfficeAskKind.OPEN_NOW and ask.closed
    nine = datetime(2026, 11, 26, 9, 0, tzinfo=BERLIN)
    assert describe(_mitte(musterstadt), ask, nine).startswith("Nein, das Bürgerbüro")
    assert describe(_mitte(musterstadt), ask, THURSDAY_1PM).startswith(
        "Ja, das Bürgerbüro Musterstadt-Mitte ist gerade geschlossen."
    )
    saturday = office_question("Hat das Bürgerbüro am Samstag zu?")
    assert saturday is not None and saturday.kind is OfficeAskKind.OPEN_ON
    assert saturday.weekday == 5


@pytest.mark.parametrize(
    "query",
    [
        "Was kostet ein Personalausweis?",
        "Wie lange dauert das?",
        "Guten Morgen",
        "How many hours does it take?",
    ],
)
def test_other_questions_are_not_office_questions(query: str) -> None:
    assert office_question(query, now=THURSDAY_1PM) is None


# --- answer text -------------------------------------------------------------------


def _mitte(directory: OfficeDirectory) -> Office:
    office = directory.get("buergerbuero-musterstadt-mitte")
    assert office is not None
    return office


def test_the_contact_answer_has_address_phone_mail_and_hours(
    musterstadt: OfficeDirectory,
) -> None:
    assert describe(_mitte(musterstadt), office_question("Wo ist das Bürgerbüro?")) == (
        "Bürgerbüro Musterstadt-Mitte: Rathausplatz 1, 12345 Musterstadt. Telefon +49 1234 "
        "567-100 · E-Mail buergerbuero@musterstadt.example · Öffnungszeiten: Mo–Fr 8:00–12:30, "
        "Do 14:00–18:00."
    )


def test_open_on_saturday_is_answered_from_the_hours(musterstadt: OfficeDirectory) -> None:
    mitte = _mitte(musterstadt)
    saturday = office_question("Hat das Bürgerbüro am Samstag offen?", THURSDAY_1PM)
    assert describe(mitte, saturday, THURSDAY_1PM) == (
        "Das Bürgerbüro Musterstadt-Mitte hat am Samstag geschlossen. "
        "Geöffnet ist es Mo–Fr 8:00–12:30, Do 14:00–18:00."
    )
    thursday = office_question("Hat das Bürgerbüro am Donnerstag offen?", THURSDAY_1PM)
    assert describe(mitte, thursday, THURSDAY_1PM) == (
        "Das Bürgerbüro Musterstadt-Mitte hat am Donnerstag geöffnet: "
        "8:00–12:30 und 14:00–18:00 Uhr."
    )
    english = office_question("Is the citizens' office open on Saturday?", THURSDAY_1PM)
    assert describe(mitte, english, THURSDAY_1PM).startswith(
        "Bürgerbüro Musterstadt-Mitte is closed on Saturday. Opening hours: Mon–Wed, Fri"
    )


def test_open_now_says_until_when_or_when_it_opens_next(musterstadt: OfficeDirectory) -> None:
    mitte = _mitte(musterstadt)
    now = office_question("Ist es jetzt offen?")
    assert describe(mitte, now, datetime(2026, 11, 26, 9, 0, tzinfo=BERLIN)) == (
        "Ja, das Bürgerbüro Musterstadt-Mitte ist jetzt geöffnet (bis 12:30 Uhr)."
    )
    assert describe(mitte, now, THURSDAY_1PM) == (
        "Nein, das Bürgerbüro Musterstadt-Mitte ist gerade geschlossen. "
        "Nächste Öffnung: heute, 14:00 Uhr."
    )
    assert describe(mitte, now, datetime(2026, 11, 25, 13, 0, tzinfo=BERLIN)) == (
        "Nein, das Bürgerbüro Musterstadt-Mitte ist gerade geschlossen. "
        "Nächste Öffnung: Donnerstag, 8:00 Uhr."
    )
    english = office_question("Is it open now?")
    assert describe(mitte, english, datetime(2026, 11, 28, 10, 0, tzinfo=BERLIN)) == (
        "No, Bürgerbüro Musterstadt-Mitte is closed right now. Next opening: Monday, 8:00."
    )


def test_a_note_of_the_open_range_is_part_of_the_answer(musterstadt: OfficeDirectory) -> None:
    standesamt = musterstadt.get("standesamt-musterstadt")
    assert standesamt is not None
    answer = describe(
        standesamt,
        office_question("Ist das Standesamt jetzt geöffnet?"),
        datetime(2026, 11, 24, 15, 0, tzinfo=BERLIN),
    )
    assert answer == (
        "Ja, das Standesamt Musterstadt ist jetzt geöffnet "
        "(bis 17:00 Uhr, nach Terminvereinbarung)."
    )


def test_unknown_hours_are_never_guessed() -> None:
    office = Office(
        id="1",
        name="Fundbüro",
        display_name="Fundbüro",
        phone="089 1",
        url="https://example.org/fund",
    )
    now = office_question("Ist das Fundbüro jetzt offen?")
    answer = describe(office, now, THURSDAY_1PM)
    assert answer == (
        "Für das Fundbüro sind keine Öffnungszeiten hinterlegt. Telefon 089 1 · "
        "Termine und Infos: https://example.org/fund."
    )
    vague = Office(id="2", name="Amt X", display_name="Amt X", hours="nach Vereinbarung")
    answer = describe(vague, office_question("Hat das Amt X am Samstag offen?"), THURSDAY_1PM)
    assert "laut Quelle: nach Vereinbarung" in answer and "geschlossen" not in answer


def test_several_offices_are_listed_one_per_line(munich: OfficeDirectory) -> None:
    text = describe_list([o for o, _ in munich.find("Bürgerbüro")])
    lines = text.splitlines()
    assert len(lines) == 6 and all(line.startswith("- Bürgerbüro ") for line in lines)
    assert "- Bürgerbüro Pasing, Landsberger Straße 486, 81241 München" in lines
    many = describe_list([o for o, _ in munich.find("Feuerwache")], limit=6)
    assert many.splitlines()[-1].startswith("- … und ") and len(many.splitlines()) == 7


# --- the index ---------------------------------------------------------------------


def test_a_build_writes_offices_json_and_the_index_loads_it(tmp_path: Path) -> None:
    from knowledge_index.build import BuildOptions, build
    from knowledge_index.search import KnowledgeIndex

    source = tmp_path / "articles"
    source.mkdir()
    for name in ("personalausweis-beantragen", "fundbuero"):
        shutil.copy(ARTICLES / f"{name}.md", source)
    report = build(BuildOptions(source=source, models_dir=tmp_path / "models", finetune=False))
    path = Path(report.path)
    assert (path / "offices.json").exists()
    index = KnowledgeIndex.load(path)
    names = {o.name for o in index.offices}
    assert names == {
        "Bürgerbüro Musterstadt-Mitte",
        "Bürgerbüro Musterstadt-Nord",
        "Ordnungsamt Musterstadt",
    }
    (path / "offices.json").unlink()  # an index built before offices existed
    assert len(KnowledgeIndex.load(path).offices) == 0

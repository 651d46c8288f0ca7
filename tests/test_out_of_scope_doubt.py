"""The choice of when a doubted "out of scope" gets choices (benchmarks/out_of_scope_doubt.py)."""

from __future__ import annotations

from benchmarks.out_of_scope_doubt import (
    Doubt,
    choose,
    counts,
    cross_validated,
    surely_out_of_scope,
)


def service(nlu: float, confidence: float, offered: bool = True, key: str = "s1") -> Doubt:
    return Doubt(nlu, confidence, answered=False, offered=offered, key=key)


def outside(nlu: float, confidence: float, key: str) -> Doubt:
    return Doubt(nlu, confidence, answered=False, offered=False, key=key)


def test_only_unsure_verdicts_the_catalogue_backs_and_does_not_answer_are_turned() -> None:
    services = [
        service(0.5, 0.6),  # turned, its service offered
        service(0.5, 0.6, offered=False),  # turned, others offered
        service(0.9, 0.9),  # the classifier is sure: refused
        service(0.5, 0.3),  # the catalogue is not: refused
        Doubt(0.5, 0.9, answered=True, offered=True, key="s2"),  # answered already
    ]
    others = [outside(0.5, 0.6, "a"), outside(0.5, 0.2, "b")]
    assert counts(services, others, 0.7, 0.55) == (1, 1, 1)


def test_the_choice_offers_the_most_within_the_allowance_for_out_of_scope() -> None:
    services = [service(0.6, 0.6, key=f"s{i}") for i in range(10)]
    services += [service(0.8, 0.6, key=f"t{i}") for i in range(10)]
    # Out-of-scope verdicts from 0.75 to 0.85, the catalogue at 0.6 for each: a classifier's
    # threshold of 0.75 or lower lets none of them through, 0.8 half, 0.85 and up all 40.
    many = [outside(0.75 + i / 400, 0.6, f"o{i}") for i in range(40)]
    below, at_least = choose(services, many)
    assert counts(services, many, below, at_least)[2] <= 0.03 * len(many)
    assert counts(services, many, below, at_least)[0] == 10
    figures = cross_validated(services, many, repeats=2)
    assert set(figures) == {"cv_offered_theirs", "cv_offered_others", "cv_out_of_scope_offered"}
    assert figures["cv_out_of_scope_offered"] == 0.0


def test_where_the_classifier_is_sure_the_catalogue_s_answers_are_counted_as_offers() -> None:
    services = [
        Doubt(0.9, 0.9, answered=True, offered=True, key="s1", first=True),
        Doubt(0.9, 0.9, answered=True, offered=True, key="s2", first=False),
        Doubt(0.5, 0.9, answered=True, offered=True, key="s3", first=True),  # doubted: answered
    ]
    others = [
        Doubt(0.95, 0.9, answered=True, offered=False, key="a"),
        Doubt(0.6, 0.9, answered=True, offered=False, key="b"),
        Doubt(0.95, 0.4, answered=False, offered=False, key="c"),
    ]
    assert surely_out_of_scope(services, others, 0.7) == {
        "sure_answers_right_now_offered": 1,
        "sure_answers_wrong_now_offered": 1,
        "out_of_scope_answered_now_offered": 1,
        "out_of_scope_answered_still": 1,
    }

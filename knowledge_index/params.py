"""Fusion weights and confidence bands, fit on questions and stored with the index.

Fusion is a weighted sum of the per-service scores of the retrievers (BM25 over the
text and over the names, character n-grams, dense; where the source has example
questions, the nearest example and BM25 over the examples). Weights are searched on a
simplex grid over the methods that score anything, which includes each single method, so
the chosen fusion is never worse than the best single method on the fitting questions.
Confidence is a logistic model of the top fused score and its margin over the runner-up;
two thresholds on it give the bands, and English questions have two of their own (their
German words are the dictionary's, so the same scores mean more).
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

METHODS = ("bm25", "char", "dense", "title", "examples", "exwords")


@dataclass
class Params:
    weights: dict[str, float] = field(
        default_factory=lambda: {"bm25": 0.3, "char": 0.2, "dense": 0.3, "title": 0.2}
    )
    # Confidence = sigmoid(a * top + b * margin + c)
    coef_top: float = 12.0
    coef_margin: float = 20.0
    intercept: float = -6.0
    answer_threshold: float = 0.5
    suggest_threshold: float = 0.2
    # English questions' own thresholds (None: the German ones); see fit_english_thresholds.
    english_answer_threshold: float | None = None
    english_suggest_threshold: float | None = None
    fitted_on: str = "defaults"

    def confidence(self, top: float, margin: float) -> float:
        z = self.coef_top * top + self.coef_margin * margin + self.intercept
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def thresholds(self, english: bool = False) -> tuple[float, float]:
        """(answer, suggest) thresholds for a German or an English question."""
        answer, suggest = self.english_answer_threshold, self.english_suggest_threshold
        if english and answer is not None and suggest is not None:
            return answer, suggest
        return self.answer_threshold, self.suggest_threshold

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> Params:
        return cls(**json.loads(path.read_text()))


def default_params() -> Params:
    """Params fitted on the Munich development questions, shipped for sources without questions."""
    path = Path(__file__).with_name("default_params.json")
    return Params.load(path) if path.exists() else Params()


@dataclass
class Example:
    """One fitting question: per-method service scores and the right services' indexes."""

    scores: dict[str, NDArray[np.float32]]
    expected: set[int]
    english: bool = False


def fuse(scores: dict[str, NDArray[np.float32]], weights: dict[str, float]) -> NDArray[np.float32]:
    total = np.zeros_like(next(iter(scores.values())))
    for name, weight in weights.items():
        if weight:
            total += weight * scores[name]
    return total


def top_margin(fused: NDArray[np.float32]) -> tuple[float, float, int]:
    """The top fused score, its margin over the runner-up, and the top service's position."""
    order = np.argsort(-fused)[:2]
    top = float(fused[order[0]])
    second = float(fused[order[1]]) if len(order) > 1 else 0.0
    return top, top - second, int(order[0])


def _ranking_figures(
    examples: list[Example], grid: list[dict[str, float]], k: int = 10
) -> NDArray[np.float64]:
    """(mrr@k, hit@1) of the answerable examples under each weighting of `grid` (rows).

    All weightings at once: per question one product of the grid with its score matrix.
    """
    methods = sorted({m for weights in grid for m in weights})
    matrix = np.asarray([[w.get(m, 0.0) for m in methods] for w in grid], dtype=np.float32)
    figures = np.zeros((len(grid), 2))
    answerable = [e for e in examples if e.expected]
    for example in answerable:
        fused = matrix @ np.stack([example.scores[m] for m in methods])
        best = fused[:, sorted(example.expected)].max(axis=1)
        rank = 1 + (fused > best[:, None]).sum(axis=1)
        figures[:, 0] += np.where(rank <= k, 1.0 / rank, 0.0)
        figures[:, 1] += rank == 1
    return figures / max(1, len(answerable))


def weight_grid(methods: tuple[str, ...] = METHODS, step: float = 0.1) -> list[dict[str, float]]:
    """Every weighting of `methods` in steps of `step` that sums to 1."""
    ticks = round(1 / step)
    return [
        dict(zip(methods, (round(t * step, 3) for t in (*head, ticks - sum(head))), strict=True))
        for head in itertools.product(range(ticks + 1), repeat=len(methods) - 1)
        if sum(head) <= ticks
    ]


TIE_MRR = 0.01


def fit_weights(examples: list[Example]) -> dict[str, float]:
    """The most even grid point among those within TIE_MRR of the best mrr@10.

    Single methods are grid corners, so the fit is never worse than the best single
    method (by more than TIE_MRR). With ~50 questions, differences below one
    question's worth are noise; among those the most even mix is kept, which
    transfers better to other catalogues than a corner the dev set happens to favour.
    Methods that score nothing for these questions (no example questions in the
    source) get no weight, so evenness does not spread weight onto them.
    """
    methods = tuple(m for m in METHODS if any(e.scores[m].any() for e in examples))
    grid = weight_grid(methods or METHODS[:1])
    figures = _ranking_figures(examples, grid)
    near = np.flatnonzero(figures[:, 0] >= figures[:, 0].max() - TIE_MRR)

    def evenness(row: int) -> tuple[float, float, float]:
        weights = np.asarray(list(grid[row].values()))
        nonzero = weights[weights > 0]
        return float(-(nonzero * np.log(nonzero)).sum()), *figures[row]

    chosen = grid[max(near.tolist(), key=evenness)]
    return {m: chosen.get(m, 0.0) for m in METHODS}


@dataclass
class _Outcome:
    """How the fitted confidence treats one fitting question."""

    confidence: float
    right: bool  # the top service is a right one
    in_top3: bool  # a right service is among the top 3
    answerable: bool


def _outcomes(examples: list[Example], params: Params) -> list[_Outcome]:
    outcomes = []
    for example in examples:
        fused = fuse(example.scores, params.weights)
        top, margin, best = top_margin(fused)
        top3 = {int(i) for i in np.argsort(-fused)[:3]}
        outcomes.append(
            _Outcome(params.confidence(top, margin), best in example.expected,
                     bool(example.expected & top3), bool(example.expected))
        )  # fmt: skip
    return outcomes


def _thresholds(outcomes: list[_Outcome]) -> tuple[float, float]:
    """The answer and suggest thresholds of the highest utility on `outcomes`."""
    candidates = [*sorted({o.confidence for o in outcomes}), 1.01]

    # Answer: a wrong answer costs twice what a right one gains.
    def answer_utility(t: float) -> float:
        return sum((1 if o.right else -2) for o in outcomes if o.confidence >= t)

    answer = max(candidates, key=lambda t: (answer_utility(t), t))

    # Suggest: below the answer band, candidates help when a right service is among the top 3
    # and mislead when there is no right service at all. Choices without the right one cost
    # nothing against the alternative (asking to rephrase): the citizen rephrases either way.
    def suggest_utility(t: float) -> float:
        return sum(
            (1 if o.in_top3 else 0) if o.answerable else -1
            for o in outcomes
            if t <= o.confidence < answer
        )

    lower = [t for t in candidates if t <= answer]
    return answer, max(lower, key=lambda t: (suggest_utility(t), t))


def fit_confidence(examples: list[Example], params: Params) -> Params:
    """Logistic confidence on (top, margin) and the two band thresholds."""
    from sklearn.linear_model import LogisticRegression

    features, labels = [], []
    for example in examples:
        top, margin, best = top_margin(fuse(example.scores, params.weights))
        features.append([top, margin])
        labels.append(int(best in example.expected))
    if len(set(labels)) == 2:
        model = LogisticRegression(C=100.0).fit(np.asarray(features), np.asarray(labels))
        params.coef_top, params.coef_margin = (float(c) for c in model.coef_[0])
        params.intercept = float(model.intercept_[0])
    params.answer_threshold, params.suggest_threshold = _thresholds(_outcomes(examples, params))
    return params


# English questions needed, right and wrong ones among them, to give English its thresholds.
MIN_ENGLISH = 10


def fit_english_thresholds(examples: list[Example], params: Params) -> Params:
    """Answer and suggest thresholds of their own for English questions, by the same utilities.

    An English question is searched with the dictionary's German words, so its scores run
    lower than a German question's of the same certainty: at the German thresholds 4 of 45
    English questions were answered rightly, at their own 19 of 45, with 3 wrong answers among
    55 questions (leave-one-out, docs/knowledge.md).
    """
    outcomes = _outcomes([e for e in examples if e.english], params)
    if len(outcomes) >= MIN_ENGLISH and len({o.right for o in outcomes}) == 2:
        params.english_answer_threshold, params.english_suggest_threshold = _thresholds(outcomes)
    return params


def fit(examples: list[Example], source: str, english: list[Example] | None = None) -> Params:
    """Weights, confidence and thresholds on `examples`; English thresholds on their English
    questions and `english` (more of them, which the German fit should not lean towards)."""
    params = fit_confidence(examples, Params(weights=fit_weights(examples), fitted_on=source))
    return fit_english_thresholds([*examples, *(english or [])], params)


def _service_folds(examples: list[Example], folds: int, seed: int) -> list[set[int]]:
    """Folds of example indexes that share no service: every service's questions go together.

    A question's group is its first expected service (unanswerable ones form one group each),
    so a fold is never ranked by weights fitted on another question about the same service.
    """
    groups: dict[object, list[int]] = {}
    for i, example in enumerate(examples):
        key: object = min(example.expected) if example.expected else ("none", i)
        groups.setdefault(key, []).append(i)
    keys = list(groups)
    order = np.random.default_rng(seed).permutation(len(keys))
    return [
        {i for g in part.tolist() for i in groups[keys[g]]} for part in np.array_split(order, folds)
    ]


def cross_validate(examples: list[Example], folds: int = 5, seeds: int = 20) -> dict[str, float]:
    """Ranking and band figures of a fit on other services' questions: the unseen estimate.

    In-sample figures of a fit on ~50 questions flatter it; here every question is ranked,
    and its band decided, by weights and thresholds fitted on folds that share no service
    with it (grouped by service). Averaged over `seeds` random fold splits, since with so
    few questions one split moves the estimate by a question or two.
    """
    hit1 = hit5 = answerable = 0.0
    answered = right = false_answers = unanswerable = 0.0
    for seed in range(seeds):
        for held in _service_folds(examples, folds, seed):
            train = [e for i, e in enumerate(examples) if i not in held]
            params = fit(train, "cv") if any(e.expected for e in train) else Params()
            for i in held:
                example = examples[i]
                fused = fuse(example.scores, params.weights)
                top, margin, best = top_margin(fused)
                answer_threshold, _ = params.thresholds(example.english)
                answers = params.confidence(top, margin) >= answer_threshold
                if not example.expected:
                    unanswerable += 1
                    false_answers += answers
                    continue
                answerable += 1
                top5 = np.argsort(-fused)[:5]
                hit1 += best in example.expected
                hit5 += bool(example.expected & {int(j) for j in top5})
                answered += answers
                right += answers and best in example.expected
    n = max(1.0, answerable)
    given = answered + false_answers
    return {
        "cv_hit@1": round(hit1 / n, 4),
        "cv_hit@5": round(hit5 / n, 4),
        # Over all questions, answerable or not: how often the bot answers, and how rightly.
        "cv_answer_rate": round(given / max(answerable + unanswerable, 1.0), 4),
        "cv_answer_precision": round(right / max(given, 1.0), 4),
        "cv_false_answer_rate": round(false_answers / max(unanswerable, 1.0), 4),
    }

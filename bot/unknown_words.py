"""An NLU component that distrusts intents of messages made only of words it never saw.

DIET spreads its confidence over the known intents even for "xkcd" or "asdf jklö"
(affirm 0.97): character n-grams of nonsense still resemble something. No
threshold separates that from real answers. What does separate it: not one word of
the message occurs in the training data. Such a message is not the classifier's
to judge; its confidence is capped below the FallbackClassifier's threshold, so it
becomes `nlu_fallback` and goes to the knowledge index, which has its own calibrated
confidence (a service name the NLU data never mentions is answered there; nonsense
gets the re-prompt). Messages with an extracted entity (a case number, an e-mail)
are left alone.

Placed in config.yml after DIETClassifier and before FallbackClassifier.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_RANKING_KEY, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.regex_entities import REGEX_EXTRACTOR

WORDS = re.compile(r"[^\W\d_]{2,}")
VOCABULARY_FILE = "vocabulary.json"


def words(text: str) -> set[str]:
    return {word.lower() for word in WORDS.findall(text or "")}


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER], is_trainable=True)
class UnknownWordsGuard(GraphComponent):
    @staticmethod
    def get_default_config() -> dict[str, Any]:
        # The confidence an all-unknown message keeps at most (below the fallback threshold).
        return {"capped_confidence": 0.3}

    def __init__(
        self,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        vocabulary: set[str],
    ) -> None:
        self._cap = float(config["capped_confidence"])
        self._storage = model_storage
        self._resource = resource
        self._vocabulary = vocabulary

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> UnknownWordsGuard:
        return cls(config, model_storage, resource, set())

    @classmethod
    def load(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> UnknownWordsGuard:
        try:
            with model_storage.read_from(resource) as directory:
                vocabulary = set(json.loads((directory / VOCABULARY_FILE).read_text()))
        except ValueError:  # trained without examples: nothing is known, nothing is capped
            vocabulary = set()
        return cls(config, model_storage, resource, vocabulary)

    def train(self, training_data: TrainingData) -> Resource:
        vocabulary: set[str] = set()
        for example in training_data.intent_examples:
            vocabulary |= words(example.get(TEXT))
        self._vocabulary = vocabulary
        with self._storage.write_to(self._resource) as directory:
            (directory / VOCABULARY_FILE).write_text(json.dumps(sorted(vocabulary)))
        return self._resource

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            if self._vocabulary and self._unknown(message):
                self._cap_confidence(message)
        return messages

    def _unknown(self, message: Message) -> bool:
        # A case number or an e-mail (found by their regexes) is meaningful however unknown.
        # DIET's own entities prove nothing: it tags nonsense as a street, too.
        if any(e.get("extractor") == REGEX_EXTRACTOR for e in message.get(ENTITIES) or []):
            return False
        return not (words(message.get(TEXT)) & self._vocabulary)

    def _cap_confidence(self, message: Message) -> None:
        intent = message.get(INTENT)
        if not intent or intent.get("confidence") is None:
            return
        intent["confidence"] = min(float(intent["confidence"]), self._cap)
        for ranked in message.get(INTENT_RANKING_KEY) or []:
            ranked["confidence"] = min(float(ranked["confidence"]), self._cap)

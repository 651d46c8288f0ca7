"""DIET's entity tagging, run only for the messages whose entities anything reads.

Profiled at saturation (docs/benchmarks.md, "Turn profile"), DIET's TensorFlow
inference was a fifth of Rasa's time per turn, on every message, while the two entities
it tags (`location`, `damage_category`) are annotated only in `report_damage` examples
and read only by the damage report's form. So the tagger runs when one of `intents`
is among the top `top_k` of the intent classifier's ranking (the classifier runs
before it in config.yml); other messages keep the regex entities only. A damage report
the classifier ranks low still gets its category and place: the form asks for them and
reads the answers with its own patterns (actions/damage_report.py).

A CRF in DIET's place (`bot/nlu_pipelines/g_crf_entities.yml`) costs nearly nothing but
found half the damage categories DIET finds on the held-out split (docs/nlu.md).
"""

from __future__ import annotations

from typing import Any

from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.nlu.classifiers.diet_classifier import DIETClassifier
from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY, INTENT_RANKING_KEY
from rasa.shared.nlu.training_data.message import Message


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=True)
class IntentGatedEntityTagger(DIETClassifier):
    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {**DIETClassifier.get_default_config(), "intents": [], "top_k": 2}

    def process(self, messages: list[Message]) -> list[Message]:
        wanted = [message for message in messages if self._wanted(message)]
        if wanted:
            super().process(wanted)
        return messages

    def _wanted(self, message: Message) -> bool:
        intents = set(self.component_config["intents"])
        if not intents:
            return True
        ranking = message.get(INTENT_RANKING_KEY) or [message.get(INTENT) or {}]
        top = ranking[: int(self.component_config["top_k"])]
        return any(entry.get(INTENT_NAME_KEY) in intents for entry in top)

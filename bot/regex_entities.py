"""An NLU component that leaves case numbers, postal codes and e-mails to their regexes.

Rasa's RegexEntityExtractor only uses a regex whose name is an annotated entity, so these
entities are annotated in the training data, and DIET learns them too. DIET then also tags
what merely looks similar ("MM-12" as a case number, "123" as a postal code). For these
entities the regex is the definition: whatever another extractor found for them is dropped.

Placed in config.yml after RegexEntityExtractor and before EntitySynonymMapper.
"""

from __future__ import annotations

from typing import Any

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, ENTITY_ATTRIBUTE_TYPE, EXTRACTOR
from rasa.shared.nlu.training_data.message import Message

REGEX_EXTRACTOR = "RegexEntityExtractor"


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=False)
class RegexOwnedEntities(GraphComponent):
    @staticmethod
    def get_default_config() -> dict[str, Any]:
        return {"entities": ["case_number", "postal_code", "email"]}

    def __init__(self, config: dict[str, Any]) -> None:
        self._owned = set(config["entities"])

    @classmethod
    def create(
        cls,
        config: dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> RegexOwnedEntities:
        return cls(config)

    def process(self, messages: list[Message]) -> list[Message]:
        for message in messages:
            entities = message.get(ENTITIES) or []
            kept = [
                e
                for e in entities
                if e.get(ENTITY_ATTRIBUTE_TYPE) not in self._owned
                or e.get(EXTRACTOR) == REGEX_EXTRACTOR
            ]
            if len(kept) != len(entities):
                message.set(ENTITIES, kept, add_to_output=True)
        return messages

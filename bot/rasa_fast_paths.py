"""Three of Rasa 3.6's per-turn costs, removed without changing what Rasa does.

Profiled with py-spy on the running Rasa server (docs/benchmarks.md, "Long
conversations"), each took about a fifth of Rasa's CPU in a conversation of
100 turns:
- `Event.resolve_by_type` walks every subclass of Event for each event it
  deserialises, and Rasa deserialises the whole stored tracker every turn;
  the class for a type name is looked up once here and kept.
- the action server's answer is checked with `jsonschema.validate`, which
  first validates the *schema* against its metaschema on every call; here
  the schema is checked once and its validator kept. The same errors are
  raised (best match, with Rasa's message appended).
- every call to the action server opens a new aiohttp session, and with it a
  new connection (`EndpointConfig.request`): about 5 % of Rasa's time at
  saturation (issue 16). One session per endpoint and event loop is kept,
  so its connections are reused; the headers, auth and timeout are Rasa's.
`install()` is called by bot/rasa_server.py before Rasa starts; the versions
are pinned in bot/requirements.txt, and tests/test_rasa_fast_paths.py checks
that both give Rasa's own results.
"""

from __future__ import annotations

from typing import Any


def install() -> None:
    _cache_event_classes()
    _keep_action_result_validator()
    _reuse_endpoint_sessions()


def _cache_event_classes() -> None:
    from rasa.shared.core.events import Event

    resolve = Event.resolve_by_type
    if getattr(resolve, "cached", False):
        return
    classes: dict[str, type[Event]] = {}

    def resolve_by_type(type_name: str, default: type[Event] | None = None) -> Any:
        found = classes.get(type_name)
        if found is None:
            found = resolve(type_name, default)
            # Only a real match is kept: defaults and unknown names ask Rasa again.
            if found is not None and found.type_name == type_name:
                classes[type_name] = found
        return found

    resolve_by_type.cached = True  # type: ignore[attr-defined]
    Event.resolve_by_type = staticmethod(resolve_by_type)  # type: ignore[method-assign]


def _keep_action_result_validator() -> None:
    from jsonschema import ValidationError, validators
    from jsonschema.exceptions import best_match
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    if getattr(RemoteAction._validate_action_result, "cached", False):
        return
    schema = RemoteAction.action_response_format_spec()
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema)

    def _validate_action_result(self: RemoteAction, result: dict[str, Any]) -> bool:
        error: ValidationError | None = best_match(validator.iter_errors(result))
        if error is None:
            return True
        error.message += (
            ". Failed to validate Action server response from API, "
            "make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit {DOCS_BASE_URL}/custom-actions"
        )
        raise error

    _validate_action_result.cached = True  # type: ignore[attr-defined]
    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]


class _KeptSession:
    """`async with` on a kept session hands it out and leaves it open."""

    def __init__(self, session: Any) -> None:
        self.session = session

    async def __aenter__(self) -> Any:
        return self.session

    async def __aexit__(self, *exc_info: object) -> None:
        return None


def _reuse_endpoint_sessions() -> None:
    import asyncio

    from rasa.utils.endpoints import EndpointConfig

    new_session = EndpointConfig.session
    if getattr(new_session, "kept", False):
        return

    def session(self: EndpointConfig) -> Any:
        loop = asyncio.get_running_loop()
        kept = self.__dict__.setdefault("_kept_sessions", {})
        current = kept.get(loop)
        if current is None or current.closed:
            current = kept[loop] = new_session(self)
        return _KeptSession(current)

    session.kept = True  # type: ignore[attr-defined]
    EndpointConfig.session = session  # type: ignore[method-assign]

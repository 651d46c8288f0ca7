"""The one typed settings object of the app environment, read from the environment.

Every process of the group (gateway, action server, admin commands, tests)
builds its settings here, so a port or limit is named once. The README lists
each setting; environment variable names are the field names in upper case.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    # --- where things run ---------------------------------------------------
    gateway_host: str = Field("127.0.0.1", description="Interface the gateway binds to.")
    gateway_port: int = Field(8000, description="Port of the gateway (demo page, sockets, APIs).")
    rasa_host: str = Field("127.0.0.1", description="Interface of the Rasa server.")
    rasa_port: int = Field(5005, description="Port of the Rasa server.")
    actions_port: int = Field(5055, description="Port of the action server (loopback only).")
    gateway_url: str = Field(
        "",
        description="How other processes (the action server) reach the gateway. Unset: "
        "http://GATEWAY_HOST:GATEWAY_PORT (loopback when bound to every interface).",
    )
    redis_url: str | None = Field(
        None,
        description="Redis to use, e.g. redis://host:6379/0. Unset: the embedded Redis "
        "that `make run` starts under DATA_DIR.",
    )
    redis_max_connections: int = Field(64, description="Redis connections per process.")
    data_dir: Path = Field(PROJECT_ROOT / "var", description="Runtime data (embedded Redis).")
    rasa_model: Path = Field(
        PROJECT_ROOT / "models" / "rasa" / "current.tar.gz",
        description="Trained Rasa model that `make run` serves.",
    )
    bot_venv: Path = Field(PROJECT_ROOT / ".venv-bot", description="The bot environment.")

    # --- knowledge index (knowledge_index/, docs/knowledge.md) -----------------
    knowledge_source: Path = Field(
        PROJECT_ROOT / "data" / "knowledge",
        description="What the bot answers from: a folder of Markdown articles or a DLDB "
        "services JSON file (its locations file is read from beside it).",
    )
    knowledge_dir: Path = Field(
        PROJECT_ROOT / "models" / "knowledge", description="Built indexes and fine-tuned encoders."
    )
    knowledge_model: Path | None = Field(
        None,
        description="Base sentence-transformers model directory. Unset: the packaged "
        "all-MiniLM-L6-v2 (production should use a multilingual model).",
    )
    knowledge_finetune: bool = Field(
        True, description="Fine-tune the encoder on the source's own titles, keywords and text."
    )
    knowledge_fit_questions: Path | None = Field(
        None,
        description="JSONL questions to fit fusion weights and confidence thresholds on for "
        "KNOWLEDGE_SOURCE. Unset: the shipped defaults (fit on the Munich dev questions).",
    )
    knowledge_exact_max: int = Field(
        20_000, description="Up to this many chunks the dense index searches exactly; above, HNSW."
    )

    # --- limits ---------------------------------------------------------------
    max_frame_bytes: int = Field(
        4096, description="Largest client frame accepted; larger ones get `too_large`."
    )
    max_text_chars: int = Field(2000, description="Longest citizen message text.")
    rate_limit_burst: int = Field(
        8, description="Citizen messages a connection may send at once before `rate_limited`."
    )
    rate_limit_per_minute: int = Field(
        30, description="Sustained citizen messages per minute per connection."
    )
    rasa_timeout_s: float = Field(
        15.0, description="How long a bot turn may take before the citizen is told the bot is down."
    )
    send_queue_frames: int = Field(
        512,
        description="Frames buffered for a slow client before its socket is closed "
        "(it reconnects and replays from the log).",
    )

    # --- handover to agents ---------------------------------------------------------
    agent_token_secret: str | None = Field(
        None,
        description="Key that signs agent tokens. Unset: a random key kept in Redis, "
        "shared by every gateway replica.",
    )
    agent_token_ttl_s: int = Field(8 * 3600, description="Lifetime of an agent's login token.")
    agent_grace_s: float = Field(
        60.0,
        description="How long an agent may be disconnected before their conversations "
        "go back to the head of their queues.",
    )
    presence_ttl_s: float = Field(
        30.0, description="An agent socket not refreshed for this long counts as gone."
    )
    city_name: str = Field(
        "",
        description="The city's name in what citizens read (\"der digitale Assistent der Stadt "
        "…\"). Unset: the city named most often in the knowledge source's office addresses.",
    )
    city_contact: str = Field(
        "die Behördennummer 115",
        description="Where citizens get personal help when the bot has no answer (German, "
        "fits \"… hilft Ihnen der Bürgerservice über {city_contact}\").",
    )
    service_hours: str = Field(
        "Mo-Fr 08:00-18:00",
        description="When agents take chats (Europe/Berlin), e.g. "
        "'Mo-Fr 08:00-18:00; Sa 09:00-12:00'; 'always' for round the clock.",
    )
    default_queue: str = Field("general", description="Queue for handovers that name none.")
    demo_agent: str | None = Field(
        None,
        description="`make run` sets this: a demo supervisor account with this username is "
        "created, its password kept in DATA_DIR/demo-agent-password.",
    )
    auto_assign: bool = Field(
        False,
        description="Give each queue's next conversation to the least-busy online agent with "
        "the queue among their skills and free capacity, instead of waiting for an accept. "
        "Set it alike on every replica.",
    )
    login_free_failures: int = Field(
        3, description="Failed logins per username before each further try is delayed."
    )

    # --- agent sign-in with the city's identity provider (docs/agent-sign-in.md) --
    oidc_issuer: str = Field(
        "", description="OpenID provider (issuer URL, e.g. a Keycloak realm). Unset: local "
        "accounts only.",
    )
    oidc_client_id: str = Field("", description="The gateway's client id at the provider.")
    oidc_client_secret: str = Field("", description="The gateway's client secret.")
    oidc_redirect_url: str = Field(
        "", description="Public URL of /api/agent/oidc/callback as registered at the provider. "
        "Unset: derived from the request (fine without a proxy).",
    )
    oidc_scopes: str = Field("openid profile email", description="Scopes the gateway asks for.")
    oidc_label: str = Field(
        "Mit dem Dienstkonto anmelden", description="The console's sign-in button."
    )
    oidc_username_claim: str = Field("preferred_username", description="Claim with the username.")
    oidc_name_claim: str = Field("name", description="Claim with the display name.")
    oidc_role_claim: str = Field(
        "roles", description="Claim (dotted path, e.g. realm_access.roles) with the user's roles.",
    )
    oidc_supervisor_roles: list[str] = Field(
        ["supervisor"], description="Role values that make a supervisor (JSON list)."
    )
    oidc_agent_roles: list[str] = Field(
        ["agent"], description="Role values that let an agent in at all (JSON list; [] = anyone "
        "the provider signs in).",
    )
    oidc_skills_claim: str = Field("groups", description="Claim with the user's queues (skills).")
    oidc_skill_prefix: str = Field(
        "", description="Only claim values with this prefix are skills, the prefix cut off "
        "(e.g. '/buergerservice/' for Keycloak group paths).",
    )

    # --- data protection ------------------------------------------------------
    retention_days: int = Field(
        30, description="Days a conversation is kept after its last event, then Redis expires it."
    )

    # --- damage reports and their status (handover/cases.py, docs/protocol.md) --
    case_api_token: str | None = Field(
        None,
        description="Bearer token the action server presents to create cases. Unset: nobody "
        "can create cases; `make run` keeps a random one in DATA_DIR/case-api-token.",
    )
    case_retention_days: int = Field(
        180, description="Days a case is kept after its last status change, then Redis expires it."
    )
    case_lookup_max_failures: int = Field(
        5,
        description="Failed status look-ups per conversation, client address or case number "
        "within CASE_LOOKUP_WINDOW_S before further look-ups are refused.",
    )
    case_lookup_window_s: int = Field(
        900, description="Window in which failed status look-ups are counted."
    )

    # --- operations -------------------------------------------------------------
    log_level: str = Field("info", description="debug, info, warning or error.")
    log_json: bool = Field(False, description="JSON log lines (for log shippers) instead of text.")

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    @property
    def rasa_url(self) -> str:
        return f"http://{self.rasa_host}:{self.rasa_port}"

    @model_validator(mode="after")
    def _derive_gateway_url(self) -> Settings:
        if not self.gateway_url:
            wildcard = self.gateway_host in ("", "0.0.0.0", "::")
            host = "127.0.0.1" if wildcard else self.gateway_host
            # Frozen: the derived default is filled in once, while validating.
            object.__setattr__(self, "gateway_url", f"http://{host}:{self.gateway_port}")
        else:
            object.__setattr__(self, "gateway_url", self.gateway_url.rstrip("/"))
        return self

    @property
    def embedded_redis_dir(self) -> Path:
        return self.data_dir / "redis"

    @property
    def embedded_redis_socket(self) -> Path:
        return self.embedded_redis_dir / "redis.sock"

    @property
    def effective_redis_url(self) -> str:
        """REDIS_URL, or the unix socket of the embedded Redis."""
        return self.redis_url or f"unix://{self.embedded_redis_socket}"

    @property
    def retention_s(self) -> int:
        return self.retention_days * 86_400

    @property
    def case_retention_s(self) -> int:
        return self.case_retention_days * 86_400


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

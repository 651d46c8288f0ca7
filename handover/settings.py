"""The one typed settings object of the app environment, read from the environment.

Every process of the group (gateway, action server, admin commands, tests)
builds its settings here, so a port or limit is named once. The README lists
each setting; environment variable names are the field names in upper case.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from limits import parse_many
from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from handover.ops.sentinel_url import sentinel_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent


# The demo portal's registration form (widget/portal/): its technical fields are shown in clear.
PV_FORM_PATH = "/portal/photovoltaik/antrag"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", frozen=True)

    # --- where things run ---------------------------------------------------
    gateway_host: str = Field("127.0.0.1", description="Interface the gateway binds to.")
    gateway_port: int = Field(8000, description="Port of the gateway (demo page, sockets, APIs).")
    rasa_host: str = Field("127.0.0.1", description="Interface of the Rasa server.")
    rasa_port: int = Field(5005, description="Port of the Rasa server.")
    rasa_urls: str = Field(
        "",
        description="Several Rasa replicas (comma-separated base URLs): each conversation's "
        "turns go to one of them by a consistent hash, the next when it is down. Empty: the "
        "one at RASA_HOST:RASA_PORT.",
    )
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
    trusted_proxies: str = Field(
        "",
        description="Comma-separated addresses or networks (e.g. 10.0.0.5,10.1.0.0/16) of "
        "reverse proxies whose X-Forwarded-For/-Proto the gateway believes. Empty: none, "
        "the client address is always the connecting peer (limits count per peer).",
    )
    redis_max_connections: int = Field(64, description="Redis connections per process.")
    redis_sentinels: str = Field(
        "",
        description='Sentinels that manage the Redis primary ("host:port,host:port"); set, '
        "every process connects to the primary they name and follows a failover. Replaces "
        "REDIS_URL.",
    )
    redis_sentinel_service: str = Field(
        "buergerservice", description="The service name the sentinels know the primary by."
    )
    redis_wait_replicas: int = Field(
        0,
        description="Replicas that must have every durable event before it is acknowledged "
        "(Redis WAIT; a connected replica that lags is waited for up to 2 s, a missing one "
        "is not): with 1, a failover loses no acknowledged message.",
    )
    data_dir: Path = Field(PROJECT_ROOT / "var", description="Runtime data (embedded Redis).")
    rasa_model: Path = Field(
        PROJECT_ROOT / "models" / "rasa" / "current.tar.gz",
        description="Trained Rasa model that `make run` serves.",
    )
    bot_venv: Path = Field(PROJECT_ROOT / ".venv-bot", description="The bot environment.")
    rasa_jwt_secret: str | None = Field(
        None,
        description="Key the gateway signs its calls to Rasa with (a short-lived HS256 JWT in "
        "the Authorization header); Rasa's HTTP API and the gateway channel refuse calls "
        "without it. Unset: `make run` keeps a random one in DATA_DIR/rasa-jwt-secret.",
    )
    action_server_token: str | None = Field(
        None,
        description="Bearer secret Rasa presents to the action server, which refuses every "
        "other call (401). Unset: `make run` keeps a random one in "
        "DATA_DIR/action-server-token.",
    )

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
    knowledge_examples: Path | None = Field(
        PROJECT_ROOT / "data" / "examples",
        description="Folder of example questions per service (JSONL, docs/knowledge.md); lines "
        "for services KNOWLEDGE_SOURCE does not hold are skipped. Unset or missing: none.",
    )
    knowledge_unanswerable: Path | None = Field(
        PROJECT_ROOT / "data" / "bot" / "nlu_questions.yml",
        description="Rasa NLU file whose out_of_scope examples teach the index's confidence "
        "what must not be answered (with the example questions, docs/knowledge.md).",
    )
    knowledge_exact_max: int = Field(
        20_000, description="Up to this many chunks the dense index searches exactly; above, HNSW."
    )

    # --- limits ---------------------------------------------------------------
    max_frame_bytes: int = Field(
        4096, description="Largest client frame accepted; larger ones get `too_large`."
    )
    max_text_chars: int = Field(2000, description="Longest citizen message text.")
    # Budgets in the notation of the `limits` library ("8/10 seconds; 30/minute": every
    # part must hold). Counted in Redis, so they hold across sockets and gateway replicas.
    citizen_message_limits: str = Field(
        "8/10 seconds; 30/minute",
        description="Citizen messages per conversation, over all its sockets; more get "
        "`rate_limited` and are not stored.",
    )
    citizen_typing_limits: str = Field(
        "10/10 seconds; 60/minute",
        description="Typing signals per conversation relayed to the agent; more are dropped "
        "without an error.",
    )
    citizen_csat_limits: str = Field(
        "3/minute; 10/hour", description="Satisfaction ratings per conversation."
    )
    citizen_end_limits: str = Field(
        "3/minute; 10/hour", description="`end` frames per conversation."
    )
    citizen_cobrowse_limits: str = Field(
        "10/minute; 60/hour",
        description="Co-browse answers and ends per conversation from the citizen.",
    )
    citizen_hello_limits: str = Field(
        "20/minute; 300/hour",
        description="Connections (hello frames) resuming one conversation; more are closed "
        "with 4429.",
    )
    address_connection_limits: str = Field(
        "60/minute; 1000/hour",
        description="New citizen sockets per client address; more are closed with 4429. "
        "Generous: many citizens may share one address (carrier NAT, a town hall).",
    )
    address_conversation_limits: str = Field(
        "20/minute; 200/hour",
        description="New conversations stored per client address (each is kept RETENTION_DAYS).",
    )
    address_message_limits: str = Field(
        "60/minute; 1500/hour",
        description="Citizen messages per client address over all its conversations.",
    )
    address_application_limits: str = Field(
        "5/minute; 30/hour",
        description="Applications (POST /api/applications/…) per client address, counted "
        "before the body is read; more get 429 and are not stored.",
    )
    hello_timeout_s: float = Field(
        5.0,
        description="How long the citizen socket waits for the `hello` frame before it "
        "starts a new conversation.",
    )
    max_body_bytes: int = Field(
        16 * 1024,
        description="Largest HTTP request body (bytes) a route accepts unless it has a limit "
        "of its own; larger ones get 413 while they stream in, before they are buffered.",
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
    conversation_token_secret: str | None = Field(
        None,
        description="Key that signs citizens' conversation tokens. Unset: a random key kept "
        "in Redis, shared by every gateway replica.",
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
        'fits "… hilft Ihnen der Bürgerservice über {city_contact}").',
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
        3,
        description="Login attempts per username (per username and address for an address "
        "it logged in from before) before each further try must wait: 0.5 s, doubling up "
        "to LOGIN_MAX_DELAY_S. Tries during the wait get 429 without a password check.",
    )
    login_max_delay_s: float = Field(
        60.0, description="Longest wait between login attempts for one username."
    )
    login_per_address_per_minute: int = Field(
        30, description="Login attempts a client address may make per minute (429 beyond)."
    )
    login_global_per_minute: int = Field(
        600,
        description="Login attempts per minute across all replicas and addresses (429 "
        "beyond); addresses an account logged in from before are exempt for that account.",
    )
    password_hash_workers: int = Field(
        1,
        ge=1,
        description="Threads per gateway that hash and verify passwords (argon2id, ~0.1 s "
        "each), so a login never runs on the event loop; further logins wait for one, "
        "briefly. One leaves the sockets a core on a 2-core machine; raise it on bigger ones.",
    )

    # --- co-browsing (handover/cobrowse/, docs/protocol.md "Co-browsing") ----------
    cobrowse_clear_fields: dict[str, list[str]] = Field(
        {PV_FORM_PATH: ["installation_type", "power_kwp", "listed_building", "grid_operator"]},
        description="Form fields an agent may see in clear while co-browsing, per portal "
        "page path (JSON: path → field names). Every other field's value is masked in the "
        "citizen's browser and dropped by the gateway.",
    )
    cobrowse_max_frame_bytes: int = Field(
        1024 * 1024,
        description="Largest co-browsing frame from the citizen's page (a full snapshot of "
        "a page); larger ones are refused.",
    )
    cobrowse_kib_limits: str = Field(
        "4096/10 seconds; 16384/minute",
        description="Co-browsing data (KiB) one conversation's page may send; more is "
        "refused and the page sends a fresh snapshot later.",
    )
    cobrowse_guide_limits: str = Field(
        "30/second; 600/minute",
        description="Pointer and highlight frames per conversation from the agent.",
    )
    cobrowse_grace_s: float = Field(
        15.0,
        description="How long co-browsing waits for a side's socket to come back (the "
        "citizen's next page) before it ends the session.",
    )

    # --- agent sign-in with the city's identity provider (docs/agent-sign-in.md) --
    oidc_issuer: str = Field(
        "",
        description="OpenID provider (issuer URL, e.g. a Keycloak realm). Unset: local "
        "accounts only.",
    )
    oidc_client_id: str = Field("", description="The gateway's client id at the provider.")
    oidc_client_secret: str = Field("", description="The gateway's client secret.")
    oidc_redirect_url: str = Field(
        "",
        description="Public URL of /api/agent/oidc/callback as registered at the provider. "
        "Unset: derived from the request (fine without a proxy).",
    )
    oidc_scopes: str = Field("openid profile email", description="Scopes the gateway asks for.")
    oidc_label: str = Field(
        "Mit dem Dienstkonto anmelden", description="The console's sign-in button."
    )
    oidc_username_claim: str = Field("preferred_username", description="Claim with the username.")
    oidc_name_claim: str = Field("name", description="Claim with the display name.")
    oidc_role_claim: str = Field(
        "roles",
        description="Claim (dotted path, e.g. realm_access.roles) with the user's roles.",
    )
    oidc_supervisor_roles: list[str] = Field(
        ["supervisor"], description="Role values that make a supervisor (JSON list)."
    )
    oidc_agent_roles: list[str] = Field(
        ["agent"],
        description="Role values that let an agent in at all (JSON list; [] = anyone "
        "the provider signs in).",
    )
    oidc_skills_claim: str = Field("groups", description="Claim with the user's queues (skills).")
    oidc_skill_prefix: str = Field(
        "",
        description="Only claim values with this prefix are skills, the prefix cut off "
        "(e.g. '/buergerservice/' for Keycloak group paths).",
    )

    # --- messenger channels (handover/channels/, docs/protocol.md "Channels") ---------
    # A channel without its secrets is off and says so at start.
    telegram_bot_token: str = Field(
        "", description="Telegram bot token from @BotFather. Unset: the Telegram channel is off."
    )
    telegram_webhook_secret: str = Field(
        "",
        description="Secret Telegram sends in X-Telegram-Bot-Api-Secret-Token with every "
        "update (set with `python -m handover.admin telegram-webhook`); 1-256 of A-Z a-z 0-9 _ -.",
    )
    telegram_api_url: str = Field(
        "https://api.telegram.org", description="Base URL of the Telegram Bot API."
    )
    whatsapp_access_token: str = Field(
        "", description="WhatsApp Cloud API access token (system user). Unset: WhatsApp is off."
    )
    whatsapp_phone_number_id: str = Field("", description="The sending phone number's id.")
    whatsapp_app_secret: str = Field(
        "", description="The Meta app's secret: webhooks are signed with it (X-Hub-Signature-256)."
    )
    whatsapp_verify_token: str = Field(
        "", description="Token Meta's webhook subscription handshake must present."
    )
    whatsapp_api_url: str = Field(
        "https://graph.facebook.com/v21.0", description="Base URL of the Graph API for WhatsApp."
    )
    whatsapp_template_name: str = Field(
        "",
        description="Approved template agents may send outside WhatsApp's 24-hour "
        "customer-service window (unset: none; the console says so).",
    )
    whatsapp_template_language: str = Field("de", description="The template's language code.")
    whatsapp_template_text: str = Field(
        "Wir haben eine Antwort auf Ihre Anfrage. Bitte schreiben Sie uns kurz, dann setzen wir "
        "das Gespräch hier fort.",
        description="What the template says, as the transcript and the agent show it.",
    )
    messenger_page_token: str = Field(
        "", description="Facebook page access token. Unset: Messenger is off."
    )
    messenger_app_secret: str = Field(
        "", description="The Meta app's secret: webhooks are signed with it (X-Hub-Signature-256)."
    )
    messenger_verify_token: str = Field(
        "", description="Token Meta's webhook subscription handshake must present."
    )
    messenger_api_url: str = Field(
        "https://graph.facebook.com/v21.0", description="Base URL of the Graph API for Messenger."
    )
    email_address: str = Field(
        "",
        description="The citizen service's chat mailbox, e.g. chat@musterstadt.example. "
        "Unset: the e-mail channel is off.",
    )
    email_display_name: str = Field("Bürgerservice", description="Sender name of replies.")
    email_listen_host: str = Field(
        "127.0.0.1", description="Interface of the gateway's SMTP listener for incoming mail."
    )
    email_listen_port: int = Field(
        0, ge=0, description="Port of the SMTP listener (0: the e-mail channel is off)."
    )
    email_trusted_relays: str = Field(
        "127.0.0.1/32,::1/128",
        description="Comma-separated networks of the mail servers "
        "that may deliver to the listener (they check SPF and DKIM).",
    )
    email_max_bytes: int = Field(
        262_144, gt=0, description="Largest incoming mail; larger ones are refused (552)."
    )
    email_smtp_host: str = Field("", description="SMTP relay for outgoing mail.")
    email_smtp_port: int = Field(25, description="Port of the SMTP relay.")
    email_smtp_user: str = Field("", description="SMTP relay user (unset: no login).")
    email_smtp_password: str = Field("", description="SMTP relay password.")
    email_smtp_starttls: bool = Field(False, description="Use STARTTLS towards the relay.")
    matrix_homeserver_url: str = Field(
        "", description="The city's Matrix homeserver. Unset: the Matrix channel is off."
    )
    matrix_user_id: str = Field(
        "", description="The bot account, e.g. @buergerservice:city.example."
    )
    matrix_access_token: str = Field("", description="The bot account's access token.")
    channel_send_timeout_s: float = Field(
        5.0,
        gt=0,
        description="How long one send to a messenger's API may take before it is "
        "retried (the outbox keeps the reply).",
    )
    outbox_lease_s: float = Field(
        10.0,
        gt=0,
        description="How long a replica sends a channel's outbox without renewing "
        "its lease; another takes over after it (kill -9, network loss).",
    )

    # --- data protection ------------------------------------------------------
    retention_days: int = Field(
        30, description="Days a conversation is kept after its last event, then Redis expires it."
    )
    tracker_retention_days: int | None = Field(
        None,
        description="Days Rasa's tracker of a conversation is kept in Redis after its last "
        "turn, then Redis expires it. Unset: RETENTION_DAYS.",
    )
    nlu_retention_days: int = Field(
        30,
        description="Days what the bot understood of each citizen turn (intent, confidence, "
        "entities) is kept; never longer than the conversation (RETENTION_DAYS).",
    )
    ticket_retention_days: int = Field(
        30,
        description="Days a 'leave a message' ticket (with the contact the citizen gave) is kept "
        "after it was written.",
    )
    csat_retention_days: int = Field(
        30,
        description="Days a satisfaction rating and its comment are kept; never longer than "
        "the conversation (RETENTION_DAYS).",
    )
    audit_retention_days: int = Field(
        90,
        description="Days the audit log (who read, exported or erased which conversation) is kept.",
    )
    deletion_record_retention_days: int = Field(
        365, description="Days a deletion record (what was erased, when, by whom) is kept."
    )
    pseudonym_secret: str | None = Field(
        None,
        description="Key of the keyed hash (HMAC) that stands for an e-mail address, phone "
        "number or conversation id in deletion records and the audit log. Unset: a random "
        "key kept in Redis, shared by every process.",
    )
    privacy_requests_per_minute: int = Field(
        20,
        description="Export and erasure requests a client address may make per minute "
        "(citizen and admin API, counted in Redis across replicas).",
    )

    # --- damage reports and their status (handover/cases/store.py, docs/protocol.md) --
    case_api_token: str | None = Field(
        None,
        description="Bearer token the action server presents to create cases. Unset: nobody "
        "can create cases; `make run` keeps a random one in DATA_DIR/case-api-token.",
    )
    case_retention_days: int = Field(
        180, description="Days a case is kept after its last status change, then Redis expires it."
    )
    case_lookup_max_failures: int = Field(
        10,
        description="Failed status look-ups one client (address) may make within "
        "CASE_LOOKUP_WINDOW_S, over all cases and through the chat and the API together, "
        "before further look-ups are refused (429).",
    )
    case_lookup_window_s: int = Field(
        3600, description="Window in which a client's failed status look-ups are counted."
    )
    case_lookup_pair_delay_s: float = Field(
        2.0,
        description="After a client's second failed look-up of one case, its next try of "
        "that case waits this long, doubling with each further failure. Only that client "
        "waits: the case's owner elsewhere is never locked out.",
    )
    case_lookup_pair_max_delay_s: float = Field(
        3600.0, description="Longest delay between one client's tries of one case."
    )

    # --- applications from the portal's forms (handover/applications/, docs/protocol.md) --
    application_retention_days: int = Field(
        180,
        description="Days an application (the form's values and its upload) is kept after "
        "it was submitted, then Redis expires it.",
    )

    # --- operations -------------------------------------------------------------
    log_level: str = Field("info", description="debug, info, warning or error.")
    log_json: bool = Field(False, description="JSON log lines (for log shippers) instead of text.")

    @property
    def trusted_proxy_list(self) -> list[str]:
        """TRUSTED_PROXIES as uvicorn's `forwarded_allow_ips` takes it."""
        return [item.strip() for item in self.trusted_proxies.split(",") if item.strip()]

    @property
    def oidc_enabled(self) -> bool:
        return bool(self.oidc_issuer and self.oidc_client_id)

    @property
    def rasa_url(self) -> str:
        return f"http://{self.rasa_host}:{self.rasa_port}"

    @property
    def rasa_replica_urls(self) -> list[str]:
        """The Rasa replicas the gateway sends turns to (RASA_URLS, else the one)."""
        named = [url.strip() for url in self.rasa_urls.split(",") if url.strip()]
        return named or [self.rasa_url]

    @field_validator(
        "citizen_message_limits", "citizen_typing_limits", "citizen_csat_limits",
        "citizen_end_limits", "citizen_hello_limits", "address_connection_limits",
        "address_conversation_limits", "address_message_limits", "address_application_limits",
    )  # fmt: skip
    @classmethod
    def _check_limits(cls, value: str) -> str:
        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError(f"not a rate limit like '8/10 seconds; 30/minute': {exc}") from None
        return value

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
        """The sentinels' URL, REDIS_URL, or the unix socket of the embedded Redis."""
        if self.redis_sentinels:
            return sentinel_url(self.redis_sentinels, self.redis_sentinel_service)
        return self.redis_url or f"unix://{self.embedded_redis_socket}"

    @property
    def retention_s(self) -> int:
        return self.retention_days * 86_400

    @property
    def tracker_retention_s(self) -> int:
        days = (
            self.retention_days
            if self.tracker_retention_days is None
            else self.tracker_retention_days
        )
        return days * 86_400

    @property
    def case_retention_s(self) -> int:
        return self.case_retention_days * 86_400

    @property
    def application_retention_s(self) -> int:
        return self.application_retention_days * 86_400

    @property
    def nlu_retention_s(self) -> int:
        return min(self.nlu_retention_days, self.retention_days) * 86_400

    @property
    def ticket_retention_s(self) -> int:
        return self.ticket_retention_days * 86_400

    @property
    def csat_retention_s(self) -> int:
        return min(self.csat_retention_days, self.retention_days) * 86_400

    @property
    def audit_retention_s(self) -> int:
        return self.audit_retention_days * 86_400

    @property
    def deletion_record_retention_s(self) -> int:
        return self.deletion_record_retention_days * 86_400


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()

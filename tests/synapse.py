"""A real Matrix homeserver for the tests: Synapse from PyPI on SQLite, on a free port.

`make test` installs Synapse into an environment of its own (`.cache/synapse-venv`), so its
pinned libraries never meet the app's. Accounts are made with Synapse's shared-secret
registration API, as an administrator would make the bot's account.
"""

from __future__ import annotations

import hashlib
import hmac
import subprocess
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.services import ROOT, Service, free_port, http_ok, start

SYNAPSE_PYTHON = ROOT / ".cache" / "synapse-venv" / "bin" / "python"
SERVER_NAME = "musterstadt.test"
SHARED_SECRET = "synapse-test-registration-secret"
# The tests send more, faster, than Synapse's defaults allow one user.
UNLIMITED = {"per_second": 1000, "burst_count": 1000}


def start_synapse(tmp: Path) -> Service:
    """Generate a config, open it up for the tests, and start the homeserver."""
    if not SYNAPSE_PYTHON.exists():
        raise RuntimeError(f"Synapse missing at {SYNAPSE_PYTHON}; `make test` installs it")
    data = tmp / "synapse"
    data.mkdir(exist_ok=True)
    config_path = data / "homeserver.yaml"
    port = free_port()
    subprocess.run(
        [str(SYNAPSE_PYTHON), "-m", "synapse.app.homeserver", "--server-name", SERVER_NAME,
         "--config-path", str(config_path), "--data-directory", str(data),
         "--generate-config", "--report-stats=no"],
        # Its log file is made in the working directory: the test's own, not the project's.
        check=True, capture_output=True, timeout=120, cwd=data,
    )  # fmt: skip
    config: dict[str, Any] = yaml.safe_load(config_path.read_text())
    config.update({
        "listeners": [{"port": port, "bind_addresses": ["127.0.0.1"], "type": "http",
                       "tls": False, "x_forwarded": False,
                       "resources": [{"names": ["client"], "compress": False}]}],
        "registration_shared_secret": SHARED_SECRET,
        "enable_registration": False,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "federation_domain_whitelist": [],
        "use_presence": False,
        "rc_message": UNLIMITED, "rc_login": {"address": UNLIMITED, "account": UNLIMITED,
                                             "failed_attempts": UNLIMITED},
        "rc_joins": {"local": UNLIMITED, "remote": UNLIMITED},
        "rc_invites": {"per_room": UNLIMITED, "per_user": UNLIMITED, "per_issuer": UNLIMITED},
        "rc_registration": UNLIMITED,
    })  # fmt: skip
    config_path.write_text(yaml.safe_dump(config))
    service = start([str(SYNAPSE_PYTHON), "-m", "synapse.app.homeserver", "-c", str(config_path)],
                    port, "synapse", tmp)  # fmt: skip
    service.wait_ready(lambda: http_ok(f"{service.url}/_matrix/client/versions"), 90, "synapse")
    return service


def register(service: Service, username: str, password: str) -> dict[str, Any]:
    """A new account through the shared-secret registration API; its user id and token."""
    url = f"{service.url}/_synapse/admin/v1/register"
    nonce = httpx.get(url, timeout=30).json()["nonce"]
    signed = b"\x00".join([nonce.encode(), username.encode(), password.encode(), b"notadmin"])
    mac = hmac.new(SHARED_SECRET.encode(), signed, hashlib.sha1)
    answer = httpx.post(url, json={"nonce": nonce, "username": username, "password": password,
                                   "admin": False, "mac": mac.hexdigest()}, timeout=30)  # fmt: skip
    answer.raise_for_status()
    account: dict[str, Any] = answer.json()
    return account

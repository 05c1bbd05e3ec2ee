"""Service configuration: environment first, then $VBILL_HOME/service.json, then defaults.

The attest secret is held with `repr=False` so it never appears in a log line or traceback.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vbill import paths
from vbill.billing.closing import DEFAULT_CHECK_INTERVAL, DEFAULT_GRACE_DAYS
from vbill.errors import ToolError


@dataclass(frozen=True)
class Settings:
    home: Path
    attest_secret: str | None = field(default=None, repr=False)
    dev: bool = False
    database_url: str | None = None
    prover_workers: int = 1
    # proving workers inside `vbill serve` (None: one per prover process; 0: proofs come from
    # separate `vbill worker` processes only)
    local_provers: int | None = None
    # chain (None: attest and verify only; ETH bundles wait as `pending` for a chain)
    network: str | None = None
    rpc_url: str | None = None
    settlement_address: str | None = None
    settle_interval: float = 2.0
    settle_batch: int = 8
    confirmations: int = 12
    anchor_interval: float = 60.0
    start_block: int | None = None  # where deposit scans begin (default: the deployment block)
    trusted_attesters: tuple[str, ...] = ()
    # USD per ETH for metered ETH bundles' usage.cost_usd: {"rate", "source", "time"?} or
    # {"file", "source"} (vbill.bundle.usage.RateSource); None: no cost_usd
    usd_rate: dict[str, Any] | None = None
    # webhooks (docs/operations.md): attempts before an event is dead, the first retry's wait
    # (s, doubling), one attempt's timeout (s); usage.threshold_reached fires as the day's
    # total crosses each share of the daily limit, balance.low below this many wei
    webhook_max_attempts: int = 10
    webhook_backoff: float = 2.0
    webhook_timeout: float = 10.0
    webhook_retention_days: float = 7.0  # delivered outbox rows are kept this long
    usage_thresholds: tuple[float, ...] = (0.8,)
    balance_low_wei: int | None = None
    # period windows (YYYY-MM, YYYY-MM-DD) are closed this many days after their period ends
    # (None: never automatically); checked every close_check_interval seconds
    close_grace_days: float | None = DEFAULT_GRACE_DAYS
    close_check_interval: float = DEFAULT_CHECK_INTERVAL

    @classmethod
    def from_env(cls, *, dev: bool = False, home: Path | None = None, **overrides: Any) -> Settings:
        """Env VDI_ATTEST_SECRET, DATABASE_URL, VBILL_NETWORK, VBILL_RPC_URL,
        VBILL_SETTLEMENT_ADDRESS; else the same keys (lower case) in $VBILL_HOME/service.json."""
        home = (home or paths.vbill_home()).resolve()
        config: dict[str, Any] = {}
        config_file = home / "service.json"
        if config_file.exists():
            try:
                config = json.loads(config_file.read_text())
            except json.JSONDecodeError as exc:
                raise ToolError(f"{config_file} is not valid JSON: {exc.msg}") from None
            _check_keys(config_file, config)

        def pick(env: str, key: str) -> Any:
            return os.environ.get(env) or config.get(key)

        values: dict[str, Any] = {
            "home": home,
            "dev": dev,
            "attest_secret": pick("VDI_ATTEST_SECRET", "attest_secret"),
            "database_url": pick("DATABASE_URL", "database_url"),
            "network": pick("VBILL_NETWORK", "network"),
            "rpc_url": pick("VBILL_RPC_URL", "rpc_url"),
            "settlement_address": pick("VBILL_SETTLEMENT_ADDRESS", "settlement_address"),
            "prover_workers": int(config.get("prover_workers", max(1, (os.cpu_count() or 1)))),
        }
        for key in (
            "settle_interval", "anchor_interval", "webhook_backoff", "webhook_timeout",
            "webhook_retention_days",
        ):  # fmt: skip
            if key in config:
                values[key] = float(config[key])
        for key in (
            "settle_batch", "confirmations", "start_block", "local_provers",
            "webhook_max_attempts", "balance_low_wei",
        ):  # fmt: skip
            if key in config:
                values[key] = int(config[key])
        if "usage_thresholds" in config:
            values["usage_thresholds"] = _shares(config_file, config["usage_thresholds"])
        if "usd_rate" in config:
            values["usd_rate"] = config["usd_rate"]
        if "close_grace_days" in config:  # null: no automatic close
            grace = config["close_grace_days"]
            values["close_grace_days"] = None if grace is None else _grace(grace, config_file)
        if "close_check_interval" in config:
            values["close_check_interval"] = float(config["close_check_interval"])
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def resolved(self) -> Settings:
        """Check the settings can serve; in --dev without a secret, create a local one (0600)
        in $VBILL_HOME/dev-attest-secret rather than accept unauthenticated attests."""
        if not (
            1 <= self.webhook_max_attempts <= 100
            and self.webhook_backoff > 0
            and self.webhook_timeout > 0
            and self.webhook_retention_days > 0
            and (self.balance_low_wei or 0) >= 0
        ):
            raise ToolError(
                "webhook settings out of range: webhook_max_attempts 1..100, webhook_backoff, "
                "webhook_timeout and webhook_retention_days > 0, balance_low_wei ≥ 0"
            )  # fmt: skip
        if self.attest_secret:
            if len(self.attest_secret) < 16:
                raise ToolError("VDI_ATTEST_SECRET is shorter than 16 characters; use a long one")
            return self
        if not self.dev:
            raise ToolError(
                "VDI_ATTEST_SECRET is not set (env or attest_secret in "
                f"{self.home / 'service.json'}); refusing to start without one (or use --dev)"
            )
        path = self.home / "dev-attest-secret"
        if not path.exists():
            self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32) + "\n")
        return Settings(**{**self.__dict__, "attest_secret": path.read_text().strip()})


CONFIG_KEYS = (
    "attest_secret",
    "database_url",
    "network",
    "rpc_url",
    "settlement_address",
    "prover_workers",
    "settle_interval",
    "anchor_interval",
    "settle_batch",
    "confirmations",
    "start_block",
    "local_provers",
    "usd_rate",
    "webhook_max_attempts",
    "webhook_backoff",
    "webhook_timeout",
    "webhook_retention_days",
    "usage_thresholds",
    "balance_low_wei",
    "close_grace_days",
    "close_check_interval",
)


def _shares(config_file: Path, value: Any) -> tuple[float, ...]:
    """usage_thresholds: a list of shares of a limit, each 0 < share ≤ 1."""
    if not isinstance(value, list) or not all(
        isinstance(v, int | float) and not isinstance(v, bool) and 0 < v <= 1 for v in value
    ):
        raise ToolError(f"{config_file}: usage_thresholds must be a list of shares 0 < s ≤ 1")
    return tuple(float(v) for v in value)


def _grace(value: Any, config_file: Path) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 3660:
        raise ToolError(f"{config_file}: close_grace_days must be a number of days 0..3660 or null")
    return float(value)


def _check_keys(config_file: Path, config: Any) -> None:
    """Refuse what `from_env` would not read: a typo must not silently fall back to a default."""
    if not isinstance(config, dict):
        raise ToolError(f"{config_file} must hold a JSON object")
    for key in config:
        if key not in CONFIG_KEYS:
            raise ToolError(
                f"{config_file}: unknown key {key!r}; the keys are {', '.join(CONFIG_KEYS)}"
            )

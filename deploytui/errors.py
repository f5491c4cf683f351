"""The exception hierarchy of deploytui.

Every message is written for the operator: it says what failed, where, and what to do.

    DeploytuiError
    ├── ConfigError        a config or registry file is malformed (exit code 2)
    ├── SourceError        an outside system could not be read (shown as "stale" / "unreachable")
    ├── StoreError         the embedded store cannot be written (disk full, read-only)
    ├── ActionRefused      an action was not attempted (read-only, lock held, validation, nothing to do)
    └── ActionFailed       an action was attempted and failed; the target was left as it was
"""

from __future__ import annotations

__all__ = [
    "ActionFailed",
    "ActionRefused",
    "ConfigError",
    "DeploytuiError",
    "SourceError",
    "StoreError",
]


class DeploytuiError(Exception):
    """Base class for every error deploytui raises on purpose."""


class ConfigError(DeploytuiError):
    """A configuration (or registry) file is invalid.

    ``problems`` holds one line per problem, each naming the key path, e.g.
    ``services[3].health_url: not a valid http(s) URL: 'htp:/x'``.
    """

    def __init__(self, path: str | None, problems: list[str] | str) -> None:
        self.path = path
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        where = f"{path}: " if path else ""
        if len(self.problems) == 1:
            text = f"{where}{self.problems[0]}"
        else:
            text = f"{where}{len(self.problems)} problems:\n" + "\n".join(
                f"  - {p}" for p in self.problems
            )
        super().__init__(text)


class SourceError(DeploytuiError):
    """An outside system (health endpoint, Kubernetes, Prometheus, Alertmanager) failed.

    ``kind`` is a short machine-readable reason: ``refused``, ``timeout``, ``dns``, ``tls``,
    ``http``, ``parse``, ``auth``, ``unavailable``.
    """

    def __init__(self, source: str, message: str, kind: str = "unavailable") -> None:
        self.source = source
        self.kind = kind
        super().__init__(f"{source}: {message}")


class StoreError(DeploytuiError):
    """The embedded store could not be read or written."""


class ActionRefused(DeploytuiError):
    """An action was refused before it touched anything (read-only, lock held, invalid input)."""

    def __init__(self, message: str, reason: str = "refused") -> None:
        self.reason = reason
        super().__init__(message)


class ActionFailed(DeploytuiError):
    """An action was attempted and failed; the target was left as it was."""

    def __init__(self, message: str, reason: str = "failed") -> None:
        self.reason = reason
        super().__init__(message)

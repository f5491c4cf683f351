"""The resources the simulated API serves, and the discovery documents kubectl reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["CREATE_ONLY", "RESOURCES", "Resource", "api_group_list", "api_resource_list", "api_versions", "by_kind", "lookup", "version_info"]

_VERBS = ["create", "delete", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class Resource:
    """One served resource type (``deployments.apps``...)."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``deployments.apps`` as used in error messages (``pods`` for the core group)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def singular(self) -> str:
        return self.kind.lower()


RESOURCES: tuple[Resource, ...] = (
    Resource("", "v1", "namespaces", "Namespace", False, ("ns",)),
    Resource("", "v1", "pods", "Pod", True, ("po",), ("all",)),
    Resource("", "v1", "events", "Event", True, ("ev",)),
    Resource("", "v1", "services", "Service", True, ("svc",), ("all",)),
    Resource("apps", "v1", "deployments", "Deployment", True, ("deploy",), ("all",), ("scale", "status")),
    Resource("apps", "v1", "replicasets", "ReplicaSet", True, ("rs",), ("all",), ("status",)),
    Resource("coordination.k8s.io", "v1", "leases", "Lease", True),
    Resource("authorization.k8s.io", "v1", "selfsubjectaccessreviews", "SelfSubjectAccessReview", False),
    Resource("events.k8s.io", "v1", "events", "Event", True, ("ev",)),
)

# Resources that only accept ``create`` (reviews are answered, never stored).
CREATE_ONLY = frozenset({"selfsubjectaccessreviews"})

_BY_PATH = {(r.group, r.version, r.plural): r for r in RESOURCES}
_BY_KIND: dict[str, Resource] = {}
for _r in RESOURCES:  # the first resource of a kind wins: core/v1 Events over events.k8s.io
    _BY_KIND.setdefault(_r.kind.lower(), _r)
    _BY_KIND.setdefault(_r.plural, _r)


def lookup(group: str, version: str, plural: str) -> Resource | None:
    return _BY_PATH.get((group, version, plural))


def by_kind(kind: str) -> Resource:
    """The resource for a kind or plural name, case-insensitive (``Deployment``, ``pods``)."""
    try:
        return _BY_KIND[kind.lower()]
    except KeyError:
        raise KeyError(f"the simulated API does not serve {kind!r}") from None


def version_info() -> dict[str, str]:
    """Every field of ``version.Info`` (the Python client requires them all)."""
    return {
        "major": "1",
        "minor": "32",
        "gitVersion": "v1.32.0-deploytui-sim",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2024-12-11T00:00:00Z",
        "goVersion": "go1.23.4",
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}],
    }


def api_group_list() -> dict[str, Any]:
    groups: list[dict[str, Any]] = []
    for group in sorted({r.group for r in RESOURCES if r.group}, key=lambda g: (g != "apps", g)):
        version = next(r.version for r in RESOURCES if r.group == group)
        gv = {"groupVersion": f"{group}/{version}", "version": version}
        groups.append({"name": group, "versions": [gv], "preferredVersion": gv})
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    served = [r for r in RESOURCES if r.group == group and r.version == version]
    if not served:
        return None
    entries: list[dict[str, Any]] = []
    for r in served:
        entry: dict[str, Any] = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": ["create"] if r.plural in CREATE_ONLY else list(_VERBS),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        entries.append(entry)
        for sub in r.subresources:
            if sub == "scale":
                entries.append(
                    {
                        "name": f"{r.plural}/scale",
                        "singularName": "",
                        "namespaced": True,
                        "group": "autoscaling",
                        "version": "v1",
                        "kind": "Scale",
                        "verbs": ["get", "patch", "update"],
                    }
                )
            else:
                entries.append(
                    {
                        "name": f"{r.plural}/{sub}",
                        "singularName": "",
                        "namespaced": r.namespaced,
                        "kind": r.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
    gv = f"{group}/{version}" if group else version
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": entries}

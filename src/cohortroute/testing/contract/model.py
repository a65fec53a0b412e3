"""The reference model of a store, and the Hypothesis steps the model test draws."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from ...bucketing import bucket
from ...errors import ConflictError, UnknownVersionError
from ...policy import TenantRecord, parse_percent
from ...store.base import Store
from ._base import V1, V2, V3, _drop_rollout, _halt

log = logging.getLogger(__name__)

_TENANTS = ("acme", "Beta-Co", "zeta", "a1")
_TAGS = ("beta", "Internal", "paid")
_KNOWN = (V1, V2, V3)


def _model_steps(max_steps: int) -> Any:
    """A Hypothesis strategy for sequences of store operations (imported lazily)."""
    from hypothesis import strategies as st

    any_version = st.sampled_from((*_KNOWN, "9.9"))  # 9.9 is never registered
    tenant = st.sampled_from(_TENANTS)
    tag = st.sampled_from(_TAGS)
    percent = st.one_of(st.integers(0, 100), st.sampled_from(("0.5", "12.25%", "100")))
    text = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=8)
    leaf = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**53), 2**53),
        st.floats(allow_nan=False, allow_infinity=False),
        text,
    )
    value = st.recursive(
        leaf,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
        max_leaves=6,
    )
    state = st.dictionaries(text, value, max_size=3)
    step = st.one_of(
        st.tuples(
            st.just("register"),
            st.lists(st.sampled_from(_KNOWN), min_size=1, unique=True).map(tuple),
            st.one_of(st.none(), st.sampled_from(_KNOWN)),
        ),
        st.tuples(st.just("default"), any_version),
        st.tuples(st.just("pin"), tenant, any_version),
        st.tuples(st.just("unpin"), tenant),
        st.tuples(st.just("tag"), tenant, tag),
        st.tuples(st.just("untag"), tenant, tag),
        st.tuples(st.just("rule"), tag, any_version),
        st.tuples(st.just("unrule"), tag),
        st.tuples(st.just("start"), any_version, percent),
        st.tuples(st.just("percent"), percent),
        st.tuples(st.just("halt")),
        st.tuples(st.just("rollback")),
        st.tuples(st.just("state"), tenant, state),
        st.tuples(st.just("ratchet"), tenant, st.one_of(st.none(), st.sampled_from(_KNOWN))),
    )
    # Most sequences start from registered versions, so they reach the interesting states.
    start = st.sampled_from([[("register", _KNOWN, V1)], [("register", _KNOWN, V1)], []])
    return st.builds(list.__add__, start, st.lists(step, max_size=max_steps))


def _perform(store: Store, step: tuple[Any, ...]) -> int:
    """Apply one model step to a store through its public API."""
    kind, *args = step
    if kind == "register":
        return store.register_versions(args[0], default=args[1])
    if kind == "default":
        return store.set_default(args[0])
    if kind == "pin":
        return store.pin(args[0], args[1])
    if kind == "unpin":
        return store.unpin(args[0])
    if kind == "tag":
        return store.tag(args[0], args[1])
    if kind == "untag":
        return store.untag(args[0], args[1])
    if kind == "rule":
        return store.set_rule(args[0], args[1])
    if kind == "unrule":
        return store.remove_rule(args[0])
    if kind == "start":
        return store.start_rollout(args[0], args[1], salt=f"salt-{args[0]}")
    if kind == "percent":
        return store.set_percent(args[0])
    if kind == "halt":
        return store.update_rollout("halt", _halt)
    if kind == "rollback":
        return store.update_rollout("rollback", _drop_rollout)
    if kind == "state":
        state = args[1]
        return store.update_tenant(args[0], "state", lambda r, p: replace(r, state=state))
    if kind == "ratchet":
        version = args[1]
        return store.update_tenant(args[0], "ratchet", lambda r, p: replace(r, ratchet=version))
    raise AssertionError(f"unknown step {step!r}")


class _Model:
    """The store's documented behaviour in plain Python: what each operation should leave."""

    def __init__(self) -> None:
        self.revision = 0
        self.versions: set[str] = set()
        self.default: str | None = None
        self.rules: dict[str, str] = {}
        self.rollout: dict[str, Any] | None = None
        self.tenants: dict[str, dict[str, Any]] = {}
        self.audit: list[tuple[str, str | None]] = []

    def _record(self, name: str) -> dict[str, Any]:
        return self.tenants.setdefault(
            name, {"pin": None, "tags": set(), "ratchet": None, "state": {}}
        )

    def apply(self, step: tuple[Any, ...]) -> type[Exception] | None:
        """Apply a step; return the exception the store must raise, or None."""
        kind, *args = step
        logged: list[tuple[str, str | None]] = []
        version_at = {"default": 0, "pin": 1, "rule": 1, "start": 0}.get(kind)
        if version_at is not None and args[version_at] not in self.versions:
            return UnknownVersionError
        if kind == "register":
            names, default = list(args[0]), args[1]
            if default is not None and default not in names:
                names.append(default)
            for v in names:
                if v not in self.versions:
                    self.versions.add(v)
                    logged.append(("register-version", None))
            if self.default is None and default is not None:
                self.default = default
                logged.append(("set-default", None))
        elif kind == "default":
            if self.default != args[0]:
                self.default = args[0]
                logged.append(("set-default", None))
        elif kind in ("pin", "unpin", "tag", "untag", "state", "ratchet"):
            name = args[0].lower()
            record = self._record(name)
            field = {"unpin": "pin", "tag": "tags", "untag": "tags"}.get(kind, kind)
            if kind == "tag":
                value = record["tags"] | {args[1].lower()}
            elif kind == "untag":
                value = record["tags"] - {args[1].lower()}
            else:
                value = None if kind == "unpin" else args[1]
            if record[field] != value:
                record[field] = value
                logged.append((kind, name))
            if not (record["pin"] or record["tags"] or record["ratchet"] or record["state"]):
                del self.tenants[name]
        elif kind == "rule":
            tag = args[0].lower()
            if self.rules.get(tag) != args[1]:
                self.rules[tag] = args[1]
                logged.append(("rule", None))
        elif kind == "unrule":
            if self.rules.pop(args[0].lower(), None) is not None:
                logged.append(("remove-rule", None))
        elif kind == "start":
            if self.rollout is not None or args[0] == self.default:
                return ConflictError
            self.rollout = {
                "candidate": args[0],
                "percent": parse_percent(args[1]),
                "salt": f"salt-{args[0]}",
                "halted": False,
            }
            logged.append(("rollout-start", None))
        elif kind == "percent":
            points = parse_percent(args[0])
            if self.rollout is None:
                return ConflictError
            if points < self.rollout["percent"]:
                self._mark_ratchets(points)
            if self.rollout["percent"] != points:
                self.rollout["percent"] = points
                logged.append(("rollout-set", None))
        elif kind == "halt":
            if self.rollout is not None and not self.rollout["halted"]:
                self.rollout["halted"] = True
                logged.append(("halt", None))
        elif kind == "rollback" and self.rollout is not None:
            self.rollout = None
            logged.append(("rollback", None))
        if logged:
            self.revision += 1
            self.audit.extend(logged)
        return None

    def _mark_ratchets(self, points: int) -> None:
        """Lowering marks, in one write of its own, every tenant the bucket serves the
        candidate that the new percentage would drop (the ratchet)."""
        assert self.rollout is not None
        candidate, salt = self.rollout["candidate"], self.rollout["salt"]
        marked = []
        for name in sorted(self.tenants):
            record = self.tenants[name]
            ruled = any(tag in record["tags"] for tag in self.rules)
            if record["pin"] is not None or ruled or record["state"].get("held") == salt:
                continue
            b = bucket(salt, name)
            on_candidate = b < self.rollout["percent"] or record["ratchet"] == candidate
            if on_candidate and b >= points and record["ratchet"] != candidate:
                record["ratchet"] = candidate
                marked.append(("ratchet", name))
        if marked:
            self.revision += 1
            self.audit.extend(marked)

    def assert_matches(self, store: Store) -> None:
        """The store holds exactly the model's state, and reads it back the same way."""
        assert store.revision() == self.revision
        policy = store.policy()
        assert policy.revision == self.revision
        assert policy.versions == frozenset(self.versions)
        assert policy.default == self.default
        assert policy.rules == tuple(self.rules.items())
        if self.rollout is None:
            assert policy.rollout is None
        else:
            rollout = policy.rollout
            assert rollout is not None
            got = {
                "candidate": rollout.candidate,
                "percent": rollout.percent,
                "salt": rollout.salt,
                "halted": rollout.halted,
            }
            assert got == self.rollout
        expected = [self.expected_record(name) for name in sorted(self.tenants)]
        assert list(store.tenants()) == expected
        for name in _TENANTS:
            assert store.tenant(name.lower()) == self.expected_record(name.lower())

    def expected_record(self, name: str) -> TenantRecord:
        record = self.tenants.get(name)
        if record is None:
            return TenantRecord(name)
        return TenantRecord(
            name,
            pin=record["pin"],
            tags=frozenset(record["tags"]),
            ratchet=record["ratchet"],
            state=record["state"],
        )

    def assert_history(self, store: Store) -> None:
        """The audit log holds one entry per change, in order, under the right revisions."""
        entries = list(reversed(store.history(limit=len(self.audit) + 10)))
        assert [(e.action, e.tenant) for e in entries] == self.audit
        revisions = [e.revision for e in entries]
        assert revisions == sorted(revisions)
        assert (revisions[-1] if revisions else 0) == self.revision

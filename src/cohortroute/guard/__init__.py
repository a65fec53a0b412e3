"""The guard: halt or roll back a rollout automatically from per-tenant evidence.

Each candidate tenant is compared with its own baseline (its recent history on the stable
version, shrunk towards the global rate), corrected by the stable cohort over the same minutes,
with an always-valid sequential test (a mixture likelihood ratio and Ville's inequality), so it
may be checked every minute for the whole rollout. docs/guard.md describes the method.

* :mod:`.stats` -- the arithmetic; :mod:`.evidence` -- observed and expected counts;
  :mod:`.verdict` -- the decision and the promotion gate; :mod:`.assess` -- reading the sink;
* :mod:`.actions` -- acting through the rollout controller; :mod:`.lease` -- one guard at a time;
  :mod:`.evaluator` -- :class:`Guard`, the loop; :mod:`.simulation` -- the seeded study.
"""

from __future__ import annotations

from .assess import Assessment, assess
from .evaluator import Check, Guard
from .verdict import GuardConfig, Verdict

__all__ = ["Assessment", "Check", "Guard", "GuardConfig", "Verdict", "assess"]

"""``rollout run`` without ``--once`` says what its first pass found, even when nothing moved.

For a rollout that needs no data migration (or whose reached tenants are all migrated), the
loop printed nothing at all, pass after pass, while ``--once`` says "no tenant to move / b needs
no data migration": an operator could not tell a working loop from a hung one.
"""

from __future__ import annotations

import io
from pathlib import Path

from cohortroute.cli.context import Context
from cohortroute.cli.main import build_parser
from cohortroute.cli.rollout import cmd_rollout_run
from cohortroute.rollout import RolloutController
from cohortroute.store import open_store


class Stop(Exception):
    pass


def test_the_first_pass_of_the_loop_reports_even_an_empty_run(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    store = open_store(url)
    store.register_versions(["a", "b"], "a")
    controller = RolloutController(store)
    controller.register(["acme", "globex"])
    controller.start("b", percent=50)
    store.close()

    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        if len(waits) == 2:
            raise Stop  # two passes are enough

    out, err = io.StringIO(), io.StringIO()
    args = build_parser().parse_args(
        ["--store", url, "rollout", "run", "--interval", "5", "--no-guard"]
    )
    ctx = Context(url, "test", out, err, sleep=sleep)
    try:
        cmd_rollout_run(args, ctx)
    except Stop:
        pass
    finally:
        ctx.close()
    assert waits == [5.0, 5.0]
    said = out.getvalue()
    assert said.count("no tenant to move") == 1, said  # once, not every pass
    assert "needs no data migration" in said

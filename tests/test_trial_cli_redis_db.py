"""A Redis URL naming a database the server does not have is a usage error that says so.

``--store redis://host:6379/99`` used to exit 1 with "DB index is out of range. If a key under
'cohortroute:' holds the wrong type, another program wrote there": advice about keys, for a URL
mistake. It is now exit 2 (like a wrong host), naming the database number and what to use instead.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import pytest
import redis

from cohortroute.errors import StoreUnavailableError
from cohortroute.store import open_store
from tests.cli_inproc import cli

pytest.register_assert_rewrite("tests.services")
from tests.services import with_query  # noqa: E402

pytest_plugins = ("tests.services",)
pytestmark = pytest.mark.redis


def _beyond_the_last_db(server: str, admin: redis.Redis) -> str:
    try:  # CONFIG may be disabled (renamed) on a managed server: 65535 is the URL's maximum
        count = int(admin.config_get("databases").get("databases") or 65535)
    except redis.ResponseError:
        count = 65535
    return urlunsplit(urlsplit(server)._replace(path=f"/{count}"))


def test_a_database_number_out_of_range_is_a_usage_error(
    redis_server: str, redis_admin: redis.Redis
) -> None:
    url = with_query(_beyond_the_last_db(redis_server, redis_admin), mode="rw")
    result = cli("status", store=url)
    assert result.code == 2, result.out + result.err
    assert "Traceback" not in result.err
    assert "database" in result.err and "out of range" in result.err
    assert "holds the wrong type" not in result.err


def test_open_store_raises_unavailable_naming_the_database(
    redis_server: str, redis_admin: redis.Redis
) -> None:
    store = open_store(_beyond_the_last_db(redis_server, redis_admin))
    try:
        with pytest.raises(StoreUnavailableError, match="/0"):
            store.revision()
    finally:
        store.close()

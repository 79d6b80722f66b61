"""Settings: defaults, ``TETHER_*`` environment, explicit overrides, database URLs."""

from __future__ import annotations

import pytest

from tether.config import DEFAULT_DB_URL, Settings, database_url_from, load_settings
from tether.errors import InvalidRequest


def test_defaults() -> None:
    settings = load_settings({})
    assert settings == Settings(database_url=database_url_from(DEFAULT_DB_URL))
    assert settings.flush_interval_ms == 50
    assert settings.host == "127.0.0.1"


def test_environment_is_read_and_typed() -> None:
    settings = load_settings(
        {
            "TETHER_MAX_BODY_BYTES": "2048",
            "TETHER_FLUSH_INTERVAL_MS": "10",
            "TETHER_AUDIENCE": "api",
            "UNRELATED": "x",
        }
    )
    assert settings.max_body_bytes == 2048
    assert settings.flush_interval_ms == 10
    assert settings.audience == "api"


def test_explicit_arguments_beat_the_environment_and_none_means_unset() -> None:
    env = {"TETHER_PORT": "9000", "TETHER_HOST": "::1"}
    settings = load_settings(env, port=9100, host=None)
    assert settings.port == 9100
    assert settings.host == "::1"


@pytest.mark.parametrize("raw", ["ten", "1.5", ""])
def test_a_non_integer_is_an_error_naming_the_variable(raw: str) -> None:
    with pytest.raises(
        InvalidRequest, match=f"`TETHER_MAX_BODY_BYTES` must be an integer, got `{raw}`"
    ):
        load_settings({"TETHER_MAX_BODY_BYTES": raw})


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("TETHER_FLUSH_INTERVAL_MS", "-1"),
        ("TETHER_RELOAD_INTERVAL_MS", "0"),
        ("TETHER_MAX_BODY_BYTES", "0"),
        ("TETHER_PORT", "70000"),
        ("TETHER_SEARCH_PAGE_SIZE", "0"),
        ("TETHER_HEADER_TIMEOUT_S", "0"),
        ("TETHER_BODY_TIMEOUT_S", "0"),
        ("TETHER_KEEP_ALIVE_S", "0"),
        ("TETHER_MAX_CONNECTIONS", "0"),
        ("TETHER_MAX_CONNECTIONS_PER_ADDRESS", "0"),
    ],
)
def test_out_of_range_numbers_are_refused(name: str, raw: str) -> None:
    with pytest.raises(InvalidRequest, match=f"`{name}`"):
        load_settings({name: raw})


def test_out_of_range_override_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="`flush_interval_ms`"):
        load_settings({}, flush_interval_ms=-5)


def test_environment_database_url_is_normalised() -> None:
    settings = load_settings({"TETHER_DATABASE_URL": "postgresql://u@h/db"})
    assert settings.database_url == "postgresql+psycopg://u@h/db"


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("postgresql://u@h:5432/db", "postgresql+psycopg://u@h:5432/db"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
        ("sqlite:///x/y.db", "sqlite:///x/y.db"),
        ("data/tether.db", "sqlite:///data/tether.db"),
        ("/abs/tether.db", "sqlite:////abs/tether.db"),
    ],
)
def test_database_url_accepts_urls_and_plain_paths(value: str, url: str) -> None:
    assert database_url_from(value) == url
    assert load_settings({}, database_url=value).database_url == url


def test_caller_limits_come_from_the_environment_and_are_bounded() -> None:
    settings = load_settings({"TETHER_RATE_LIMIT_PER_S": "5", "TETHER_RATE_LIMIT_BURST": "7"})
    assert (settings.rate_limit_per_s, settings.rate_limit_burst) == (5, 7)
    assert load_settings({}).rate_limit_per_s >= 20_000  # the benchmarks are one caller
    with pytest.raises(InvalidRequest, match="rate_limit_per_s"):
        load_settings({"TETHER_RATE_LIMIT_PER_S": "0"})
    with pytest.raises(InvalidRequest, match="max_header_bytes"):
        load_settings({"TETHER_MAX_HEADER_BYTES": "10"})


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        *[("true", True), ("TRUE", True), ("1", True), ("yes", True), (" Yes ", True)],
        *[("false", False), ("False", False), ("0", False), ("no", False)],
    ],
)
def test_fail_closed_unrecorded_is_a_boolean_from_the_environment(raw: str, value: bool) -> None:
    assert load_settings({}).fail_closed_unrecorded is True
    assert load_settings({"TETHER_FAIL_CLOSED_UNRECORDED": raw}).fail_closed_unrecorded is value


@pytest.mark.parametrize("raw", ["", "on", "2", "tru", "nein"])
def test_a_non_boolean_is_an_error_naming_the_variable(raw: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        load_settings({"TETHER_FAIL_CLOSED_UNRECORDED": raw})
    assert "`TETHER_FAIL_CLOSED_UNRECORDED`" in caught.value.message
    assert "true or false" in caught.value.message
    assert f"got `{raw}`" in caught.value.message

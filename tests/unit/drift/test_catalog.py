"""The default tool catalog: roles from verbs and nouns, targets, estate overrides."""

from __future__ import annotations

import pytest

from tether.drift.catalog import (
    DefaultToolCatalog,
    classify,
    normalise_target,
    target_values,
    words_of,
)
from tether.drift.model import ToolInfo, ToolRole


@pytest.mark.parametrize(
    ("tool", "role"),
    [
        ("send_email", ToolRole.SINK),
        ("sendMoney", ToolRole.SINK),
        ("post-message", ToolRole.SINK),
        ("share_file", ToolRole.SINK),
        ("invite_user", ToolRole.SINK),
        ("reserve_hotel", ToolRole.SINK),
        ("schedule_transaction", ToolRole.SINK),  # a write on a payment moves value out
        ("update_scheduled_payment", ToolRole.SINK),
        ("get_webpage", ToolRole.SINK),  # a request to an arbitrary URL is egress
        ("create_calendar_event", ToolRole.MUTATE),
        ("delete_file", ToolRole.MUTATE),
        ("update_password", ToolRole.MUTATE),
        ("read_file", ToolRole.SOURCE),
        ("get_iban", ToolRole.SOURCE),
        ("read_inbox", ToolRole.SOURCE),
        ("get_secret_value", ToolRole.SOURCE),
        ("get_hotels_prices", ToolRole.READ),
        ("get_current_day", ToolRole.READ),
        ("", ToolRole.READ),
    ],
)
def test_classify_by_verb_and_nouns(tool: str, role: ToolRole) -> None:
    assert classify(tool) is role


def test_words_of_splits_every_naming_style() -> None:
    assert words_of("mail.sendMessage") == ["mail", "send", "message"]


def test_overrides_win_over_the_name() -> None:
    catalog = DefaultToolCatalog.from_mapping(
        {"notify_vendor": {"role": "read"}, "lookup": {"role": "sink", "targets": ["vendor_id"]}}
    )
    assert catalog.info("notify_vendor").role is ToolRole.READ
    assert catalog.info("lookup") == ToolInfo(ToolRole.SINK, ("vendor_id",))
    assert catalog.info("send_email").role is ToolRole.SINK


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ({"t": {"role": "exfiltrate"}}, "unknown role `exfiltrate`"),
        ({"t": {"targets": "to"}}, "`targets` must be a list"),
        ({"t": "sink"}, "must map to"),
    ],
)
def test_bad_overrides_are_refused(declared: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DefaultToolCatalog.from_mapping(declared)


def test_target_values_flatten_lists_and_skip_empty() -> None:
    info = DefaultToolCatalog().info("send_email")
    args = {"recipients": ["a@x.org", "b@y.org"], "subject": "hi", "cc": None, "to": " "}
    assert target_values(info, args) == [("recipients", "a@x.org"), ("recipients", "b@y.org")]


def test_normalise_target_drops_scheme_www_case_and_slash() -> None:
    assert normalise_target(" HTTPS://www.Example.org/ ") == "example.org"
    assert normalise_target("GB29NWBK") == "gb29nwbk"

"""Where the governed MCP server is: ``--upstream URL`` or ``--upstream-cmd "CMD ARGS"``."""

from __future__ import annotations

import pytest

from tether.errors import InvalidRequest
from tether.gateway._upstream import UpstreamSpec


def test_a_url_or_a_command_split_like_a_shell() -> None:
    assert UpstreamSpec.parse("http://127.0.0.1:9/mcp", None).url == "http://127.0.0.1:9/mcp"
    spec = UpstreamSpec.parse(None, "python 'my server.py' --port 1")
    assert spec.command == ("python", "my server.py", "--port", "1")
    assert str(spec) == "python 'my server.py' --port 1"


@pytest.mark.parametrize(
    ("url", "command", "message"),
    [
        (None, None, "give exactly one of --upstream URL and --upstream-cmd"),
        ("http://a/mcp", "x", "give exactly one of --upstream URL and --upstream-cmd"),
        ("ftp://a/mcp", None, "--upstream must be an http(s) URL, got `ftp://a/mcp`"),
        (None, "  ", "--upstream-cmd is empty"),
        (None, "python 'open", "--upstream-cmd cannot be split into words"),
    ],
)
def test_bad_upstreams_are_named(url: str | None, command: str | None, message: str) -> None:
    with pytest.raises(InvalidRequest, match=message.replace("(", r"\(").replace(")", r"\)")):
        UpstreamSpec.parse(url, command)

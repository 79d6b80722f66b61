"""The SDK's sans-I/O core: operations are generators of effects, run by a driver.

An operation (``tether.sdk._operations``, the guard's flow in ``tether.sdk.guard``) is a
generator that yields effects and receives their results:

* :class:`Call`: one HTTP request; the driver sends the parsed answer back, or throws the
  :class:`~tether.sdk.errors.ClientError` it met (no answer, an error status, a bad body);
* :class:`Sleep`: wait that long (between retries);
* :class:`Invoke`: run the guarded tool function (awaited when it returns an awaitable);
  the driver sends its result, or throws what it raised.

:class:`~tether.sdk.Client` and :class:`~tether.sdk.AsyncClient` are two drivers of the
same generators, which is how every request, answer and decision rule is written once
(STYLE: "don't write anything twice for sync and async").
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Coroutine, Generator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar

import httpx

from tether.sdk.credentials import Credential
from tether.sdk.errors import UnexpectedResponse, api_error

if TYPE_CHECKING:
    from tether.sdk.client import AsyncClient, Client

T = TypeVar("T")
P = ParamSpec("P")


#: A header value an id can be: visible ASCII, spaces only inside (RFC 9110 §5.5).
_HEADER_VALUE = re.compile(r"[!-~]+(?: +[!-~]+)*")


def is_header_value(value: str) -> bool:
    """Whether ``value`` can go as a header value as it is (an ``X-Request-ID``)."""
    return _HEADER_VALUE.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request to tether and how to read its answer.

    ``bearer`` replaces the client's credential for this request (a workload's proof on
    ``/v1/tasks`` and ``/oauth2/token``); ``timeout`` (seconds) replaces the client's;
    ``request_id`` is sent as ``X-Request-ID`` (AuthZEN: echoed, and kept with the
    decision; without it tether makes one).
    """

    method: str
    path: str
    parse: Callable[[Any], T]
    json: Any = None
    form: Mapping[str, str] | None = None
    params: Mapping[str, str] | None = None
    bearer: str | None = field(default=None, repr=False)
    timeout: float | None = None
    request_id: str | None = None

    def answer(self, response: httpx.Response) -> T:
        """The parsed answer.

        Raises:
            TetherAPIError: an error status (the subclass for it).
            UnexpectedResponse: a success whose body is not what the protocol says.
        """
        if response.status_code >= 400:
            raise api_error(response)
        try:
            document = response.json() if response.content else None
        except ValueError:
            raise UnexpectedResponse(
                f"tether's answer to `{self.method} {self.path}` is not JSON",
                status=response.status_code,
            ) from None
        return self.parse(document)


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class Invoke:
    """Run ``function(*args, **kwargs)``: the guarded tool itself."""

    function: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]


Effect = Call[Any] | Sleep | Invoke
Flow = Generator[Effect, Any, T]
"""An operation: yields effects, receives their results, returns its value."""


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """What operations may read of the client that runs them."""

    credential: Credential | None


# --- one operation, two clients ---------------------------------------------------------------


def sync_operation(
    flow: Callable[Concatenate[ClientConfig, P], Flow[T]],
) -> Callable[Concatenate[Client, P], T]:
    """A :class:`~tether.sdk.Client` method that runs ``flow`` (signature and docstring
    are the flow's)."""

    @functools.wraps(flow)
    def method(self: Client, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self.run(flow(self.config, *args, **kwargs))

    return method


def async_operation(
    flow: Callable[Concatenate[ClientConfig, P], Flow[T]],
) -> Callable[Concatenate[AsyncClient, P], Coroutine[Any, Any, T]]:
    """An :class:`~tether.sdk.AsyncClient` method that runs ``flow``."""

    @functools.wraps(flow)
    async def method(self: AsyncClient, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self.run(flow(self.config, *args, **kwargs))

    return method

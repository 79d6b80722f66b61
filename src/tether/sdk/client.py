"""``Client`` and ``AsyncClient``: tether's HTTP API on httpx, for PEPs and agents.

Both run the same operations (``tether.sdk._operations``); they differ only in how a
request is sent and how a tool is run (blocking, or awaited)::

    with Client("https://tether.internal", credential=ApiKey(key)) as tether:
        task = tether.open_task(purpose="send invoices", actions=["read_invoice"],
                                resources=["invoice:*"], proof=svid)
        grant = tether.exchange(task, proof=svid)
        decision = tether.evaluate(grant, "read_invoice", "invoice:INV-1")

Any request that gets no answer raises :class:`~tether.sdk.errors.TetherUnavailable`
(:class:`~tether.sdk.errors.TetherTimeout` when too slow); an error status raises the
:class:`~tether.sdk.errors.TetherAPIError` subclass for it, with tether's ``error_code``.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from types import TracebackType
from typing import Any, Generic, Self, TypeVar

import httpx

from tether import __version__
from tether.sdk import _operations as ops
from tether.sdk._protocol import (
    Call,
    ClientConfig,
    Effect,
    Flow,
    Invoke,
    Sleep,
    async_operation,
    sync_operation,
)
from tether.sdk.credentials import ClientCertificate, Credential
from tether.sdk.errors import transport_error

T = TypeVar("T")
TransportT = TypeVar("TransportT", httpx.BaseTransport, httpx.AsyncBaseTransport)
HttpT = TypeVar("HttpT", httpx.Client, httpx.AsyncClient)
DEFAULT_TIMEOUT_S = 5.0
#: Request URLs kept merged (see ``_Endpoint._url``).
KEPT_URLS = 64
USER_AGENT = f"tether-sdk/{__version__}"


def _request(
    http: httpx.Client | httpx.AsyncClient, config: ClientConfig, call: Call[Any], url: httpx.URL
) -> Any:
    headers = {}
    authorization = (
        f"Bearer {call.bearer}"
        if call.bearer is not None
        else (config.credential.authorization() if config.credential is not None else None)
    )
    if authorization is not None:
        headers["authorization"] = authorization
    if call.request_id is not None:
        headers["x-request-id"] = call.request_id
    return http.build_request(
        call.method,
        url,
        json=call.json,
        data=call.form,
        params=call.params,
        headers=headers,
        timeout=call.timeout if call.timeout is not None else http.timeout,
    )


def _start(flow: Flow[T]) -> tuple[Effect | None, T | None]:
    try:
        return next(flow), None
    except StopIteration as done:
        return None, done.value


def _step(
    flow: Flow[T], result: Any, error: BaseException | None
) -> tuple[Effect | None, T | None]:
    """Send ``result`` (or throw ``error``) into ``flow``: its next effect, or its value."""
    try:
        return (flow.throw(error) if error is not None else flow.send(result)), None
    except StopIteration as done:
        return None, done.value


class _Endpoint(Generic[TransportT, HttpT]):
    """What both clients hold: the configuration operations read and an httpx client.

    Args:
        base_url: tether's URL.
        credential: how this PEP proves itself (:class:`~tether.sdk.ApiKey`,
            :class:`~tether.sdk.BearerToken`, :class:`~tether.sdk.ClientCertificate`).
        timeout: seconds to wait for an answer (a guarded tool may ask for less).
        verify: TLS verification (a CA bundle path or an ``ssl.SSLContext``).
        transport: an httpx transport (``httpx.MockTransport`` in tests).
    """

    def __init__(
        self,
        base_url: str,
        *,
        credential: Credential | None = None,
        timeout: float = DEFAULT_TIMEOUT_S,
        verify: Any = True,
        transport: TransportT | None = None,
    ) -> None:
        self.config = ClientConfig(credential)
        if isinstance(credential, ClientCertificate):
            verify = credential.ssl_context()
        self._http: HttpT = self._open(
            base_url=base_url.rstrip("/"),
            timeout=timeout,
            verify=verify,
            transport=transport,
            headers={"user-agent": USER_AGENT},
            follow_redirects=False,
        )
        self._urls: dict[str, httpx.URL] = {}

    def _open(self, **options: Any) -> HttpT:
        raise NotImplementedError

    def _url(self, path: str) -> httpx.URL:
        """``path`` on tether's URL: httpx parses and merges a relative URL again for
        every request, ~20 % of its CPU per request; merged once here, per path."""
        url = self._urls.get(path)
        if url is None:
            if len(self._urls) >= KEPT_URLS:  # paths naming tasks or tickets: forget them
                self._urls.clear()
            url = self._urls[path] = self._http.build_request("GET", path).url
        return url


class Client(_Endpoint[httpx.BaseTransport, httpx.Client]):
    """A blocking client of one tether server (arguments: see ``_Endpoint``)."""

    def _open(self, **options: Any) -> httpx.Client:
        return httpx.Client(**options)

    def run(self, flow: Flow[T]) -> T:
        """Run an operation to its end (requests sent one after the other)."""
        effect, value = _start(flow)
        while effect is not None:
            result: Any = None
            error: BaseException | None = None
            try:
                if isinstance(effect, Call):
                    result = self._send(effect)
                elif isinstance(effect, Sleep):
                    time.sleep(effect.seconds)
                else:
                    result = effect.function(*effect.args, **effect.kwargs)
            except Exception as exc:  # every failure goes back into the flow that caused it
                error = exc
            effect, value = _step(flow, result, error)
        return value  # type: ignore[return-value]  # the flow's return value

    def _send(self, call: Call[Any]) -> Any:
        request = _request(self._http, self.config, call, self._url(call.path))
        try:
            response = self._http.send(request)
        except httpx.TransportError as exc:
            raise transport_error(exc, str(self._http.base_url)) from exc
        return call.answer(response)

    evaluate = sync_operation(ops.evaluate)
    evaluations = sync_operation(ops.evaluations)
    open_task = sync_operation(ops.open_task)
    exchange = sync_operation(ops.exchange)
    end_task = sync_operation(ops.end_task)
    wait_for_approval = sync_operation(ops.wait_for_approval)
    report = sync_operation(ops.report)
    report_result = sync_operation(ops.report_result)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncClient(_Endpoint[httpx.AsyncBaseTransport, httpx.AsyncClient]):
    """The asyncio twin of :class:`Client`: the same operations, each awaited."""

    def _open(self, **options: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(**options)

    async def run(self, flow: Flow[T]) -> T:
        """Run an operation to its end (a tool that returns an awaitable is awaited)."""
        effect, value = _start(flow)
        while effect is not None:
            result: Any = None
            error: BaseException | None = None
            try:
                if isinstance(effect, Call):
                    result = await self._send(effect)
                elif isinstance(effect, Sleep):
                    await asyncio.sleep(effect.seconds)
                elif isinstance(effect, Invoke):
                    result = effect.function(*effect.args, **effect.kwargs)
                    if inspect.isawaitable(result):
                        result = await result
            except Exception as exc:
                error = exc
            effect, value = _step(flow, result, error)
        return value  # type: ignore[return-value]

    async def _send(self, call: Call[Any]) -> Any:
        request = _request(self._http, self.config, call, self._url(call.path))
        try:
            response = await self._http.send(request)
        except httpx.TransportError as exc:
            raise transport_error(exc, str(self._http.base_url)) from exc
        return call.answer(response)

    evaluate = async_operation(ops.evaluate)
    evaluations = async_operation(ops.evaluations)
    open_task = async_operation(ops.open_task)
    exchange = async_operation(ops.exchange)
    end_task = async_operation(ops.end_task)
    wait_for_approval = async_operation(ops.wait_for_approval)
    report = async_operation(ops.report)
    report_result = async_operation(ops.report_result)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

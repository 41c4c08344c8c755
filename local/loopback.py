"""A threaded WSGI server on 127.0.0.1 and a free port: the base of the local stand-ins.

Every wait on a server is bounded: binding happens before the serving thread starts (a port that
cannot be bound fails at once), and stopping waits at most ``STOP_SECONDS`` for the serving thread
(``socketserver``'s own ``shutdown`` waits for ever), then says which server would not stop.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

#: How long stopping a server may take: its requests in flight finish well within it.
STOP_SECONDS = 10.0


class Serving:
    """A WSGI application served from a thread of its own until ``stop``."""

    def __init__(self, app: Any, *, request_handler: type[WSGIRequestHandler] | None = None) -> None:
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True, request_handler=request_handler)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True, name=f"serve-{self.port}")
        self._thread.start()

    @property
    def port(self) -> int:
        return self.server.server_port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, timeout: float = STOP_SECONDS) -> None:
        """Stop serving and close the socket; a ``RuntimeError`` when the serving thread has not
        ended within ``timeout`` seconds."""
        threading.Thread(target=self.server.shutdown, daemon=True).start()
        self._thread.join(timeout)
        self.server.server_close()
        if self._thread.is_alive():
            raise RuntimeError(f"the server on {self.url} did not stop within {timeout:g} s")


class LoopbackServer:
    _serving: Serving | None = None

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        raise NotImplementedError

    def start(self) -> str:
        self._serving = Serving(self._wsgi)
        return self.url

    @property
    def url(self) -> str:
        assert self._serving is not None, "start() first"
        return self._serving.url

    def stop(self) -> None:
        if self._serving is not None:
            serving, self._serving = self._serving, None
            serving.stop()

    def __enter__(self) -> Any:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

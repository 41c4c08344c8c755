"""An HTTP proxy in front of moto that answers chosen AWS operations with real AWS errors.

Moto cannot throttle or deny on demand; this proxy can. boto3 reaches it through
``AWS_ENDPOINT_URL`` like any endpoint, so the function's own clients, retry modes and error
parsing meet the fault exactly as they would meet it from AWS. Everything not matched by a
rule is forwarded to moto unchanged.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import requests
from werkzeug.wrappers import Request, Response

from local.loopback import LoopbackServer

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-encoding", "content-length", "host"}


@dataclass
class AwsFault:
    """Answer ``operation`` (e.g. "DynamoDB.BatchWriteItem", "S3.PutObject") with an AWS error."""

    operation: str
    code: str
    status: int = 400
    times: int = 1
    after: int = 0  # let this many matching calls through first
    seen: int = 0
    fired: int = 0


def operation_of(request: Request) -> str:
    target = request.headers.get("X-Amz-Target", "")
    if target.startswith("DynamoDB_"):
        return "DynamoDB." + target.split(".", 1)[1]
    if target.startswith("AmazonSQS."):
        return "SQS." + target.split(".", 1)[1]
    if target.startswith("AWSEvents."):
        return "Events." + target.split(".", 1)[1]
    if target.startswith("secretsmanager."):
        return "SecretsManager." + target.split(".", 1)[1]
    segments = [s for s in request.path.split("/") if s]
    if request.method == "PUT" and len(segments) >= 2 and "partNumber" not in request.args:
        return "S3.PutObject"
    if request.method == "PUT" and "partNumber" in request.args:
        return "S3.UploadPart"
    if request.method == "POST" and "uploads" in request.args:
        return "S3.CreateMultipartUpload"
    if request.method == "POST" and "uploadId" in request.args:
        return "S3.CompleteMultipartUpload"
    return f"{request.method} {request.path}"


def error_response(fault: AwsFault) -> Response:
    service = fault.operation.split(".", 1)[0]
    if service == "S3":
        body = f"<Error><Code>{fault.code}</Code><Message>injected {fault.code}</Message></Error>"
        return Response(body, status=fault.status, content_type="application/xml")
    if service == "DynamoDB":
        payload = {"__type": f"com.amazonaws.dynamodb.v20120810#{fault.code}", "message": f"injected {fault.code}"}
        return Response(json.dumps(payload), status=fault.status, content_type="application/x-amz-json-1.0")
    payload = {"__type": fault.code, "message": f"injected {fault.code}"}
    return Response(json.dumps(payload), status=fault.status, content_type="application/x-amz-json-1.0")


class AwsFaultProxy(LoopbackServer):
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.faults: list[AwsFault] = []
        self.calls: list[str] = []
        self._lock = threading.Lock()
        self._session = requests.Session()

    def _match(self, operation: str) -> AwsFault | None:
        with self._lock:
            self.calls.append(operation)
            for fault in self.faults:
                if fault.operation != operation:
                    continue
                fault.seen += 1
                if fault.seen > fault.after and fault.fired < fault.times:
                    fault.fired += 1
                    return fault
        return None

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        fault = self._match(operation_of(request))
        if fault is not None:
            return error_response(fault)(environ, start_response)
        upstream = self._session.request(
            request.method,
            self.upstream + environ.get("RAW_URI", request.full_path.rstrip("?")),
            headers={k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP},
            data=request.get_data(),
            timeout=60,
        )
        headers = [(k, v) for k, v in upstream.headers.items() if k.lower() not in HOP_BY_HOP]
        return Response(upstream.content, status=upstream.status_code, headers=headers)(environ, start_response)

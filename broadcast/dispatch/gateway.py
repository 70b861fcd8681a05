"""``GET /device/v1/ws``: the WebSocket every speaker holds for pushes (see docs/device-protocol.md).

Authentication by the handshake's ``Authorization`` header or a first ``hello`` frame, then a
``welcome``. The token's hash goes through the flood limit (4429), then into the runtime's
admission batch, which checks it and marks the endpoint online with hundreds of others in one
transaction; when too many handshakes already wait, the answer is 1013 at once. Each connection
gets a bounded queue and one writer task; this module reads frames and answers them in memory
(pings, acks, status); presence and database work go through the runtime, in worker threads.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter
from starlette.websockets import WebSocket

from broadcast.auth.security import hash_device_token
from broadcast.clock import utc_now
from broadcast.dispatch.connections import CloseCode, Connection
from broadcast.dispatch.device_auth import TokenRefusal
from broadcast.dispatch.envelope import format_time
from broadcast.dispatch.presence import Reason
from broadcast.dispatch.runtime import (
    DispatchRuntime,
    Handshake,
    Identity,
    Stopping,
    TryLater,
    frame,
    runtime_of,
)

router = APIRouter(prefix="/device/v1")

MAX_FRAME_BYTES = 64 * 1024
HELLO_TIMEOUT_S = 10.0
MAX_BAD_FRAMES = 5
MAX_TOKEN_CHARS = 256
MAX_FIRMWARE_CHARS = 64


class BadFrame(Exception):
    """A frame the server cannot act upon; the message (zh-CN) goes back to the device."""


def frame_text(message: Mapping[str, Any]) -> str | None:
    """The frame's text, or None when it is over the size limit."""
    data = message.get("text")
    if data is None:
        raw = message.get("bytes") or b""
        if len(raw) > MAX_FRAME_BYTES:
            return None
        return raw.decode("utf-8", errors="replace")
    if len(data) * 4 > MAX_FRAME_BYTES and len(data.encode("utf-8")) > MAX_FRAME_BYTES:
        return None
    return str(data)


def parse_frame(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        raise BadFrame("帧不是合法的 JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise BadFrame("帧必须是带 type 字段的 JSON 对象")
    return data


async def _close(websocket: WebSocket, code: int, reason: str = "") -> None:
    await websocket.close(code, reason[:120])


async def _read_token(websocket: WebSocket) -> str | None:
    """The bearer token of the handshake, else of a first ``hello`` frame (None: closed)."""
    scheme, _, value = websocket.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()[:MAX_TOKEN_CHARS]
    try:
        message = await asyncio.wait_for(websocket.receive(), HELLO_TIMEOUT_S)
    except TimeoutError:
        await _close(websocket, CloseCode.unauthorized, "hello timeout")
        return None
    if message["type"] == "websocket.disconnect":
        return None
    text = frame_text(message)
    if text is None:
        await _close(websocket, CloseCode.too_big, "frame too large")
        return None
    try:
        hello = parse_frame(text)
    except BadFrame:
        hello = {}
    token = hello.get("token")
    if hello.get("type") != "hello" or not isinstance(token, str) or not token:
        await _close(websocket, CloseCode.unauthorized, "first frame must be hello with a token")
        return None
    return token[:MAX_TOKEN_CHARS]


async def _authenticate(
    websocket: WebSocket, runtime: DispatchRuntime, handshake: Handshake
) -> Identity | None:
    if not runtime.flood.allow(handshake.token_hash):
        await _close(websocket, CloseCode.flood, "too many connects: back off")
        return None
    try:
        outcome = await runtime.admit(handshake)
    except TryLater:
        await _close(websocket, CloseCode.try_again_later, "gateway busy: retry in 1-10 s")
        return None
    except Stopping:
        await _close(websocket, CloseCode.going_away, "gateway stopping")
        return None
    if isinstance(outcome, TokenRefusal):
        await _close(websocket, outcome.close_code, outcome.reason)
        return None
    return outcome


def _check_ack(data: dict[str, Any]) -> int:
    seq = data.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise BadFrame("ack 帧的 seq 必须是非负整数")
    return seq


def _check_status(data: dict[str, Any]) -> dict[str, Any]:
    firmware, volume, playing = data.get("firmware"), data.get("volume"), data.get("playing")
    if firmware is not None and (not isinstance(firmware, str) or len(firmware) > MAX_FIRMWARE_CHARS):
        raise BadFrame(f"status 帧的 firmware 必须是不超过 {MAX_FIRMWARE_CHARS} 个字符的字符串")
    if volume is not None and (
        not isinstance(volume, int) or isinstance(volume, bool) or not 0 <= volume <= 100
    ):
        raise BadFrame("status 帧的 volume 必须是 0 到 100 的整数")
    if playing is not None and not isinstance(playing, dict):
        raise BadFrame("status 帧的 playing 必须是对象或 null")
    return {"firmware": firmware, "volume": volume, "playing": playing}


def handle_frame(connection: Connection, runtime: DispatchRuntime, text: str) -> None:
    """Answer one frame from a device; everything here is in memory."""
    data = parse_frame(text)
    kind = data["type"]
    if kind == "pong":
        return
    if kind == "ping":
        connection.offer(frame({"type": "pong", "t": format_time(utc_now())}))
    elif kind == "ack":
        seq = _check_ack(data)
        connection.acked_seq = max(seq, connection.acked_seq or 0)
        runtime.note_ack(connection, seq)
    elif kind == "status":
        connection.reported = _check_status(data)
        if connection.reported["firmware"]:
            runtime.note_firmware(connection.endpoint_id, connection.reported["firmware"])
    elif kind == "hello":
        raise BadFrame("已通过认证，无需再次发送 hello")
    else:
        raise BadFrame(f"未知的帧类型 {kind[:32]!r}：只接受 pong、ping、ack、status")


def _refuse(connection: Connection, problem: BadFrame) -> None:
    connection.bad_frames += 1
    error = {"type": "error", "code": "bad_frame", "message": str(problem)}
    connection.offer(frame(error))
    if connection.bad_frames >= MAX_BAD_FRAMES:
        connection.close(CloseCode.bad_frames, Reason.bad_frames)


async def _read_loop(connection: Connection, runtime: DispatchRuntime) -> None:
    while True:
        message = await connection.websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        connection.touch()
        text = frame_text(message)
        if text is None:
            connection.close(CloseCode.too_big, Reason.frame_too_large)
            return
        try:
            handle_frame(connection, runtime, text)
        except BadFrame as problem:
            _refuse(connection, problem)


async def _serve(connection: Connection, runtime: DispatchRuntime) -> None:
    writer = asyncio.create_task(connection.write_loop())
    reader = asyncio.create_task(_read_loop(connection, runtime))
    connection.attach(writer, reader)
    await asyncio.wait({writer, reader}, return_when=asyncio.FIRST_COMPLETED)
    for task in (writer, reader):
        task.cancel()
    # Not gather: if this handler is cancelled meanwhile (server stopping), gather would replace
    # that cancellation with the children's, and the server could not tell it was its own.
    await asyncio.wait({writer, reader})


def _address(websocket: WebSocket) -> str | None:
    return websocket.client.host if websocket.client else None


@router.websocket("/ws")
async def device_socket(websocket: WebSocket) -> None:
    runtime = runtime_of(websocket.app)
    await websocket.accept()
    token = await _read_token(websocket)
    if token is None:
        return
    handshake = Handshake(hash_device_token(token), _address(websocket), utc_now())
    identity = await _authenticate(websocket, runtime, handshake)
    if identity is None:
        return
    connection = Connection(
        endpoint_id=identity.endpoint_id,
        code=identity.code,
        address=handshake.address,
        websocket=websocket,
        queue_size=runtime.settings.gateway_queue_size,
        on_frame=runtime.note_frame,
        last_frame_at=handshake.at,
    )
    welcome = {
        "type": "welcome",
        "endpoint": identity.code,
        "server_time": format_time(utc_now()),
        "ping_interval_s": runtime.settings.device_ping_interval_s,
        "last_seq": identity.last_seq,
        "alerts": identity.alerts,
    }
    connection.offer(frame(welcome))
    runtime.registry.register(connection)
    try:
        await _serve(connection, runtime)
    finally:
        runtime.detach(connection)

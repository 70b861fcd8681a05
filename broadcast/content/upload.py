"""Receiving a multipart clip upload with the size limit enforced while the body streams in.

FastAPI's ``UploadFile``/``Form`` parameters read the whole body before any check can run, so
the clip route declares none: this dependency checks ``Content-Length`` first (413 before a byte
is read), counts bytes as the stream arrives (413 as soon as it passes the limit), and copies the
single file part into the store's temp directory for ffmpeg. Declare it after the role check so
an anonymous client cannot make the server read a body at all.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from broadcast.content.schemas import ClipCreate
from broadcast.content.store import get_store
from broadcast.deps import SettingsDep
from broadcast.errors import Invalid, TooLarge, UnsupportedMedia

# Room for the multipart boundaries, part headers and the title/tags fields.
FORM_OVERHEAD_BYTES = 64 * 1024
_COPY_CHUNK = 1024 * 1024

UPLOAD_OPENAPI: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "title"],
                    "properties": {
                        "file": {"type": "string", "format": "binary"},
                        "title": {"type": "string", "maxLength": 128},
                        "tags": {"type": "array", "items": {"type": "string"}},
                    },
                }
            }
        },
    }
}


@dataclass(frozen=True)
class ReceivedClip:
    path: Path
    original_name: str
    data: ClipCreate


def _too_large(limit: int) -> TooLarge:
    return TooLarge(
        f"文件过大：上限 {limit // (1024 * 1024)} MB，请压缩或剪短后再上传", details={"max_bytes": limit}
    )


async def _limited(request: Request, limit: int) -> AsyncGenerator[bytes, None]:
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit + FORM_OVERHEAD_BYTES:
            raise _too_large(limit)
        yield chunk


async def _parse(request: Request, limit: int) -> FormData:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UnsupportedMedia(
            "请以 multipart/form-data 上传：字段 file（录音文件）、title（标题）、tags（标签）"
        )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + FORM_OVERHEAD_BYTES:
        raise _too_large(limit)
    parser = MultiPartParser(request.headers, _limited(request, limit), max_files=1, max_fields=50)
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise Invalid(f"上传内容格式有误：{exc.message}") from exc


def _copy(upload: UploadFile, dest: Path, limit: int) -> None:
    copied = 0
    upload.file.seek(0)
    with dest.open("wb") as out:
        while chunk := upload.file.read(_COPY_CHUNK):
            copied += len(chunk)
            if copied > limit:
                raise _too_large(limit)
            out.write(chunk)


def _clip_fields(form: FormData) -> ClipCreate:
    title = form.get("title")
    tags = [t for t in form.getlist("tags") if isinstance(t, str)]
    try:
        return ClipCreate.model_validate({"title": title if isinstance(title, str) else "", "tags": tags})
    except ValidationError as exc:
        problems = "；".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise Invalid(f"标题或标签不合要求：{problems}", details=exc.errors(include_url=False)) from exc


async def receive_clip(request: Request, settings: SettingsDep) -> AsyncIterator[ReceivedClip]:
    limit = settings.clip_max_bytes
    form = await _parse(request, limit)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise Invalid("缺少录音文件：请在字段 file 中上传")
        data = _clip_fields(form)
        with get_store(settings).temp_path(".upload") as path:
            await run_in_threadpool(_copy, upload, path, limit)
            yield ReceivedClip(path=path, original_name=upload.filename or "", data=data)
    finally:
        await form.close()


ReceivedClipDep = Annotated[ReceivedClip, Depends(receive_clip)]

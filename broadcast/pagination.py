"""Offset pagination that reports the total, shared by every list endpoint."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import func
from sqlmodel import Session, select
from sqlmodel.sql.expression import SelectOfScalar

T = TypeVar("T")
MAX_LIMIT = 500


class Page(BaseModel, Generic[T]):
    total: int
    limit: int
    offset: int
    items: list[T]


class PageParams(BaseModel):
    limit: int
    offset: int


def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="每页条数")] = 50,
    offset: Annotated[int, Query(ge=0, description="跳过条数")] = 0,
) -> PageParams:
    return PageParams(limit=limit, offset=offset)


PageDep = Annotated[PageParams, Depends(page_params)]


def page_of(rows: list[T], params: PageParams) -> Page[T]:
    """One page of a short list that is already filtered in full (towns, villages)."""
    items = rows[params.offset : params.offset + params.limit]
    return Page(total=len(rows), limit=params.limit, offset=params.offset, items=items)


def paginate(session: Session, query: SelectOfScalar[Any], params: PageParams) -> tuple[int, list[Any]]:
    """Count the whole filtered query, then fetch one page of it."""
    total = session.exec(select(func.count()).select_from(query.order_by(None).subquery())).one()
    rows = session.exec(query.limit(params.limit).offset(params.offset)).all()
    return int(total), list(rows)

"""The target selector (播发范围) shared by campaigns, alerts and groups, and the group API shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator

from broadcast.regions.models import GroupKind

Code = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=32)]
GroupName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
MAX_VALUES = 10_000


def _unique(values: list[str]) -> list[str]:
    """Duplicates removed, first occurrence kept, so a stored rule reads as it was written."""
    return list(dict.fromkeys(values))


class Clause(BaseModel):
    """Five lists that name endpoints: by town code, village code, tag, group name, endpoint code."""

    model_config = ConfigDict(extra="forbid")

    towns: list[Code] = Field(default_factory=list, max_length=MAX_VALUES, description="乡镇/街道代码")
    villages: list[Code] = Field(default_factory=list, max_length=MAX_VALUES, description="村（社区）代码")
    tags: list[Code] = Field(default_factory=list, max_length=MAX_VALUES, description="标签")
    groups: list[GroupName] = Field(
        default_factory=list, max_length=MAX_VALUES, description="分组名称（按名称引用，不用 id）"
    )
    endpoints: list[Code] = Field(default_factory=list, max_length=MAX_VALUES, description="终端代码")

    @field_validator("towns", "villages", "tags", "groups", "endpoints")
    @classmethod
    def _dedupe(cls, values: list[str]) -> list[str]:
        return _unique(values)

    def is_empty(self) -> bool:
        return not (self.towns or self.villages or self.tags or self.groups or self.endpoints)


class Selector(Clause):
    """Which endpoints a campaign, an alert or a rule group reaches.

    - area = endpoints in any listed town or village; the whole city when neither is listed
      and ``all`` or ``tags`` is given (``all`` adds nothing when towns or villages are listed);
    - tagged = area restricted to endpoints having ANY of ``tags`` (when tags are listed);
    - reached = tagged ∪ members of ``groups`` ∪ listed ``endpoints``, minus every endpoint
      matching ANY exclusion: in an excluded town or village, having an excluded tag, member of
      an excluded group, or an excluded endpoint code.

    Groups are referenced by name: names are what people and the ``schedules/`` files write.
    A rule group's selector is evaluated at use time; an empty selector is refused (422).
    """

    all: bool = Field(default=False, description="整个城市（未列出乡镇或村时）")
    exclude: Clause = Field(default_factory=Clause, description="排除")

    @model_validator(mode="after")
    def _not_empty(self) -> Selector:
        if not self.all and Clause.is_empty(self):
            raise ValueError("选择范围为空：请至少选择全市、乡镇、村（社区）、标签、分组或终端之一")
        return self


class RegionCount(BaseModel):
    code: str
    name: str
    count: int


class SampleEndpoint(BaseModel):
    code: str
    name: str
    village_code: str
    village_name: str


class TargetPreview(BaseModel):
    total: int
    online: int
    offline: int = Field(description="不在线（离线、故障或停用）")
    towns: list[RegionCount]
    villages: list[RegionCount]
    sample: list[SampleEndpoint] = Field(description="至多 20 个终端，按代码排序")


class GroupCreate(BaseModel):
    """A fixed group lists endpoint codes; a rule group stores a selector evaluated at use time."""

    model_config = ConfigDict(extra="forbid")

    name: GroupName
    description: str = Field(default="", max_length=255)
    kind: GroupKind
    endpoint_codes: list[Code] = Field(default_factory=list, max_length=MAX_VALUES)
    rule: Selector | None = None

    @field_validator("endpoint_codes")
    @classmethod
    def _dedupe(cls, values: list[str]) -> list[str]:
        return _unique(values)

    @model_validator(mode="after")
    def _matches_kind(self) -> GroupCreate:
        if self.kind == GroupKind.fixed and (self.rule is not None or not self.endpoint_codes):
            raise ValueError("固定分组需要 endpoint_codes（终端代码列表），不能带 rule")
        if self.kind == GroupKind.rule and (self.rule is None or self.endpoint_codes):
            raise ValueError("规则分组需要 rule（选择条件），不能带 endpoint_codes")
        return self


class GroupUpdate(BaseModel):
    """Only the fields sent change; the kind of a group cannot change."""

    model_config = ConfigDict(extra="forbid")

    name: GroupName | None = None
    description: str | None = Field(default=None, max_length=255)
    endpoint_codes: list[Code] | None = Field(default=None, min_length=1, max_length=MAX_VALUES)
    rule: Selector | None = None

    @field_validator("endpoint_codes")
    @classmethod
    def _dedupe(cls, values: list[str] | None) -> list[str] | None:
        return None if values is None else _unique(values)


class GroupOut(BaseModel):
    id: int
    name: str
    description: str
    kind: GroupKind
    rule: Selector | None
    member_count: int | None = Field(description="成员数；规则分组为当前求值结果，无法求值时为空")
    problem: str | None = Field(default=None, description="规则无法求值的原因")
    created_at: datetime
    updated_at: datetime


class GroupDetail(GroupOut):
    endpoint_codes: list[str] = Field(description="固定分组的终端代码；规则分组为空")

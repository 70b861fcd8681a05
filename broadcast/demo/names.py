"""Names for the demo city: invented but plausible towns, villages and communities of a Hunan county.

Each town carries its terrain, which decides what its villages are near (forest, reservoir, river...).
"""

from __future__ import annotations

from typing import Literal

Terrain = Literal["urban", "plain", "hill", "mountain"]

COUNTY_CODE = "430181"
COUNTY_NAME = "示范市"

# (name, terrain). Sub-districts (街道) first, then towns (镇), then townships (乡).
SUBDISTRICTS: tuple[tuple[str, Terrain], ...] = (
    ("东城街道", "urban"),
    ("西湖街道", "urban"),
    ("南园街道", "urban"),
    ("荷花街道", "urban"),
    ("集贤街道", "urban"),
)
TOWNS: tuple[tuple[str, Terrain], ...] = (
    ("青石镇", "hill"),
    ("龙泉镇", "mountain"),
    ("白沙镇", "plain"),
    ("桃源镇", "hill"),
    ("金溪镇", "plain"),
    ("杨梅镇", "hill"),
    ("官桥镇", "plain"),
    ("永安镇", "plain"),
    ("沙田镇", "plain"),
    ("古港镇", "plain"),
    ("高坪镇", "mountain"),
    ("枫林镇", "mountain"),
    ("石湾镇", "hill"),
    ("双江镇", "plain"),
    ("黄花镇", "plain"),
    ("梅田镇", "hill"),
    ("柳溪镇", "hill"),
)
TOWNSHIPS: tuple[tuple[str, Terrain], ...] = (
    ("大溪乡", "mountain"),
    ("七宝山乡", "mountain"),
    ("小河乡", "hill"),
    ("中和乡", "plain"),
    ("长岭乡", "mountain"),
    ("樟树乡", "hill"),
    ("云山乡", "mountain"),
)

# Village names are drawn as first + second character + 村, never repeated in the city.
VILLAGE_FIRST = (
    "石龙白黄青红新大小高上下东西南北金银桃李杨柳松竹梅兰荷枫樟杉茶田塘湾长团双三五"
    "马牛鹤凤狮虎安和平兴福寿丰太永仁义礼"
)
VILLAGE_SECOND = "田塘湾冲岭坪山溪河泉源桥洲坡林园家庄铺口江湖坑垅堰坝"
MOUNTAIN_SECOND = "山岭冲坳坑垅峰"

COMMUNITY_NAMES = (
    "新华", "建设", "人民", "解放", "朝阳", "文化", "光明", "和平", "幸福", "团结",
    "胜利", "东风", "红旗", "花园", "滨河", "锦绣", "阳光", "金桥", "春晓", "丽景",
    "翠园", "天马", "白鹭", "荷塘", "桂花", "樟园", "育才", "书院", "府前", "南门",
    "北门", "西街", "东街", "正街", "沙湾", "河堤", "新村", "紫薇", "凤凰", "青年",
    "友谊", "向阳", "长兴", "永和", "望江", "观澜", "湘江", "浏河", "云台", "松涛",
)  # fmt: skip

RESERVOIR_NAMES = ("株树桥", "官庄", "黄石", "桐木", "双溪", "龙潭", "白石", "青山", "竹坪", "红星")

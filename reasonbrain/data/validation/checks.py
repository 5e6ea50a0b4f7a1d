"""The catalogue of validation checks: each one a name, a severity and GX expectations.

A :class:`Check` is what a user reads in the report (``images_decode: 3 rows failing``); its
expectations are what Great Expectations evaluates on the facts table (:mod:`.facts`). A check
may need several expectations (e.g. the mode of the source *and* of the target); a row fails the
check when any of them flags it. ``blocking`` checks make the dataset invalid (CLI exit 1);
``warning`` checks are reported only.

Adding a check means adding a fact column in :mod:`.facts` and one :class:`Check` here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from reasonbrain.config import ValidateParams

if TYPE_CHECKING:
    from great_expectations.expectations import Expectation

Severity = Literal["blocking", "warning"]
Row = Mapping[str, Any]


@dataclass(frozen=True)
class Check:
    """One named rule over the dataset.

    Attributes:
        name: stable identifier used in reports and ``rejected.jsonl`` reasons.
        severity: ``blocking`` (fails validation) or ``warning`` (reported only).
        description: one sentence: what a valid dataset satisfies.
        expectations: builds the GX expectations (lazily: GX is a heavy import).
        detail: explains, for a failing row of the facts table (a dict with nulls as
            ``None``), what is wrong with it.
    """

    name: str
    severity: Severity
    description: str
    expectations: Callable[[ValidateParams], list[Expectation]]
    detail: Callable[[Row, ValidateParams], str]


def _gxe() -> Any:
    import great_expectations.expectations as gxe

    return gxe


def _null(column: str) -> Callable[[ValidateParams], list[Expectation]]:
    """Expect a problem column to be empty (null): its non-null values say what is wrong."""
    return lambda p: [_gxe().ExpectColumnValuesToBeNull(column=column)]


def _value(column: str) -> Callable[[Row, ValidateParams], str]:
    return lambda row, p: str(row[column])


def _modes(p: ValidateParams) -> list[Expectation]:
    gxe = _gxe()
    return [
        gxe.ExpectColumnValuesToBeInSet(column="src_mode", value_set=list(p.image_modes)),
        gxe.ExpectColumnValuesToBeInSet(column="tgt_mode", value_set=list(p.image_modes)),
        gxe.ExpectColumnValuesToBeNull(column="aux_mode_error"),
    ]


def _modes_detail(row: Row, p: ValidateParams) -> str:
    bad = [
        f"{role} has mode {row[col]}"
        for role, col in (("src_image", "src_mode"), ("tgt_image", "tgt_mode"))
        if _present(row[col]) and row[col] not in p.image_modes
    ]
    if _present(row["aux_mode_error"]):
        bad.append(str(row["aux_mode_error"]))
    return "; ".join(bad) + f" (allowed: {', '.join(p.image_modes)}; masks: 1 or L)"


def _sizes(p: ValidateParams) -> list[Expectation]:
    gxe = _gxe()
    return [
        gxe.ExpectColumnValuesToBeBetween(column="min_side", min_value=p.min_image_size),
        gxe.ExpectColumnValuesToBeBetween(column="max_side", max_value=p.max_image_size),
    ]


def _sizes_detail(row: Row, p: ValidateParams) -> str:
    return (
        f"image sides from {row['min_side']} to {row['max_side']} px "
        f"(allowed {p.min_image_size}–{p.max_image_size} px)"
    )


def _sizes_match(p: ValidateParams) -> list[Expectation]:
    gxe = _gxe()
    either = "either_value_is_missing"
    return [
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A="src_width", column_B="tgt_width", ignore_row_if=either
        ),
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A="src_height", column_B="tgt_height", ignore_row_if=either
        ),
        gxe.ExpectColumnValuesToBeNull(column="aux_size_mismatch"),
    ]


def _sizes_match_detail(row: Row, p: ValidateParams) -> str:
    parts = []
    src = (row["src_width"], row["src_height"])
    tgt = (row["tgt_width"], row["tgt_height"])
    if all(_present(v) for v in (*src, *tgt)) and src != tgt:
        parts.append(f"tgt_image is {tgt[0]}x{tgt[1]}, src_image is {src[0]}x{src[1]}")
    if _present(row["aux_size_mismatch"]):
        parts.append(str(row["aux_size_mismatch"]))
    return "; ".join(parts)


def _present(value: Any) -> bool:
    return value is not None


CHECKS: tuple[Check, ...] = (
    Check(
        "rows_present",
        "blocking",
        "The manifests hold at least one record.",
        lambda p: [_gxe().ExpectTableRowCountToBeBetween(min_value=1)],
        lambda row, p: "the manifests hold no record",
    ),
    Check(
        "manifest_lines_parse",
        "blocking",
        "Every manifest line is a JSON object that matches the record schema.",
        _null("parse_error"),
        _value("parse_error"),
    ),
    Check(
        "paths_inside_root",
        "blocking",
        "Image paths are relative and resolve inside the dataset directory (symlinks included).",
        _null("path_error"),
        _value("path_error"),
    ),
    Check(
        "images_exist",
        "blocking",
        "Every referenced image file exists and is readable.",
        _null("missing_file"),
        _value("missing_file"),
    ),
    Check(
        "images_decode",
        "blocking",
        "Every referenced image decodes completely (not truncated, an image format).",
        _null("decode_error"),
        _value("decode_error"),
    ),
    Check(
        "image_modes",
        "blocking",
        "Images have an allowed colour mode (masks are single-channel).",
        _modes,
        _modes_detail,
    ),
    Check(
        "image_sizes",
        "blocking",
        "Image sides lie within [min_image_size, max_image_size].",
        _sizes,
        _sizes_detail,
    ),
    Check(
        "image_sizes_match",
        "blocking",
        "Target, mask and counterfactual images have the source image's size.",
        _sizes_match,
        _sizes_match_detail,
    ),
    Check(
        "instruction_length",
        "blocking",
        "Instructions have between min_instruction_chars and max_instruction_chars characters.",
        lambda p: [
            _gxe().ExpectColumnValuesToBeBetween(
                column="instruction_chars",
                min_value=p.min_instruction_chars,
                max_value=p.max_instruction_chars,
            )
        ],
        lambda row, p: (
            f"instruction has {row['instruction_chars']} characters "
            f"(allowed {p.min_instruction_chars}–{p.max_instruction_chars})"
        ),
    ),
    Check(
        "category_known",
        "blocking",
        "Every category is one of the declared categories.",
        lambda p: [
            _gxe().ExpectColumnValuesToBeInSet(column="category", value_set=list(p.categories))
        ],
        lambda row, p: (
            f"unknown category {row['category']!r} (declared: {', '.join(p.categories)})"
        ),
    ),
    Check(
        "ids_unique",
        "blocking",
        "Record ids are unique across all splits (the first occurrence is kept).",
        _null("duplicate_of"),
        lambda row, p: f"id {row['id']!r} already used at {row['duplicate_of']}",
    ),
    Check(
        "no_train_test_leakage",
        "blocking",
        "No test source image has the same content (pixel hash) as a train source image.",
        _null("src_leaks_from"),
        lambda row, p: f"src_image has the same content as the source at {row['src_leaks_from']}",
    ),
    Check(
        "target_differs",
        "blocking",
        "The target image differs from the source image (an edit happened).",
        lambda p: [_gxe().ExpectColumnValuesToBeInSet(column="tgt_differs", value_set=[True])],
        lambda row, p: "tgt_image has the same pixels as src_image (no edit)",
    ),
    Check(
        "objects_mentioned",
        "warning",
        "Each listed object is named in the instruction (in full or by its head noun).",
        _null("unmentioned_objects"),
        lambda row, p: f"not named in the instruction: {row['unmentioned_objects']}",
    ),
)

CHECKS_BY_NAME: dict[str, Check] = {c.name: c for c in CHECKS}

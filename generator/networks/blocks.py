"""Grouping a network's conv layers into blocks that mean something.

Where the layer names carry a block (VGG's `block3_conv1`, ResNet's
`conv3_block2_1_conv`, EfficientNet's `block2a_dwconv`, MobileNetV2's
`block_5_expand`), that prefix is the block; a PyTorch module path (an ONNX
file's `layer2.1.conv1`, `inception4a.branch2.0.conv`) is in its top module; GoogLeNet's inception modules
(`inception_4a_3x3`) are blocks; a layer qualified by its sub-model
(`backbone_b/conv1`) is in a block of that sub-model. Where they do not (MobileNet's
`conv_dw_5`, Inception's `conv2d_41`), the blocks are the network's
resolution stages: the runs of layers between two downsamplings.
"""

from __future__ import annotations

import re


INCEPTION_MODULE = re.compile(r"(?i)(inception_?\d+[a-z])(?=_|$)")


def block_of(name: str) -> str:
    """The block a layer's name carries. A layer of a sub-model qualified by it
    (`backbone_b/block1_conv1`) is in that sub-model's block (`backbone_b/block1`);
    a layer of an inception module (GoogLeNet's `inception_4a_3x3_reduce`) in
    that module (`inception_4a`)."""
    if "/" in name:
        qualifier, _, inner = name.rpartition("/")
        return f"{qualifier}/{block_of(inner)}"
    if "." in name:
        return name.split(".")[0]
    module = INCEPTION_MODULE.match(name)
    return module.group(1) if module else name_prefix(name)


def name_prefix(name: str) -> str:
    """The leading name parts up to the first that holds a digit, plus any
    further letters-and-digits parts short of the last one:
    block1_conv1 -> block1, conv3_block2_1_conv -> conv3_block2,
    block_5_expand -> block_5, stem_conv -> stem."""
    parts = re.split(r"[_/]", name)
    first = next((i for i, part in enumerate(parts) if re.search(r"\d", part)), None)
    if first is None:
        return parts[0]
    end = first + 1
    while end < len(parts) - 1 and re.fullmatch(r"[A-Za-z]+\d+[A-Za-z]*", parts[end]):
        end += 1
    return "_".join(parts[:end])


def groups_well(blocks: list[str]) -> bool:
    """Several blocks, each a contiguous run of layers, not all single layers,
    and none holding most of the network."""
    runs = [b for i, b in enumerate(blocks) if i == 0 or blocks[i - 1] != b]
    distinct = set(blocks)
    largest = max(blocks.count(b) for b in distinct)
    return (
        len(distinct) >= 2
        and len(runs) == len(distinct)
        and len(distinct) < len(blocks)
        and largest <= 0.75 * len(blocks)
    )


def resolution_stages(resolutions: list[tuple[int, int]]) -> list[str]:
    """stage1, stage2, ...: a new stage wherever the resolution moves by a
    stride (1.5x or more from where the stage began), not where a valid
    padding trims a border (Inception's 149 -> 147)."""
    stages, stage, start = [], 0, None
    for resolution in resolutions:
        if start is None or max(max(r / s, s / r) for r, s in zip(resolution, start)) >= 1.5:
            stage, start = stage + 1, resolution
        stages.append(f"stage{stage}")
    return stages


def assign_blocks(names: list[str], resolutions: list[tuple[int, int]]) -> list[str]:
    """A block name for each conv layer, in model order."""
    by_name = [block_of(name) for name in names]
    return by_name if by_name and groups_well(by_name) else resolution_stages(resolutions)

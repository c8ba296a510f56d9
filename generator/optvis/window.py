"""The smallest crop of the input that holds a unit's centre receptive field.

The neuron view maximizes one position of a unit's map, which depends only
on the input pixels in that position's receptive field. Optimizing that
window instead of the whole input gives the same unit for a fraction of the
work where the field is small (MobileNet's conv_pw_4 sees 27 of 224 pixels).
"""

from __future__ import annotations

from ..networks.receptive import receptive_fields
from ..networks.units import any_size, unit_model

# A window must save at least this much of the input's area to be worth it.
MOST_OF_THE_INPUT = 0.5


def centre_field(model, layer_name: str, height: int, width: int, map_h: int, map_w: int) -> tuple[slice, slice]:
    """Rows and columns of the input that the centre position of the layer's map sees."""
    field = receptive_fields(model, [layer_name])[layer_name]
    left, top, right, bottom = field.box(map_h // 2, map_w // 2, height, width)
    return slice(top, bottom), slice(left, right)


def window_along(field: slice, size: int, positions: int) -> slice | None:
    """The smallest run of whole map cells, centred on the map's centre cell,
    that covers `field` within an input of `size` pixels (None: none smaller
    than the input). Whole cells keep every strided layer's padding where it
    is in the full input, so the centre cell computes the same value."""
    if size % positions:
        return None
    cell, centre = size // positions, positions // 2
    for cells in range(1, positions):
        start = (centre - cells // 2) * cell
        stop = start + cells * cell
        if start < 0 or stop > size:
            return None
        if start <= field.start and field.stop <= stop:
            return slice(start, stop)
    return None


def receptive_window(model, layer_name: str) -> tuple[slice, slice] | None:
    """The neuron window of a layer's unit (see `neuron_window`), checked in float32."""
    submodel = unit_model(model, layer_name)
    _, height, width, _ = submodel.input_shape
    _, map_h, map_w, _ = submodel.outputs[0].shape
    field = centre_field(model, layer_name, height, width, map_h, map_w)
    return neuron_window(submodel, any_size(submodel), field)


def neuron_window(submodel, any_size_model, field: tuple[slice, slice]) -> tuple[slice, slice] | None:
    """The crop (rows, columns) of the input whose map's centre position is
    the full input's centre position, computed from those pixels alone; None
    where no crop saves much, or where the crop does not check out."""
    import tensorflow as tf

    _, height, width, channels = submodel.input_shape
    _, map_h, map_w, _ = submodel.outputs[0].shape
    rows, cols = field
    window = window_along(rows, height, map_h), window_along(cols, width, map_w)
    if None in window:
        return None
    (top, bottom), (left, right) = (window[0].start, window[0].stop), (window[1].start, window[1].stop)
    if (bottom - top) * (right - left) > MOST_OF_THE_INPUT * height * width:
        return None
    # Check it: the crop's centre value is the full input's, on inputs the field was not found on.
    x = tf.random.stateless_uniform((2, height, width, channels), seed=(7, 2), minval=-1.0, maxval=1.0)
    full = tf.cast(submodel(x)[0], tf.float32)[:, map_h // 2, map_w // 2, :]
    crop = tf.cast(any_size_model(x[:, top:bottom, left:right, :])[0], tf.float32)
    crop = crop[:, crop.shape[1] // 2, crop.shape[2] // 2, :]
    scale = float(tf.reduce_max(tf.abs(full))) or 1.0
    if float(tf.reduce_max(tf.abs(full - crop))) > 1e-3 * scale:
        return None
    return window

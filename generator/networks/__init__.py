"""The network side of the atlas: which networks there are, loading them,
their conv layers (units) and blocks, and the input they expect."""

from .blocks import block_of
from .loading import (
    WEIGHTS_ENV, describe_weights, download_weights, file_digests, first_line, keras_cache_dir,
    load_model, model_source, resolve_weights, save_seeded_weights,
)
from .preprocessing import CAFFE_BGR_MEAN, caffe_input
from .units import ConvLayer, conv_layers, input_shape, not_a_conv_layer, truncated
from .zoo import BUILTIN_MODELS, DEFAULT_MODEL, BuiltinModel, builtin_spec, is_model_file

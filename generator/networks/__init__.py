"""The network side of the atlas: which networks there are, loading them,
their conv layers and units, their blocks, and the input they expect."""

from .blocks import assign_blocks
from .flops import forward_flops
from .from_onnx import CONVERTER_VERSION, ONNX_PREPROCESS_WHY, is_onnx_file, onnx_digest
from .folding import fold_batchnorm, foldable_pairs, folds_batchnorm, in_copy, unit_fold_pairs
from .loading import (
    WEIGHTS_ENV, describe_weights, download_weights, file_digests, first_line, keras_cache_dir,
    load_model, model_source, parse_input_size, resolve_weights, save_seeded_weights,
)
from .preprocessing import MODES as PREPROCESS_MODES, check_mode, guess_preprocess, network_input
from .units import (
    ConvLayer, Unit, any_size, conv_layers, find_unit, input_shape, layers_model, not_a_conv_layer, truncated,
    unit_model,
)
from .zoo import BUILTIN_MODELS, DEFAULT_MODEL, BuiltinModel, builtin_spec, family_of, is_model_file

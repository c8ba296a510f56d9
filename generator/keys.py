"""Key assembly: what goes into a picture's cache key, and every other key and
version in the project, in one place.

A picture is cached at filters/KEY[:2]/KEY.png in the cache (cache.py), KEY
being `cache_key` (cache.py: the SHA-256 of the sorted, compact JSON) of
`filter_params` below:

  algorithm       ALGORITHM_VERSION, here: bump it when the code makes other
                  pixels for the same inputs (and rewrite tests/test_golden.py's files)
  network         the model file's SHA-256 (networks/loading.py, file_digests); an
                  ONNX file's with its .onnx.data's (networks/from_onnx, onnx_digest)
  input_shape     the network's input, from its description (description.py)
  layer, filter   the layer's name and the filter's index
  method          the method's key (optvis/methods.py, Method.key): its name and
                  steps, its optimizer's, parameterization's and transform's keys
                  (optvis/optimizers.py, param.py, transforms.py) and the view's
                  objective (optvis/objectives.py, through objective_key); with
                  "preprocess", the network's preprocessing, where the method uses it
  seed            --seed; each picture starts from imaging.filter_seed of it,
                  the layer, the filter and the member
  precision       float32 or bfloat16 (--precision auto: precision.py)
  unit            where the layer's unit is, as the description records it
                  (networks/units.py, Unit.key); absent for a bare conv with its own activation
  normalization, batchnorm
                  network_key, below: a Normalization layer's statistics applied,
                  the BatchNorms folded into the convolutions (networks/folding.py)
  custom_objects_sha256
                  the --custom-objects file's bytes (description.py, Network.code_key)
  onnx_converter  an ONNX file's: CONVERTER_VERSION (networks/from_onnx), bumped when
                  the same file could convert to other layers or values (Network.code_key)
  member          which picture of a view of several (the diversity and accent views)
  photo_sha256    (in the method's parameterization) the photo a seeded view's
                  picture starts from (the accent view: param.PhotoSeeded): the
                  SHA-256 of the photo file's bytes

The other keys and versions, each where it lives:

  DESCRIPTION_VERSION (description.py)  the network's description, cached at
      models/SHA[:24]-SIZE-vN.json; bump it when what `describe` records changes,
      or the rules for a layer's unit or the BatchNorms its pictures fold
  SCHEMA_VERSION (records.py)  what a build record (builds/MODEL.json) holds;
      `upgrade` reads older records as today's
  EXAMPLES_VERSION (examples/scan.py)  the pass over the photos,
      examples/pass-KEY.npz, KEY made by pass_key of it, the network's hash,
      input shape and preprocessing, the photos' fingerprint, the layers and k
  examples/crops/, examples/views/ (examples/__init__.py)  named by the photo's
      hash, the input shape, the box and CROP_SIZE
  measures/KEY.json (examples/measure.py)  a picture's measure, under the picture's own key
  precision/SHA[:24]-SHAPE-MACHINE.json (precision.py)  --precision auto's timed
      choice, per network, input shape and a digest of this machine (its
      processor, cores, GPUs and TensorFlow)
  thumbs/ (site/files.py)  a picture's thumbnail, by the shown picture's SHA-256, its
      size, resampling and THUMB_QUALITY; the site's files are named by their content
  quality/natural-KEY.npz (scores.py)  make quality's photo statistics, by
      `cache_key` of the network, input, preprocessing, photos, copies and layer

Where a filter's pictures are missing, a build may take whole ones of the same
filter keyed otherwise: in the other precision, or with the BatchNorms not
folded (build.py, use_equivalent_pictures); the record says which.
"""

from __future__ import annotations

from .cache import cache_key
from .description import Network
from .settings import Settings

# Bump when a change to the code changes the pixels it makes for the same inputs.
ALGORITHM_VERSION = 1


def network_key(description: dict) -> dict:
    """What the network adds to a picture's key besides its file and unit.
    Pictures of a model with a Normalization layer were made without its
    adapted mean and variance before that was fixed; saying so in their key
    keeps such old pictures from being taken for new ones. A network whose
    BatchNorms fold into its convolutions runs folded (the same function, other
    rounding, so other pixels), and its keys say so."""
    key = {"normalization": "adapted mean and variance applied"} if description.get("normalizes") else {}
    if description.get("folds_batchnorm"):
        key["batchnorm"] = "folded into the convolution before it"
    return key


def filter_params(settings: Settings, net: Network, method: str, view: str, layer: str, index: int,
                  member: int = 0, photo_sha256: str = "") -> dict:
    """Everything that determines one picture: the method's parts, the view's
    objective and, in a view of several pictures, which one it is; in a seeded
    view, the photo it starts from."""
    shown = settings.view(view)
    chosen = shown.render_method(settings.method(method), photo_sha256)
    method_key = chosen.key(shown.objective)
    if chosen.preprocess:
        method_key["preprocess"] = net.preprocess
    member_key = {"member": member} if shown.group > 1 else {}
    return {
        "algorithm": ALGORITHM_VERSION,
        "network": net.sha256,
        "input_shape": net.description["input_shape"],
        "layer": layer,
        "filter": index,
        "method": method_key,
        "seed": settings.seed,
        "precision": settings.precision,
        **net.description["units"][layer],
        **network_key(net.description),
        **net.code_key,
        **member_key,
    }


def picture_keys(settings: Settings, net: Network, wanted: dict[str, list[int]], seeds: dict | None = None) -> dict:
    """Per (method, view, layer, filter), the cache key of each of its pictures.
    `seeds`: per (layer, filter), the photos a seeded view starts from (build.accent_seeds)."""
    def photo(view, layer, i, member):
        return seeds[(layer, i)][member]["sha256"] if settings.view(view).seeded else ""

    return {
        (method, view, layer, i): [cache_key(filter_params(settings, net, method, view, layer, i, member,
                                                           photo(view, layer, i, member)))
                                   for member in range(settings.view(view).group)]
        for method in settings.methods
        for view in settings.views
        for layer, indices in wanted.items()
        for i in indices
    }

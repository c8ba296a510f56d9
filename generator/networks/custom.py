"""A model's own code: custom layer classes and functions, and Lambda layers.

Keras loads such a model only with help: the classes and functions passed as
`custom_objects`, and, for a Lambda whose function is a Python lambda (stored
in the file as bytecode), `safe_mode=False`. `--custom-objects FILE.py`
imports FILE.py and hands Keras every class and function it defines;
`--unsafe-deserialization` (Keras's own word) turns safe mode off. Before
loading, the model's saved configuration is read for what it needs, so that a
missing piece is named in one line, with the flag that supplies it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
import json
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import AtlasError
from ..tf_quiet import import_keras

_imported: dict[tuple[Path, str], dict] = {}


def custom_objects_file(path: str | Path) -> Path:
    """The Python file --custom-objects names, resolved; one line where it is none."""
    file = Path(path).expanduser()
    if not file.exists():
        raise AtlasError(f"--custom-objects {path}: no such file")
    if not file.is_file():
        raise AtlasError(f"--custom-objects {path}: not a file")
    if file.suffix != ".py":
        raise AtlasError(f"--custom-objects {path}: expected a Python file (.py) defining the model's layers")
    return file.resolve()


def import_custom_objects(path: str | Path) -> dict:
    """Every class and function FILE.py defines, by name (and by the name it is
    registered under with Keras, where it is), importing the file once for
    each content it has (an edited file is imported again)."""
    path = custom_objects_file(path)
    content = hashlib.sha256(path.read_bytes()).hexdigest()
    if (path, content) in _imported:
        return _imported[path, content]
    name = f"filter_atlas_custom_{path.stem}_{hashlib.sha256(f'{path}/{content}'.encode()).hexdigest()[:8]}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(path.parent))  # so that it can import its neighbours
    try:
        sys.modules[name] = module
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(name, None)
        raise AtlasError(f"cannot import --custom-objects {path}: {type(exc).__name__}: {first_line(exc)}") from None
    finally:
        sys.path.remove(str(path.parent))
    keras = import_keras()
    objects = {}
    for key, value in vars(module).items():
        if (inspect.isclass(value) or inspect.isfunction(value)) and value.__module__ == name:
            objects[key] = value
            registered = keras.saving.get_registered_name(value)
            if registered != value.__name__:
                objects[registered] = value
    _imported[path, content] = objects
    return objects


@dataclass
class Needs:
    """What a saved model needs beyond Keras: (class, layer) pairs, functions
    by name, and the layers that are Python lambdas."""

    classes: list[tuple[str, str, str | None]] = field(default_factory=list)  # class, layer, registered name
    functions: list[str] = field(default_factory=list)
    lambdas: list[str] = field(default_factory=list)


def saved_config(source: Path) -> dict | None:
    """The model's configuration as saved in a .keras or .h5 file; None where unreadable."""
    try:
        if zipfile.is_zipfile(source):
            with zipfile.ZipFile(source) as archive:
                return json.loads(archive.read("config.json"))
        import h5py

        with h5py.File(source, "r") as f:
            text = f.attrs.get("model_config")
            if text is None:
                return None
            return json.loads(text.decode() if isinstance(text, bytes) else text)
    except Exception:  # Keras's own loader will say what is wrong with the file
        return None


# Keras 2 (tf.keras) saved a tf.* call on a symbolic tensor as one of these; Keras 3 has no such layers.
KERAS2_OP_LAYERS = ("TFOpLambda", "SlicingOpLambda")


def known_to_keras(class_name: str) -> bool:
    keras = import_keras()
    return hasattr(keras.layers, class_name) or class_name in ("Functional", "Sequential", "Model")


def needs(config: dict) -> Needs:
    """Walk a saved configuration for custom classes, custom functions and lambdas."""
    found = Needs()

    def walk(node, layer_name=None, is_layer=False):
        if isinstance(node, list):
            for item in node:
                walk(item, layer_name, is_layer)
            return
        if not isinstance(node, dict):
            return
        class_name, config = node.get("class_name"), node.get("config")
        if isinstance(class_name, str) and "config" in node:
            module = node.get("module")
            if class_name == "__lambda__":  # its code and closure hold nothing more to look at
                found.lambdas.append(layer_name or "?")
                return
            if class_name == "function" and isinstance(config, str):
                if not known_function(config, node.get("registered_name")):
                    found.functions.append(config)
                return
            if is_layer or isinstance(module, str):
                if isinstance(config, dict) and isinstance(config.get("name"), str) and is_layer:
                    layer_name = config["name"]
                custom = (module is not None and not module.startswith("keras")) if isinstance(module, str) \
                    else is_layer and not known_to_keras(class_name)
                if custom and not class_name.startswith("__"):
                    found.classes.append((class_name, layer_name or "?", node.get("registered_name")))
                if class_name == "Lambda" and isinstance(config, dict) and config.get("function_type") == "lambda":
                    found.lambdas.append(layer_name or "?")  # the legacy (Keras 2) .h5 form
        for key, value in node.items():
            walk(value, layer_name, key == "layers" and isinstance(value, list))

    walk(config, is_layer=True)
    return found


def known_function(name: str, registered: str | None) -> bool:
    keras = import_keras()
    if registered and registered != "function" and keras.saving.get_registered_object(registered):
        return True
    try:
        keras.activations.get(name)
        return True
    except Exception:
        return False


def check_loadable(label: str, source: Path, objects: dict, unsafe: bool) -> None:
    """One line naming what the model needs and how to give it, before Keras fails on it."""
    config = saved_config(source)
    if config is None:
        return
    keras = import_keras()
    found = needs(config)
    tf_ops = [layer for cls, layer, _ in found.classes if cls in KERAS2_OP_LAYERS]
    if tf_ops:
        raise AtlasError(f"{label} holds TensorFlow operations saved as layers by Keras 2 (layer {tf_ops[0]!r}, "
                         "a TFOpLambda), which Keras 3 cannot load: build the model again with Keras 3 "
                         "(keras.ops or layers instead of tf.* calls on its tensors) and save it as .keras")
    missing = [
        (cls, layer) for cls, layer, registered in found.classes
        if cls not in objects and (registered or cls) not in objects
        and not keras.saving.get_registered_object(registered or cls)
    ]
    if missing:
        cls, layer = missing[0]
        classes = sorted({cls for cls, _ in missing})
        what = f"the custom layer class {cls} (layer {layer!r})" if len(classes) == 1 else \
            f"the custom layer classes {', '.join(classes)}"
        have = f"; {offered(objects)}" if objects else ""
        raise AtlasError(f"{label} uses {what}, whose code is not in the file: pass --custom-objects FILE.py, "
                         f"a Python file that defines {' and '.join(classes)}{have}")
    functions = sorted({name for name in found.functions if name not in objects})
    if functions:
        have = f"; {offered(objects)}" if objects else ""
        raise AtlasError(f"{label} uses the function{'s' if len(functions) > 1 else ''} {', '.join(functions)}, "
                         f"whose code is not in the file: pass --custom-objects FILE.py, a Python file that "
                         f"defines {' and '.join(functions)}{have}")
    if found.lambdas and not unsafe:
        layers = ", ".join(repr(name) for name in dict.fromkeys(found.lambdas))
        raise AtlasError(f"{label} has a Lambda layer ({layers}) whose function is Python code stored in the file, "
                         "which Keras runs only if told to trust it: pass --unsafe-deserialization "
                         "if you trust where the file came from")


def offered(objects: dict) -> str:
    return f"--custom-objects defines only {', '.join(sorted(objects))}"


def explain_load_error(label: str, exc: BaseException) -> str | None:
    """Keras's words for what we did not foresee, turned into what to do."""
    import re

    text = str(exc)
    found = re.search(r"Could not locate (class|function) '([^']+)'|Unknown (?:layer|object|activation)[^']*'([^']+)'",
                      text)
    if found:
        name = found.group(2) or found.group(3)
        kind = "function" if found.group(1) == "function" else "class"
        return (f"{label} needs the custom {kind} {name}, whose code is not in the file: pass "
                f"--custom-objects FILE.py, a Python file that defines {name}")
    if "deserialization of a `Lambda` layer" in text or "safe_mode=False" in text:
        return (f"{label} has a Lambda layer whose function is Python code stored in the file, which Keras runs "
                "only if told to trust it: pass --unsafe-deserialization if you trust where the file came from")
    return None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]

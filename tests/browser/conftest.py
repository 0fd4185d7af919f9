"""The browser tests use the end-to-end tests' fixtures (daemons,
module_daemons, fg): this loads tests/e2e/conftest.py, under a name of its
own since pytest already knows this file as conftest."""
import importlib.util
import os

_spec = importlib.util.spec_from_file_location(
    "e2e_conftest", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "e2e",
                                 "conftest.py"))
_e2e = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_e2e)
daemons, module_daemons, fg = _e2e.daemons, _e2e.module_daemons, _e2e.fg

"""``import deepscope`` is light; its functions load the API (and torch) on first use."""

import subprocess
import sys


def run_python(code: str) -> str:
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


def test_the_command_line_starts_without_torch_so_ctrl_c_is_caught_from_the_start():
    loaded = run_python("import sys, deepscope.cli.main; print('torch' in sys.modules)")
    assert loaded == "False"


def test_measure_and_train_are_the_api_functions_even_after_their_subpackages_load():
    code = (
        "import deepscope.measure.regions, deepscope.train.trainer, deepscope.api, deepscope\n"
        "from deepscope import measure, train\n"
        "print(callable(deepscope.measure), callable(deepscope.train),"
        " measure is deepscope.measure, train.__module__)"
    )
    assert run_python(code) == "True True True deepscope.api"


def test_every_name_in_all_is_there():
    import deepscope
    from deepscope import api

    assert deepscope.DeepscopeError is deepscope.errors.DeepscopeError
    assert all(getattr(deepscope, name) is getattr(api, name) for name in deepscope._API_FUNCTIONS)

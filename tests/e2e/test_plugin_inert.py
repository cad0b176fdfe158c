"""The pytest plugin is installed with extractbench (entry point ``pytest11``), so it loads in
every pytest session of the environment: in a user's unrelated project it must do nothing and
clash with nothing."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

USER_CONFTEST = '''
def pytest_addoption(parser):
    # the option names extractbench's plugin used before they were prefixed
    parser.addoption("--run-live", action="store_true", default=False)
    parser.addoption("--scenario", default="none")
    parser.addoption("--results-dir", default="out")
'''

USER_TEST = '''
def test_user_options(request):
    assert request.config.getoption("--scenario") == "mine"
    assert request.config.getoption("--run-live") is True
'''


def test_user_conftest_with_the_old_option_names_runs(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(USER_CONFTEST)
    pytester.makepyfile(test_user=USER_TEST)
    result = pytester.runpytest_subprocess("--scenario", "mine", "--run-live",
                                           "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_an_unrelated_session_writes_nothing_and_loads_no_scenario(
        pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user="def test_ok():\n    import sys\n"
                        "    assert 'torch' not in sys.modules\n"
                        "    assert 'extractbench.config.scenario' not in sys.modules\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert not (pytester.path / "results").exists()
    assert "extractbench" not in result.stdout.str().split("passed")[-1]

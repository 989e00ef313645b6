"""The fastest CPU runtime for a network: measured once per CPU, then remembered."""

import json
import time

import numpy as np

from deepscope.predict import runtime_choice
from deepscope.predict.runtime_choice import cpu_key, fastest_runtime, network_key


def sleeper(seconds):
    def fn(batch):
        time.sleep(seconds)
        return batch

    return fn


def counting_builders(built, **seconds):
    def builder(name):
        def build():
            built.append(name)
            return sleeper(seconds[name])

        return build

    return {name: builder(name) for name in seconds}


BATCH = np.zeros((1, 1, 8, 8), np.float32)


def test_the_fastest_runtime_is_measured_once_then_remembered(tmp_path):
    path = tmp_path / "cpu_runtimes.json"
    built = []
    name, fn = fastest_runtime(counting_builders(built, slow=0.02, fast=0.002), BATCH, "net", path)
    assert name == "fast" and sorted(built) == ["fast", "slow"]
    record = json.loads(path.read_text())[cpu_key()]["net"]
    assert record["runtime"] == "fast" and record["seconds"]["slow"] > record["seconds"]["fast"]
    assert record["input"] == [1, 1, 8, 8]

    built.clear()
    name, fn = fastest_runtime(counting_builders(built, slow=0.02, fast=0.002), BATCH, "net", path)
    assert name == "fast" and built == ["fast"]  # the other runtime is not even built
    assert fn(BATCH) is BATCH


def test_a_burst_of_load_while_timing_does_not_decide(tmp_path):
    """The faster runtime is slowed on two of its timed calls (another program woke up):
    it is still chosen, and its time on record is its fast one."""
    calls = []

    def bursty(batch):
        calls.append(1)
        time.sleep(0.03 if len(calls) in (3, 4) else 0.002)  # calls 1-2 are the warm-up
        return batch

    builders = {"bursty": lambda: bursty, "steady": lambda: sleeper(0.006)}
    path = tmp_path / "cpu_runtimes.json"
    name, _ = fastest_runtime(builders, BATCH, "net", path)
    assert name == "bursty"
    assert json.loads(path.read_text())[cpu_key()]["net"]["seconds"]["bursty"] < 0.006


def test_a_choice_timed_the_old_way_is_measured_again(tmp_path):
    path = tmp_path / "cpu_runtimes.json"
    old = {"runtime": "slow", "seconds": {"slow": 0.049, "fast": 0.058}, "input": [1, 1, 8, 8]}
    path.write_text(json.dumps({cpu_key(): {"net": old}}))
    built = []
    name, _ = fastest_runtime(counting_builders(built, slow=0.02, fast=0.002), BATCH, "net", path)
    assert name == "fast" and len(built) == 2
    assert json.loads(path.read_text())[cpu_key()]["net"]["timing"] == runtime_choice.TIMING


def test_each_network_gets_its_own_choice(tmp_path):
    path = tmp_path / "cpu_runtimes.json"
    fastest_runtime(counting_builders([], a=0.002, b=0.02), BATCH, "net-1", path)
    fastest_runtime(counting_builders([], a=0.02, b=0.002), BATCH, "net-2", path)
    choices = json.loads(path.read_text())[cpu_key()]
    assert choices["net-1"]["runtime"] == "a" and choices["net-2"]["runtime"] == "b"


def test_a_damaged_record_is_measured_again(tmp_path):
    path = tmp_path / "cpu_runtimes.json"
    path.write_text("{not json")
    built = []
    name, _ = fastest_runtime(counting_builders(built, slow=0.02, fast=0.002), BATCH, "net", path)
    assert name == "fast" and len(built) == 2
    assert json.loads(path.read_text())[cpu_key()]["net"]["runtime"] == "fast"


def test_a_damaged_entry_of_one_network_is_measured_again(tmp_path):
    path = tmp_path / "cpu_runtimes.json"
    path.write_text(json.dumps({cpu_key(): {"net": "fast"}}))
    built = []
    name, _ = fastest_runtime(counting_builders(built, slow=0.02, fast=0.002), BATCH, "net", path)
    assert name == "fast" and len(built) == 2
    assert json.loads(path.read_text())[cpu_key()]["net"]["runtime"] == "fast"


def test_a_remembered_runtime_that_is_not_offered_any_more_is_measured_again(tmp_path):
    path = tmp_path / "cpu_runtimes.json"
    path.write_text(json.dumps({cpu_key(): {"net": {"runtime": "int8"}}}))
    built = []
    name, _ = fastest_runtime(counting_builders(built, slow=0.02, fast=0.002), BATCH, "net", path)
    assert name == "fast" and len(built) == 2


def test_a_single_runtime_is_used_without_timing_or_record(tmp_path):
    path = tmp_path / "cpu_runtimes.json"
    built = []
    name, _ = fastest_runtime(counting_builders(built, only=0.0), BATCH, "net", path)
    assert name == "only" and built == ["only"] and not path.exists()


def test_a_folder_that_cannot_be_written_only_costs_a_new_measurement(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    name, _ = fastest_runtime(
        counting_builders([], slow=0.02, fast=0.002), BATCH, "net", blocker / "cpu_runtimes.json"
    )
    assert name == "fast"


def test_the_network_key_follows_the_architecture_and_the_int8_file():
    settings = {"depth": 4, "base_filters": 16}
    assert network_key(settings) == network_key(dict(reversed(settings.items())))
    assert network_key(settings) != network_key({**settings, "depth": 3})
    assert network_key(settings) != network_key(settings, "ab" * 32)


def test_the_cpu_key_names_the_processor_and_threads():
    assert cpu_key().endswith(" threads") and len(cpu_key()) > len(" threads")


def test_the_cpu_key_tells_cpu_generations_apart(monkeypatch):
    zen3 = {"model name": "AMD EPYC", "cpu family": "25", "model": "1"}
    zen4 = {**zen3, "model": "17"}
    keys = []
    for fields in (zen3, zen4):
        monkeypatch.setattr(runtime_choice, "cpu_fields", lambda fields=fields: fields)
        keys.append(cpu_key())
    assert keys[0].startswith("AMD EPYC (family 25, model 1),") and keys[0] != keys[1]


def test_a_choice_is_described_in_one_line_fastest_first():
    record = {
        "runtime": "int8",
        "seconds": {"torch": 0.143, "onnx": 0.155, "int8": 0.11},
        "input": [1, 1, 512, 512],
        "measured": "2026-12-06",
    }
    assert runtime_choice.describe_choice(record) == (
        "int8, measured fastest on this CPU on 2026-12-06 "
        "(seconds per 1x1x512x512 input: int8 0.110, torch 0.143, onnx 0.155)"
    )
    assert runtime_choice.describe_choice({}).startswith("not measured on this CPU yet")
